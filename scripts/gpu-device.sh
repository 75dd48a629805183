#!/usr/bin/env bash
# The GPU measurements, for a lent machine that has a GPU but no Rust, no Node and no network
# (the tool library's `device`). Two halves:
#
#   scripts/gpu-device.sh prepare        here: builds the GPU test, bench and search binaries
#                                        into .devbin/ (`build` does only that), and downloads
#                                        the Vulkan loader and GL dispatch packages into .gl/
#                                        (the lent machine has the NVIDIA driver without them)
#   scripts/gpu-device.sh run STEP...    there, from the repository root (carry .devbin and
#                                        .gl): installs the loader if missing, then runs each
#                                        STEP, writing STEP.log into $OUT (or build/gpu-logs)
#
# STEPs: tests (agreement, skipping, layout, profile), bench (the kernel benches), add (the million-digit
# additions, every cell and freeze 1e-5), chain (the 100,000-digit carry chains with skipping),
# search (4,194,304 random 16-digit binary sums, packed and per-row), sweep (scripts/gpu-sweep.sh),
# profile (GPU time per kernel, from timestamp queries: the kernel benches, the million-digit
# binary addition with and without freeze, and the binary carry chain with freeze).
# Each prints a short summary; the logs hold the rest. On a machine with a GPU and Rust,
# `cargo test` and `cargo bench` do the same directly.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.devbin

build() {
    mkdir -p "$bin"
    # Test, bench and example binaries, from cargo's JSON messages.
    {
        cargo test --release -p sead-gpu --no-run --message-format=json 2>/dev/null
        cargo bench -p sead-gpu --no-run --message-format=json 2>/dev/null
        cargo build --release -p sead-gpu --examples --message-format=json 2>/dev/null
    } | node -e '
        let s = "";
        process.stdin.on("data", (d) => (s += d)).on("end", () => {
            for (const line of s.split("\n")) {
                if (!line.startsWith("{")) continue;
                const m = JSON.parse(line);
                if (m.reason !== "compiler-artifact" || !m.executable) continue;
                const kind = m.target.kind.includes("bench") ? "bench" : m.profile.test ? "test" : "example";
                console.log(kind + " " + m.target.name + " " + m.executable);
            }
        });' | while read -r kind name exe; do
        case "$kind:$name" in
            test:agreement | test:skipping | test:layout | test:profile | bench:gpu | bench:add_million | example:addition_search)
                cp "$exe" "$bin/$name"
                echo "$bin/$name"
                ;;
        esac
    done
}

prepare() {
    build
    if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
        mkdir -p .gl /tmp/amd64/partial
        local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
        apt-get "${o[@]}" update -qq
        (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    fi
    ls .gl
}

vulkan() {
    if ! grep -q libvulkan.so.1 <<<"$(ldconfig -p)"; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [[ -f $icd && -z ${VK_DRIVER_FILES:-} ]]; then export VK_DRIVER_FILES=$icd; fi
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv,noheader || true
}

step() {
    local name=$1 log="$out/$1.log"
    echo "=== $name"
    case $name in
        tests)
            for t in agreement skipping layout profile; do
                timeout 300 "$bin/$t" --test-threads 1 2>&1 | tee -a "$log" | grep -E "test result|FAILED|panicked" || true
            done
            ;;
        bench)
            timeout 300 "$bin/gpu" --bench 2>&1 | tee "$log" | sed -n '/^summary/,$p'
            ;;
        add)
            { timeout 200 "$bin/add_million" 2>&1; SEAD_FREEZE=1e-5 timeout 200 "$bin/add_million" 2>&1; } |
                tee "$log" | grep -E "^FIGURE|freeze"
            ;;
        chain)
            SEAD_ADD_CHAIN=1 SEAD_ADD_DIGITS=100000 SEAD_FREEZE=1e-5 SEAD_ADD_RUNS=1 SEAD_BENCH_CPU=0 \
                timeout 300 "$bin/add_million" 2>&1 | tee "$log" | grep -E "^FIGURE"
            ;;
        search)
            for pack in 1 0; do
                echo "SEAD_PACK=$pack"
                SEAD_PACK=$pack timeout 200 "$bin/addition_search" addition-base2 random 16 4194304 2>&1 | tail -3
            done | tee "$log"
            ;;
        profile)
            {
                SEAD_GPU_PROFILE=1 timeout 200 "$bin/gpu" --bench 2>&1
                SEAD_GPU_PROFILE=1 SEAD_BENCH_CPU=0 SEAD_ADD_RUNS=3 timeout 100 "$bin/add_million" 2>&1
                SEAD_GPU_PROFILE=1 SEAD_BENCH_CPU=0 SEAD_ADD_RUNS=3 SEAD_FREEZE=1e-5 timeout 100 "$bin/add_million" 2>&1
                SEAD_GPU_PROFILE=1 SEAD_BENCH_CPU=0 SEAD_ADD_RUNS=1 SEAD_ADD_CHAIN=1 SEAD_ADD_DIGITS=100000 \
                    SEAD_FREEZE=1e-5 timeout 200 "$bin/add_million" 2>&1
            } | tee "$log" | grep -E "^PROFILE|^FIGURE"
            ;;
        sweep)
            SEAD_BENCH_DIR=$bin timeout 550 scripts/gpu-sweep.sh 2>&1 | tee "$log" | grep -E "===|W=1000000|addition-base2" || true
            ;;
        *)
            echo "unknown step $name (tests, bench, add, chain, search, sweep, profile)" >&2
            exit 2
            ;;
    esac
}

case "${1:-}" in
    build) build ;;
    prepare) prepare ;;
    run)
        shift
        out=${OUT:-build/gpu-logs}
        mkdir -p "$out"
        vulkan
        for s in "$@"; do step "$s"; done
        ;;
    *)
        sed -n '2,19p' "$0"
        exit 2
        ;;
esac
