//! The Node-API binding of sead-core: thin, no math. Every entry point re-checks what it
//! receives (the TypeScript layer validates first), long work runs off the JavaScript
//! thread as a promise that a `CancelToken` can stop between steps, and a Rust panic
//! anywhere becomes a rejected promise or a thrown `Error`, never a crash.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use sead_core::{
    pool, train_step, Batch, Boundary, Grid, Quantize, Session, Simd, Spec, TrainOutput, Update,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod gpu;
#[cfg(target_family = "wasm")]
mod gpu_unavailable;
mod session;
mod verify;

use session::{max_bytes_arg, session_class, session_options, Handle, JsSession, SessionOutput};

// ---------------------------------------------------------------------------------------
// Errors and argument checks

pub(crate) fn core_err(e: sead_core::Error) -> Error {
    match e {
        sead_core::Error::Invalid(m) => Error::new(Status::InvalidArg, m),
        sead_core::Error::TooLarge(m) => {
            Error::new(Status::GenericFailure, format!("too large: {m}"))
        }
        sead_core::Error::Cancelled => Error::new(Status::Cancelled, "the operation was cancelled"),
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Status::InvalidArg, msg.into())
}

/// Runs `f`, turning a panic into an error that says it is a bug, so nothing unwinds
/// across the Node-API boundary.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::new(
                Status::GenericFailure,
                format!("internal error in sead's native core (please report it): {what}"),
            ))
        }
    }
}

/// Work run off the JavaScript thread as a napi `AsyncTask`, resolving to `T`: every async
/// entry point (training, verification, a session's step and converge) is one of these, its
/// arguments checked and copied beforehand. The work runs inside `guard`; what it holds (a
/// session's busy mark, say) is dropped with the task, after the promise settles.
pub struct OffThread<T>(Box<dyn Fn() -> Result<T> + Send>);

impl<T: ToNapiValue + TypeName + Send + 'static> OffThread<T> {
    pub(crate) fn new(work: impl Fn() -> Result<T> + Send + 'static) -> AsyncTask<Self> {
        AsyncTask::new(OffThread(Box::new(work)))
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for OffThread<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> Result<T> {
        guard(|| (self.0)())
    }

    fn resolve(&mut self, _env: Env, output: T) -> Result<T> {
        Ok(output)
    }
}

/// The largest whole number a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub(crate) const MAX_SAFE_INTEGER: f64 = 9007199254740991.0;

/// A whole number in [min, max], named in the error.
pub(crate) fn whole(name: &str, v: f64, min: f64, max: f64) -> Result<usize> {
    if !v.is_finite() || v.fract() != 0.0 || v < min || v > max {
        return Err(invalid(format!(
            "{name} must be a whole number from {min} to {max}, got {v}"
        )));
    }
    Ok(v as usize)
}

pub(crate) fn threads_arg(threads: Option<f64>) -> Result<usize> {
    match threads {
        None => Ok(0),
        Some(t) => whole("threads", t, 0.0, pool::MAX_THREADS as f64),
    }
}

pub(crate) fn on_threads<T: Send>(
    threads: usize,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    pool::with_threads(threads, f).map_err(core_err)?
}

/// The model's shape, as the TypeScript `ModelSpec` gives it.
#[napi(object)]
#[derive(Clone)]
pub struct SpecInput {
    /// 1 or 2.
    pub dims: f64,
    pub c_in: f64,
    pub c_h: f64,
    pub features: f64,
    pub c_out: f64,
    /// "replace" or "residual".
    pub update: String,
    /// "zero" or "periodic".
    pub boundary: String,
    /// "none" (the default) or "ternary".
    pub quantize: Option<String>,
}

/// The value named `got` among the two `choices`; the error names `name` and both.
fn one_of<T: Copy>(name: &str, got: &str, choices: [(&str, T); 2]) -> Result<T> {
    let [(a, _), (b, _)] = choices;
    match choices.iter().find(|(n, _)| *n == got) {
        Some(&(_, v)) => Ok(v),
        None => Err(invalid(format!(
            "{name} must be {a:?} or {b:?}, got {got:?}"
        ))),
    }
}

pub(crate) fn spec_arg(s: &SpecInput) -> Result<Spec> {
    let max = sead_core::spec::MAX_CHANNELS as f64;
    let spec = Spec {
        dims: whole("spec.dims", s.dims, 1.0, 2.0)?,
        c_in: whole("spec.cIn", s.c_in, 0.0, max)?,
        c_h: whole("spec.cH", s.c_h, 1.0, max)?,
        features: whole("spec.features", s.features, 1.0, max)?,
        c_out: whole("spec.cOut", s.c_out, 1.0, 256.0)?,
        update: one_of(
            "spec.update",
            &s.update,
            [("replace", Update::Replace), ("residual", Update::Residual)],
        )?,
        boundary: one_of(
            "spec.boundary",
            &s.boundary,
            [("zero", Boundary::Zero), ("periodic", Boundary::Periodic)],
        )?,
        quantize: one_of(
            "spec.quantize",
            s.quantize.as_deref().unwrap_or("none"),
            [("none", Quantize::None), ("ternary", Quantize::Ternary)],
        )?,
    };
    spec.validate().map_err(core_err)?;
    Ok(spec)
}

/// A grid's batch and spatial size.
#[napi(object)]
#[derive(Clone)]
pub struct GridInput {
    pub batch: f64,
    pub height: f64,
    pub width: f64,
}

pub(crate) fn grid_arg(g: &GridInput, spec: &Spec) -> Result<Grid> {
    let side = |name: &str, v: f64| -> Result<usize> {
        let n = whole(name, v, 1.0, (1u64 << 40) as f64)?;
        // A 32-bit build (the WebAssembly one) cannot hold it: its usize would saturate.
        if v > usize::MAX as f64 {
            return Err(Error::new(
                Status::GenericFailure,
                format!(
                    "too large: {name} {v} does not fit a 32-bit build of sead (the WebAssembly \
                     one, with at most 4.00 GiB of memory)"
                ),
            ));
        }
        Ok(n)
    };
    let grid = Grid {
        batch: side("grid.batch", g.batch)?,
        height: side("grid.height", g.height)?,
        width: side("grid.width", g.width)?,
    };
    grid.validate(spec).map_err(core_err)?;
    Ok(grid)
}

/// Copies a JS array on the main thread so async work never reads memory JS may change.
pub(crate) fn owned_params(spec: &Spec, params: &[f32]) -> Result<Vec<f32>> {
    spec.check_params(params).map_err(core_err)?;
    Ok(params.to_vec())
}

// ---------------------------------------------------------------------------------------
// Cancellation

/// A flag the native work checks every step. The TypeScript layer links it to an
/// AbortSignal; cancelling makes the running call reject with code "Cancelled".
#[napi]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> Self {
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn flag_of(token: Option<&CancelToken>) -> Arc<AtomicBool> {
    token
        .map(|t| t.flag.clone())
        .unwrap_or_else(|| Arc::new(AtomicBool::new(false)))
}

// ---------------------------------------------------------------------------------------
// Information

/// What the native core can do on this machine.
#[napi(object, object_from_js = false)]
pub struct NativeInfo {
    /// The SIMD kernel "auto" picks here: "avx2" or "portable".
    pub simd: String,
    /// Threads used when none are asked for: the cores this process may use.
    pub default_threads: u32,
    pub version: String,
}

#[napi]
pub fn native_info() -> NativeInfo {
    NativeInfo {
        simd: Simd::detect().name().to_string(),
        default_threads: pool::default_threads() as u32,
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Parameter count of a spec (the length of the flat parameter array).
#[napi]
pub fn param_count(spec: SpecInput) -> Result<u32> {
    guard(|| Ok(spec_arg(&spec)?.param_count() as u32))
}

// ---------------------------------------------------------------------------------------
// Training

/// One training batch, as `Backend.trainStep` gives it.
#[napi(object)]
pub struct TrainBatchInput {
    pub grid: GridInput,
    /// `[batch][height][width][cIn]`
    pub x: Float32Array,
    /// `[batch][height][width]`, class per cell, -1 = not supervised
    pub target: Int32Array,
    /// Loss weight of the state after each step; its length is the unroll length.
    pub step_weights: Float32Array,
    pub noise_std: Option<f64>,
    pub noise_seed: Option<f64>,
    /// Weight of the settling penalty on |h_t - h_{t-1}|^2 (default 0 = off).
    pub settle_weight: Option<f64>,
    /// The hidden state each sample starts from, `[batch][height][width][cH]` (default: zero).
    pub h0: Option<Float32Array>,
}

/// A batch's noise and settling-penalty settings, checked (both bindings use this).
#[derive(Clone, Copy)]
struct LossOptions {
    pub noise_std: f32,
    pub noise_seed: u64,
    pub settle_weight: f32,
}

fn loss_options(batch: &TrainBatchInput) -> Result<LossOptions> {
    let noise_std = batch.noise_std.unwrap_or(0.0);
    if !noise_std.is_finite() || noise_std < 0.0 {
        return Err(invalid(format!(
            "noiseStd must be finite and >= 0, got {noise_std}"
        )));
    }
    let settle_weight = batch.settle_weight.unwrap_or(0.0);
    if !settle_weight.is_finite() || settle_weight < 0.0 {
        return Err(invalid(format!(
            "settleWeight must be finite and >= 0, got {settle_weight}"
        )));
    }
    let noise_seed = whole(
        "noiseSeed",
        batch.noise_seed.unwrap_or(0.0),
        0.0,
        MAX_SAFE_INTEGER,
    )?;
    Ok(LossOptions {
        noise_std: noise_std as f32,
        noise_seed: noise_seed as u64,
        settle_weight: settle_weight as f32,
    })
}

/// A training call's arguments, checked and copied out of JavaScript (so the work can run
/// off its thread); both bindings train on it.
pub(crate) struct TrainArgs {
    pub spec: Spec,
    pub params: Vec<f32>,
    grid: Grid,
    x: Vec<f32>,
    target: Vec<i32>,
    weights: Vec<f32>,
    h0: Option<Vec<f32>>,
    opts: LossOptions,
    pub cancel: Arc<AtomicBool>,
}

impl TrainArgs {
    pub fn from_js(
        spec: &SpecInput,
        params: &[f32],
        batch: &TrainBatchInput,
        cancel: Option<&CancelToken>,
    ) -> Result<Self> {
        let spec = spec_arg(spec)?;
        Ok(TrainArgs {
            params: owned_params(&spec, params)?,
            grid: grid_arg(&batch.grid, &spec)?,
            x: batch.x.to_vec(),
            target: batch.target.to_vec(),
            weights: batch.step_weights.to_vec(),
            h0: batch.h0.as_ref().map(|h| h.to_vec()),
            opts: loss_options(batch)?,
            spec,
            cancel: flag_of(cancel),
        })
    }

    /// The core's view of the batch.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            grid: self.grid,
            x: &self.x,
            target: &self.target,
            step_weights: &self.weights,
            noise_std: self.opts.noise_std,
            noise_seed: self.opts.noise_seed,
            settle_weight: self.opts.settle_weight,
            h0: self.h0.as_deref(),
        }
    }
}

#[napi(object, object_from_js = false)]
pub struct TrainResult {
    pub loss: f64,
    pub grad: Float32Array,
    /// Samples entirely right after the last step.
    pub exact: u32,
    pub cells_correct: f64,
    pub cells_supervised: f64,
}

impl From<TrainOutput<f32>> for TrainResult {
    fn from(out: TrainOutput<f32>) -> Self {
        TrainResult {
            loss: out.loss,
            grad: Float32Array::new(out.grad),
            exact: out.exact,
            cells_correct: out.cells_correct as f64,
            cells_supervised: out.cells_supervised as f64,
        }
    }
}

/// The CPU training step, its arguments checked on the calling thread.
fn cpu_train(
    spec: &SpecInput,
    params: &[f32],
    batch: &TrainBatchInput,
    threads: Option<f64>,
    cancel: Option<&CancelToken>,
) -> Result<impl Fn() -> Result<TrainResult> + Send + 'static> {
    let args = TrainArgs::from_js(spec, params, batch, cancel)?;
    let threads = threads_arg(threads)?;
    Ok(move || {
        let batch = args.batch();
        on_threads(threads, || {
            train_step(&args.spec, &args.params, &batch, &args.cancel).map_err(core_err)
        })
        .map(TrainResult::from)
    })
}

/// Forward + back-propagation through time over one batch, off the JavaScript thread.
#[napi(ts_return_type = "Promise<TrainResult>")]
pub fn train_step_async(
    spec: SpecInput,
    params: Float32Array,
    batch: TrainBatchInput,
    threads: Option<f64>,
    cancel: Option<&CancelToken>,
) -> Result<AsyncTask<OffThread<TrainResult>>> {
    guard(|| {
        let work = cpu_train(&spec, &params, &batch, threads, cancel)?;
        Ok(OffThread::new(work))
    })
}

/// The same on the calling thread, for small batches and tests.
#[napi]
pub fn train_step_sync(
    spec: SpecInput,
    params: Float32Array,
    batch: TrainBatchInput,
    threads: Option<f64>,
) -> Result<TrainResult> {
    guard(|| cpu_train(&spec, &params, &batch, threads, None)?())
}

// ---------------------------------------------------------------------------------------
// Inference

session_options! {
    struct SessionOptions {
        #[doc = " Threads, 0 or absent = all cores."]
        threads: Option<f64>,
        #[doc = " \"auto\" (default), \"avx2\" or \"portable\"."]
        simd: Option<String>,
        @max_bytes,
        #[doc = " Skip settled cells (1D and 2D grids): compute only cells next to last step's changes, and"]
        #[doc = " keep the state of a cell whose hidden channels would move by at most this. Absent:"]
        #[doc = " every cell every step."]
        @freeze,
    }
}

#[napi(object, object_from_js = false)]
pub struct StepResult {
    /// `[steps][batch]`: max |h' - h| of each sample at each step (0 for inactive ones).
    pub max_delta: Float32Array,
    /// `[steps][batch]`: cells whose argmax output changed.
    pub changed: Float64Array,
}

#[napi(object)]
pub struct ConvergeInput {
    pub patience: f64,
    pub tol: f64,
    pub max_steps: f64,
}

#[napi(object, object_from_js = false)]
pub struct ConvergeResult {
    /// Total steps of each sample.
    pub steps: Float64Array,
    /// 1 where the sample settled, 0 where it hit maxSteps.
    pub converged: Uint8Array,
    /// max |h' - h| of each sample's last step.
    pub last_max_delta: Float32Array,
}

impl JsSession for Session {
    const CLASS: &'static str = "InferenceSession";
    fn js_err(e: sead_core::Error) -> Error {
        core_err(e)
    }
}

session_class! {
    #[doc = " A batch of grids with their state, stepped in place."]
    class InferenceSession(Session) {
        constructor {
            #[doc = " Sets the inputs x (`[batch][height][width][cIn]`) and h = 0."]
            #[napi(constructor)]
            pub fn new(
                env: Env,
                spec: SpecInput,
                grid: GridInput,
                x: Float32Array,
                options: Option<SessionOptions>,
            ) -> Result<Self> {
                guard(|| {
                    let spec = spec_arg(&spec)?;
                    let grid = grid_arg(&grid, &spec)?;
                    let opts = options.unwrap_or_default();
                    let simd =
                        Simd::parse(opts.simd.as_deref().unwrap_or("auto")).map_err(core_err)?;
                    let max_bytes = max_bytes_arg(opts.max_bytes)?;
                    let threads = threads_arg(opts.threads)?;
                    let session = on_threads(threads, || {
                        Session::new(spec, grid, &x, simd, max_bytes).map_err(core_err)
                    })?;
                    Ok(InferenceSession {
                        handle: Handle::open(&env, session, opts.freeze, Some(threads))?,
                    })
                })
            }
        }
        after_step {
            #[doc = " `step` on the calling thread."]
            #[napi]
            pub fn step_sync(
                &self,
                params: Float32Array,
                steps: f64,
                active: Option<Uint8Array>,
            ) -> Result<StepResult> {
                guard(|| self.handle.step_now(&params, steps, active.as_deref()))
            }
        }
        #[doc = " Cell updates each sample has computed: steps x cells, or fewer with `freeze`, and for"]
        #[doc = " a quantized spec (event-driven: the neighbourhoods of the cells that changed)."]
        cells_computed;
        getters {
            #[doc = " The SIMD kernel this session runs: \"avx2\" or \"portable\"."]
            #[napi(getter)]
            pub fn simd(&self) -> Result<String> {
                guard(|| self.handle.with(|s| Ok(s.simd().name().to_string())))
            }
        }
        #[doc = " Frees the state now. Later calls throw; disposing twice throws."]
        dispose;
        #[doc = " Bytes a session of this shape would hold (to check a request before making it)."]
        bytes_needed;
    }
}

/// Panics on purpose inside native code, so the tests can check that a panic becomes a
/// JavaScript error (sync) or a rejected promise (async) instead of a crash.
#[napi]
pub fn debug_panic(async_work: bool) -> Result<Option<AsyncTask<OffThread<()>>>> {
    if async_work {
        return Ok(Some(OffThread::new(|| {
            panic!("debug_panic called (async)")
        })));
    }
    guard(|| panic!("debug_panic called (sync)"))
}
