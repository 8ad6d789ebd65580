#!/usr/bin/env python3
"""Throughput of `origami serve` alone vs under `mpirun -np N` (not a test: prints figures).
Single stream and N concurrent streams of greedy decoding, aggregate generated tokens per second
of wall time (the short prompts' prefill included), with the load average when each ran.
Usage: serve_bench.py --origami BIN --mpirun MPIRUN -m MODEL [--ranks 2] [--tokens 64]"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

import harness


def start(args, ranks, threads):
    cmd = [args.origami, "serve", "-m", args.model, "--port", "0", "-t", str(threads), "--parallel", "8",
           "-c", "4096"]
    if ranks > 1:
        cmd = harness.mpirun(args.mpirun, ranks, "--bind-to", "none") + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=harness.env())
    lines, port = [], [None]
    ready = threading.Event()

    def read():
        for line in p.stdout:
            lines.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port[0] = int(m.group(1))
                ready.set()
        ready.set()
    threading.Thread(target=read, daemon=True).start()
    ready.wait(300)
    if port[0] is None:
        sys.exit("server did not start:\n" + "".join(lines))
    return p, port[0], lines


def complete(port, prompt, n):
    body = json.dumps({"prompt": prompt, "max_tokens": n, "temperature": 0, "ignore_eos": True}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/completions" % port, data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=900) as r:
        return json.loads(r.read())["usage"]["completion_tokens"]


def streams(port, k, n):
    got = [0] * k
    prompts = ["Stream %d: once upon a time there was" % i for i in range(k)]
    ts = [threading.Thread(target=lambda i=i: got.__setitem__(i, complete(port, prompts[i], n))) for i in range(k)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(got) / (time.time() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="threads in all (split between ranks)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    for rep in range(args.repeat):
        for ranks in (1, args.ranks):
            threads = max(1, args.threads // ranks)
            p, port, lines = start(args, ranks, threads)
            complete(port, "warm up", 4)
            for k in (1, args.streams):
                load = os.getloadavg()[0]
                tps = streams(port, k, args.tokens)
                print("run %d: %d rank(s) x %d thread(s), %d stream(s): %.2f tokens/s (load average %.2f)"
                      % (rep + 1, ranks, threads, k, tps, load), flush=True)
            # SIGTERM to rank 0 alone: it shuts the workers down and prints the bytes on the wire.
            os.kill((harness.rank_pid(p.pid, 0) or p.pid) if ranks > 1 else p.pid, 15)
            p.wait(120)
            for line in lines:
                if line.startswith("dist:") and "per token" in line:
                    print("   ", line.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
