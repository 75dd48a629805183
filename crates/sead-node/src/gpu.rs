//! The Node-API binding of sead-gpu: a `GpuDevice` (adapter, device, queue), a
//! `GpuInferenceSession` with the methods of `InferenceSession`, and `gpuTrainStep`. As in
//! lib.rs: thin (no math), every argument re-checked, long work off the JavaScript thread
//! as a promise a `CancelToken` stops between submissions, and every panic turned into an
//! error by `guard`.

#[cfg(target_family = "wasm")]
use crate::gpu_unavailable as sead_gpu;
use crate::session::{
    max_bytes_arg, session_class, session_options, Handle, JsSession, SessionOutput,
};
use crate::{
    grid_arg, guard, invalid, spec_arg, whole, CancelToken, ConvergeInput, GridInput, OffThread,
    SpecInput, TrainArgs, TrainBatchInput, TrainResult,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use sead_gpu::{GpuContext, GpuError, GpuOptions, GpuSession, SessionOptions};
use std::sync::{Arc, Mutex};

/// A sead-gpu error as a JS error: invalid arguments are InvalidArg, "too large: " marks a
/// resource limit (as lib.rs does), cancellation is Cancelled.
fn gpu_err(e: GpuError) -> Error {
    match e {
        GpuError::Invalid(m) => Error::new(Status::InvalidArg, m),
        GpuError::TooLarge(m) => Error::new(Status::GenericFailure, format!("too large: {m}")),
        GpuError::Cancelled => Error::new(Status::Cancelled, "the operation was cancelled"),
        GpuError::Unavailable(m) => Error::new(Status::GenericFailure, m),
        GpuError::Device(m) => Error::new(Status::GenericFailure, format!("GPU error: {m}")),
    }
}

/// What a GPU adapter is.
#[napi(object, object_from_js = false)]
pub struct GpuAdapterInfo {
    pub name: String,
    /// "vulkan", "metal", "dx12"
    pub backend: String,
    pub driver: String,
    /// "discrete", "integrated", "virtual", "cpu" (software, e.g. llvmpipe) or "other"
    pub device_type: String,
    /// True for a software adapter (lavapipe/llvmpipe, SwiftShader, WARP).
    pub software: bool,
}

// (The WebAssembly build, which has no adapter to describe, has its own.)
#[cfg(not(target_family = "wasm"))]
impl From<&sead_gpu::AdapterInfo> for GpuAdapterInfo {
    fn from(a: &sead_gpu::AdapterInfo) -> Self {
        GpuAdapterInfo {
            name: a.name.clone(),
            backend: a.backend.clone(),
            driver: a.driver.clone(),
            device_type: a.device_type.clone(),
            software: a.is_software(),
        }
    }
}

/// Every GPU adapter wgpu finds here (Vulkan, Metal, DX12), best first; empty without one.
#[napi]
pub fn gpu_adapters() -> Result<Vec<GpuAdapterInfo>> {
    guard(|| {
        Ok(sead_gpu::list_adapters()
            .iter()
            .map(GpuAdapterInfo::from)
            .collect())
    })
}

/// A GPU device: adapter, device and queue, with the adapter's own limits. One per
/// process is plenty; sessions and training calls share it.
#[napi]
pub struct GpuDevice {
    ctx: Mutex<Option<Arc<GpuContext>>>,
}

impl GpuDevice {
    fn ctx(&self) -> Result<Arc<GpuContext>> {
        self.ctx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| invalid("this GpuDevice was disposed"))
    }
}

#[napi]
impl GpuDevice {
    /// Opens the best adapter, or the first whose name contains `adapter`. Throws, listing
    /// the adapters wgpu found and what to install, when there is none.
    #[napi(factory)]
    pub fn create(adapter: Option<String>) -> Result<GpuDevice> {
        guard(|| {
            let ctx = GpuContext::new(&GpuOptions {
                adapter,
                profile: false,
            })
            .map_err(gpu_err)?;
            Ok(GpuDevice {
                ctx: Mutex::new(Some(Arc::new(ctx))),
            })
        })
    }

    /// The adapter this device runs on.
    #[napi]
    pub fn info(&self) -> Result<GpuAdapterInfo> {
        guard(|| Ok(GpuAdapterInfo::from(self.ctx()?.adapter_info())))
    }

    /// Releases the device. Sessions created from it keep it alive until they are
    /// disposed; later calls on this object throw; disposing twice throws.
    #[napi]
    pub fn dispose(&self) -> Result<()> {
        guard(|| {
            let mut lock = self.ctx.lock().unwrap_or_else(|p| p.into_inner());
            if lock.take().is_none() {
                return Err(invalid("this GpuDevice was already disposed"));
            }
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// Training

/// Forward + back-propagation through time over one batch on the GPU, off the JavaScript
/// thread: the same loss and gradient as `trainStepAsync` within float rounding.
#[napi(ts_return_type = "Promise<TrainResult>")]
pub fn gpu_train_step(
    device: &GpuDevice,
    spec: SpecInput,
    params: Float32Array,
    batch: TrainBatchInput,
    cancel: Option<&CancelToken>,
) -> Result<AsyncTask<OffThread<TrainResult>>> {
    guard(|| {
        let ctx = device.ctx()?;
        let args = TrainArgs::from_js(&spec, &params, &batch, cancel)?;
        Ok(OffThread::new(move || {
            sead_gpu::train_step(&ctx, &args.spec, &args.params, &args.batch(), &args.cancel)
                .map(TrainResult::from)
                .map_err(gpu_err)
        }))
    })
}

// ---------------------------------------------------------------------------------------
// Inference

session_options! {
    struct GpuSessionOptions {
        #[doc = " Steps recorded per submission; stats are read back this often (default 32)."]
        check_every: Option<f64>,
        @max_bytes,
        #[doc = " Skip settled tiles (1D and 2D): a cell whose hidden channels would all move by at most this"]
        #[doc = " keeps its state, and a tile whose neighbourhood did not change is not computed."]
        @freeze,
        #[doc = " Cells per tile of the step kernel (4, 8, 16, 32 or 64; default: chosen per model)."]
        #[doc = " For tuning on a GPU; the results do not depend on it."]
        tile_cells: Option<f64>,
        #[doc = " Threads per workgroup of the step kernel (32, 64, 128 or 256; default 128)."]
        workgroup_threads: Option<f64>,
    }
}

impl JsSession for GpuSession {
    const CLASS: &'static str = "GpuInferenceSession";
    fn js_err(e: GpuError) -> Error {
        gpu_err(e)
    }
    #[cfg(target_family = "wasm")]
    fn check_available() -> Result<()> {
        Err(gpu_err(sead_gpu::unavailable()))
    }
}

session_class! {
    #[doc = " A batch of grids on the GPU, stepped in place: `InferenceSession`'s methods. Its buffers"]
    #[doc = " are reported to V8 as `InferenceSession`'s are (on software adapters they are host"]
    #[doc = " memory; on others, device memory that a late collection holds too)."]
    class GpuInferenceSession(GpuSession) {
        constructor {
            #[doc = " Uploads the inputs x (`[batch][height][width][cIn]`) and sets h = 0."]
            #[napi(constructor)]
            pub fn new(
                env: Env,
                device: &GpuDevice,
                spec: SpecInput,
                grid: GridInput,
                x: Float32Array,
                options: Option<GpuSessionOptions>,
            ) -> Result<Self> {
                guard(|| {
                    let ctx = device.ctx()?;
                    let spec = spec_arg(&spec)?;
                    let grid = grid_arg(&grid, &spec)?;
                    let o = options.unwrap_or_default();
                    // A whole number from 1 to max, where given.
                    let count = |name: &str, v: Option<f64>, max: f64| -> Result<Option<u32>> {
                        v.map(|v| Ok(whole(name, v, 1.0, max)? as u32)).transpose()
                    };
                    let defaults = SessionOptions::default();
                    let opts = SessionOptions {
                        check_every: count("checkEvery", o.check_every, 4096.0)?
                            .unwrap_or(defaults.check_every),
                        max_bytes: max_bytes_arg(o.max_bytes)?,
                        tile_cells: count("tileCells", o.tile_cells, 1024.0)?,
                        workgroup_threads: count("workgroupThreads", o.workgroup_threads, 1024.0)?,
                        ..defaults
                    };
                    let session = GpuSession::new(ctx, spec, grid, &x, &opts).map_err(gpu_err)?;
                    Ok(GpuInferenceSession {
                        handle: Handle::open(&env, session, o.freeze, None)?,
                    })
                })
            }
        }
        after_step {}
        #[doc = " Cell updates each sample has computed: its steps x its cells, or with `freeze` the cells"]
        #[doc = " of the tiles computed."]
        cells_computed;
        getters {
            #[doc = " Sample groups the batch was split into to fit the device's buffer limits."]
            #[napi(getter)]
            pub fn groups(&self) -> Result<u32> {
                guard(|| self.handle.with(|s| Ok(s.groups() as u32)))
            }
        }
        #[doc = " Frees the GPU buffers now. Later calls throw; disposing twice throws."]
        dispose;
        #[doc = " GPU bytes a session of this shape would hold (to check a request before making it)."]
        bytes_needed;
    }
}
