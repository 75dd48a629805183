//! sead-gpu: the SEAD neural cellular automaton on the GPU. The model sead-core defines,
//! in WGSL compute kernels (`wgsl/*.wgsl`, plain WGSL a browser could load) run through
//! wgpu on Vulkan, Metal or DirectX 12.
//!
//! - [`GpuContext`]: adapter selection, the device with the adapter's real limits, shader
//!   modules and a pipeline cache, asynchronous error capture.
//! - [`GpuSession`]: inference with the behaviour of `sead_core::Session` (stepping with
//!   per-step stats, per-sample convergence), many steps per submission; both implement
//!   `sead_core::Stepper`, its API (in `session.rs`).
//! - [`train_step`]: loss and gradient of one batch, as `sead_core::train_step`.
//! - [`records`]: the uniforms and per-sample records as Rust structs matching the WGSL
//!   structs, and the constants shared with the WGSL (read from the `.wgsl` files).
//! - [`Profile`]: GPU time per kernel from timestamp queries, for tuning
//!   (`GpuOptions::profile`, `GpuContext::take_profile`).
//!
//! The kernels compute the same math as the CPU kernels; `tests/agreement.rs` holds them
//! to each other within stated tolerances.

pub mod context;
pub mod error;
pub mod kernels;
pub mod profile;
pub mod records;
pub mod session;
pub mod train;

pub use context::{list_adapters, AdapterInfo, GpuContext, GpuLimits, GpuOptions, INSTALL_HINT};
pub use error::{GpuError, Result};
pub use profile::{KernelTime, Profile};
pub use session::{GpuSession, SessionOptions, DEFAULT_CHECK_EVERY};
pub use train::{train_step, train_step_with_limit};
