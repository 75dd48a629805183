//! Step kernels. `portable` defines the math for any float type; the SIMD kernels compute
//! the same thing faster for f32 and are chosen at run time, so one prebuilt binary is
//! fast on every x86-64 and still runs where AVX2 is missing.

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx2_noise;
#[cfg(target_arch = "x86_64")]
pub mod avx2_train;
pub mod portable;

use crate::spec::{Params, Spec};
pub use portable::{Scratch, Source, Tile, TileStats};

/// Which instruction set the f32 inference kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Plain Rust, vectorised by the compiler for the baseline target.
    Portable,
    /// x86-64 AVX2 + FMA, register-blocked and fused (`kernel::avx2`).
    Avx2,
}

impl Simd {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Simd {
        if avx2_available() {
            Simd::Avx2
        } else {
            Simd::Portable
        }
    }

    /// Parses "auto" | "portable" | "avx2"; an unsupported choice is an error naming it.
    pub fn parse(name: &str) -> crate::Result<Simd> {
        match name {
            "auto" => Ok(Simd::detect()),
            "portable" => Ok(Simd::Portable),
            "avx2" if avx2_available() => Ok(Simd::Avx2),
            "avx2" => Err(crate::Error::invalid(
                "simd \"avx2\" needs a CPU with AVX2 and FMA, and this one lacks them: use \
                 \"auto\" or \"portable\"",
            )),
            other => Err(crate::Error::invalid(format!(
                "simd must be \"auto\", \"portable\" or \"avx2\", got {other:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Avx2 => "avx2",
        }
    }
}

/// One inference step over a run of cells of one row (see `portable::Tile` for the
/// arguments) with the chosen kernel.
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
    let tile = Tile {
        source: Source { src, bases, old },
        out,
        outputs,
        scratch,
    };
    match simd {
        Simd::Portable => portable::forward_tile(spec, p, tile),
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => avx2::forward_tile(spec, p, tile),
        #[cfg(not(target_arch = "x86_64"))]
        Simd::Avx2 => portable::forward_tile(spec, p, tile),
    }
}

/// True when the AVX2 + FMA kernel can run on this CPU.
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
