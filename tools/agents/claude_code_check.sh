#!/bin/sh
# Headless Claude Code against `origami serve` (issue 14): `claude -p "say hi"` from the pinned
# @anthropic-ai/claude-code in tools/agents, offline, pointed at a synthetic Qwen3 model with the real
# Qwen3 template, the Qwen BPE vocabulary and a 128k context (its request is ~49 KB of system prompt
# and tools: 11.7k tokens here, ~63k with the byte vocabulary). The model is
# random, so the protocol is judged: claude's exit code, no error output, and the server's log of
# metrics. Phase 1 replays its captured requests up to their first event; phase 2 runs a whole
# turn (about 30 s on 2 cores: a 10 s prefill; AGENT_TIMEOUT, default 240 s). Exit 77 (skip) when the package, node or the template is missing.
# usage: tools/agents/claude_code_check.sh [ORIGAMI_BIN]   (default build/src/origami)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-${ORIGAMI_BIN:-$root/build/src/origami}}
. "$root/tools/agents/synth_server.sh"
claude=$root/tools/agents/node_modules/@anthropic-ai/claude-code-linux-x64/claude
for f in "$bin" "$template" "$vocab" "$claude"; do
  [ -e "$f" ] || { echo "SKIP: $f not found (npm ci --ignore-scripts --prefix tools/agents)"; exit 77; }
done
command -v node >/dev/null 2>&1 || { echo "SKIP: node not found"; exit 77; }
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
cap=
serve_synth 131072
mkdir -p "$tmp/home" "$tmp/work" "$tmp/cap"
# Phase 1 (seconds): capture Claude Code's real requests with a stand-in endpoint, then replay each
# against origami up to its first event. This shows the request, with its newer top-level fields
# (context_management, output_config, adaptive thinking, a system role in messages), is accepted.
node "$root/tools/agents/capture.mjs" "$tmp/cap" >"$tmp/cap/port" &
cap=$!
sleep 1
(cd "$tmp/work" && HOME=$tmp/home ANTHROPIC_BASE_URL=http://127.0.0.1:$(cat "$tmp/cap/port") \
  ANTHROPIC_AUTH_TOKEN=x CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 \
  timeout 60 "$claude" -p "say hi" >/dev/null 2>&1 </dev/null)
kill $cap 2>/dev/null
fail=0
replayed=0
for f in "$tmp"/cap/req*.json; do
  [ -e "$f" ] || continue
  node "$root/tools/agents/replay_head.mjs" "$url" "$f" || fail=1
  replayed=$((replayed + 1))
  [ $replayed -ge 2 ] && break
done
[ $replayed -gt 0 ] || { echo "FAIL: claude sent no request"; fail=1; }
# Phase 1b: the largest captured request sent twice with different billing-header nonces; the
# second must take at least 95% of its prompt from the prefix cache.
big=$(ls -S "$tmp"/cap/req*.json 2>/dev/null | head -1)
if [ -n "$big" ]; then
  node "$root/tools/agents/prefix_reuse.mjs" "$url" "$big" >"$tmp/reuse.txt" 2>&1 || { echo "FAIL: prefix reuse"; cat "$tmp/reuse.txt"; fail=1; }
  tail -1 "$tmp/reuse.txt"
fi
# Phase 2 (minutes on a small CPU): a whole turn against origami.
start=$(date +%s)
(cd "$tmp/work" && HOME=$tmp/home ANTHROPIC_BASE_URL=$url ANTHROPIC_AUTH_TOKEN=x \
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 \
  CLAUDE_CODE_MAX_OUTPUT_TOKENS=64 \
  timeout "${AGENT_TIMEOUT:-240}" "$claude" -p "say hi" >"$tmp/out.txt" 2>"$tmp/err.txt" </dev/null)
rc=$?
echo "claude -p exit code: $rc ($(( $(date +%s) - start )) s)"
echo "--- stdout (first 400 bytes)"; head -c 400 "$tmp/out.txt"; echo
echo "--- stderr"; cat "$tmp/err.txt"
echo "--- server metrics"
curl -s -m 5 "$url/metrics" | grep -E '^origami_(requests_|prompt_tokens|generated_tokens|engine_busy)'
# A random model does not end its turn by itself: the server's -n 64 ends it with stop_reason
# max_tokens, which Claude Code reports as its own output limit and exits 1. That message shows it
# read the whole stream to its message_delta; any other failure is one.
limit_only=0
[ "$rc" -eq 1 ] && grep -q "exceeded the .* output token maximum" "$tmp/out.txt" && limit_only=1
[ "$rc" -eq 0 ] || [ $limit_only -eq 1 ] || fail=1
[ -s "$tmp/err.txt" ] && fail=1
grep -Eq '" (4|5)[0-9][0-9] |status[ =:]*(4|5)[0-9][0-9]' "$tmp/server.log" && fail=1
[ $fail -eq 0 ] && echo "PASS: a Claude Code turn completed with no protocol error" || { echo "FAIL"; echo "--- server log tail"; tail -30 "$tmp/server.log"; }
exit $fail
