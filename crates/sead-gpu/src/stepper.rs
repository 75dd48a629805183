//! `GpuSession` as a `sead_core::Stepper`, so code written once over the trait (the Node
//! binding, tests, benches) runs on the GPU as on the CPU. Every method is `GpuSession`'s
//! own; the settle rule `converge` applies is sead-core's `ConvergeOptions::settle`, which
//! `sample_update` (wgsl/step.wgsl) mirrors on the GPU (tests/settle_rule.rs holds them
//! together).

use crate::error::GpuError;
use crate::session::GpuSession;
use sead_core::{ConvergeOptions, Grid, SampleResult, Spec, StepStats, Stepper};
use std::sync::atomic::AtomicBool;

impl Stepper for GpuSession {
    type Error = GpuError;

    fn bytes_needed(spec: &Spec, grid: &Grid) -> usize {
        GpuSession::bytes_needed(spec, grid)
    }
    fn spec(&self) -> &Spec {
        GpuSession::spec(self)
    }
    fn grid(&self) -> &Grid {
        GpuSession::grid(self)
    }
    fn set_freeze(&mut self, freeze: Option<f32>) -> Result<(), GpuError> {
        GpuSession::set_freeze(self, freeze)
    }
    fn step(
        &mut self,
        params: &[f32],
        n: usize,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
        cancel: &AtomicBool,
    ) -> Result<(), GpuError> {
        GpuSession::step(self, params, n, active, stats, cancel)
    }
    fn converge(
        &mut self,
        params: &[f32],
        opts: ConvergeOptions,
        cancel: &AtomicBool,
    ) -> Result<Vec<SampleResult>, GpuError> {
        GpuSession::converge(self, params, opts, cancel)
    }
    fn outputs(&self) -> Result<Vec<u8>, GpuError> {
        GpuSession::outputs(self)
    }
    fn hidden(&self) -> Result<Vec<f32>, GpuError> {
        GpuSession::hidden(self)
    }
    fn logits(&self, params: &[f32]) -> Result<Vec<f32>, GpuError> {
        GpuSession::logits(self, params)
    }
    fn steps(&self) -> Vec<u64> {
        GpuSession::steps(self)
    }
    fn cells_computed(&self) -> Vec<u64> {
        GpuSession::cells_computed(self)
    }
    fn refresh_outputs(&mut self, params: &[f32]) -> Result<(), GpuError> {
        GpuSession::refresh_outputs(self, params)
    }
}
