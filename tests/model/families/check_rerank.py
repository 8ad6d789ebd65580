"""Holds origami's decoder reranker (Qwen3-Reranker style: qwen3 with pooling_type 4 and a yes/no
cls.output) to the float64 numpy Qwen3 forward of families_np.py, through the server.

Starts `origami serve -m MODEL --port 0 -ctk f32 -ctv f32`, posts a query and documents to
/v1/rerank, and compares each relevance_score with the reference: the pair's prompt (the GGUF's
tokenizer.chat_template.rerank, or Qwen3-Reranker's documented format when it has none, with
{query} and {document} replaced in one pass), tokenized by `origami tokenize --parse-special`
(the tokenizer has its own golden tests), run through the reference forward; the last token's
hidden state after the output norm times the two cls.output rows gives the yes and no logits,
and the score is softmax over the two at "yes" = sigmoid(yes - no).

Tolerance: |origami - reference| <= 1e-4 per score (the issue's bound) and the same order. F32
weights and an F32 KV cache leave float32 rounding in another summation order (about 1e-7 of a
score here); a wrong prompt, head row order or a missing sigmoid moves scores by far more.
Exits non-zero, saying what differed and by how much.
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
from families_np import for_file, load  # noqa: E402

TOL_SCORE = 1e-4

# Qwen3-Reranker's model card prompt with its default instruction.
QWEN3_RERANK = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
                "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
                "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the "
                "query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n"
                "<|im_start|>assistant\n<think>\n\n</think>\n\n")


def prompt(template, query, document):
    return re.sub(r"\{query\}|\{document\}", lambda m: query if m.group(0) == "{query}" else document, template)


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start_server(binary, model):
    cmd = [binary, "serve", "-m", model, "--port", "0", "-t", "2", "-ctk", "f32", "-ctv", "f32"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
    out = subprocess.run([binary, "tokenize", "-m", model, "--json", "--parse-special", text], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["ids"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("-m", "--model", required=True)
    a = ap.parse_args(argv)

    fam = for_file(a.model)
    md = fam.g.metadata
    arch = md["general.architecture"]
    failures = []
    if int(md.get(f"{arch}.pooling_type", -1)) != 4:
        raise SystemExit(f"{a.model}: not a reranker (pooling_type is not 4)")
    if list(md.get(f"{arch}.classifier.output_labels", [])) != ["yes", "no"]:
        failures.append(f"classifier.output_labels {md.get(f'{arch}.classifier.output_labels')}, want [yes, no]")
    template = md.get("tokenizer.chat_template.rerank", QWEN3_RERANK)
    head = load(fam.g, "cls.output.weight")  # [2, n_embd]: the yes row, then the no row
    assert head.shape == (2, fam.n_embd), head.shape

    query = "what is the capital of france"
    # A document that spells a placeholder checks the one-pass substitution; the empty one is a
    # prompt with nothing between its tags; the long one (about 700 tokens) spans more than one
    # engine batch of 512.
    rng = np.random.default_rng(7)
    words = ["river", "stone", "paris", "seven", "light", "market", "capital", "green", "france"]
    long_doc = " ".join(words[i] for i in rng.integers(0, len(words), size=650))
    docs = ["paris is the capital of france", "the cat sat on the mat", "berlin is in germany",
            "france has many cities and paris is one", "", "a {query} and a {document}", long_doc]
    ids = [tokenize(a.origami, a.model, prompt(template, query, d)) for d in docs]
    want = []
    for t in ids:
        fam.reset()
        yes, no = head @ fam.hidden(t)[-1]
        want.append(1.0 / (1.0 + np.exp(no - yes)))
    want_order = list(np.argsort(-np.asarray(want), kind="stable"))

    proc, url = start_server(a.origami, a.model)
    try:
        st, body = post(url + "/v1/rerank", {"query": query, "documents": docs, "return_documents": True})
        if st != 200:
            failures.append(f"/v1/rerank answered {st}: {body}")
        else:
            res = body["results"]
            got = {r["index"]: r["relevance_score"] for r in res}
            order = [r["index"] for r in res]
            diff = max(abs(got[i] - want[i]) for i in range(len(docs)))
            print(f"scores {[round(got[i], 6) for i in range(len(docs))]}")
            print(f"reference {[round(float(w), 6) for w in want]}")
            print(f"max |diff| {diff:.2e}, order {order}, reference order {want_order}")
            if diff > TOL_SCORE:
                failures.append(f"scores differ from the reference by {diff:.3e}")
            if order != want_order:
                failures.append(f"order {order}, the reference's {want_order}")
            if body["usage"]["prompt_tokens"] != sum(map(len, ids)):
                failures.append(f"usage {body['usage']}, the prompts have {sum(map(len, ids))} tokens")
            if any(r["document"]["text"] != docs[r["index"]] for r in res):
                failures.append("returned documents do not match their index")
        st, body = post(url + "/rerank", {"query": query, "documents": docs, "top_n": 2})
        if st != 200 or [r["index"] for r in body["results"]] != want_order[:2]:
            failures.append(f"top_n 2: {st} {body}")
        st, body = post(url + "/v1/embeddings", {"input": "hello"})
        if st != 400 or "reranker" not in body["error"]["message"]:
            failures.append(f"/v1/embeddings on a reranker: {st} {body}")
        st, body = post(url + "/v1/rerank", {"query": query, "documents": ["x " * 5000]})
        if st != 400 or body["error"].get("code") != "context_length_exceeded":
            failures.append(f"a document over the context: {st} {body}")
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
