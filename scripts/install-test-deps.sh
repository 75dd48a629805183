#!/usr/bin/env bash
# Installs the system packages `npm test` uses on a Debian bookworm machine, as root:
# lavapipe (the GPU tests; scripts/install-gpu-deps.sh), redis-server (test/sweep.test.ts starts
# its own on a free loopback port) and chromium (test/web.test.ts and test/webgpu.test.ts drive
# it with puppeteer-core; no browser download). Idempotent: installs only what is missing.
# (The Rust target of the WebAssembly build is added by `npm run build:wasi` itself.)
#
#   sudo scripts/install-test-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-gpu-deps.sh
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [[ "$(id -u)" != "0" ]]; then
    echo "install-test-deps: ${missing[*]} missing and not root (it calls apt-get); try: sudo $0" >&2
    exit 1
  fi
  apt-get update && apt-get install -y "${missing[@]}"
fi
echo "install-test-deps: lavapipe, redis-server and chromium are installed"
