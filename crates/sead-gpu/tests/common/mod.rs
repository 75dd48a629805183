//! Shared by the GPU test files: one context per test binary, and a comparison of sessions.

use sead_core::Stepper;
use sead_gpu::{GpuContext, GpuOptions, GpuSession};
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

/// Two sessions hold the same hidden states, outputs and step counts, bit for bit.
#[allow(dead_code)] // not every test binary compares sessions
pub fn assert_same(a: &GpuSession, b: &GpuSession, what: &str) {
    assert_eq!(
        a.hidden().unwrap(),
        b.hidden().unwrap(),
        "{what}: hidden state"
    );
    assert_eq!(
        a.outputs().unwrap(),
        b.outputs().unwrap(),
        "{what}: outputs"
    );
    assert_eq!(a.steps(), b.steps(), "{what}: steps");
}
