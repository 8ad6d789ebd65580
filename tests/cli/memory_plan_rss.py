#!/usr/bin/env python3
"""The memory plan against measured peak RSS (issue 16 (d)): `origami run` filling its whole context
(a prompt of n_ctx - 1 tokens, one generated) on a synthetic llama at three context sizes and two KV
types; prints plan, peak RSS (VmHWM through /usr/bin/time) and the gap, and fails past --tolerance.
"""
import argparse
import json
import os
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--type", default="Q8_0", help="weight type of the synthetic model")
    ap.add_argument("--ctx", default="256,512,1024")
    ap.add_argument("--kv", default="f16,f32")
    ap.add_argument("--tolerance", type=float, default=0.05)
    a = ap.parse_args()
    if not os.path.exists("/usr/bin/time"):
        print("SKIP: /usr/bin/time is not installed")
        return 77
    os.makedirs(a.tmp, exist_ok=True)
    model = os.path.join(a.tmp, f"rss_llama_small_{a.type.lower()}.gguf")
    if not os.path.exists(model):
        subprocess.run([a.origami, "synth", "--arch", "llama", "--preset", "small", "--type", a.type, "-o", model],
                       check=True, capture_output=True)
    worst = 0.0
    print(f"{'ctx':>6} {'kv':>4} {'plan MiB':>9} {'RSS MiB':>9} {'gap':>7}")
    for kv in a.kv.split(","):
        for ctx in map(int, a.ctx.split(",")):
            info = subprocess.run([a.origami, "info", model, "--plan", "--json", "-c", str(ctx), "-ctk", kv, "-ctv", kv,
                                   "-t", "2"], check=True, capture_output=True, text=True)
            plan = json.loads(info.stdout)["total"]
            ids = ",".join(str(3 + (i * 7) % 256) for i in range(ctx - 1))
            run = subprocess.run(["/usr/bin/time", "-v", a.origami, "run", "-m", model, "--prompt-ids", ids, "--no-bos",
                                  "-n", "1", "-c", str(ctx), "-ctk", kv, "-ctv", kv, "-t", "2", "--json"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(run.stderr)
                return 1
            rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1)) * 1024
            gap = (plan - rss) / rss
            worst = max(worst, abs(gap))
            print(f"{ctx:>6} {kv:>4} {plan / 2**20:>9.1f} {rss / 2**20:>9.1f} {gap * 100:>+6.1f}%", flush=True)
    print(f"largest gap {worst * 100:.1f}% (tolerance {a.tolerance * 100:.0f}%)")
    return 0 if worst <= a.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
