//! The WebAssembly (WASI) build's stand-in for sead-gpu, which does not build there (wgpu
//! has no WASI backend). It has the names `gpu.rs` uses, so the binding's GPU classes and
//! functions exist in both builds with one TypeScript signature (`index.d.ts` is the same
//! from either build), but nothing GPU-side can be made: `GpuContext::new` always fails
//! with the error below, `list_adapters` finds none, and `AdapterInfo`, `GpuContext` and
//! `GpuSession` are empty enums, so every method on them is statically unreachable. The
//! error type is sead-gpu's own: its file needs no wgpu and is compiled in here as well.

use crate::gpu::GpuAdapterInfo;
use sead_core::{
    Batch, ConvergeOptions, Grid, SampleResult, Spec, StepStats, Stepper, TrainOutput,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[path = "../../sead-gpu/src/error.rs"]
#[allow(dead_code)] // `Result` and `GpuError::invalid` serve sead-gpu itself.
mod error;
pub use error::GpuError;

/// What every GPU entry point of the WebAssembly build says.
pub const UNAVAILABLE: &str = "the GPU backend is not available in the WebAssembly (WASI) build \
     of sead, which runs when no prebuilt native binary fits this platform: use the CPU backend \
     (backend \"cpu\"), or build the native module from source (`npm run build:native`)";

pub fn unavailable() -> GpuError {
    GpuError::Unavailable(UNAVAILABLE.to_string())
}

/// The methods of a type that is never made (an empty enum), one a line: each body is
/// `match *self {}`.
macro_rules! unreachable_methods {
    () => {};
    ($vis:vis fn $name:ident(&self $(, $arg:ty)*) -> $ret:ty; $($rest:tt)*) => {
        $vis fn $name(&self $(, _: $arg)*) -> $ret {
            match *self {}
        }
        unreachable_methods! { $($rest)* }
    };
    ($vis:vis fn $name:ident(&mut self $(, $arg:ty)*) -> $ret:ty; $($rest:tt)*) => {
        $vis fn $name(&mut self $(, _: $arg)*) -> $ret {
            match *self {}
        }
        unreachable_methods! { $($rest)* }
    };
}

/// An adapter: there is none, no GPU being reachable from WebAssembly here.
pub enum AdapterInfo {}

impl From<&AdapterInfo> for GpuAdapterInfo {
    fn from(a: &AdapterInfo) -> Self {
        match *a {}
    }
}

pub fn list_adapters() -> Vec<AdapterInfo> {
    Vec::new()
}

#[allow(dead_code)]
pub struct GpuOptions {
    pub adapter: Option<String>,
    pub profile: bool,
}

/// Never made: `new` always fails.
pub enum GpuContext {}

impl GpuContext {
    pub fn new(_options: &GpuOptions) -> Result<GpuContext, GpuError> {
        Err(unavailable())
    }

    unreachable_methods! {
        pub fn adapter_info(&self) -> &AdapterInfo;
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

    unreachable_methods! {
        pub fn groups(&self) -> usize;
    }
}

impl Stepper for GpuSession {
    type Error = GpuError;

    fn bytes_needed(_spec: &Spec, _grid: &Grid) -> usize {
        0
    }

    unreachable_methods! {
        fn spec(&self) -> &Spec;
        fn grid(&self) -> &Grid;
        fn set_freeze(&mut self, Option<f32>) -> Result<(), GpuError>;
        fn step(&mut self, &[f32], usize, Option<&[bool]>, &mut [StepStats], &AtomicBool)
            -> Result<(), GpuError>;
        fn converge(&mut self, &[f32], ConvergeOptions, &AtomicBool)
            -> Result<Vec<SampleResult>, GpuError>;
        fn outputs(&self) -> Result<Vec<u8>, GpuError>;
        fn hidden(&self) -> Result<Vec<f32>, GpuError>;
        fn logits(&self, &[f32]) -> Result<Vec<f32>, GpuError>;
        fn steps(&self) -> Vec<u64>;
        fn cells_computed(&self) -> Vec<u64>;
        fn refresh_outputs(&mut self, &[f32]) -> Result<(), GpuError>;
    }
}
