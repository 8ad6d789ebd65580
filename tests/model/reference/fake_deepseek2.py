#!/usr/bin/env python3
"""A stand-in for `origami run` on deepseek2 files built on deepseek2_np.py, to test that
check_family.py catches MLA and routing bugs: with FAKE_ORIGAMI_BUG set to "rope_nope" (rope on
the no-rope part of each head) or "bias_in_weights" (the selection bias added to the expert
weights) it must report a FAIL.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deepseek2_np import Deepseek2  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("-m", required=True)
    ap.add_argument("--prompt-ids", required=True)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--temp", default="0")
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--logits-out")
    ap.add_argument("--cache-type-k", default="f32")
    ap.add_argument("--cache-type-v", default="f32")
    a = ap.parse_args()
    m = Deepseek2(a.m, os.environ.get("FAKE_ORIGAMI_BUG") or None)
    prompt = [int(t) for t in a.prompt_ids.split(",")]
    ids, logits = m.generate(prompt, a.n)
    logits.astype("<f4").tofile(a.logits_out)
    print(json.dumps({"prompt_ids": prompt, "generated_ids": ids}))


if __name__ == "__main__":
    main()
