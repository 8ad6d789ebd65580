"""A float64 numpy forward pass of BERT encoder GGUFs (`bert`, `nomic-bert`), the oracle for
origami's encoder.

Written from the BERT paper and the Hugging Face BertModel definition, not from origami's code; it
reads the file with gguf_np.py (its own GGUF reader). The forward pass of one sequence:

  x = LayerNorm(tok_embd[ids] + token_types[types] + position_embd[0..n))
  per layer: x = LayerNorm(x + W_o softmax(Q K^T / sqrt(hd)) V + b_o)   (every token sees every token)
             x = LayerNorm(x + W_down gelu(W_up x + b_up) + b_down)     (gelu with erf, BERT's "gelu")
  nomic-bert: no position table; Q, K, V from one fused attn_qkv (no biases anywhere), Q and K
             rotated NeoX-style (pair i with i + hd/2, angle pos * base^(-2i/hd)); FFN
             W_down (silu(W_gate x) * W_up x).
  pooling:   mean of the rows, the [CLS] row, or the last, then scaled to unit length; or, for a
             cross-encoder (pooling_type 4), score = cls.output tanh(cls h_CLS + cls.bias) + bias.

Used as a module by check_bert.py; `python3 bert_np.py MODEL IDS...` prints the pooled vector.
"""
from __future__ import annotations

import math
import sys

import numpy as np

from gguf_np import GGUFFile

POOLING = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}
_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class Bert:
    def __init__(self, path: str):
        self.g = GGUFFile(path)
        m = self.g.metadata
        self.arch = m["general.architecture"]
        if self.arch not in ("bert", "nomic-bert"):
            raise SystemExit(f"{path}: not a bert or nomic-bert model")
        a = self.arch + "."
        self.n_layer = int(m[a + "block_count"])
        self.n_embd = int(m[a + "embedding_length"])
        self.n_head = int(m[a + "attention.head_count"])
        self.eps = float(m[a + "attention.layer_norm_epsilon"])
        self.rope_base = float(m.get(a + "rope.freq_base", 10000.0))
        self.pooling = POOLING[int(m.get(a + "pooling_type", 1))]
        self.t = {name: self.g.tensor(name, np.float64) for name in self.g.tensors}
        self.n_vocab = self.t["token_embd.weight"].shape[0]

    def rope(self, x):
        """NeoX rotation of [n_head, n, hd] at positions 0..n-1."""
        hd = x.shape[-1]
        half = hd // 2
        inv = self.rope_base ** (-np.arange(half, dtype=np.float64) * 2.0 / hd)
        ang = np.arange(x.shape[1], dtype=np.float64)[:, None] * inv[None, :]
        c, s = np.cos(ang), np.sin(ang)
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)

    def hidden(self, ids, types=None):
        """Final hidden states [n, n_embd] of one sequence."""
        t = self.t
        n = len(ids)
        nomic = self.arch == "nomic-bert"
        types = np.zeros(n, dtype=np.int64) if types is None else np.asarray(types)
        x = t["token_embd.weight"][ids] + t["token_types.weight"][types]
        if not nomic:
            x = x + t["position_embd.weight"][:n]
        x = layer_norm(x, t["token_embd_norm.weight"], t["token_embd_norm.bias"], self.eps)
        hd = self.n_embd // self.n_head
        heads = lambda v: v.reshape(n, self.n_head, hd).transpose(1, 0, 2)  # noqa: E731
        for i in range(self.n_layer):
            p = f"blk.{i}."

            def lin(name, v):
                y = v @ t[p + name + ".weight"].T
                return y + t[p + name + ".bias"] if p + name + ".bias" in t else y

            if nomic:
                q, k, v = np.split(lin("attn_qkv", x), 3, axis=-1)
                q, k, v = self.rope(heads(q)), self.rope(heads(k)), heads(v)
            else:
                q, k, v = heads(lin("attn_q", x)), heads(lin("attn_k", x)), heads(lin("attn_v", x))
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, self.n_embd)
            x = layer_norm(x + lin("attn_output", a), t[p + "attn_output_norm.weight"],
                           t[p + "attn_output_norm.bias"], self.eps)
            if nomic:
                g = lin("ffn_gate", x)
                f = lin("ffn_down", g / (1.0 + np.exp(-g)) * lin("ffn_up", x))
            else:
                f = lin("ffn_down", gelu(lin("ffn_up", x)))
            x = layer_norm(x + f, t[p + "layer_output_norm.weight"], t[p + "layer_output_norm.bias"], self.eps)
        return x

    def embed(self, ids, pooling=None):
        """The pooled, unit-length sentence vector."""
        h = self.hidden(ids)
        pooling = pooling or self.pooling
        v = {"mean": lambda: h.mean(axis=0), "cls": lambda: h[0], "last": lambda: h[-1]}[pooling]()
        return v / np.linalg.norm(v)

    def score(self, query_ids, doc_ids):
        """A cross-encoder's relevance logit of ([CLS] query [SEP]) + (document [SEP]): the query
        part is token type 0, the document part type 1."""
        ids = list(query_ids) + list(doc_ids)
        types = [0] * len(query_ids) + [1] * len(doc_ids)
        h = self.hidden(ids, types)[0]
        t = self.t
        if "cls.weight" in t:
            h = np.tanh(t["cls.weight"] @ h + t["cls.bias"])
        return float((t["cls.output.weight"] @ h)[0] + t.get("cls.output.bias", np.zeros(1))[0])


if __name__ == "__main__":
    model = Bert(sys.argv[1])
    print(model.embed([int(a) for a in sys.argv[2:]]).tolist())
