#!/usr/bin/env bash
# Retrains the shipped models from their configs (seed in each config) and writes them to
# models/. A model with a configs/<name>-finetune.json is trained in two stages: the first
# config to build/<name>-stage1.json, then the fine-tuning config (whose "init" names that
# file) to models/<name>.json. A model that also has a configs/<name>-rounds.json is then trained
# on by scripts/verify-train.ts (verify, add the wrong fixed point found to the config's starts,
# train on) until `sead verify` proves every fixed point correct; the proven model goes to
# models/<name>.json.
# Usage: scripts/train-shipped.sh [addition-base2 addition-base10 parity rule110 addition-base2-ternary addition-base2-verified]
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
    if [ -f "configs/$name-rounds.json" ]; then
      node --import=tsx scripts/train-model.ts "configs/$name-finetune.json" "build/$name-stage2.json"
      rm -f "build/$name-stage2.json.ckpt"
      echo "== verification-guided rounds for $name"
      node --import=tsx scripts/verify-train.ts --config "configs/$name-rounds.json" \
        --model "build/$name-stage2.json" --out "build/$name-rounds" --rounds 40 --steps 1000 \
        --final "models/$name.json"
    else
      node --import=tsx scripts/train-model.ts "configs/$name-finetune.json" "models/$name.json"
    fi
  else
    echo "== training $name"
    node --import=tsx scripts/train-model.ts "configs/$name.json" "models/$name.json"
  fi
  rm -f "models/$name.json.ckpt"
done
