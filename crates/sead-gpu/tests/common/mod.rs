//! Shared by the GPU test files: one context per test binary.

use sead_gpu::{GpuContext, GpuOptions};
use std::sync::{Arc, OnceLock};

/// The shared context, or None (test skipped) only when SEAD_SKIP_GPU_TESTS=1: no adapter is
/// a failure, not a skip.
pub fn ctx() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new(&GpuOptions::default()) {
        Ok(c) => {
            eprintln!("GPU tests on: {}", c.adapter_info().describe());
            Some(Arc::new(c))
        }
        Err(e) if std::env::var("SEAD_SKIP_GPU_TESTS").as_deref() == Ok("1") => {
            eprintln!("SEAD_SKIP_GPU_TESTS=1: skipping GPU tests ({e})");
            None
        }
        Err(e) => {
            panic!("no GPU adapter for the GPU tests (set SEAD_SKIP_GPU_TESTS=1 to skip them): {e}")
        }
    })
    .clone()
}
