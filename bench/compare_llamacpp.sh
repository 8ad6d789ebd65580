#!/usr/bin/env bash
# origami against llama.cpp on the same files, alternated in one run: for each model, ROUNDS times
# `origami bench` then `llama-bench` (each with -r REPS), then a table of the medians per test and
# their ratio (origami / llama.cpp; above 1 is origami faster).
#
#   bench/compare_llamacpp.sh LLAMA_BUILD_DIR MODEL.gguf [MODEL.gguf ...]
#
# LLAMA_BUILD_DIR holds bin/llama-bench (a llama.cpp build made outside this repository).
# Environment (defaults): ORIGAMI (build/src/origami), THREADS (2), PP (512), TG (128), DEPTH (0),
# CTK / CTV (f16: both engines' default KV type), ROUNDS (2), REPS (1), MMAP (both: llama.cpp's
# better of mmap and no-mmap per test; 1 or 0 to pick one), NICE (0: a negative value needs root and
# keeps parallel builds from taking the benchmark's cores).
# llama.cpp runs with flash attention on (-fa on), which its quantized V cache requires; MMAP maps to
# its --load-mode (none, mmap).
# Wall-clock figures: run on an otherwise idle machine, and say so when it was not.
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n 2,14p "$0" >&2; exit 2; }
llama=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
origami=${ORIGAMI:-$here/build/src/origami}
bench=$llama/bin/llama-bench
[[ -x $origami ]] || { echo "compare_llamacpp.sh: $origami not found (set ORIGAMI)" >&2; exit 2; }
[[ -x $bench ]] || { echo "compare_llamacpp.sh: $bench not found" >&2; exit 2; }
threads=${THREADS:-2} pp=${PP:-512} tg=${TG:-128} depth=${DEPTH:-0}
ctk=${CTK:-f16} ctv=${CTV:-${CTK:-f16}} rounds=${ROUNDS:-2} reps=${REPS:-1} mmap=${MMAP:-both} nice=${NICE:-0}
case $mmap in both) loadmode="none,mmap" ;; 1) loadmode=mmap ;; 0) loadmode=none ;; *) echo "MMAP must be both, 1 or 0" >&2; exit 2 ;; esac

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for m in "$@"; do
  [[ -f $m ]] || { echo "compare_llamacpp.sh: $m not found" >&2; exit 2; }
  label=$(basename "$m" .gguf)
  for r in $(seq "$rounds"); do
    echo "compare_llamacpp.sh: $label, round $r/$rounds: origami" >&2
    nice -n "$nice" "$origami" bench -m "$m" -t "$threads" -p "$pp" -n "$tg" -d "$depth" -r "$reps" \
      -ctk "$ctk" -ctv "$ctv" --json | sed "s/^{/{\"engine\":\"origami\",\"label\":\"$label\",/" >>"$out"
    echo "compare_llamacpp.sh: $label, round $r/$rounds: llama.cpp" >&2
    nice -n "$nice" "$bench" -m "$m" -t "$threads" -p "$pp" -n "$tg" -d "$depth" -r "$reps" -ctk "$ctk" \
      -ctv "$ctv" -fa on -lm "$loadmode" -o jsonl 2>/dev/null | sed "s/^{/{\"engine\":\"llama.cpp\",\"label\":\"$label\",/" >>"$out"
  done
done

python3 - "$out" "$threads" "$depth" "$ctk" "$ctv" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
threads, depth, ctk, ctv = sys.argv[2:6]
def test_name(r):
    if r["engine"] == "origami":
        return r["test"].split("@")[0]
    return f"pp{r['n_prompt']}" if r["n_prompt"] > 0 else f"tg{r['n_gen']}"
# Per (model, test, engine): the samples of every round; for llama.cpp each round's better of its
# load modes.
samples = {}
for r in rows:
    key = (r["label"], test_name(r), r["engine"])
    tps = r["tokens_per_second"] if r["engine"] == "origami" else r["avg_ts"]
    samples.setdefault(key, []).append(tps)
llama_rounds = {}
for r in rows:
    if r["engine"] == "llama.cpp":
        llama_rounds.setdefault((r["label"], test_name(r)), []).append(r["avg_ts"])
print(f"{threads} threads, depth {depth}, KV {ctk}/{ctv}; medians over the rounds (tok/s)")
print("| model | test | origami | llama.cpp | ratio |")
print("|---|---|---|---|---|")
for (label, test, engine), v in sorted(samples.items()):
    if engine != "origami":
        continue
    ll = llama_rounds.get((label, test), [])
    # llama-bench prints one row per load mode, in order, each round: keep the better of each pair.
    n = 2 if len(ll) >= 2 * len(v) else 1
    best = [max(ll[i:i + n]) for i in range(0, len(ll), n)]
    o = statistics.median(v)
    l = statistics.median(best) if best else float("nan")
    print(f"| {label} | {test}{'@d' + depth if depth != '0' else ''} | {o:.2f} | {l:.2f} | {o / l:.2f} |")
PY
