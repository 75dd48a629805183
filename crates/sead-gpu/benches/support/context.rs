//! The benches' GPU: the adapter SEAD_GPU_ADAPTER names, or the best one; None (after saying
//! why) where there is none, so `cargo bench` on a machine without one benchmarks nothing.
//! And the step kernel's layout, to tune it on a GPU: SEAD_GPU_TILE (cells per tile),
//! SEAD_GPU_THREADS (threads per workgroup), SEAD_PACK=0 (each short row tiled alone).

use sead_gpu::{GpuContext, GpuOptions, SessionOptions};
use std::sync::Arc;

pub fn gpu_or_none() -> Option<Arc<GpuContext>> {
    match GpuContext::new(&GpuOptions {
        adapter: std::env::var("SEAD_GPU_ADAPTER").ok(),
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
