"""Holds `origami run` with a float32 KV cache to a recorded set of logits, bit for bit.

The record (f32_logits.json beside this file) was taken from main before the KV cache learned other
storage types (commit c4b2a64), so this test proves that `-ctk f32 -ctv f32` computes exactly what
the engine computed before: for each case, the SHA-256 of the last prompt position's logits
(`--logits-out`) and the 16 greedy ids after it, per kernel ISA.

  python3 f32_bitexact.py --origami BIN --models DIR record   # rewrite the record (never in CI)
  python3 f32_bitexact.py --origami BIN --models DIR check    # compare (ISAs this CPU runs)
The models are written by `origami synth` into DIR (deterministic for a seed) plus the shared
stories260K.gguf; `--extra` adds flags to every run (the check passes -ctk f32 -ctv f32).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RECORD = os.path.join(HERE, "f32_logits.json")
PROMPT = "1,72,101,108,108,111,44,32,119,111,114,108,100"
LONG = ",".join(str(1 + (i * 37) % 200) for i in range(70))
# (case name, synth arch or None for a shared model, weight type)
SYNTH = [("llama", "F32"), ("qwen2", "F32"), ("qwen3", "F32"), ("gemma3", "F32"), ("qwen3moe", "F32"),
         ("mixtral", "F32"), ("gpt-oss", "F32"), ("gpt-oss", "MXFP4"), ("llama", "Q4_0"), ("qwen3", "Q8_0")]


def models(binary, models_dir, shared):
    out = {}
    os.makedirs(models_dir, exist_ok=True)
    for arch, t in SYNTH:
        path = os.path.join(models_dir, f"bitexact-{arch}-{t}.gguf")
        if not os.path.exists(path):
            subprocess.run([binary, "synth", "--arch", arch, "--preset", "tiny", "--type", t, "--seed", "7",
                            "-o", path], check=True, capture_output=True)
        out[f"{arch}-{t}"] = path
    out["stories260K"] = os.path.join(shared, "models", "stories260K.gguf")
    return out


def run_case(binary, model, prompt, isa, extra, workdir):
    lo = os.path.join(workdir, "bitexact-logits.f32")
    cmd = [binary, "run", "-m", model, "--prompt-ids", prompt, "-n", "16", "--temp", "0", "--ignore-eos",
           "--json", "--logits-out", lo, "-t", "2"] + extra
    env = dict(os.environ, ORIGAMI_ISA=isa)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr}")
    obj = next(json.loads(l) for l in reversed(p.stdout.strip().splitlines()) if l.startswith("{"))
    with open(lo, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"logits_sha256": digest, "ids": [int(t) for t in obj["generated_ids"]]}


def isas():
    # The ISAs this machine runs (as kernels/cpu/dispatch.cpp decides from CPUID): scalar always,
    # avx2 and avx512 when the CPU has them. ORIGAMI_ISA picks one per run.
    names = ["scalar"]
    with open("/proc/cpuinfo") as f:
        flags = set(next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), []))
    if {"avx2", "fma", "f16c", "bmi2"} <= flags:
        names.append("avx2")
        if {"avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni"} <= flags:
            names.append("avx512")
    if os.uname().machine == "aarch64":
        names.append("neon")
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "..", "shared"))
    ap.add_argument("--extra", default="")
    ap.add_argument("mode", choices=["record", "check"])
    a = ap.parse_args(argv)
    extra = a.extra.split()
    ms = models(a.origami, a.models, a.shared)
    if a.mode == "record":
        rec = {}
        for isa in isas():
            for name, path in ms.items():
                for pname, prompt in (("short", PROMPT), ("long", LONG)):
                    rec[f"{isa}/{name}/{pname}"] = run_case(a.origami, path, prompt, isa, extra, a.models)
        # Keep what other machines recorded (ISAs this one cannot run).
        if os.path.exists(RECORD):
            with open(RECORD) as f:
                for k, v in json.load(f).items():
                    rec.setdefault(k, v)
        with open(RECORD, "w") as f:
            f.write("{\n" + ",\n".join(f' "{k}": {json.dumps(rec[k])}' for k in sorted(rec)) + "\n}\n")
        print(f"recorded {len(rec)} cases to {RECORD}")
        return 0
    with open(RECORD) as f:
        rec = json.load(f)
    bad = checked = 0
    for isa in isas():
        for name, path in ms.items():
            for pname, prompt in (("short", PROMPT), ("long", LONG)):
                key = f"{isa}/{name}/{pname}"
                if key not in rec:
                    continue
                got = run_case(a.origami, path, prompt, isa, extra, a.models)
                checked += 1
                if got != rec[key]:
                    bad += 1
                    print(f"FAIL {key}: recorded {rec[key]}, got {got}")
    print(f"{checked - bad}/{checked} cases bit-identical to the record")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
