#!/bin/sh
# Runs one end-to-end script from tools/e2e with node, or skips (exit 77, ctest SKIP_RETURN_CODE)
# with the command that installs what is missing.
# usage: run_node.sh ORIGAMI_BIN MODEL OUT_DIR SCRIPT.mjs
set -u
export ORIGAMI_BIN="$1" ORIGAMI_MODEL="$2" ORIGAMI_E2E_OUT="$3"
script="$4"
dir=$(dirname "$script")
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node not found (apt-get install nodejs npm)"
  exit 77
fi
if [ ! -d "$dir/node_modules/openai" ] || [ ! -d "$dir/node_modules/playwright-core" ] ||
   [ ! -d "$dir/node_modules/@anthropic-ai/sdk" ] || [ ! -d "$dir/node_modules/ollama" ]; then
  echo "SKIP: $dir/node_modules is missing; install it with: npm ci --ignore-scripts --prefix $dir"
  exit 77
fi
if [ ! -f "$ORIGAMI_MODEL" ]; then
  echo "SKIP: test model $ORIGAMI_MODEL not found"
  exit 77
fi
mkdir -p "$ORIGAMI_E2E_OUT"
exec node "$script"
