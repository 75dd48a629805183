//! The benches' GPU: the adapter SEAD_GPU_ADAPTER names, or the best one; None (after saying
//! why) where there is none, so `cargo bench` on a machine without one benchmarks nothing.
//! And the step kernel's layout, to tune it on a GPU: SEAD_GPU_TILE (cells per tile),
//! SEAD_GPU_THREADS (threads per workgroup), SEAD_PACK=0 (each short row tiled alone).
//! SEAD_GPU_PROFILE=1 times every kernel with timestamp queries and prints the GPU time per
//! kernel after each figure (it waits on every submission: the figures themselves are then
//! slower and not comparable with unprofiled ones).

use sead_gpu::{GpuContext, GpuOptions, SessionOptions};
use std::sync::Arc;

pub fn gpu_or_none() -> Option<Arc<GpuContext>> {
    match GpuContext::new(&GpuOptions {
        adapter: std::env::var("SEAD_GPU_ADAPTER").ok(),
        profile: std::env::var("SEAD_GPU_PROFILE").is_ok_and(|v| v == "1"),
    }) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            eprintln!("no GPU adapter, nothing to benchmark: {e}");
            None
        }
    }
}

/// `opts` with the layout the environment asks for (unset: the defaults).
pub fn tuned(opts: SessionOptions) -> SessionOptions {
    let num = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.parse::<u32>()
                .unwrap_or_else(|_| panic!("{name}: a whole number, got {v}"))
        })
    };
    SessionOptions {
        tile_cells: num("SEAD_GPU_TILE"),
        workgroup_threads: num("SEAD_GPU_THREADS"),
        pack_short_rows: num("SEAD_PACK") != Some(0),
        ..opts
    }
}

/// Drops the kernel times gathered so far (warm-up runs), when profiling.
pub fn reset_profile(ctx: &GpuContext) {
    let _ = ctx.take_profile();
}

/// Prints the kernel times gathered since the last reset, when profiling: per kernel,
/// its dispatches, GPU time in all and per dispatch, and share.
pub fn print_profile(ctx: &GpuContext, label: &str) {
    if let Some(p) = ctx.take_profile().filter(|p| !p.kernels.is_empty()) {
        println!(
            "PROFILE {label}: {:.3} ms of GPU time in timed kernels",
            p.seconds() * 1e3
        );
        for line in p.table().lines() {
            println!("PROFILE   {line}");
        }
    }
}
