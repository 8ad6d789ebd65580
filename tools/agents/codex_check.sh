#!/bin/sh
# Headless Codex CLI against `origami serve` (issue 14): `codex exec` from the pinned @openai/codex
# (its native binary comes in the platform package) with a model provider of wire_api = "responses"
# pointed at a synthetic Qwen3 model with the real Qwen3 template. The model is random, so the
# protocol is judged: codex's exit code, no protocol error in its output, and the server's log.
# Exit 77 (skip) when the package or the template is missing.
# usage: tools/agents/codex_check.sh [ORIGAMI_BIN]   (default build/src/origami)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-${ORIGAMI_BIN:-$root/build/src/origami}}
. "$root/tools/agents/synth_server.sh"
codex=$root/tools/agents/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex
for f in "$bin" "$template" "$vocab" "$codex"; do
  [ -e "$f" ] || { echo "SKIP: $f not found (npm ci --ignore-scripts --prefix tools/agents)"; exit 77; }
done
command -v node >/dev/null 2>&1 || { echo "SKIP: node not found"; exit 77; }
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
serve_synth 65536
mkdir -p "$tmp/home/.codex" "$tmp/work"
cat >"$tmp/home/.codex/config.toml" <<TOML
model = "qwen3-synth"
model_provider = "origami"
[model_providers.origami]
name = "origami"
base_url = "$url/v1"
wire_api = "responses"
env_key = "ORIGAMI_KEY"
TOML
mkdir -p "$tmp/cap" "$tmp/caphome/.codex"
# Phase 1 (seconds): capture Codex's real /v1/responses request with a stand-in endpoint, then
# replay it against origami up to its first event (accepted, newer fields and all).
node "$root/tools/agents/capture.mjs" "$tmp/cap" >"$tmp/cap/port" &
cap=$!
sleep 1
sed "s|$url/v1|http://127.0.0.1:$(cat "$tmp/cap/port")/v1|" "$tmp/home/.codex/config.toml" >"$tmp/caphome/.codex/config.toml"
(cd "$tmp/work" && HOME=$tmp/caphome CODEX_HOME=$tmp/caphome/.codex ORIGAMI_KEY=x \
  timeout 60 "$codex" exec --skip-git-repo-check --ephemeral --sandbox read-only "say hi" >/dev/null 2>&1 </dev/null)
kill $cap 2>/dev/null
fail=0
[ -e "$tmp/cap/req0.json" ] && node "$root/tools/agents/replay_head.mjs" "$url" "$tmp/cap/req0.json" || fail=1
# Phase 2: a whole turn. Codex sends no max_output_tokens: the server's -n 64 ends the answer.
start=$(date +%s)
(cd "$tmp/work" && HOME=$tmp/home CODEX_HOME=$tmp/home/.codex ORIGAMI_KEY=x \
  timeout "${AGENT_TIMEOUT:-240}" "$codex" exec --skip-git-repo-check --ephemeral --sandbox read-only "say hi" \
  >"$tmp/out.txt" 2>"$tmp/err.txt" </dev/null)
rc=$?
echo "codex exec exit code: $rc ($(( $(date +%s) - start )) s)"
echo "--- stdout (first 400 bytes)"; head -c 400 "$tmp/out.txt"; echo
echo "--- stderr (last 40 lines)"; tail -40 "$tmp/err.txt"
echo "--- server metrics"
curl -s -m 5 "$url/metrics" | grep -E '^origami_(requests_|prompt_tokens|generated_tokens|engine_busy)'
# A random model does not end its turn by itself: the server's -n 64 ends it as an incomplete
# response (max_output_tokens), which Codex reports and exits 1. That message shows it read the
# whole stream to response.incomplete; any other failure is one.
limit_only=0
[ "$rc" -eq 1 ] && grep -q "Incomplete response returned, reason: max_output_tokens" "$tmp/err.txt" && limit_only=1
[ "$rc" -eq 0 ] || [ $limit_only -eq 1 ] || fail=1
grep -Eiq 'stream error|unexpected status|error decoding|stream disconnected' "$tmp/err.txt" "$tmp/out.txt" && fail=1
[ $fail -eq 0 ] && echo "PASS: a Codex turn completed with no protocol error" || { echo "FAIL"; echo "--- server log tail"; tail -30 "$tmp/server.log"; }
exit $fail
