#!/usr/bin/env bash
# Installs the dependencies, builds origami (Release) and generates text.
#   bash tools/quickstart.sh [MODEL.gguf] [PROMPT]
# Default model: the tiny stories260K beside the repository (../shared/models).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
ninja -C build origami
model="${1:-../shared/models/stories260K.gguf}"
prompt="${2:-Once upon a time}"
./build/src/origami run -m "$model" -p "$prompt" -n 64
