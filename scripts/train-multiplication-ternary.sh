#!/usr/bin/env bash
# Retrains models/multiplication-base2-ternary.json from random parameters, as it was made
# (docs/results.md, "A ternary multiplication model"), at 1 thread so every step is the same:
#   1. `sead train` with configs/multiplication-base2-ternary.json (operands of 2 to 8 bits);
#   2. probe-guided rounds (scripts/mul-probe-train.ts) with ...-rounds.json, probing 32
#      random 24-bit products, for 6 rounds;
#   3. rounds with ...-rounds2.json (a lower learning rate), probing 64-, 128- and 256-bit
#      products, until a probe is all exact and settled (round 12 for the shipped model).
# Training inputs stay within 2 to 8 bits throughout: the probes only choose initial states.
# Usage: scripts/train-multiplication-ternary.sh [out.json] (default models/multiplication-base2-ternary.json)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-models/multiplication-base2-ternary.json}"
work=build/multiplication-base2-ternary
mkdir -p "$work"
start=$SECONDS
echo "== stage 1: sead train"
node dist/src/cli/main.js train --config configs/multiplication-base2-ternary.json \
  --backend cpu --threads 1 --out "$work/stage1.json"
rm -f "$work/stage1.json.ckpt"
echo "== probe-guided rounds, phase 1 (24-bit probes)"
# Exits 1 when its rounds run out without a passing probe, as planned here: round 6 goes on.
node --import=tsx scripts/mul-probe-train.ts --config configs/multiplication-base2-ternary-rounds.json \
  --model "$work/stage1.json" --out "$work/phase1" --rounds 6 --steps 400 --probe 24:32 || [ $? -eq 1 ]
echo "== probe-guided rounds, phase 2 (64- to 256-bit probes)"
node --import=tsx scripts/mul-probe-train.ts --config configs/multiplication-base2-ternary-rounds2.json \
  --model "$work/phase1/round-6.json" --out "$work/phase2" --rounds 30 --steps 400 \
  --probe 64:16,128:8,256:2 --final "$out" --seconds-before $((SECONDS - start)) \
  --chain "scripts/train-multiplication-ternary.sh: sead train (configs/multiplication-base2-ternary.json), 6 probe-guided rounds (...-rounds.json, 24-bit probes), rounds with ...-rounds2.json (64/128/256-bit probes) until a probe passed; 1 thread"
