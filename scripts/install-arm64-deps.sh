#!/usr/bin/env bash
# Installs what the linux-arm64 prebuilt binary needs on a Debian bookworm x64 machine, as root:
# the cross compiler and arm64 C library (`npm run build:arm64` links with aarch64-linux-gnu-gcc,
# set in .cargo/config.toml), arm64 libstdc++ (the arm64 Node that scripts/pack-test.sh runs
# needs it) and qemu-user (runs arm64 programs here). Adds the Rust target too. Idempotent.
#
#   sudo scripts/install-arm64-deps.sh
set -euo pipefail
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
test -e /usr/aarch64-linux-gnu/lib/libc.so.6 || missing+=(libc6-dev-arm64-cross)
test -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 || missing+=(libstdc++6-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
  if [[ "$(id -u)" != "0" ]]; then
    echo "install-arm64-deps: ${missing[*]} missing and not root (it calls apt-get); try: sudo $0" >&2
    exit 1
  fi
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
if command -v rustup >/dev/null 2>&1; then rustup target add aarch64-unknown-linux-gnu; fi
echo "install-arm64-deps: the arm64 cross toolchain and qemu-aarch64 are installed"
