# Sourced by claude_code_check.sh and codex_check.sh: the model both agents talk to. Sets
# `template` and `vocab` (the real Qwen3 template; the Qwen BPE vocabulary, with which a client's
# prompt is ~4x fewer tokens than with the byte vocabulary), and defines serve_synth CTX: a
# synthetic Qwen3 served on a free port with `-n 64` (a random model never ends its turn), which
# sets `srv` (its pid) and `url`, or exits 1. Needs `bin` and `tmp`.
shared=${ORIGAMI_SHARED_DIR:-/work/shared}
template=$shared/templates/Qwen-Qwen3-0.6B.jinja
vocab=$shared/tokenizer/ggml-vocab-qwen2.gguf

serve_synth() {
  "$bin" synth --arch qwen3 --preset tiny --seed 1 --vocab "$vocab" -o "$tmp/qwen3.gguf" >/dev/null 2>&1 ||
    { echo "FAIL: synth"; exit 1; }
  "$bin" serve -m "$tmp/qwen3.gguf" --chat-template-file "$template" --port 0 -t 2 --parallel 1 \
    -c "$1" --max-seq-len "$1" -n 64 --alias qwen3-synth >"$tmp/server.log" 2>&1 &
  srv=$!
  url=
  for _ in $(seq 1 100); do
    url=$(grep -o 'listening on http://[^ ]*' "$tmp/server.log" | head -1 | cut -d' ' -f3)
    [ -n "$url" ] && break
    sleep 0.2
  done
  [ -n "$url" ] || { echo "FAIL: server did not start"; cat "$tmp/server.log"; exit 1; }
}
