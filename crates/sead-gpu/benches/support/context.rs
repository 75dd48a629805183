//! The benches' GPU: the adapter SEAD_GPU_ADAPTER names, or the best one; None (after saying
//! why) where there is none, so `cargo bench` on a machine without one benchmarks nothing.

use sead_gpu::{GpuContext, GpuOptions};
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
