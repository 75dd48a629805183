//! What `InferenceSession` (CPU) and `GpuInferenceSession` share: the session behind a JS
//! object, held in a mutex and marked busy while async work steps it (so a second call is
//! refused instead of waiting), the jobs that work runs, their results, and disposal. The
//! two classes differ only in the session they hold (`Stepper`) and their constructors.

use crate::{flag_of, invalid, owned_params, whole, CancelToken, ConvergeInput};
use crate::{ConvergeResult, StepResult};
use napi::bindgen_prelude::*;
use sead_core::{ConvergeOptions, SampleResult, Spec, StepStats};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// A session the binding can step: sead-core's `Session` or sead-gpu's `GpuSession`, each
/// mapping its own errors to JS errors.
pub trait Stepper: Send + 'static {
    /// The JS class, named in errors.
    const CLASS: &'static str;
    fn spec(&self) -> &Spec;
    fn batch(&self) -> usize;
    fn step(
        &mut self,
        params: &[f32],
        n: usize,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
        cancel: &AtomicBool,
    ) -> Result<()>;
    fn converge(
        &mut self,
        params: &[f32],
        opts: ConvergeOptions,
        cancel: &AtomicBool,
    ) -> Result<Vec<SampleResult>>;
    fn outputs(&self) -> Result<Vec<u8>>;
    fn hidden(&self) -> Result<Vec<f32>>;
    fn logits(&self, params: &[f32]) -> Result<Vec<f32>>;
    fn steps(&self) -> Vec<u64>;
    /// Cell updates each sample has computed.
    fn cells_computed(&self) -> Vec<u64>;
    fn refresh_outputs(&mut self, params: &[f32]) -> Result<()>;
    /// The thread pool its work runs on (0: all cores); None: the calling worker thread.
    fn threads(&self) -> Option<usize> {
        None
    }
}

/// The work a session's async call does, its arguments checked.
pub(crate) enum Job {
    Step {
        n: usize,
        active: Option<Vec<bool>>,
        batch: usize,
    },
    Converge(ConvergeOptions),
}

/// Most per-step, per-sample statistics one `step` call may return (16 bytes each in Rust,
/// 12 in JS): a larger request is refused up front instead of failing to allocate, which
/// would abort the process.
const MAX_STEP_STATS: usize = 1 << 26;

impl Job {
    pub(crate) fn step(n: f64, active: Option<&[u8]>, batch: usize) -> Result<Job> {
        let n = whole("steps", n, 0.0, 1e9)?;
        if n.saturating_mul(batch) > MAX_STEP_STATS {
            return Err(Error::new(
                Status::GenericFailure,
                format!(
                    "too large: {n} steps x {batch} samples would return {} of per-step \
                     statistics, over the limit of {}: step fewer at a time, or use converge",
                    sead_core::format_bytes(n as f64 * batch as f64 * 28.0),
                    sead_core::format_bytes(MAX_STEP_STATS as f64 * 28.0),
                ),
            ));
        }
        let active = match active {
            None => None,
            Some(a) if a.len() == batch => Some(a.iter().map(|&v| v != 0).collect()),
            Some(a) => {
                return Err(invalid(format!(
                    "active has {} entries but the batch has {batch} samples",
                    a.len()
                )))
            }
        };
        Ok(Job::Step { n, active, batch })
    }

    pub(crate) fn converge(options: &ConvergeInput) -> Result<Job> {
        let tol = options.tol;
        if !(tol.is_finite() && tol > 0.0) {
            return Err(invalid(format!("tol must be finite and > 0, got {tol}")));
        }
        Ok(Job::Converge(ConvergeOptions {
            patience: whole("patience", options.patience, 1.0, 1e9)? as u32,
            tol: tol as f32,
            max_steps: whole("maxSteps", options.max_steps, 1.0, 1e12)? as u64,
        }))
    }

    fn run<S: Stepper>(
        &self,
        s: &mut S,
        params: &[f32],
        cancel: &AtomicBool,
    ) -> Result<SessionOutput> {
        match self {
            Job::Step { n, active, batch } => {
                let mut stats = vec![StepStats::default(); n * batch];
                s.step(params, *n, active.as_deref(), &mut stats, cancel)?;
                Ok(SessionOutput::Step(StepResult {
                    max_delta: Float32Array::new(stats.iter().map(|s| s.max_delta).collect()),
                    changed: Float64Array::new(stats.iter().map(|s| s.changed as f64).collect()),
                }))
            }
            Job::Converge(opts) => {
                let r = s.converge(params, *opts, cancel)?;
                Ok(SessionOutput::Converge(ConvergeResult {
                    steps: Float64Array::new(r.iter().map(|s| s.steps as f64).collect()),
                    converged: Uint8Array::new(r.iter().map(|s| s.converged as u8).collect()),
                    last_max_delta: Float32Array::new(r.iter().map(|s| s.last.max_delta).collect()),
                }))
            }
        }
    }
}

/// What a session's async call resolves to.
pub enum SessionOutput {
    Step(StepResult),
    Converge(ConvergeResult),
}

impl ToNapiValue for SessionOutput {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        match val {
            // SAFETY: forwards the env pointer napi-rs gave us, as its own impls do.
            SessionOutput::Step(s) => unsafe { StepResult::to_napi_value(env, s) },
            // SAFETY: as above.
            SessionOutput::Converge(c) => unsafe { ConvergeResult::to_napi_value(env, c) },
        }
    }
}

impl TypeName for SessionOutput {
    fn type_name() -> &'static str {
        "Object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

/// The session behind a JS object: shared with the async work that steps it, and marked
/// busy while that work runs.
struct Shared<S> {
    session: Mutex<Option<S>>,
    busy: AtomicBool,
}

/// Marks the session idle again when the async work ends, whatever way it ends.
struct BusyGuard<S>(Arc<Shared<S>>);
impl<S> Drop for BusyGuard<S> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// A session's async call: a step or converge job on a worker thread.
pub struct SessionTask<S: Stepper> {
    guard: BusyGuard<S>,
    params: Vec<f32>,
    job: Job,
    cancel: Arc<AtomicBool>,
}

fn run_job<S: Stepper>(
    shared: &Shared<S>,
    params: &[f32],
    job: &Job,
    cancel: &AtomicBool,
) -> Result<SessionOutput> {
    let mut lock = shared.session.lock().unwrap_or_else(|e| e.into_inner());
    let session = lock
        .as_mut()
        .ok_or_else(|| invalid(format!("this {} was disposed", S::CLASS)))?;
    match session.threads() {
        Some(threads) => crate::on_threads(threads, || job.run(session, params, cancel)),
        None => job.run(session, params, cancel),
    }
}

impl<S: Stepper> Task for SessionTask<S> {
    type Output = SessionOutput;
    type JsValue = SessionOutput;

    fn compute(&mut self) -> Result<Self::Output> {
        crate::guard(|| run_job(&self.guard.0, &self.params, &self.job, &self.cancel))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output)
    }
}

/// The state a session class holds: the session and the bytes it reported to V8.
pub(crate) struct Handle<S: Stepper> {
    shared: Arc<Shared<S>>,
    /// The session's buffers, told to V8 so that sessions dropped without `dispose()` do not
    /// pile up before a collection frees them.
    external: External,
}

impl<S: Stepper> Handle<S> {
    pub(crate) fn new(env: &Env, session: S, bytes: usize) -> Self {
        Handle {
            shared: Arc::new(Shared {
                session: Mutex::new(Some(session)),
                busy: AtomicBool::new(false),
            }),
            external: External::report(env, bytes),
        }
    }

    fn busy_error() -> Error {
        Error::new(
            Status::GenericFailure,
            format!(
                "this {} is busy with a step or converge call: await it (or cancel it) first",
                S::CLASS
            ),
        )
    }

    /// Borrows the session on the JS thread; refused while async work holds it.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut S) -> Result<T>) -> Result<T> {
        if self.shared.busy.load(Ordering::Acquire) {
            return Err(Self::busy_error());
        }
        let mut lock = self
            .shared
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let s = lock
            .as_mut()
            .ok_or_else(|| invalid(format!("this {} was disposed", S::CLASS)))?;
        f(s)
    }

    /// A step job for `n` steps of the samples whose `active` entry is nonzero (or all).
    pub(crate) fn step_job(&self, n: f64, active: Option<&[u8]>) -> Result<Job> {
        let batch = self.with(|s| Ok(s.batch()))?;
        Job::step(n, active, batch)
    }

    /// Runs `job` off the JavaScript thread; the session is busy until it ends.
    pub(crate) fn schedule(
        &self,
        params: &[f32],
        job: Job,
        cancel: Option<&CancelToken>,
    ) -> Result<AsyncTask<SessionTask<S>>> {
        let params = self.with(|s| owned_params(s.spec(), params))?;
        if self.shared.busy.swap(true, Ordering::AcqRel) {
            return Err(Self::busy_error());
        }
        Ok(AsyncTask::new(SessionTask {
            guard: BusyGuard(self.shared.clone()),
            params,
            job,
            cancel: flag_of(cancel),
        }))
    }

    /// Runs a step job on the calling thread.
    pub(crate) fn step_now(
        &self,
        params: &[f32],
        steps: f64,
        active: Option<&[u8]>,
    ) -> Result<StepResult> {
        let job = self.step_job(steps, active)?;
        self.with(|s| owned_params(s.spec(), params))?;
        match run_job(&self.shared, params, &job, &AtomicBool::new(false))? {
            SessionOutput::Step(r) => Ok(r),
            SessionOutput::Converge(_) => unreachable!("a step job returns step stats"),
        }
    }

    pub(crate) fn outputs(&self) -> Result<Uint8Array> {
        self.with(|s| Ok(Uint8Array::new(s.outputs()?)))
    }

    pub(crate) fn hidden(&self) -> Result<Float32Array> {
        self.with(|s| Ok(Float32Array::new(s.hidden()?)))
    }

    pub(crate) fn logits(&self, params: &[f32]) -> Result<Float32Array> {
        self.with(|s| Ok(Float32Array::new(s.logits(params)?)))
    }

    pub(crate) fn steps(&self) -> Result<Float64Array> {
        self.with(|s| {
            Ok(Float64Array::new(
                s.steps().iter().map(|&v| v as f64).collect(),
            ))
        })
    }

    pub(crate) fn cells_computed(&self) -> Result<Float64Array> {
        self.with(|s| {
            Ok(Float64Array::new(
                s.cells_computed().iter().map(|&v| v as f64).collect(),
            ))
        })
    }

    pub(crate) fn refresh_outputs(&self, params: &[f32]) -> Result<()> {
        self.with(|s| s.refresh_outputs(params))
    }

    /// Frees the session now (refused while busy, or when already disposed).
    pub(crate) fn dispose(&self, env: &Env) -> Result<()> {
        self.with(|_| Ok(()))?;
        let mut lock = self
            .shared
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        lock.take();
        self.external.release(env);
        Ok(())
    }

    /// The finalizer's part: takes back the bytes reported to V8.
    pub(crate) fn finalize(&self, env: &Env) {
        self.external.release(env);
    }
}

/// Native bytes a JS object holds, told to V8 (`napi_adjust_external_memory`) for as long
/// as it holds them. V8 sees only the small wrapper otherwise, so sessions dropped without
/// `dispose()` piled up (gigabytes, measured) before any collection freed them.
struct External(AtomicI64);

impl External {
    fn report(env: &Env, bytes: usize) -> External {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        // Only a hint to the GC: failing to give it must not fail the call.
        let _ = env.adjust_external_memory(bytes);
        External(AtomicI64::new(bytes))
    }

    /// Takes the report back, once (by `dispose()` or else the finalizer).
    fn release(&self, env: &Env) {
        let bytes = self.0.swap(0, Ordering::Relaxed);
        if bytes != 0 {
            let _ = env.adjust_external_memory(-bytes);
        }
    }
}
