#!/usr/bin/env bash
# Installs origami's build and test dependencies from Debian 12 packages (idempotent).
# Uses sudo when not root. Set ORIGAMI_DEPS_EXTRA="..." to add packages.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libgtest-dev libgmock-dev libbenchmark-dev
      nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libfmt-dev libpcre2-dev python3-numpy
      g++-aarch64-linux-gnu qemu-user libopenmpi-dev openmpi-bin chromium ${ORIGAMI_DEPS_EXTRA:-})
# Node.js 20 for the end-to-end tests: keep one already on the machine, else Debian's.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
