"""Readable numpy forward passes of the GGUF families beyond plain Llama: Qwen2, Qwen3, Qwen3-MoE,
Gemma 3, Mixtral (GGUF `llama` with experts) and gpt-oss. Written from each family's published
description (the Hugging Face modeling code read as documentation, the model cards and papers),
not from origami's C++; they are the oracles check_family.py holds origami to.

Float64 throughout, like tests/model/reference/llama_np.py (whose GGUF reader this reuses).
Names map Hugging Face modules to GGUF tensors as llama.cpp's converter writes them:
  input_layernorm -> attn_norm, post_attention_layernorm -> ffn_norm (Qwen, Llama) or
  post_attention_norm (Gemma 3: the attention output norm; gpt-oss: the pre-MLP norm),
  pre_feedforward_layernorm -> ffn_norm, post_feedforward_layernorm -> post_ffw_norm,
  q_norm/k_norm -> attn_q_norm/attn_k_norm, router/gate -> ffn_gate_inp, experts -> ffn_*_exps.
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "reference"))
from gguf_np import GGUFFile  # noqa: E402
from mxfp4_np import MXFP4, dequant_mxfp4  # noqa: E402


def load(g: GGUFFile, name: str) -> np.ndarray:
    """A tensor in numpy shape (reversed ne) as float64; MXFP4 through our own dequantizer."""
    t = g.tensors[name]
    if t.type == MXFP4:
        n = t.n_elements
        start = g.data_offset + t.offset
        raw = np.asarray(g._mm[start:start + n // 32 * 17])
        return dequant_mxfp4(raw, n).reshape(tuple(reversed(t.ne)))
    return g.tensor(name, np.float64)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


class Family:
    """The decoder skeleton every family shares; subclasses set the switches in __init__ and
    override the blocks that differ. Subclass comments cite what the family's description says."""

    arch = ""
    neox = True            # rope pairs (i, i + n_rot/2) ("rotate_half"); False: (2i, 2i+1)
    qk_norm = False        # per-head RMSNorm of q and k before rope
    post_norms = False     # Gemma: norm of each block's output before the residual add
    ffn_act = "silu"       # silu | gelu_tanh
    moe = False

    def __init__(self, path: str):
        g = GGUFFile(path)
        self.g = g
        a = g.metadata["general.architecture"]
        assert a == self.arch, f"{path}: {a}, expected {self.arch}"
        md = lambda k, d=None: g.metadata.get(f"{a}.{k}", d)  # noqa: E731
        self.md = md
        self.n_embd = int(md("embedding_length"))
        self.n_layer = int(md("block_count"))
        self.n_head = int(md("attention.head_count"))
        self.n_head_kv = int(md("attention.head_count_kv", self.n_head))
        self.head_dim = int(md("attention.key_length", self.n_embd // self.n_head))
        self.eps = float(md("attention.layer_norm_rms_epsilon", 1e-5))
        self.rope_base = float(md("rope.freq_base", 10000.0))
        self.n_rot = int(md("rope.dimension_count", self.head_dim))
        if self.moe:
            self.n_expert = int(md("expert_count"))
            self.n_used = int(md("expert_used_count"))
        w = lambda n: load(g, n)  # noqa: E731
        self.tok_embd = w("token_embd.weight")
        self.n_vocab = self.tok_embd.shape[0]
        self.output = w("output.weight") if "output.weight" in g.tensors else self.tok_embd
        self.output_norm = w("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            self.layers.append({k[len(p):]: w(k) for k in g.tensors if k.startswith(p)})
        self.reset()

    # --- pieces --------------------------------------------------------------------------------
    def reset(self):
        self.k_cache = [np.zeros((0, self.n_head_kv, self.head_dim)) for _ in range(self.n_layer)]
        self.v_cache = [np.zeros((0, self.n_head_kv, self.head_dim)) for _ in range(self.n_layer)]

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def inv_freq(self, li):
        return self.rope_base ** (-np.arange(0, self.n_rot, 2, dtype=np.float64) / self.n_rot)

    def rope_mscale(self, li):
        return 1.0

    def rope(self, x, pos, li):
        ang = pos[:, None] * self.inv_freq(li)[None, :]
        cos = np.cos(ang)[:, None, :] * self.rope_mscale(li)
        sin = np.sin(ang)[:, None, :] * self.rope_mscale(li)
        out, h = x.copy(), self.n_rot // 2
        if self.neox:
            x0, x1 = x[..., :h], x[..., h:self.n_rot]
            out[..., :h], out[..., h:self.n_rot] = x0 * cos - x1 * sin, x1 * cos + x0 * sin
        else:
            x0, x1 = x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2]
            out[..., 0:self.n_rot:2], out[..., 1:self.n_rot:2] = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        return out

    def window(self, li):
        return 0  # 0: full causal attention

    def attn_scale(self, li):
        return 1.0 / math.sqrt(self.head_dim)

    def lin(self, x, L, name):
        y = x @ L[name + ".weight"].T
        return y + L[name + ".bias"] if name + ".bias" in L else y

    def attention(self, li, x, pos):
        L, n = self.layers[li], x.shape[0]
        q = self.lin(x, L, "attn_q").reshape(n, self.n_head, self.head_dim)
        k = self.lin(x, L, "attn_k").reshape(n, self.n_head_kv, self.head_dim)
        v = self.lin(x, L, "attn_v").reshape(n, self.n_head_kv, self.head_dim)
        if self.qk_norm:
            q, k = self.rmsnorm(q, L["attn_q_norm.weight"]), self.rmsnorm(k, L["attn_k_norm.weight"])
        q, k = self.rope(q, pos, li), self.rope(k, pos, li)
        self.k_cache[li] = K = np.concatenate([self.k_cache[li], k])
        self.v_cache[li] = V = np.concatenate([self.v_cache[li], v])
        kv = np.arange(self.n_head) // (self.n_head // self.n_head_kv)
        s = np.einsum("thd,shd->hts", q, K[:, kv]) * self.attn_scale(li)
        j = np.arange(K.shape[0])[None, :]
        visible = j <= pos[:, None]
        if self.window(li):
            visible &= j > pos[:, None] - self.window(li)  # the last `window` positions, self included
        s = np.where(visible[None], s, -np.inf)
        p = self.softmax_attn(li, s)
        out = np.einsum("hts,shd->thd", p, V[:, kv]).reshape(n, -1)
        return self.lin(out, L, "attn_output")

    def softmax_attn(self, li, s):
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        return s / s.sum(axis=-1, keepdims=True)

    def glu(self, gate, up):
        return (gelu_tanh(gate) if self.ffn_act == "gelu_tanh" else silu(gate)) * up

    def ffn(self, li, x):
        L = self.layers[li]
        return self.lin(self.glu(self.lin(x, L, "ffn_gate"), self.lin(x, L, "ffn_up")), L, "ffn_down")

    def route(self, logits):
        """Softmax over all experts, keep the top k, renormalize (Mixtral; Qwen3-MoE with
        norm_topk_prob). Returns (ids, weights) of the kept experts."""
        p = np.exp(logits - logits.max())
        p /= p.sum()
        ids = np.argsort(-p, kind="stable")[:self.n_used]
        return ids, p[ids] / p[ids].sum()

    def expert(self, L, e, x):
        gate = x @ L["ffn_gate_exps.weight"][e].T
        up = x @ L["ffn_up_exps.weight"][e].T
        return self.glu(gate, up) @ L["ffn_down_exps.weight"][e].T

    def moe_ffn(self, li, x):
        L = self.layers[li]
        out = np.zeros_like(x)
        logits = self.lin(x, L, "ffn_gate_inp")
        for t in range(x.shape[0]):
            ids, wts = self.route(logits[t])
            for e, wt in zip(ids, wts):
                out[t] += wt * self.expert(L, e, x[t])
        return out

    def embed(self, tokens):
        return self.tok_embd[np.asarray(tokens)]

    def ffn_norm_name(self):
        return "ffn_norm.weight"

    # --- the forward pass ------------------------------------------------------------------------
    def forward(self, tokens):
        return self.hidden(tokens) @ self.output.T

    def hidden(self, tokens):
        """The final hidden states after the output norm [n_tok, n_embd] (what embeddings pool),
        for `tokens` fed after what the KV cache already holds."""
        start = self.k_cache[0].shape[0]
        pos = np.arange(start, start + len(tokens), dtype=np.float64)
        x = self.embed(tokens)
        for li in range(self.n_layer):
            L = self.layers[li]
            h = self.attention(li, self.rmsnorm(x, L["attn_norm.weight"]), pos)
            if self.post_norms:
                h = self.rmsnorm(h, L["post_attention_norm.weight"])
            x = x + h
            xn = self.rmsnorm(x, L[self.ffn_norm_name()])
            h = self.moe_ffn(li, xn) if self.moe else self.ffn(li, xn)
            if self.post_norms:
                h = self.rmsnorm(h, L["post_ffw_norm.weight"])
            x = x + h
        return self.rmsnorm(x, self.output_norm)

    def teacher_forced(self, prompt, continuation):
        self.reset()
        seq = list(prompt) + list(continuation)
        return self.forward(seq)[len(prompt) - 1:len(seq) - 1]


class Qwen2(Family):
    """Qwen2/2.5: Llama-like decoder; q/k/v projections carry biases (o_proj does not);
    rotate_half rope (NeoX pairs); SwiGLU; RMSNorm."""
    arch = "qwen2"


class Qwen3(Family):
    """Qwen3: Qwen2 without the q/k/v biases, plus q_norm/k_norm: an RMSNorm over head_dim applied
    to every query and key head after the projection and before rope. head_dim is a config value
    (attention.key_length), not hidden/heads."""
    arch = "qwen3"
    qk_norm = True


class Qwen3Moe(Qwen3):
    """Qwen3-MoE: Qwen3 attention; each MLP is a sparse block: router logits = gate(x), softmax
    over all experts, top-k, divided by their sum (norm_topk_prob true), each expert a SwiGLU of
    width moe_intermediate_size (expert_feed_forward_length)."""
    arch = "qwen3moe"
    moe = True


class Mixtral(Family):
    """Mixtral 8x7B (GGUF arch `llama` with experts): Llama attention (adjacent-pair rope as GGUF
    `llama` stores Q/K), sparse MoE: softmax of router logits, top-2, renormalized, SwiGLU experts
    of width intermediate_size (feed_forward_length)."""
    arch = "llama"
    neox = False
    moe = True


class Gemma3(Family):
    """Gemma 3 text decoder. Embedding multiplied by sqrt(hidden_size). Every norm is Gemma's
    RMSNorm x * (1 + w); llama.cpp's converter stores 1 + w in the GGUF, so the stored gains are
    applied as they are. Blocks: input_layernorm -> attention -> post_attention_layernorm -> add;
    pre_feedforward_layernorm -> GeGLU (gelu tanh approximation) -> post_feedforward_layernorm -> add.
    q_norm/k_norm per head before rope. Layer i is a sliding-window ("local") layer unless
    (i + 1) % 6 == 0; local layers use rope base 10000 (rope_local_base_freq), global layers
    rope_theta (rope.freq_base). Scores scaled by query_pre_attn_scalar^-0.5, which the GGUF does
    not hold: head_dim for every size but the 27B (62 layers), whose config says hidden_size /
    num_attention_heads = 168 (llama.cpp picks the 27B by its layer count the same way).
    Tied output embedding."""
    arch = "gemma3"
    qk_norm = True
    post_norms = True
    ffn_act = "gelu_tanh"

    def is_local(self, li):
        return (li + 1) % int(self.md("attention.sliding_window_pattern", 6)) != 0

    def attn_scale(self, li):
        explicit = float(self.md("attention.scale", 0.0))
        if explicit:
            return explicit
        if self.n_layer == 62:
            return 1.0 / math.sqrt(self.n_embd // self.n_head)
        return 1.0 / math.sqrt(self.head_dim)

    def window(self, li):
        return int(self.md("attention.sliding_window", 0)) if self.is_local(li) else 0

    def inv_freq(self, li):
        base = 10000.0 if self.is_local(li) else self.rope_base
        return base ** (-np.arange(0, self.n_rot, 2, dtype=np.float64) / self.n_rot)

    def embed(self, tokens):
        return self.tok_embd[np.asarray(tokens)] * math.sqrt(self.n_embd)


class GptOss(Family):
    """gpt-oss. Attention with biases on q/k/v/o; rotate_half rope with YaRN scaling; a learned
    sink logit per head appended to each softmax row (and dropped after normalization); sliding
    window (128) on even layers, full attention on odd layers. MLP: router with bias, top-k of the
    logits, softmax over those k; experts with biases; gate clamped to <= limit, up clamped to
    [-limit, limit], out = (up + 1) * gate * sigmoid(alpha * gate), alpha 1.702, limit 7.
    The pre-MLP RMSNorm is post_attention_layernorm (GGUF post_attention_norm)."""
    arch = "gpt-oss"
    moe = True
    alpha, limit = 1.702, 7.0

    def window(self, li):
        return int(self.md("attention.sliding_window", 0)) if li % 2 == 0 else 0

    def yarn(self):
        # YaRN (Peng et al. 2023; HF _compute_yarn_parameters): dims whose wavelength is short
        # against the original context keep their frequency, long ones are interpolated by 1/factor,
        # a linear ramp between; cos/sin scaled by 0.1 ln(factor) + 1. The correction range is
        # floored/ceiled (truncate=True), as GGUF engines do.
        factor = float(self.md("rope.scaling.factor"))
        orig = float(self.md("rope.scaling.original_context_length"))
        beta_fast, beta_slow = 32.0, 1.0
        d = self.n_rot

        def corr(rot):
            return d * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(self.rope_base))

        low, high = max(math.floor(corr(beta_fast)), 0), min(math.ceil(corr(beta_slow)), d - 1)
        extra = self.rope_base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        inter = extra / factor
        ramp = np.clip((np.arange(d // 2) - low) / max(high - low, 0.001), 0, 1)
        keep = 1 - ramp  # weight of the original (extrapolation) frequency
        return inter * (1 - keep) + extra * keep, 0.1 * math.log(factor) + 1.0

    def inv_freq(self, li):
        return self.yarn()[0]

    def rope_mscale(self, li):
        return self.yarn()[1]

    def softmax_attn(self, li, s):
        sink = self.layers[li]["attn_sinks.weight"][:, None, None] * np.ones(s.shape[:2] + (1,))
        s = np.concatenate([s, sink], axis=-1)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        return (s / s.sum(axis=-1, keepdims=True))[..., :-1]

    def ffn_norm_name(self):
        return "post_attention_norm.weight"

    def route(self, logits):
        ids = np.argsort(-logits, kind="stable")[:self.n_used]
        p = np.exp(logits[ids] - logits[ids].max())
        return ids, p / p.sum()

    def expert(self, L, e, x):
        gate = x @ L["ffn_gate_exps.weight"][e].T + L["ffn_gate_exps.bias"][e]
        up = x @ L["ffn_up_exps.weight"][e].T + L["ffn_up_exps.bias"][e]
        gate = np.minimum(gate, self.limit)
        up = np.clip(up, -self.limit, self.limit)
        glu = gate / (1.0 + np.exp(-self.alpha * gate))
        return ((up + 1) * glu) @ L["ffn_down_exps.weight"][e].T + L["ffn_down_exps.bias"][e]


class Llama(Family):
    """Plain GGUF llama (dense), for the synth writer's own test."""
    arch = "llama"
    neox = False


def for_file(path: str) -> Family:
    g = GGUFFile(path)
    a = g.metadata["general.architecture"]
    if a == "llama":
        return Mixtral(path) if "llama.expert_count" in g.metadata else Llama(path)
    if a == "deepseek2":
        from deepseek2_np import Deepseek2  # tests/model/reference: MLA and the DeepSeek MoE
        return Deepseek2(path)
    return {"qwen2": Qwen2, "qwen3": Qwen3, "qwen3moe": Qwen3Moe, "gemma3": Gemma3, "gpt-oss": GptOss}[a](path)
