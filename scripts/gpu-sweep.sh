#!/usr/bin/env bash
# Sweeps the GPU step kernel's layout on this machine's GPU: for each tile size (cells) and
# workgroup size (threads), the forward step benches of `cargo bench -p sead-gpu --bench gpu`
# and the million-digit additions of `--bench add_million`, one FIGURE line each. The
# defaults (crates/sead-gpu/src/kernels.rs) were chosen on an H100; another GPU may want
# others, which `SessionOptions { tile_cells, workgroup_threads }` then sets.
#
#   scripts/gpu-sweep.sh                    build the benches with cargo, then sweep
#   scripts/gpu-sweep.sh --prepare DIR      only build, and copy the two bench binaries to DIR
#   SEAD_BENCH_DIR=DIR scripts/gpu-sweep.sh sweep with binaries from --prepare (a machine
#                                           without Rust; run from the repository root, which
#                                           holds the shipped models)
#
# SEAD_SWEEP_TILES and SEAD_SWEEP_THREADS narrow the sweep (defaults "4 8 16 32 64" and
# "32 64 128 256"). A layout whose tile does not fit a model's workgroup memory prints
# "skipped". Figures from a software adapter (lavapipe) say nothing about a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

build() {
    # The bench binaries' paths, from cargo's JSON messages.
    cargo bench -p sead-gpu --no-run --message-format=json 2>/dev/null |
        node -e '
            let s = "";
            process.stdin.on("data", (d) => (s += d)).on("end", () => {
                for (const line of s.split("\n")) {
                    if (!line.startsWith("{")) continue;
                    const m = JSON.parse(line);
                    if (m.reason === "compiler-artifact" && m.executable &&
                        m.target.kind.includes("bench") &&
                        ["gpu", "add_million"].includes(m.target.name))
                        console.log(m.target.name + " " + m.executable);
                }
            });'
}

if [[ "${1:-}" == "--prepare" ]]; then
    dir="${2:?--prepare DIR}"
    mkdir -p "$dir"
    build | while read -r name exe; do cp "$exe" "$dir/$name"; echo "$dir/$name"; done
    exit 0
fi

if [[ -n "${SEAD_BENCH_DIR:-}" ]]; then
    gpu="$SEAD_BENCH_DIR/gpu"
    add="$SEAD_BENCH_DIR/add_million"
else
    declare -A bin
    while read -r name exe; do bin[$name]="$exe"; done < <(build)
    gpu="${bin[gpu]}"
    add="${bin[add_million]}"
fi

for threads in ${SEAD_SWEEP_THREADS:-32 64 128 256}; do
    for tile in ${SEAD_SWEEP_TILES:-4 8 16 32 64}; do
        echo "=== tiles of $tile cells, $threads threads"
        export SEAD_GPU_TILE=$tile SEAD_GPU_THREADS=$threads
        "$gpu" --bench step_forward --warm-up-time 1 --measurement-time 2 2>&1 |
            grep -E "^FIGURE|skipped" || true
        SEAD_BENCH_CPU=0 "$add" 2>&1 | grep -E "^FIGURE|skipped" || true
    done
done
