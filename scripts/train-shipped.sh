#!/usr/bin/env bash
# Retrains the shipped models from their configs (seed in each config) and writes them to
# models/. Usage: scripts/train-shipped.sh [addition-base2 addition-base10 parity rule110]
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(addition-base2 addition-base10 parity rule110)
for name in "${names[@]}"; do
  echo "== training $name"
  node --import=tsx scripts/train-model.ts "configs/$name.json" "models/$name.json"
  rm -f "models/$name.json.ckpt"
done
