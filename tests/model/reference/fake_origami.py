"""A stand-in for `origami run` built on the numpy reference, used to test check_forward.py itself:
with FAKE_ORIGAMI_BUG unset it must pass; with a bug injected it must fail.

FAKE_ORIGAMI_ACT: activation rounding to model (q8_0, q8_k, f32; default none).
FAKE_ORIGAMI_BUG: "rope_neox" rotates pairs (i, i + n_rot/2) instead of (2i, 2i+1);
                  "gqa_modulo" maps query head h to KV head h % n_head_kv instead of h // group.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_np import Llama  # noqa: E402


class BuggyLlama(Llama):
    def __init__(self, path, act, bug):
        super().__init__(path, act)
        self.bug = bug

    def rope(self, x, pos):
        if self.bug != "rope_neox":
            return super().rope(x, pos)
        h = self.n_rot // 2
        ang = pos[:, None] * self.inv_freq[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = x.copy()
        x0, x1 = x[..., :h], x[..., h:self.n_rot]
        out[..., :h] = x0 * cos - x1 * sin
        out[..., h:self.n_rot] = x0 * sin + x1 * cos
        return out

    def attention(self, li, x, pos):
        if self.bug == "gqa_modulo" and self.n_head != self.n_head_kv:
            # Permute the query heads so that head h meets KV head h % n_head_kv.
            g = self.n_head // self.n_head_kv
            L = dict(self.layers[li])
            perm = np.array([(h % self.n_head_kv) * g + h // self.n_head_kv for h in range(self.n_head)])
            q = L["attn_q"].reshape(self.n_head, self.head_dim, -1)
            saved = self.layers[li]
            self.layers[li] = dict(L, attn_q=q[np.argsort(perm)].reshape(L["attn_q"].shape))
            try:
                return super().attention(li, x, pos)
            finally:
                self.layers[li] = saved
        return super().attention(li, x, pos)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("-m", required=True)
    ap.add_argument("--prompt-ids", required=True)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--temp", default="0")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--logits-out")
    ap.add_argument("--cache-type-k", default="f32")  # the stand-in keeps float32 K/V
    ap.add_argument("--cache-type-v", default="f32")
    a = ap.parse_args()
    m = BuggyLlama(a.m, os.environ.get("FAKE_ORIGAMI_ACT") or None, os.environ.get("FAKE_ORIGAMI_BUG"))
    prompt = [int(t) for t in a.prompt_ids.split(",")]
    ids, logits, _ = m.generate(prompt, a.n)
    logits.astype("<f4").tofile(a.logits_out)
    print(json.dumps({"prompt_ids": prompt, "generated_ids": ids}))


if __name__ == "__main__":
    main()
