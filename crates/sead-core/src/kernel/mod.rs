//! Step kernels. `portable` defines the math for any float type; the SIMD kernels compute
//! the same thing faster for f32 and are chosen at run time, so one prebuilt binary is
//! fast on every x86-64 and still runs where AVX2 is missing.

pub mod portable;

use crate::spec::{Params, Spec};
pub use portable::{Scratch, TileStats};

/// Which instruction set the f32 inference kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Plain Rust, vectorised by the compiler for the baseline target.
    Portable,
}

impl Simd {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Simd {
        Simd::Portable
    }

    /// Parses "auto" | "portable" | "avx2"; an unsupported choice is an error naming it.
    pub fn parse(name: &str) -> crate::Result<Simd> {
        match name {
            "auto" => Ok(Simd::detect()),
            "portable" => Ok(Simd::Portable),
            other => Err(crate::Error::invalid(format!(
                "simd must be \"auto\" or \"portable\", got {other:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
        }
    }
}

/// One inference step over a run of cells of one row (see `portable::forward_tile`).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn forward_tile(
    simd: Simd,
    spec: &Spec,
    p: &Params<f32>,
    src: &[f32],
    bases: &[usize],
    old: usize,
    out: &mut [f32],
    outputs: &mut [u8],
    scratch: &mut Scratch<f32>,
) -> TileStats {
    match simd {
        Simd::Portable => portable::forward_tile(spec, p, src, bases, old, out, outputs, scratch),
    }
}
