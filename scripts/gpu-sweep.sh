#!/usr/bin/env bash
# Sweeps the GPU step kernel's layout on this machine's GPU: for each tile size (cells) and
# workgroup size (threads), the forward step benches of `cargo bench -p sead-gpu --bench gpu`
# and the million-digit additions of `--bench add_million`, one FIGURE line each. The
# defaults (crates/sead-gpu/src/kernels.rs) were chosen on an H100; another GPU may want
# others, which `SessionOptions { tile_cells, workgroup_threads }` then sets.
#
#   scripts/gpu-sweep.sh                    build the benches (scripts/gpu-device.sh build,
#                                           into .devbin/), then sweep
#   SEAD_BENCH_DIR=DIR scripts/gpu-sweep.sh sweep with binaries built before (a machine
#                                           without Rust, as scripts/gpu-device.sh run sweep
#                                           does; run from the repository root, which holds
#                                           the shipped models)
#
# SEAD_SWEEP_TILES and SEAD_SWEEP_THREADS narrow the sweep (defaults "4 8 16 32 64" and
# "32 64 128 256"). A layout whose tile does not fit a model's workgroup memory prints
# "skipped". Figures from a software adapter (lavapipe) say nothing about a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${SEAD_BENCH_DIR:-}" ]]; then
    dir="$SEAD_BENCH_DIR"
else
    scripts/gpu-device.sh build >/dev/null
    dir=.devbin
fi
gpu="$dir/gpu"
add="$dir/add_million"

for threads in ${SEAD_SWEEP_THREADS:-32 64 128 256}; do
    for tile in ${SEAD_SWEEP_TILES:-4 8 16 32 64}; do
        echo "=== tiles of $tile cells, $threads threads"
        export SEAD_GPU_TILE=$tile SEAD_GPU_THREADS=$threads
        "$gpu" --bench step_forward --warm-up-time 1 --measurement-time 2 2>&1 |
            grep -E "^FIGURE|skipped" || true
        SEAD_BENCH_CPU=0 "$add" 2>&1 | grep -E "^FIGURE|skipped" || true
    done
done
