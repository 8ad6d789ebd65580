"""A readable numpy forward pass of the GGUF `llama` architecture: the oracle origami's decoder is
held to (tests/model/reference/check_forward.py), itself checked against llama2.c's goldens
(`llama_np.py selftest`).

Arithmetic is float64 throughout. The oracle should be as close to the exact function as we can
cheaply get, so that a measured difference is origami's rounding and not the reference's: in
float64 the reference's own error (~1e-15 relative) is far below any tolerance used here, while
a float32 reference would contribute an error of the same order as origami's F32 path and blur
the tight F32/F16 checks. Weights are dequantized exactly (see gguf_np.py) and widened.

Optionally (`act_round`), the input of every matrix product is rounded the way a fast engine
rounds activations before an integer or half-precision dot product (fp16, bf16, Q8_0 blocks of
32, Q8_K blocks of 256). That is not part of the oracle: check_forward.py uses it only to
measure how large a difference such rounding legitimately causes, to justify its tolerances.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_np import GGUFFile  # noqa: E402


# --- activation rounding models (for tolerance derivation only) -----------------------------------
def _round_bf16(x: np.ndarray) -> np.ndarray:
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16  # round to nearest, ties to even
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def _round_q8_0(x: np.ndarray) -> np.ndarray:
    # ggml quantize_row_q8_0, in float32 as ggml computes it: per block of 32, d = amax / 127,
    # q = round-half-away(x * (1 / d)); the dot product then uses d rounded to fp16.
    shape = x.shape
    b = x.astype(np.float32).reshape(-1, 32)
    d = np.abs(b).max(axis=1, keepdims=True) / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d > 0)
    v = b * inv
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    d16 = d.astype(np.float16).astype(np.float64)
    return (q.astype(np.float64) * d16).reshape(shape)


def _round_q8_k(x: np.ndarray) -> np.ndarray:
    # ggml quantize_row_q8_K (current form), in float32: per block of 256, iscale = -127 / (the
    # signed value of largest magnitude), q = round-half-even(iscale * x), d = 1 / iscale.
    shape = x.shape
    b = x.astype(np.float32).reshape(-1, 256)
    idx = np.abs(b).argmax(axis=1)
    mx = b[np.arange(b.shape[0]), idx][:, None]
    iscale = np.divide(np.float32(-127), mx, out=np.zeros_like(mx), where=mx != 0)
    q = np.minimum(127, np.round(iscale * b))
    d = np.divide(np.float32(1), iscale, out=np.zeros_like(iscale), where=iscale != 0)
    return (q.astype(np.float64) * d.astype(np.float64)).reshape(shape)


ACT_ROUND = {
    None: lambda x: x,
    "f32": lambda x: x.astype(np.float32).astype(np.float64),
    "f16": lambda x: x.astype(np.float16).astype(np.float64),
    "bf16": _round_bf16,
    "q8_0": _round_q8_0,
    "q8_k": _round_q8_k,
}


class Llama:
    """Weights and hyper-parameters of a GGUF `llama` model, and its forward pass."""

    def __init__(self, path: str, act_round: str | None = None):
        g = GGUFFile(path)
        self.path = path
        arch = g.metadata.get("general.architecture")
        if arch != "llama":
            raise ValueError(f"{path}: architecture {arch!r}, this reference implements 'llama'")
        md = lambda k, d=None: g.metadata.get(f"llama.{k}", d)  # noqa: E731
        self.n_embd = int(md("embedding_length"))
        self.n_layer = int(md("block_count"))
        self.n_head = int(md("attention.head_count"))
        self.n_head_kv = int(md("attention.head_count_kv", self.n_head))
        self.head_dim = int(md("attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(md("rope.dimension_count", self.head_dim))
        self.rope_base = float(md("rope.freq_base", 10000.0))
        self.eps = float(md("attention.layer_norm_rms_epsilon", 1e-5))
        assert self.n_head % self.n_head_kv == 0 and self.n_rot <= self.head_dim

        w = lambda name: g.tensor(name, np.float64)  # noqa: E731
        # Matrices are stored ne = [in, out]; numpy shape [out, in], so y = W @ x.
        self.tok_embd = w("token_embd.weight")  # [n_vocab, n_embd]
        self.n_vocab = self.tok_embd.shape[0]
        self.output = w("output.weight") if "output.weight" in g.tensors else self.tok_embd
        self.output_norm = w("output_norm.weight")  # [n_embd]
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            self.layers.append({k: w(p + k + ".weight") for k in (
                "attn_norm",    # [n_embd]
                "attn_q",       # [n_head * head_dim, n_embd]
                "attn_k",       # [n_head_kv * head_dim, n_embd]
                "attn_v",       # [n_head_kv * head_dim, n_embd]
                "attn_output",  # [n_embd, n_head * head_dim]
                "ffn_norm",     # [n_embd]
                "ffn_gate",     # [n_ff, n_embd]
                "ffn_up",       # [n_ff, n_embd]
                "ffn_down",     # [n_embd, n_ff]
            )})

        # RoPE frequencies, one per rotated pair i < n_rot/2: base^(-2i/n_rot).
        # Llama 3.1 scaling: llama.cpp passes `rope_freqs.weight` to ggml_rope_ext as
        # `freq_factors`, and ggml's rope cache computes, per pair i = i0/2,
        #     ff = freq_factors[i];  rope_yarn(theta / ff, ...)
        # where theta = pos * base^(-2i/n_dims); with ext_factor 0, freq_scale 1 and
        # attn_factor 1 (plain llama), rope_yarn reduces to cos(theta/ff), sin(theta/ff).
        # So the angular frequency of pair i is divided by rope_freqs[i] (1 for high-frequency
        # pairs, up to the scale factor, e.g. 8, for low-frequency ones).
        i = np.arange(self.n_rot // 2, dtype=np.float64)
        self.inv_freq = self.rope_base ** (-2.0 * i / self.n_rot)
        if "rope_freqs.weight" in g.tensors:
            ff = w("rope_freqs.weight").reshape(-1)
            assert ff.size == self.n_rot // 2, "rope_freqs must have n_rot/2 entries"
            self.inv_freq = self.inv_freq / ff
        self.rope_freqs = "rope_freqs.weight" in g.tensors

        self.act = ACT_ROUND[act_round]
        self.reset()

    def reset(self) -> None:
        """Clears the KV cache: per layer, keys and values [n_pos, n_head_kv, head_dim]."""
        self.k_cache = [np.zeros((0, self.n_head_kv, self.head_dim)) for _ in range(self.n_layer)]
        self.v_cache = [np.zeros((0, self.n_head_kv, self.head_dim)) for _ in range(self.n_layer)]

    # --- blocks --------------------------------------------------------------------------------
    def matmul(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """x [n_tok, in] times the stored matrix w [out, in] -> [n_tok, out]."""
        return self.act(x) @ w.T

    def rmsnorm(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def rope(self, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """x [n_tok, n_heads, head_dim]: rotate adjacent pairs (2i, 2i+1) for 2i < n_rot by
        pos * inv_freq[i] (llama.cpp's "normal" rope, as GGUF `llama` stores Q and K)."""
        ang = pos[:, None].astype(np.float64) * self.inv_freq[None, :]  # [n_tok, n_rot/2]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = x.copy()
        x0, x1 = x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2]
        out[..., 0:self.n_rot:2] = x0 * cos - x1 * sin
        out[..., 1:self.n_rot:2] = x0 * sin + x1 * cos
        return out

    def attention(self, li: int, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        L = self.layers[li]
        n_tok = x.shape[0]
        q = self.matmul(x, L["attn_q"]).reshape(n_tok, self.n_head, self.head_dim)
        k = self.matmul(x, L["attn_k"]).reshape(n_tok, self.n_head_kv, self.head_dim)
        v = self.matmul(x, L["attn_v"]).reshape(n_tok, self.n_head_kv, self.head_dim)
        q, k = self.rope(q, pos), self.rope(k, pos)
        self.k_cache[li] = np.concatenate([self.k_cache[li], k])
        self.v_cache[li] = np.concatenate([self.v_cache[li], v])
        K, V = self.k_cache[li], self.v_cache[li]  # [n_ctx, n_head_kv, head_dim]
        n_ctx = K.shape[0]
        # Query head h reads KV head h // group (grouped-query attention).
        group = self.n_head // self.n_head_kv
        kv_of_head = np.arange(self.n_head) // group
        Kh, Vh = K[:, kv_of_head, :], V[:, kv_of_head, :]  # [n_ctx, n_head, head_dim]
        scores = np.einsum("thd,shd->hts", q, Kh) / np.sqrt(self.head_dim)
        # Causal mask: query at position pos[t] sees cache positions 0..pos[t].
        visible = np.arange(n_ctx)[None, :] <= pos[:, None]  # [n_tok, n_ctx]
        scores = np.where(visible[None], scores, -np.inf)
        scores = scores - scores.max(axis=-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=-1, keepdims=True)
        out = np.einsum("hts,shd->thd", p, Vh).reshape(n_tok, self.n_head * self.head_dim)
        return self.matmul(out, L["attn_output"])

    def ffn(self, li: int, x: np.ndarray) -> np.ndarray:
        L = self.layers[li]
        gate, up = self.matmul(x, L["ffn_gate"]), self.matmul(x, L["ffn_up"])
        h = gate / (1.0 + np.exp(-gate)) * up  # SwiGLU: silu(gate) * up
        return self.matmul(h, L["ffn_down"])

    # --- the forward pass ------------------------------------------------------------------------
    def forward(self, tokens: list[int]) -> np.ndarray:
        """Feeds `tokens` after what the KV cache already holds; returns logits [n_tok, n_vocab]."""
        start = self.k_cache[0].shape[0]
        pos = np.arange(start, start + len(tokens))
        x = self.tok_embd[np.asarray(tokens, dtype=np.int64)]  # [n_tok, n_embd]
        for li in range(self.n_layer):
            x = x + self.attention(li, self.rmsnorm(x, self.layers[li]["attn_norm"]), pos)
            x = x + self.ffn(li, self.rmsnorm(x, self.layers[li]["ffn_norm"]))
        x = self.rmsnorm(x, self.output_norm)
        return self.matmul(x, self.output)

    def generate(self, prompt: list[int], n: int):
        """Greedy decoding (argmax, first maximum wins). Returns (generated ids, logits at the
        last prompt position, per-step top-2 margins)."""
        self.reset()
        logits = self.forward(prompt)[-1]
        first_logits = logits.copy()
        ids, margins = [], []
        for step in range(n):
            nxt = int(np.argmax(logits))
            ids.append(nxt)
            margins.append(top2_margin(logits))
            if step + 1 < n:
                logits = self.forward([nxt])[-1]
        return ids, first_logits, margins

    def teacher_forced(self, prompt: list[int], continuation: list[int]) -> np.ndarray:
        """Logits [len(continuation), n_vocab]: row i predicts continuation[i], given the prompt
        and continuation[:i] (one prefill over everything; the causal mask makes it exact)."""
        self.reset()
        seq = list(prompt) + list(continuation)
        return self.forward(seq)[len(prompt) - 1:len(seq) - 1]


def top2_margin(logits: np.ndarray) -> float:
    top = np.partition(logits, -2)[-2:]
    return float(top[1] - top[0])


# --- the self-test against llama2.c's goldens --------------------------------------------------------
def selftest(shared: str) -> int:
    model = os.path.join(shared, "models", "stories260K.gguf")
    ok = True
    for case in ("once_upon_a_time", "the_little_dog", "empty_prompt"):
        path = os.path.join(shared, "golden", f"stories260K_{case}.json")
        if not os.path.exists(path):
            continue
        gold = json.load(open(path))
        m = Llama(model)
        ids, logits, _ = m.generate(gold["prompt_token_ids"], gold["n_generated"])
        want = np.asarray(gold["logits_after_prompt"], dtype=np.float64)
        err = float(np.abs(logits - want).max())
        same = ids == gold["generated_token_ids"]
        first_diff = next((i for i, (a, b) in enumerate(zip(ids, gold["generated_token_ids"]))
                           if a != b), None)
        print(f"selftest {case}: max |logit - llama2.c| = {err:.3g} (limit 1e-4), "
              f"{len(ids)} greedy ids {'identical' if same else f'DIFFER at step {first_diff}'}")
        ok &= err <= 1e-4 and same
    print("selftest", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("selftest", help="check stories260K.gguf against llama2.c's goldens")
    st.add_argument("--shared", default=os.environ.get("ORIGAMI_SHARED_DIR", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "shared")))
    gen = sub.add_parser("generate", help="greedy generation; prints JSON")
    gen.add_argument("-m", "--model", required=True)
    gen.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    gen.add_argument("-n", type=int, default=32)
    gen.add_argument("--act-round", choices=[k for k in ACT_ROUND if k], default=None)
    gen.add_argument("--logits-out", help="write the last prompt position's logits (float32)")
    args = ap.parse_args(argv)
    if args.cmd == "selftest":
        return selftest(args.shared)
    m = Llama(args.model, args.act_round)
    prompt = [int(t) for t in args.prompt_ids.split(",")]
    ids, logits, margins = m.generate(prompt, args.n)
    if args.logits_out:
        logits.astype("<f4").tofile(args.logits_out)
    print(json.dumps({"prompt_ids": prompt, "generated_ids": ids,
                      "min_top2_margin": min(margins) if margins else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
