//! Errors of the GPU backend: sead-core's (invalid arguments, too large, cancelled) plus
//! the two a GPU adds: no usable adapter, and a device error (validation, lost device).
//!
//! The Node binding's WebAssembly build, where wgpu (and so this crate) does not build,
//! compiles this file into its stand-in for sead-gpu (sead-node/src/gpu_unavailable.rs), so
//! that both builds have this one error type: it must need nothing but std and sead-core.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuError {
    /// An argument has the wrong size, shape or value (as `sead_core::Error::Invalid`).
    Invalid(String),
    /// The request needs more memory than allowed or than the device has.
    TooLarge(String),
    /// The caller cancelled the work.
    Cancelled,
    /// No adapter, or the adapter refused a device: the message lists what wgpu found and
    /// what to install.
    Unavailable(String),
    /// The device reported an error (validation, internal) or was lost.
    Device(String),
}

impl From<sead_core::Error> for GpuError {
    fn from(e: sead_core::Error) -> Self {
        match e {
            sead_core::Error::Invalid(m) => GpuError::Invalid(m),
            sead_core::Error::TooLarge(m) => GpuError::TooLarge(m),
            sead_core::Error::Cancelled => GpuError::Cancelled,
        }
    }
}

impl GpuError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        GpuError::Invalid(msg.into())
    }
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::Invalid(m) | GpuError::TooLarge(m) | GpuError::Unavailable(m) => {
                f.write_str(m)
            }
            GpuError::Device(m) => write!(f, "GPU error: {m}"),
            GpuError::Cancelled => f.write_str("the operation was cancelled"),
        }
    }
}

impl std::error::Error for GpuError {}

pub type Result<T> = std::result::Result<T, GpuError>;
