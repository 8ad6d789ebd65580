#!/usr/bin/env bash
# End-to-end speed table: pp512 and tg128 for the synthetic llama-1b models (Q4_0, Q8_0, Q4_K_M,
# F16, BF16) at 1 and 2 threads, with the share of the measured read-bandwidth roofline (tg) and
# GFLOP/s (pp), from `origami bench --json`.
#
#   bench/run_bench.sh [MODEL_DIR] [ORIGAMI_BINARY]
#
# MODEL_DIR (default /tmp/origami-bench) receives the models; a file already there, or in
# /work/models, is reused. Environment: TYPES, THREADS, PP, TG, REPS override the defaults below.
# Wall-clock figures: run it on an otherwise idle machine.
set -euo pipefail

dir=${1:-/tmp/origami-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
origami=${2:-}
if [[ -z $origami ]]; then
  for b in "$here"/build-perf/src/origami "$here"/build/src/origami; do
    [[ -x $b ]] && origami=$b && break
  done
fi
[[ -x ${origami:-} ]] || { echo "run_bench.sh: origami binary not found; pass it as the second argument" >&2; exit 2; }
python=${PYTHON:-/usr/bin/python3}
synth=${SYNTH:-$here/../shared/tools/make_synthetic_gguf.py}
types=${TYPES:-"Q4_0 Q8_0 Q4_K_M F16 BF16"}
threads=${THREADS:-"1 2"}
pp=${PP:-512}
tg=${TG:-128}
reps=${REPS:-3}
mkdir -p "$dir"

model_for() {  # prints the path of llama-1b-$1.gguf, generating it when missing
  local t=$1 f="$dir/llama-1b-$1.gguf"
  if [[ -f $f ]]; then echo "$f"; return; fi
  if [[ -f /work/models/llama-1b-$t.gguf ]]; then echo "/work/models/llama-1b-$t.gguf"; return; fi
  if [[ $t == Q4_K_M ]]; then
    local f16
    f16=$(model_for F16)
    "$origami" quantize "$f16" "$f" Q4_K_M >&2
  else
    "$python" "$synth" --preset llama-1b --type "$t" -o "$f" >&2
  fi
  echo "$f"
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for t in $types; do
  m=$(model_for "$t")
  for th in $threads; do
    echo "run_bench.sh: $t, $th thread(s)" >&2
    "$origami" bench -m "$m" -t "$th" -p "$pp" -n "$tg" -r "$reps" --json | sed "s/^{/{\"label\":\"$t\",/" >>"$results"
  done
done

"$python" - "$results" "$pp" "$tg" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
pp, tg = "pp" + sys.argv[2], "tg" + sys.argv[3]
table = {}
for r in rows:
    table.setdefault((r["label"], r["threads"]), {})[r["test"]] = r
print(f"| type | threads | {pp} tok/s | {pp} GFLOP/s | {tg} tok/s | {tg} roofline share | read GB/s |")
print("|---|---|---|---|---|---|---|")
for (label, th), t in table.items():
    p, g = t.get(pp, {}), t.get(tg, {})
    bw = (g or p).get("bandwidth_gbps", float("nan"))
    print(f"| {label} | {th} | {p.get('tokens_per_second', float('nan')):.1f} | {p.get('gflops', float('nan')):.1f} | "
          f"{g.get('tokens_per_second', float('nan')):.1f} | {100 * g.get('roofline_share', float('nan')):.0f}% | {bw:.1f} |")
PY
