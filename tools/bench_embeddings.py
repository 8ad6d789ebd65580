"""Embedding throughput of `origami serve`: N short texts in one /v1/embeddings request against a
loop of N single-text requests (one client, one at a time), in tokens per second.

usage: bench_embeddings.py --origami build/src/origami -m MODEL.gguf [-n 256] [-t THREADS]
Prints one JSON line: tokens, seconds and tokens/s for both, and the ratio.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
import urllib.request

WORDS = ("retrieval augmented generation needs fast embeddings of many short passages such as "
         "titles questions product names log lines and chat turns").split()


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-n", type=int, default=256)
    ap.add_argument("-t", "--threads", type=int, default=2)
    a = ap.parse_args()
    texts = [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(3 + i % 6)) for i in range(a.n)]
    p = subprocess.Popen([a.origami, "serve", "-m", a.model, "--port", "0", "-t", str(a.threads)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = None
    while url is None:
        line = p.stderr.readline()
        if not line:
            raise SystemExit("server did not start")
        m = re.search(r"listening on (http://\S+)", line)
        url = m.group(1) + "/v1/embeddings" if m else None
    try:
        post(url, {"input": texts[:8]})  # warm-up
        t0 = time.perf_counter()
        batch = post(url, {"input": texts})
        t_batch = time.perf_counter() - t0
        n_tok = batch["usage"]["prompt_tokens"]
        t0 = time.perf_counter()
        single_tok = sum(post(url, {"input": t})["usage"]["prompt_tokens"] for t in texts)
        t_single = time.perf_counter() - t0
    finally:
        p.terminate()
        p.wait(timeout=30)
    print(json.dumps({"texts": a.n, "tokens": n_tok, "batch_s": round(t_batch, 3),
                      "batch_tok_s": round(n_tok / t_batch, 1), "single_s": round(t_single, 3),
                      "single_tok_s": round(single_tok / t_single, 1),
                      "speedup": round((n_tok / t_batch) / (single_tok / t_single), 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
