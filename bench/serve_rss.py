#!/usr/bin/python3
"""Resident memory of `origami serve` per KV cache type: for each type, start the server with a large
pool (default `--parallel 4 -c 65536`), read VmRSS once it listens, send PARALLEL concurrent requests
of PROMPT tokens each, and read VmRSS and VmHWM (the peak) after them; print one table row per type
with the plan's KV bytes per token and pool size beside the measurements.

The KV pool is an anonymous mapping whose pages become resident only as positions are written, so
the RSS grows by about (tokens written x KV bytes per token) rather than by the pool's size.

  python3 bench/serve_rss.py --origami build/src/origami -m llama-1b-Q4_0.gguf [--types f32,f16,q8_0]
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else 0


def post(url, body, timeout):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def measure(a, kv):
    port = free_port()
    cmd = [a.origami, "serve", "-m", a.model, "--port", str(port), "-t", str(a.threads), "--parallel",
           str(a.parallel), "-c", str(a.ctx), "-ctk", kv, "-ctv", kv]
    srv = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                break
            except Exception:
                if srv.poll() is not None:
                    raise SystemExit(f"serve exited: {srv.stderr.read()}")
                time.sleep(0.5)
        idle = proc_kib(srv.pid, "VmRSS")
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        kv_total = re.search(r"^origami_kv_cache_bytes_total (\S+)", metrics, re.M)
        # Distinct prompts (no prefix sharing), PROMPT token ids each.
        errors = []

        def one(i):
            ids = [(37 * i + 11 * j) % 1000 + 100 for j in range(a.prompt)]
            try:
                post(base + "/v1/completions", {"prompt": ids, "max_tokens": a.gen, "temperature": 0}, 3600)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(str(e))

        t0 = time.time()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(a.parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after, hwm = proc_kib(srv.pid, "VmRSS"), proc_kib(srv.pid, "VmHWM")
        if errors:
            raise SystemExit(f"{kv}: requests failed: {errors[:2]}")
        return {"kv": kv, "idle_mib": idle / 1024, "after_mib": after / 1024, "hwm_mib": hwm / 1024,
                "pool_mib": float(kv_total.group(1)) / 2**20 if kv_total else 0.0,
                "seconds": time.time() - t0}
    finally:
        srv.terminate()
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            srv.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--origami", required=True)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--types", default="f32,f16,q8_0")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("-c", "--ctx", type=int, default=65536)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512, help="prompt tokens per request")
    ap.add_argument("--gen", type=int, default=16, help="tokens generated per request")
    a = ap.parse_args()
    plan = {}
    for kv in a.types.split(","):
        out = subprocess.run([a.origami, "info", a.model, "--plan", "--json", "--parallel", str(a.parallel), "-c",
                              str(a.ctx // a.parallel), "-ctk", kv, "-ctv", kv, "-t", str(a.threads)],
                             capture_output=True, text=True, check=True)
        plan[kv] = json.loads(out.stdout)
    print(f"model {os.path.basename(a.model)}, serve --parallel {a.parallel} -c {a.ctx}, {a.parallel} requests of "
          f"{a.prompt}+{a.gen} tokens")
    print("| KV type | KV B/token | pool (plan) MiB | plan total MiB | RSS idle MiB | RSS after MiB | VmHWM MiB |"
          " growth / token written |")
    print("|---|---|---|---|---|---|---|---|")
    for kv in a.types.split(","):
        r = measure(a, kv)
        p = plan[kv]
        written = a.parallel * (a.prompt + a.gen)
        growth = (r["hwm_mib"] - r["idle_mib"]) * 2**20 / written
        print(f"| {kv} | {p['kv_bytes_per_token']} | {p['kv'] / 2**20:.0f} | {p['total'] / 2**20:.0f} | "
              f"{r['idle_mib']:.0f} | {r['after_mib']:.0f} | {r['hwm_mib']:.0f} | {growth:.0f} B |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
