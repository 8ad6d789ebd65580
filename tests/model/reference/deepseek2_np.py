"""A numpy float64 forward pass of GGUF `deepseek2` (DeepSeek-V2 / V3), written from the papers'
equations and the GGUF tensor layout (llama.cpp's converter), not from origami's C++.

Multi-head latent attention (DeepSeek-V2, section 2.1.2-2.1.3), per token t and head i:
  c_Q = RMSNorm(W_DQ h)                        attn_q_a, attn_q_a_norm     (q_lora_rank > 0)
  [q_C_i ; q_R_i] = (W_UQ c_Q)_i               attn_q_b; or attn_q h when q_lora_rank is 0 (V2-Lite)
  [c_KV ; k_R'] = W_DKV h                      attn_kv_a_mqa: the latent (kv_lora_rank), then k_R'
  c_KV <- RMSNorm(c_KV)                        attn_kv_a_norm
  [k_C_i ; v_C_i] = (W_UKV c_KV)_i             attn_kv_b, per head qk_nope values then v_head values
  q_R_i = RoPE(q_R_i), k_R = RoPE(k_R')        one rope key shared by all heads
  o_i = sum_j softmax_j((q_C_i . k_C_ij + q_R_i . k_R_j) / sqrt(d_nope + d_rope)) v_C_ij
  u = W_O [o_1 ... o_H]                        attn_output
RoPE in GGUF deepseek2 rotates adjacent pairs (2m, 2m+1) of the rope part: DeepSeek's reference
code de-interleaves q_R/k_R before rotate_half, which on the stored weights is the same rotation
(llama.cpp runs the architecture with its "normal" rope).
YaRN (DeepSeek-V2 appendix / the released DeepseekV2YarnRotaryEmbedding): with factor s over an
original context L, frequency pair m keeps theta_m where its wavelength is short (m below the
correction range [lo, hi], lo = floor(d(beta_fast)), hi = ceil(d(beta_slow)), d(b) =
d_rope ln(L / (2 pi b)) / (2 ln base)), takes theta_m / s above it, and a linear ramp between; the
rotation keeps magnitude 1 (mscale = mscale_all_dim in the released configs); the softmax scale
becomes mscale^2 / sqrt(d_k), mscale = 1 + 0.1 mscale_all_dim ln(s), the GGUF key
rope.scaling.yarn_log_multiplier holding 0.1 mscale_all_dim.
The cache keeps what MLA caches: c_KV and k_R per token (expanded per head at attention time).

DeepSeekMoE (V2 section 2.2, V3 section 2.1.2): the first leading_dense_block_count layers use a
dense SwiGLU FFN; the others h + sum_shared FFN_s(u) + sum_{i in TopK} g_i FFN_i(u) with
  s_i = softmax_i(u . e_i) (V2, expert_gating_func 1) or sigmoid(u . e_i) (V3, gating func 2)
  selection by s_i + b_i (b: exp_probs_b, V3's auxiliary-loss-free bias; zero when absent), among
  the experts of the expert_group_used_count groups with the largest sum of their two best s_j + b_j
  (V3 node-limited routing; all experts when there are no groups)
  g_i = s_i (the bias never enters the weights), divided by their sum when expert_weights_norm,
  times expert_weights_scale (routed_scaling_factor).
The shared experts are one SwiGLU FFN of expert_shared_count * expert_feed_forward_length.

FAKE bugs (for the checker's own tests, see fake_deepseek2.py): "rope_nope" rotates the first
rope dims of each head (the no-rope part) instead of the rope part; "bias_in_weights" weights the
experts by s_i + b_i instead of s_i.
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_np import GGUFFile  # noqa: E402


def silu(x):
    return x / (1.0 + np.exp(-x))


class Deepseek2:
    def __init__(self, path: str, bug: str | None = None):
        g = GGUFFile(path)
        self.g, self.bug = g, bug
        assert g.metadata["general.architecture"] == "deepseek2"
        md = lambda k, d=None: g.metadata.get("deepseek2." + k, d)  # noqa: E731
        scaling = md("rope.scaling.type", "none")
        assert scaling in ("none", "yarn"), f"rope scaling {scaling} is not modelled here"
        self.n_layer = int(md("block_count"))
        self.n_head = int(md("attention.head_count"))
        # Newer converters write attn_k_b / attn_v_b instead of attn_kv_b and put the per-head
        # sizes under *_mla (the plain keys then describe their latent cache).
        self.split = "blk.0.attn_kv_b.weight" not in g.tensors
        sfx = "_mla" if self.split else ""
        self.d_k = int(md("attention.key_length" + sfx))
        self.d_v = int(md("attention.value_length" + sfx))
        self.d_rope = int(md("rope.dimension_count"))
        self.d_nope = self.d_k - self.d_rope
        self.kv_lora = int(md("attention.kv_lora_rank"))
        self.q_lora = int(md("attention.q_lora_rank", 0))
        self.eps = float(md("attention.layer_norm_rms_epsilon"))
        self.base = float(md("rope.freq_base", 10000.0))
        self.n_dense = int(md("leading_dense_block_count", 0))
        self.n_used = int(md("expert_used_count", 0))
        self.sigmoid = int(md("expert_gating_func", 1)) == 2
        self.norm_w = bool(md("expert_weights_norm", False))
        self.w_scale = float(md("expert_weights_scale", 1.0))
        self.n_group = int(md("expert_group_count", 1)) or 1
        self.n_group_used = int(md("expert_group_used_count", self.n_group))
        d = self.d_rope
        theta = self.base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        self.kq_scale = 1.0 / math.sqrt(self.d_k)
        if scaling == "yarn":
            s_f = float(md("rope.scaling.factor"))
            orig = float(md("rope.scaling.original_context_length"))
            fast, slow = float(md("rope.scaling.yarn_beta_fast", 32.0)), float(md("rope.scaling.yarn_beta_slow", 1.0))
            dim_of = lambda b: d * math.log(orig / (2 * math.pi * b)) / (2 * math.log(self.base))  # noqa: E731
            lo, hi = max(math.floor(dim_of(fast)), 0), min(math.ceil(dim_of(slow)), d - 1)
            ramp = np.clip((np.arange(d // 2) - lo) / (hi - lo if hi > lo else 0.001), 0.0, 1.0)
            theta = (theta / s_f) * ramp + theta * (1.0 - ramp)
            mscale = 1.0 + float(md("rope.scaling.yarn_log_multiplier", 0.0)) * math.log(s_f)
            self.kq_scale *= mscale * mscale
        self.theta = theta
        w = lambda n: g.tensor(n, np.float64)  # noqa: E731
        self.tok_embd = w("token_embd.weight")
        self.output = w("output.weight") if "output.weight" in g.tensors else self.tok_embd
        self.output_norm = w("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            p = f"blk.{i}."
            L = {k[len(p):]: w(k) for k in g.tensors if k.startswith(p)}
            if self.split:
                # attn_k_b[h] is W_UK_h transposed ([kv_lora, nope]), attn_v_b[h] is W_UV_h ([v,
                # kv_lora]): per head [W_UK_h ; W_UV_h], the rows attn_kv_b would hold.
                kb, vb = L.pop("attn_k_b.weight"), L.pop("attn_v_b.weight")
                L["attn_kv_b.weight"] = np.concatenate(
                    [np.concatenate([kb[h].T, vb[h]]) for h in range(self.n_head)])
            self.layers.append(L)
        self.reset()

    def reset(self):
        self.c_cache = [np.zeros((0, self.kv_lora)) for _ in range(self.n_layer)]
        self.kr_cache = [np.zeros((0, self.d_rope)) for _ in range(self.n_layer)]

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        """Rotates the pairs (2m, 2m+1) of x's last axis (d_rope values) at positions pos."""
        ang = pos[:, None] * self.theta[None, :]
        shape = (len(pos),) + (1,) * (x.ndim - 2) + (self.d_rope // 2,)
        cos, sin = np.cos(ang).reshape(shape), np.sin(ang).reshape(shape)
        out = x.copy()
        a, b = x[..., 0::2], x[..., 1::2]
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    def attention(self, li, h, pos):
        L, n, H = self.layers[li], h.shape[0], self.n_head
        if self.q_lora:
            q = self.rmsnorm(h @ L["attn_q_a.weight"].T, L["attn_q_a_norm.weight"]) @ L["attn_q_b.weight"].T
        else:
            q = h @ L["attn_q.weight"].T
        q = q.reshape(n, H, self.d_k)
        kv_a = h @ L["attn_kv_a_mqa.weight"].T
        c = self.rmsnorm(kv_a[:, :self.kv_lora], L["attn_kv_a_norm.weight"])
        k_r = kv_a[:, self.kv_lora:]
        if self.bug == "rope_nope":
            q = np.concatenate([self.rope(q[..., :self.d_rope], pos), q[..., self.d_rope:]], axis=-1)
        else:
            q = np.concatenate([q[..., :self.d_nope], self.rope(q[..., self.d_nope:], pos)], axis=-1)
            k_r = self.rope(k_r, pos)
        self.c_cache[li] = C = np.concatenate([self.c_cache[li], c])
        self.kr_cache[li] = KR = np.concatenate([self.kr_cache[li], k_r])
        # Expand the cached latents: per head [k_C ; v_C].
        kv = (C @ L["attn_kv_b.weight"].T).reshape(C.shape[0], H, self.d_nope + self.d_v)
        k = np.concatenate([kv[..., :self.d_nope], np.broadcast_to(KR[:, None, :], (C.shape[0], H, self.d_rope))],
                           axis=-1)
        if self.bug == "rope_nope":
            # The whole key unrotated, then its first d_rope dims rotated at each cached position.
            k_raw = np.concatenate([kv[..., :self.d_nope], np.broadcast_to(KR[:, None, :], k.shape[:2] + (self.d_rope,))],
                                   axis=-1)
            allpos = np.arange(C.shape[0], dtype=np.float64)
            k = np.concatenate([self.rope(k_raw[..., :self.d_rope], allpos), k_raw[..., self.d_rope:]], axis=-1)
        v = kv[..., self.d_nope:]
        s = np.einsum("thd,shd->hts", q, k) * self.kq_scale
        visible = np.arange(C.shape[0])[None, :] <= pos[:, None]
        s = np.where(visible[None], s, -np.inf)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", p, v).reshape(n, H * self.d_v)
        return o @ L["attn_output.weight"].T

    @staticmethod
    def swiglu(x, gate, up, down):
        return (silu(x @ gate.T) * (x @ up.T)) @ down.T

    def route(self, L, u):
        """(ids, weights) of the routed experts for one token u."""
        logits = L["ffn_gate_inp.weight"] @ u
        if self.sigmoid:
            s = 1.0 / (1.0 + np.exp(-logits))
        else:
            s = np.exp(logits - logits.max())
            s /= s.sum()
        b = L.get("exp_probs_b.bias", np.zeros_like(s))
        sel = s + b
        if self.n_group > 1 and self.n_group_used < self.n_group:
            groups = sel.reshape(self.n_group, -1)
            score = np.sort(groups, axis=1)[:, ::-1][:, :2].sum(axis=1)
            keep = np.argsort(-score, kind="stable")[:self.n_group_used]
            mask = np.full(self.n_group, -np.inf)
            mask[keep] = 0.0
            sel = (groups + mask[:, None]).reshape(-1)
        ids = np.argsort(-sel, kind="stable")[:self.n_used]
        g = (s + b)[ids] if self.bug == "bias_in_weights" else s[ids]
        if self.norm_w:
            g = g / g.sum()
        return ids, g * self.w_scale

    def moe(self, L, x):
        out = np.zeros_like(x)
        for t in range(x.shape[0]):
            ids, g = self.route(L, x[t])
            for e, wt in zip(ids, g):
                out[t] += wt * self.swiglu(x[t], L["ffn_gate_exps.weight"][e], L["ffn_up_exps.weight"][e],
                                           L["ffn_down_exps.weight"][e])
        if "ffn_gate_shexp.weight" in L:
            out += self.swiglu(x, L["ffn_gate_shexp.weight"], L["ffn_up_shexp.weight"], L["ffn_down_shexp.weight"])
        return out

    def forward(self, tokens):
        start = self.c_cache[0].shape[0]
        pos = np.arange(start, start + len(tokens), dtype=np.float64)
        x = self.tok_embd[np.asarray(tokens)]
        for li, L in enumerate(self.layers):
            x = x + self.attention(li, self.rmsnorm(x, L["attn_norm.weight"]), pos)
            u = self.rmsnorm(x, L["ffn_norm.weight"])
            if li < self.n_dense:
                x = x + self.swiglu(u, L["ffn_gate.weight"], L["ffn_up.weight"], L["ffn_down.weight"])
            else:
                x = x + self.moe(L, u)
        return self.rmsnorm(x, self.output_norm) @ self.output.T

    def teacher_forced(self, prompt, continuation):
        self.reset()
        seq = list(prompt) + list(continuation)
        return self.forward(seq)[len(prompt) - 1:len(seq) - 1]

    def generate(self, prompt, n):
        """Greedy ids and the logits at the last prompt position."""
        self.reset()
        lg = self.forward(prompt)[-1]
        first, ids = lg, []
        for _ in range(n):
            ids.append(int(np.argmax(lg)))
            lg = self.forward([ids[-1]])[-1]
        return ids, first
