"""Holds origami's BERT encoder to the float64 numpy reference (bert_np.py) through the server.

Starts `origami serve -m MODEL --port 0`, then
  embedding models: POST /v1/embeddings with several token-id inputs at once, and each alone;
  rerankers (pooling_type 4): POST /v1/rerank with a query and documents given as text, the pairs
  tokenized by the reference side with the model's own vocabulary through `origami tokenize`.

Tolerances: embeddings within 1e-4 of cosine (the issue's bound) and 1e-5 per value of the unit
vectors; rerank scores within 1e-4 of the reference logit each, and in the same order. F32
weights leave only float32 rounding in another summation order (about 1e-6 here), so a wrong
LayerNorm, GELU, token type or position moves results by orders of magnitude more. A batch must
give what each input gives alone within 1e-6 (every sequence's rows are computed alike whatever
else is in the batch). Exits non-zero, saying what differed and by how much.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bert_np import Bert  # noqa: E402

TOL_COS, TOL_VALUE, TOL_SCORE, TOL_BATCH = 1e-4, 1e-5, 1e-4, 1e-6


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start_server(binary, model):
    p = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", "-t", "2"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    log = ""
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        log += line
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return p, m.group(1)
    p.kill()
    raise SystemExit(f"FAIL: server did not start:\n{log}")


def tokenize(binary, model, text):
    out = subprocess.run([binary, "tokenize", "-m", model, "--json", text], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)["ids"]


def check_embeddings(url, ref, failures):
    rng = np.random.default_rng(3)
    inputs = [[101, 102], [101, 7592, 2088, 102], [int(t) for t in rng.integers(0, ref.n_vocab, size=40)],
              [int(t) for t in rng.integers(0, ref.n_vocab, size=63)]]
    inputs = [[t % ref.n_vocab for t in x] for x in inputs]
    want = [ref.embed(x) for x in inputs]
    st, together = post(url + "/v1/embeddings", {"input": inputs})
    if st != 200:
        failures.append(f"/v1/embeddings answered {st}: {together}")
        return
    assert together["usage"]["prompt_tokens"] == sum(map(len, inputs)), together["usage"]
    got = [np.asarray(d["embedding"]) for d in sorted(together["data"], key=lambda d: d["index"])]
    alone = [np.asarray(post(url + "/v1/embeddings", {"input": x})[1]["data"][0]["embedding"]) for x in inputs]
    for i, (g, w, a) in enumerate(zip(got, want, alone)):
        diff = float(np.max(np.abs(g - w)))
        cos = float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w)))
        batch = float(np.max(np.abs(g - a)))
        print(f"embedding {i} ({len(inputs[i])} tokens, {ref.pooling}): max |diff| {diff:.2e}, 1-cos {1 - cos:.2e}, "
              f"batch vs alone {batch:.2e}")
        if diff > TOL_VALUE or cos < 1 - TOL_COS:
            failures.append(f"embedding {i}: differs from the reference by {diff:.3e} (1-cos {1 - cos:.3e})")
        if batch > TOL_BATCH:
            failures.append(f"embedding {i}: batched and alone differ by {batch:.3e}")
    st, body = post(url + "/v1/rerank", {"query": "a", "documents": ["b"]})
    if st != 400 or "not a reranker" not in body["error"]["message"]:
        failures.append(f"/v1/rerank on an embedding model: {st} {body}")


def check_rerank(url, binary, model, ref, failures):
    query = "what is the capital of france"
    docs = ["paris is the capital of france", "the cat sat on the mat", "berlin is in germany",
            "france has many cities and paris is one", "", "capital letters"]
    q = tokenize(binary, model, query)
    want = []
    for d in docs:
        ids = tokenize(binary, model, d)
        if ids and ids[0] == q[0]:
            ids = ids[1:]  # the document's [CLS]: a pair has one
        want.append(ref.score(q, ids))
    for path in ("/v1/rerank", "/rerank", "/v1/reranking"):
        st, body = post(url + path, {"query": query, "documents": docs,
                                     "return_documents": True})
        if st != 200:
            failures.append(f"{path} answered {st}: {body}")
            continue
        res = body["results"]
        got = {r["index"]: r["relevance_score"] for r in res}
        order = [r["index"] for r in res]
        want_order = list(np.argsort(-np.asarray(want), kind="stable"))
        diff = max(abs(got[i] - want[i]) for i in range(len(docs)))
        print(f"{path}: scores {[round(got[i], 5) for i in range(len(docs))]}, max |diff| {diff:.2e}, order {order}")
        if diff > TOL_SCORE:
            failures.append(f"{path}: scores differ from the reference by {diff:.3e}")
        if order != want_order:
            failures.append(f"{path}: order {order}, the reference's {want_order}")
        if any(r["document"]["text"] != docs[r["index"]] for r in res):
            failures.append(f"{path}: returned documents do not match their index")
    st, body = post(url + "/v1/rerank", {"query": query, "documents": docs, "top_n": 2})
    if st != 200 or [r["index"] for r in body["results"]] != want_order[:2] or "document" in body["results"][0]:
        failures.append(f"top_n 2: {st} {body}")
    st, body = post(url + "/v1/embeddings", {"input": "hello"})
    if st != 400 or "reranker" not in body["error"]["message"]:
        failures.append(f"/v1/embeddings on a reranker: {st} {body}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("-m", "--model", required=True)
    a = ap.parse_args(argv)
    ref = Bert(a.model)
    proc, url = start_server(a.origami, a.model)
    failures = []
    try:
        if ref.pooling == "rank":
            check_rerank(url, a.origami, a.model, ref, failures)
        else:
            check_embeddings(url, ref, failures)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
