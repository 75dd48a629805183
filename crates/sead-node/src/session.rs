//! What `InferenceSession` (CPU) and `GpuInferenceSession` share: the session behind a JS
//! object, held in a mutex and marked busy while async work steps it (so a second call is
//! refused instead of waiting), the jobs that work runs, their results, and disposal; and
//! `session_class!`, which declares both classes from one definition of their methods, and
//! `session_options!`, their options objects with the options both take. The two differ only
//! in the session they hold (a `sead_core::Stepper`: `Session` or `GpuSession`), their
//! constructors, their own options, one getter each, and `stepSync` (CPU only).

use crate::{flag_of, invalid, owned_params, whole, CancelToken, ConvergeInput, OffThread};
use crate::{ConvergeResult, StepResult, MAX_SAFE_INTEGER};
use napi::bindgen_prelude::*;
use sead_core::{ConvergeOptions, StepStats, Stepper};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// A session a JS class holds: a `Stepper` whose errors map to JS errors.
pub trait JsSession: Stepper + Send + 'static {
    /// The JS class, named in errors.
    const CLASS: &'static str;
    /// The backend's error as a JS error.
    fn js_err(e: Self::Error) -> Error;
    /// Whether this build has the backend at all (the WebAssembly build has no GPU): an
    /// error saying why not, thrown by the class's static methods.
    fn check_available() -> Result<()> {
        Ok(())
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

    fn run<S: JsSession>(
        &self,
        s: &mut S,
        params: &[f32],
        cancel: &AtomicBool,
    ) -> Result<SessionOutput> {
        match self {
            Job::Step { n, active, batch } => {
                let mut stats = vec![StepStats::default(); n * batch];
                s.step(params, *n, active.as_deref(), &mut stats, cancel)
                    .map_err(S::js_err)?;
                Ok(SessionOutput::Step(StepResult {
                    max_delta: Float32Array::new(stats.iter().map(|s| s.max_delta).collect()),
                    changed: Float64Array::new(stats.iter().map(|s| s.changed as f64).collect()),
                }))
            }
            Job::Converge(opts) => {
                let r = s.converge(params, *opts, cancel).map_err(S::js_err)?;
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
    /// The thread pool its work runs on (0: all cores); None: the calling worker thread.
    threads: Option<usize>,
}

/// Marks the session idle again when the async work ends, whatever way it ends.
struct BusyGuard<S>(Arc<Shared<S>>);
impl<S> Drop for BusyGuard<S> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

fn run_job<S: JsSession>(
    shared: &Shared<S>,
    params: &[f32],
    job: &Job,
    cancel: &AtomicBool,
) -> Result<SessionOutput> {
    let mut lock = shared.session.lock().unwrap_or_else(|e| e.into_inner());
    let session = lock
        .as_mut()
        .ok_or_else(|| invalid(format!("this {} was disposed", S::CLASS)))?;
    match shared.threads {
        Some(threads) => crate::on_threads(threads, || job.run(session, params, cancel)),
        None => job.run(session, params, cancel),
    }
}

/// A session's `maxBytes` option, checked: the most bytes it may hold (default 16 GiB).
pub(crate) fn max_bytes_arg(max_bytes: Option<f64>) -> Result<usize> {
    match max_bytes {
        None => Ok(sead_core::infer::DEFAULT_MAX_BYTES),
        Some(b) => whole("maxBytes", b, 1.0, MAX_SAFE_INTEGER),
    }
}

/// The state a session class holds: the session and the bytes it reported to V8.
pub(crate) struct Handle<S: JsSession> {
    shared: Arc<Shared<S>>,
    /// The session's buffers, told to V8 so that sessions dropped without `dispose()` do not
    /// pile up before a collection frees them.
    external: External,
}

impl<S: JsSession> Handle<S> {
    /// Holds `session`, its work run on `threads` (see `Shared`), and reports its `bytes`.
    fn new(env: &Env, session: S, bytes: usize, threads: Option<usize>) -> Self {
        Handle {
            shared: Arc::new(Shared {
                session: Mutex::new(Some(session)),
                busy: AtomicBool::new(false),
                threads,
            }),
            external: External::report(env, bytes),
        }
    }

    /// A new session's handle: skipping switched on where the `freeze` option asks for it (the
    /// session checks the value), and the bytes of its shape reported.
    pub(crate) fn open(
        env: &Env,
        mut session: S,
        freeze: Option<f64>,
        threads: Option<usize>,
    ) -> Result<Self> {
        if let Some(f) = freeze {
            session.set_freeze(Some(f as f32)).map_err(S::js_err)?;
        }
        let bytes = S::bytes_needed(session.spec(), session.grid());
        Ok(Handle::new(env, session, bytes, threads))
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
    ) -> Result<AsyncTask<OffThread<SessionOutput>>> {
        let params = self.with(|s| owned_params(s.spec(), params))?;
        if self.shared.busy.swap(true, Ordering::AcqRel) {
            return Err(Self::busy_error());
        }
        let busy = BusyGuard(self.shared.clone());
        let cancel = flag_of(cancel);
        Ok(OffThread::new(move || {
            run_job(&busy.0, &params, &job, &cancel)
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
        self.with(|s| Ok(Uint8Array::new(s.outputs().map_err(S::js_err)?)))
    }

    pub(crate) fn hidden(&self) -> Result<Float32Array> {
        self.with(|s| Ok(Float32Array::new(s.hidden().map_err(S::js_err)?)))
    }

    pub(crate) fn logits(&self, params: &[f32]) -> Result<Float32Array> {
        self.with(|s| Ok(Float32Array::new(s.logits(params).map_err(S::js_err)?)))
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
        self.with(|s| s.refresh_outputs(params).map_err(S::js_err))
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

/// Declares a napi session class holding a `Handle<$S>`: the struct, its finalizer, and one
/// `#[napi] impl` with the methods both classes share, in the order (and with the doc
/// comments) index.d.ts lists them. What differs comes in as blocks spliced in place: the
/// constructor, methods after `step` (`stepSync`), getters after `refreshOutputs`, and the
/// doc comments of `cellsComputed`, `dispose` and `bytesNeeded`. Every method runs inside
/// `guard`, so no panic crosses into JavaScript. Expanded where `napi::bindgen_prelude::*`,
/// `napi_derive::napi` and the argument types are in scope (the type names stay bare so
/// napi's TypeScript generation reads them as before). Doc comments given to it are written
/// `#[doc = " ..."]`: a `///` comment passed through a macro arrives as a raw string, which
/// napi copies into index.d.ts with its `r"` prefix.
macro_rules! session_class {
    (
        $(#[doc = $doc:tt])*
        class $Class:ident($S:ident) {
            constructor { $($constructor:tt)* }
            after_step { $($after_step:tt)* }
            $(#[doc = $cells_doc:tt])*
            cells_computed;
            getters { $($getters:tt)* }
            $(#[doc = $dispose_doc:tt])*
            dispose;
            $(#[doc = $bytes_doc:tt])*
            bytes_needed;
        }
    ) => {
        $(#[doc = $doc])*
        #[napi(custom_finalize)]
        pub struct $Class {
            handle: $crate::session::Handle<$S>,
        }

        impl ObjectFinalize for $Class {
            fn finalize(self, env: Env) -> Result<()> {
                self.handle.finalize(&env);
                Ok(())
            }
        }

        #[napi]
        impl $Class {
            $($constructor)*

            /// Runs `steps` steps (on the samples whose `active` entry is nonzero, or all) off the
            /// JavaScript thread, returning per-step, per-sample change statistics.
            #[napi(ts_return_type = "Promise<StepResult>")]
            pub fn step(
                &self,
                params: Float32Array,
                steps: f64,
                active: Option<Uint8Array>,
                cancel: Option<&CancelToken>,
            ) -> Result<AsyncTask<OffThread<SessionOutput>>> {
                $crate::guard(|| {
                    let job = self.handle.step_job(steps, active.as_deref())?;
                    self.handle.schedule(&params, job, cancel)
                })
            }

            $($after_step)*

            /// Steps each sample until it settles or reaches maxSteps, off the JavaScript thread.
            #[napi(ts_return_type = "Promise<ConvergeResult>")]
            pub fn converge(
                &self,
                params: Float32Array,
                options: ConvergeInput,
                cancel: Option<&CancelToken>,
            ) -> Result<AsyncTask<OffThread<SessionOutput>>> {
                $crate::guard(|| {
                    let job = $crate::session::Job::converge(&options)?;
                    self.handle.schedule(&params, job, cancel)
                })
            }

            /// Argmax output of every cell, `[batch][height][width]`.
            #[napi]
            pub fn outputs(&self) -> Result<Uint8Array> {
                $crate::guard(|| self.handle.outputs())
            }

            /// Hidden state, `[batch][height][width][cH]`.
            #[napi]
            pub fn hidden(&self) -> Result<Float32Array> {
                $crate::guard(|| self.handle.hidden())
            }

            /// Logits of every cell, `[batch][height][width][cOut]`.
            #[napi]
            pub fn logits(&self, params: Float32Array) -> Result<Float32Array> {
                $crate::guard(|| self.handle.logits(&params))
            }

            /// Steps taken by each sample.
            #[napi]
            pub fn steps(&self) -> Result<Float64Array> {
                $crate::guard(|| self.handle.steps())
            }

            $(#[doc = $cells_doc])*
            #[napi]
            pub fn cells_computed(&self) -> Result<Float64Array> {
                $crate::guard(|| self.handle.cells_computed())
            }

            /// Recomputes the outputs from the hidden state with these parameters.
            #[napi]
            pub fn refresh_outputs(&self, params: Float32Array) -> Result<()> {
                $crate::guard(|| self.handle.refresh_outputs(&params))
            }

            $($getters)*

            $(#[doc = $dispose_doc])*
            #[napi]
            pub fn dispose(&self, env: Env) -> Result<()> {
                $crate::guard(|| self.handle.dispose(&env))
            }

            $(#[doc = $bytes_doc])*
            #[napi]
            pub fn bytes_needed(spec: SpecInput, grid: GridInput) -> Result<f64> {
                $crate::guard(|| {
                    <$S as $crate::session::JsSession>::check_available()?;
                    let spec = $crate::spec_arg(&spec)?;
                    let grid = $crate::grid_arg(&grid, &spec)?;
                    Ok(<$S as ::sead_core::Stepper>::bytes_needed(&spec, &grid) as f64)
                })
            }
        }
    };
}
pub(crate) use session_class;

/// Declares a session class's options object (`#[napi(object)]`, with `Default`): its own
/// fields, then, where `@max_bytes` and `@freeze` stand, the two options both classes take:
/// `maxBytes` (checked by `max_bytes_arg`) and `freeze` (given to `Handle::open`; its doc
/// comment, which says what the backend skips, comes in), then the rest of its own. Fields
/// stand in index.d.ts's order; doc comments are written `#[doc = " ..."]`, as for
/// `session_class!`.
macro_rules! session_options {
    (
        struct $Options:ident {
            $($(#[doc = $doc:tt])* $field:ident: Option<$ty:ident>,)*
            @max_bytes,
            $(#[doc = $freeze_doc:tt])*
            @freeze,
            $($(#[doc = $doc_after:tt])* $field_after:ident: Option<$ty_after:ident>,)*
        }
    ) => {
        #[napi(object)]
        #[derive(Default)]
        pub struct $Options {
            $($(#[doc = $doc])* pub $field: Option<$ty>,)*
            #[doc = " Refuse sessions needing more bytes than this (default 16 GiB)."]
            pub max_bytes: Option<f64>,
            $(#[doc = $freeze_doc])*
            pub freeze: Option<f64>,
            $($(#[doc = $doc_after])* pub $field_after: Option<$ty_after>,)*
        }
    };
}
pub(crate) use session_options;
