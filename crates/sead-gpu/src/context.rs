//! The GPU context: wgpu instance, adapter, device and queue; adapter selection; the
//! adapter's real limits; shader modules and a pipeline cache; error capture (wgpu reports
//! validation and out-of-memory errors asynchronously, and its default handler panics).

use crate::error::{GpuError, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// What to install when no adapter is found (printed in the error).
pub const INSTALL_HINT: &str = "sead's GPU backend needs a Vulkan (Linux, Windows), Metal (macOS) \
or DirectX 12 (Windows) driver. With a GPU, install its vendor's driver (with Vulkan support). \
Without a GPU, on Debian bookworm, Mesa's software Vulkan driver works (slowly): as root run \
`scripts/install-gpu-deps.sh`, or add bookworm-backports to apt and `apt-get install -t \
bookworm-backports mesa-vulkan-drivers libvulkan1`. Otherwise use backend \"cpu\".";

/// How to pick an adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use the first adapter whose name contains this (case-insensitive); None = the best one
    /// (discrete, then integrated, then virtual, then other, then software).
    pub adapter: Option<String>,
    /// Time every kernel dispatch with timestamp queries (`GpuContext::take_profile`); the
    /// adapter must support them inside compute passes. Slows everything down: for tuning.
    pub profile: bool,
}

/// What runs the kernels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterInfo {
    /// e.g. "NVIDIA H100 80GB HBM3" or "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// "vulkan", "metal", "dx12", ...
    pub backend: String,
    /// Driver name and version, e.g. "llvmpipe / Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)".
    pub driver: String,
    /// "discrete", "integrated", "virtual", "cpu" or "other".
    pub device_type: String,
}

impl AdapterInfo {
    fn from_wgpu(i: &wgpu::AdapterInfo) -> Self {
        let driver = match (i.driver.is_empty(), i.driver_info.is_empty()) {
            (false, false) => format!("{} / {}", i.driver, i.driver_info),
            (false, true) => i.driver.clone(),
            (true, false) => i.driver_info.clone(),
            (true, true) => String::new(),
        };
        AdapterInfo {
            name: i.name.clone(),
            backend: i.backend.to_str().to_string(),
            driver,
            device_type: device_type_name(i.device_type).to_string(),
        }
    }

    /// True for a software rasterizer (lavapipe/llvmpipe, SwiftShader, WARP): correct but
    /// usually slower than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.device_type == "cpu"
    }

    /// One line: "llvmpipe (LLVM 15.0.6, 256 bits) (vulkan, cpu, Mesa 25.0.7)".
    pub fn describe(&self) -> String {
        if self.driver.is_empty() {
            format!("{} ({}, {})", self.name, self.backend, self.device_type)
        } else {
            format!(
                "{} ({}, {}, {})",
                self.name, self.backend, self.device_type, self.driver
            )
        }
    }
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

fn preference(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    // Native compute backends only: no GL (compute needs GLES 3.1, and a headless GL
    // context is a common source of hangs), no browser WebGPU.
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see here (Vulkan, Metal, DX12), best first.
pub fn list_adapters() -> Vec<AdapterInfo> {
    let inst = instance();
    let mut v = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    v.sort_by_key(|a| preference(a.get_info().device_type));
    v.iter()
        .map(|a| AdapterInfo::from_wgpu(&a.get_info()))
        .collect()
}

/// Limits the kernels and the chunking are planned with (a subset of the device's).
#[derive(Clone, Copy, Debug)]
pub struct GpuLimits {
    /// Largest storage-buffer binding the kernels use: the device's, capped at 2 GiB - 64 KiB
    /// so that every float index fits an i32 (lavapipe has had trouble past that,
    /// gfx-rs/wgpu#2776), which is also plenty to group a million-cell sample.
    pub max_binding: u64,
    pub max_buffer: u64,
    /// Workgroups per dispatch dimension (65,535 on most devices): larger dispatches are
    /// folded into 2D.
    pub max_workgroups_per_dim: u32,
    pub max_workgroup_storage: u32,
    pub uniform_align: u32,
    pub max_storage_buffers_per_stage: u32,
}

/// A wgpu device and queue with sead's shader modules and pipeline cache. Share it (it is
/// `Send + Sync`) between sessions and training calls; one per process is plenty.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: AdapterInfo,
    pub(crate) limits: GpuLimits,
    /// Errors wgpu raised outside an error scope (validation, out of memory, internal).
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    layouts: Mutex<HashMap<String, Arc<wgpu::BindGroupLayout>>>,
    /// Training workspace kept between `train_step` calls with the same shapes.
    pub(crate) train_cache: Mutex<Option<crate::train::Workspace>>,
    /// Kernel timing, when `GpuOptions::profile` asked for it.
    pub(crate) profiler: Option<crate::profile::Profiler>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info)
            .finish()
    }
}

impl GpuContext {
    /// Opens the best adapter (or the one named in `opts`), asking for its real limits.
    pub fn new(opts: &GpuOptions) -> Result<Self> {
        let inst = instance();
        let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        adapters.sort_by_key(|a| preference(a.get_info().device_type));
        let found: Vec<AdapterInfo> = adapters
            .iter()
            .map(|a| AdapterInfo::from_wgpu(&a.get_info()))
            .collect();
        let listing = if found.is_empty() {
            "wgpu found no adapter at all".to_string()
        } else {
            format!(
                "wgpu found: {}",
                found
                    .iter()
                    .map(|a| a.describe())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        let pick = match &opts.adapter {
            Some(want) => {
                let w = want.to_lowercase();
                let i = found
                    .iter()
                    .position(|a| a.name.to_lowercase().contains(&w));
                match i {
                    Some(i) => i,
                    None => {
                        return Err(GpuError::Unavailable(
                            format!(
                                "no GPU adapter's name contains {want:?} ({listing}). {}",
                                if found.is_empty() { INSTALL_HINT } else { "" }
                            )
                            .trim_end()
                            .to_string(),
                        ))
                    }
                }
            }
            None if found.is_empty() => {
                return Err(GpuError::Unavailable(format!(
                    "no GPU adapter is available ({listing}). {INSTALL_HINT}"
                )))
            }
            None => 0,
        };
        let adapter = adapters.swap_remove(pick);
        let info = AdapterInfo::from_wgpu(&adapter.get_info());
        let limits = adapter.limits();
        let timestamps =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        if opts.profile && !adapter.features().contains(timestamps) {
            return Err(GpuError::Unavailable(format!(
                "profiling needs timestamp queries inside compute passes, which the GPU adapter \
                 {} does not offer",
                info.describe()
            )));
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sead"),
            required_features: if opts.profile {
                timestamps
            } else {
                wgpu::Features::empty()
            },
            // The adapter's own limits: the WebGPU defaults (128 MiB bindings, 256 MiB
            // buffers) are far below what large grids need.
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| {
            GpuError::Unavailable(format!(
                "the GPU adapter {} refused to open a device: {e}. {INSTALL_HINT}",
                info.describe()
            ))
        })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut v = sink.lock().unwrap_or_else(|p| p.into_inner());
            if v.len() < 16 {
                v.push(e.to_string());
            }
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lost_sink.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{reason:?}: {msg}"));
        });
        let dl = device.limits();
        let gl = GpuLimits {
            max_binding: dl
                .max_storage_buffer_binding_size
                .min((1u64 << 31) - (1 << 16)),
            max_buffer: dl.max_buffer_size.min((1u64 << 31) - (1 << 16)),
            max_workgroups_per_dim: dl.max_compute_workgroups_per_dimension,
            max_workgroup_storage: dl.max_compute_workgroup_storage_size,
            uniform_align: dl.min_uniform_buffer_offset_alignment.max(16),
            max_storage_buffers_per_stage: dl.max_storage_buffers_per_shader_stage,
        };
        let gl = GpuLimits {
            max_binding: gl.max_binding.min(gl.max_buffer),
            ..gl
        };
        if gl.max_storage_buffers_per_stage < 8 {
            return Err(GpuError::Unavailable(format!(
                "the GPU adapter {} allows only {} storage buffers per shader stage; sead's kernels \
                 need 8",
                info.describe(),
                gl.max_storage_buffers_per_stage
            )));
        }
        let profiler = opts
            .profile
            .then(|| crate::profile::Profiler::new(&device, &queue));
        Ok(GpuContext {
            profiler,
            device,
            queue,
            info,
            limits: gl,
            errors,
            lost,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
            layouts: Mutex::default(),
            train_cache: Mutex::default(),
        })
    }

    /// The adapter this context runs on.
    pub fn adapter_info(&self) -> &AdapterInfo {
        &self.info
    }

    pub fn limits(&self) -> &GpuLimits {
        &self.limits
    }

    /// Fails with the first error wgpu reported asynchronously since the last check, or if
    /// the device was lost.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        if let Some(reason) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(GpuError::Device(format!(
                "{what}: the GPU device was lost ({reason})"
            )));
        }
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.join("; ");
        errs.clear();
        Err(GpuError::Device(format!("{what}: {msg}")))
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they catch
    /// into an error naming `what`.
    pub(crate) fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(GpuError::TooLarge(format!(
                "{what}: the GPU is out of memory ({e})"
            )));
        }
        if let Some(e) = v {
            return Err(GpuError::Device(format!("{what}: {e}")));
        }
        Ok(out)
    }

    pub(crate) fn module(
        &self,
        name: &'static str,
        source: fn() -> String,
    ) -> Result<Arc<wgpu::ShaderModule>> {
        let mut m = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = m.get(name) {
            return Ok(v.clone());
        }
        let src = source();
        let module = self.scoped(&format!("compiling the WGSL module {name}"), || {
            self.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl(src.into()),
                })
        })?;
        let module = Arc::new(module);
        m.insert(name, module.clone());
        Ok(module)
    }

    /// A bind group layout from a list of binding kinds (binding i = kinds[i]).
    pub(crate) fn layout(&self, kinds: &[Bind]) -> Arc<wgpu::BindGroupLayout> {
        let key = format!("{kinds:?}");
        let mut m = self.layouts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = m.get(&key) {
            return l.clone();
        }
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kinds
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let (ty, has_dynamic_offset) = match k {
                    Bind::Read => (wgpu::BufferBindingType::Storage { read_only: true }, false),
                    Bind::Write => (wgpu::BufferBindingType::Storage { read_only: false }, false),
                    Bind::Uniform => (wgpu::BufferBindingType::Uniform, false),
                    Bind::Dynamic => (wgpu::BufferBindingType::Uniform, true),
                    Bind::Unused => return None,
                };
                Some(wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty,
                        has_dynamic_offset,
                        min_binding_size: None,
                    },
                    count: None,
                })
            })
            .collect();
        let l = Arc::new(
            self.device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("sead"),
                    entries: &entries,
                }),
        );
        m.insert(key, l.clone());
        l
    }

    /// A compute pipeline for `entry` of `module` with these override constants, cached.
    pub(crate) fn pipeline(
        &self,
        module: (&'static str, fn() -> String),
        entry: &str,
        kinds: &[Bind],
        constants: &[(&str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = format!("{}:{entry}:{constants:?}:{kinds:?}", module.0);
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let m = self.module(module.0, module.1)?;
        let bgl = self.layout(kinds);
        let p = self.scoped(&format!("building the GPU pipeline {entry}"), || {
            let layout = self
                .device
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(entry),
                    bind_group_layouts: &[Some(&bgl)],
                    immediate_size: 0,
                });
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&layout),
                    module: &m,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })?;
        let p = Arc::new(p);
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, p.clone());
        Ok(p)
    }

    /// A buffer of `bytes` (at least 16) with these usages, inside an out-of-memory scope.
    pub(crate) fn buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let size = bytes.max(16).div_ceil(16) * 16;
        if size > self.limits.max_buffer {
            return Err(GpuError::TooLarge(format!(
                "{label}: a buffer of {size} bytes is over this GPU's limit of {} bytes",
                self.limits.max_buffer
            )));
        }
        self.scoped(&format!("allocating {label} ({size} bytes)"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        })
    }

    /// A storage buffer holding `data` (padded to 16 bytes).
    pub(crate) fn buffer_init(
        &self,
        label: &str,
        data: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let mut v = data.to_vec();
        v.resize(v.len().max(16).div_ceil(16) * 16, 0);
        if v.len() as u64 > self.limits.max_buffer {
            return Err(GpuError::TooLarge(format!(
                "{label}: a buffer of {} bytes is over this GPU's limit of {} bytes",
                v.len(),
                self.limits.max_buffer
            )));
        }
        self.scoped(&format!("allocating {label} ({} bytes)", v.len()), || {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: &v,
                    usage,
                })
        })
    }

    /// Waits until the queue is idle; reports asynchronous errors.
    pub fn wait_idle(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(format!("waiting for the GPU: {e}")))?;
        self.check("GPU work")
    }

    /// Copies `bytes` bytes from the start of `staging` (a MAP_READ buffer whose copy was
    /// submitted) to a vector: map, wait, copy out, unmap.
    pub(crate) fn read_mapped(&self, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let len = bytes.div_ceil(4) * 4;
        let slot: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> =
            Arc::default();
        let s2 = slot.clone();
        staging.map_async(wgpu::MapMode::Read, 0..len, move |r| {
            *s2.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        // The callback runs inside some thread's poll: usually this one's, but when several
        // threads share the device another thread's poll may be running it just as ours
        // returns, so wait for it (briefly) rather than conclude it never came.
        let started = std::time::Instant::now();
        let r = loop {
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| GpuError::Device(format!("waiting for the GPU: {e}")))?;
            self.check("GPU work")?;
            if let Some(r) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                break r;
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                return Err(GpuError::Device(
                    "reading GPU results: the buffer map never completed".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        };
        if let Err(e) = r {
            return Err(GpuError::Device(format!("reading GPU results: {e}")));
        }
        let out = {
            let view = staging
                .get_mapped_range(0..len)
                .map_err(|e| GpuError::Device(format!("reading GPU results: {e}")))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Reads `bytes` bytes at `offset` of a COPY_SRC buffer through a fresh staging buffer
    /// (for occasional reads such as `hidden()`, not per step).
    pub(crate) fn read_buffer(
        &self,
        src: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let len = bytes.div_ceil(4) * 4;
        let staging = self.buffer(
            "readback",
            len,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, len);
        self.submit(enc);
        self.read_mapped(&staging, bytes)
    }

    /// Splits `n` workgroups into a dispatch of at most `max_workgroups_per_dim` per
    /// dimension; kernels recover the linear index as `id.x + id.y * num_workgroups.x`.
    pub(crate) fn fold(&self, n: u32) -> (u32, u32) {
        fold(n, self.limits.max_workgroups_per_dim)
    }
}

/// `n` workgroups as (x, y) with x <= max: x * y >= n, and workgroups past n exit early.
pub fn fold(n: u32, max: u32) -> (u32, u32) {
    if n <= max {
        (n.max(1), 1)
    } else {
        let y = n.div_ceil(max);
        (n.div_ceil(y), y)
    }
}

/// Kinds of bindings in a bind group layout, binding i = position i.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bind {
    Read,
    Write,
    Uniform,
    Dynamic,
    /// A binding number the entry point does not use (left out of the layout).
    Unused,
}

impl Drop for GpuContext {
    fn drop(&mut self) {
        // Frees GPU memory now rather than when the driver gets round to it.
        self.device.destroy();
    }
}
