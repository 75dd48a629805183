//! The WebAssembly (WASI) build's stand-in for sead-gpu, which does not build there (wgpu
//! has no WASI backend). It has the names `gpu.rs` uses, so the binding's GPU classes and
//! functions exist in both builds with one TypeScript signature (`index.d.ts` is the same
//! from either build), but nothing GPU-side can be made: `GpuContext::new` always fails
//! with the error below, `list_adapters` finds none, and `GpuContext` and `GpuSession` are
//! empty enums, so every method on them is statically unreachable.

use sead_core::{
    Batch, ConvergeOptions, Grid, SampleResult, Spec, StepStats, Stepper, TrainOutput,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What every GPU entry point of the WebAssembly build says.
pub const UNAVAILABLE: &str = "the GPU backend is not available in the WebAssembly (WASI) build \
     of sead, which runs when no prebuilt native binary fits this platform: use the CPU backend \
     (backend \"cpu\"), or build the native module from source (`npm run build:native`)";

pub fn unavailable() -> GpuError {
    GpuError::Unavailable(UNAVAILABLE.to_string())
}

/// sead-gpu's error, variant for variant (`gpu.rs` maps each).
#[derive(Debug)]
#[allow(dead_code)]
pub enum GpuError {
    Invalid(String),
    TooLarge(String),
    Cancelled,
    Unavailable(String),
    Device(String),
}

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuError::Invalid(m)
            | GpuError::TooLarge(m)
            | GpuError::Unavailable(m)
            | GpuError::Device(m) => f.write_str(m),
            GpuError::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for GpuError {}

impl From<sead_core::Error> for GpuError {
    fn from(e: sead_core::Error) -> Self {
        match e {
            sead_core::Error::Invalid(m) => GpuError::Invalid(m),
            sead_core::Error::TooLarge(m) => GpuError::TooLarge(m),
            sead_core::Error::Cancelled => GpuError::Cancelled,
        }
    }
}

pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub driver: String,
    pub device_type: String,
}

impl AdapterInfo {
    pub fn is_software(&self) -> bool {
        false
    }
}

/// No adapters: there is no GPU access from WebAssembly here.
pub fn list_adapters() -> Vec<AdapterInfo> {
    Vec::new()
}

pub struct GpuOptions {
    #[allow(dead_code)]
    pub adapter: Option<String>,
    #[allow(dead_code)]
    pub profile: bool,
}

/// Never made: `new` always fails.
pub enum GpuContext {}

impl GpuContext {
    pub fn new(_options: &GpuOptions) -> Result<GpuContext, GpuError> {
        Err(unavailable())
    }

    pub fn adapter_info(&self) -> &AdapterInfo {
        match *self {}
    }
}

pub fn train_step(
    ctx: &GpuContext,
    _spec: &Spec,
    _params: &[f32],
    _batch: &Batch,
    _cancel: &AtomicBool,
) -> Result<TrainOutput<f32>, GpuError> {
    match *ctx {}
}

#[derive(Default)]
#[allow(dead_code)]
pub struct SessionOptions {
    pub check_every: u32,
    pub max_bytes: usize,
    pub tile_cells: Option<u32>,
    pub workgroup_threads: Option<u32>,
}

/// Never made: it needs a `GpuContext`.
pub enum GpuSession {}

impl GpuSession {
    pub fn new(
        ctx: Arc<GpuContext>,
        _spec: Spec,
        _grid: Grid,
        _x: &[f32],
        _options: &SessionOptions,
    ) -> Result<GpuSession, GpuError> {
        match *ctx {}
    }

    pub fn groups(&self) -> usize {
        match *self {}
    }
}

impl Stepper for GpuSession {
    type Error = GpuError;

    fn bytes_needed(_spec: &Spec, _grid: &Grid) -> usize {
        0
    }
    fn spec(&self) -> &Spec {
        match *self {}
    }
    fn grid(&self) -> &Grid {
        match *self {}
    }
    fn set_freeze(&mut self, _freeze: Option<f32>) -> Result<(), GpuError> {
        match *self {}
    }
    fn step(
        &mut self,
        _params: &[f32],
        _n: usize,
        _active: Option<&[bool]>,
        _stats: &mut [StepStats],
        _cancel: &AtomicBool,
    ) -> Result<(), GpuError> {
        match *self {}
    }
    fn converge(
        &mut self,
        _params: &[f32],
        _opts: ConvergeOptions,
        _cancel: &AtomicBool,
    ) -> Result<Vec<SampleResult>, GpuError> {
        match *self {}
    }
    fn outputs(&self) -> Result<Vec<u8>, GpuError> {
        match *self {}
    }
    fn hidden(&self) -> Result<Vec<f32>, GpuError> {
        match *self {}
    }
    fn logits(&self, _params: &[f32]) -> Result<Vec<f32>, GpuError> {
        match *self {}
    }
    fn steps(&self) -> Vec<u64> {
        match *self {}
    }
    fn cells_computed(&self) -> Vec<u64> {
        match *self {}
    }
    fn refresh_outputs(&mut self, _params: &[f32]) -> Result<(), GpuError> {
        match *self {}
    }
}
