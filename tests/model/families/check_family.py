"""Holds origami's forward pass to the family references (families_np.py) on one GGUF model:
`origami run --temp 0 --ignore-eos` over each prompt, then one teacher-forced reference pass over
prompt + origami's greedy ids. Checks the logits at the last prompt position and that each of
origami's greedy choices is the reference argmax.

Tolerance: |origami - reference| <= rtol * max|reference logits|, rtol 2e-5 for float weights
(F32/F16/BF16: float32 rounding in another summation order, as argued in
tests/model/reference/check_forward.py). Weights whose kernels quantize activations (Q8_0 etc.,
and MXFP4, which pairs with Q8_0 activations as in ggml even though its own values are exact in
float) get 8e-2 and near-tie tolerance on greedy ids.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_np import for_file  # noqa: E402

FLOAT_TYPES = {0: "F32", 1: "F16", 30: "BF16"}


def run_origami(binary, model, prompt, n, workdir):
    out_path = os.path.join(workdir, "logits.f32")
    # A stand-in script (the checker's own tests) runs under this interpreter.
    launcher = [sys.executable] if binary.endswith(".py") else []
    cmd = launcher + [binary, "run", "-m", model, "--prompt-ids", ",".join(map(str, prompt)), "-n", str(n), "--temp", "0",
           "--ignore-eos", "--json", "--logits-out", out_path,
           # Float32 KV, as the reference (other KV types: tests/model/kv_types_test.cpp).
           "--cache-type-k", "f32", "--cache-type-v", "f32"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr}")
    obj = next(json.loads(l) for l in reversed(p.stdout.strip().splitlines()) if l.startswith("{"))
    return [int(t) for t in obj["generated_ids"]], np.fromfile(out_path, dtype="<f4").astype(np.float64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--prompt-ids", action="append", default=None)
    args = ap.parse_args(argv)
    prompts = [[int(x) for x in p.split(",")] for p in (args.prompt_ids or ["1", "1,72,101,108,108,111,44,32,119"])]
    ref = for_file(args.model)
    types = {t.type for k, t in ref.g.tensors.items() if k.startswith("blk.") and len(t.ne) >= 2}
    exact = types <= set(FLOAT_TYPES)
    rtol = 2e-5 if exact else 8e-2
    ok = True
    with tempfile.TemporaryDirectory() as wd:
        for prompt in prompts:
            gen, logits = run_origami(args.origami, args.model, prompt, args.n, wd)
            lg = ref.teacher_forced(prompt, gen)
            scale = np.abs(lg[0]).max()
            err = np.abs(logits - lg[0]).max()
            agree = sum(int(np.argmax(lg[i]) == g) for i, g in enumerate(gen))
            bad = [i for i, g in enumerate(gen) if lg[i].max() - lg[i][g] > (0 if exact else rtol * scale)]
            tag = f"{os.path.basename(args.model)} prompt {prompt[:6]}"
            print(f"{tag}: max |logit err| {err:.3e} ({err / scale:.2e} of scale {scale:.3f}), "
                  f"greedy {agree}/{len(gen)} equal to the reference argmax")
            if len(gen) != args.n or err > rtol * scale or bad:
                print(f"FAIL {tag}: rtol {rtol}, {len(gen)} ids, mismatched steps {bad[:8]}")
                ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
