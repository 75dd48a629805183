#!/usr/bin/env bash
# Retrains the shipped models from their configs (seed in each config) and writes them to
# models/. A model with a configs/<name>-finetune.json is trained in two stages: the first
# config to build/<name>-stage1.json, then the fine-tuning config (whose "init" names that
# file) to models/<name>.json.
# Usage: scripts/train-shipped.sh [addition-base2 addition-base10 parity rule110]
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(addition-base2 addition-base10 parity rule110)
for name in "${names[@]}"; do
  if [ -f "configs/$name-finetune.json" ]; then
    mkdir -p build
    echo "== training $name (stage 1)"
    node --import=tsx scripts/train-model.ts "configs/$name.json" "build/$name-stage1.json"
    rm -f "build/$name-stage1.json.ckpt"
    echo "== fine-tuning $name (stage 2)"
    node --import=tsx scripts/train-model.ts "configs/$name-finetune.json" "models/$name.json"
  else
    echo "== training $name"
    node --import=tsx scripts/train-model.ts "configs/$name.json" "models/$name.json"
  fi
  rm -f "models/$name.json.ckpt"
done
