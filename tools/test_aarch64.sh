#!/usr/bin/env bash
# Cross-builds the core layers (util, tensor, gguf, kernels and their tests) for aarch64 and runs
# the kernel tests under qemu-user, so the NEON kernels are compiled and checked on an x86 host.
# Needs: apt-get install -y g++-aarch64-linux-gnu qemu-user (plus the host's cmake, ninja and the
# GoogleTest sources in /usr/src/googletest, which Debian's libgtest-dev ships).
# Usage: tools/test_aarch64.sh [build-dir]   (default: build-aarch64 in the repository root)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-aarch64}"
sysroot=/usr/aarch64-linux-gnu
jobs="${JOBS:-2}"

for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake ninja; do
  command -v "$tool" >/dev/null || { echo "test_aarch64: $tool not found" >&2; exit 2; }
done

# The host's fmt is an x86 library; its headers are architecture independent, so the cross build
# uses fmt header-only through this small package config instead.
mkdir -p "$build/fmt-header-only"
cat > "$build/fmt-header-only/fmt-config.cmake" <<'CFG'
if(NOT TARGET fmt::fmt)
  add_library(fmt::fmt INTERFACE IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY=1
                                            INTERFACE_INCLUDE_DIRECTORIES /usr/include)
endif()
set(fmt_FOUND TRUE)
CFG

cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
  -DCMAKE_CROSSCOMPILING_EMULATOR="qemu-aarch64;-L;$sysroot" \
  -Dfmt_DIR="$build/fmt-header-only" \
  -DORIGAMI_CORE_ONLY=ON -DORIGAMI_BUILD_BENCH=OFF -DPython3_EXECUTABLE=/usr/bin/python3
ninja -C "$build" -j"$jobs" origami_kernels_test

# qemu's default CPU (max) has the dot-product extension, so the NEON table is tested; the
# scalar path runs too. The child-process dispatch test re-executes the binary through qemu.
export QEMU_LD_PREFIX="$sysroot"
qemu-aarch64 -L "$sysroot" "$build/tests/kernels/origami_kernels_test"
