//! Training: unroll T steps from h = 0 keeping what the backward pass needs, softmax
//! cross-entropy on supervised cells at weighted steps, and back-propagation through time.
//! One driver (`driver`) does all of that; the portable and AVX2 paths supply only the
//! step kernels.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod driver;
mod portable;

use crate::error::{format_bytes, Error, Result};
use crate::kernel::Simd;
use crate::real::Real;
use crate::spec::{check_each, check_finite, check_len, Grid, Padded, Params, Spec};
use driver::CHUNK;
use std::sync::atomic::AtomicBool;

/// Default cap on the memory one training call may hold for activations (on a 32-bit
/// target, the WebAssembly build, whose whole memory is at most 4 GiB: 2 GiB).
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_MAX_BYTES: usize = 4 << 30;
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_MAX_BYTES: usize = 2 << 30;

/// One training batch.
pub struct Batch<'a> {
    pub grid: Grid,
    /// Clamped inputs `[batch][height][width][C_in]`.
    pub x: &'a [f32],
    /// Class per cell `[batch][height][width]`; -1 = not supervised.
    pub target: &'a [i32],
    /// Loss weight of the state after each step: length = the unroll length T.
    pub step_weights: &'a [f32],
    /// Standard deviation of the Gaussian noise added to h before every step (0 = off).
    pub noise_std: f32,
    pub noise_seed: u64,
    /// Weight of the settling penalty (0 = off): at every step t with a loss weight w_t > 0,
    /// `settle_weight * w_t * mean over cells and hidden channels of (h_t - h_{t-1})^2`; for
    /// quantized specs h_t is the unrounded tanh and only values whose rounding changed count. It asks the hidden state itself, not
    /// only the outputs, to stop moving (docs/DESIGN.md, "Training").
    pub settle_weight: f32,
    /// The hidden state each sample starts from, `[batch][height][width][C_h]` (None: zero,
    /// as inference starts). Training from other states, e.g. random ones, asks the rule to
    /// repair any state, so that it has no wrong fixed points (docs/DESIGN.md, "Training").
    pub h0: Option<&'a [f32]>,
}

/// Loss, gradient and accuracy of one batch.
#[derive(Clone, Debug)]
pub struct TrainOutput<T> {
    /// sum over steps of weight x mean cross-entropy over supervised cells.
    pub loss: f64,
    /// d loss / d params, in the flat layout.
    pub grad: Vec<T>,
    /// Samples whose every supervised cell is right after the last step.
    pub exact: u32,
    /// Supervised cells right after the last step.
    pub cells_correct: u64,
    /// Supervised cells per step.
    pub cells_supervised: u64,
}

impl Batch<'_> {
    /// Checks the batch against `spec` (already validated); the error names the argument.
    pub fn validate(&self, spec: &Spec) -> Result<()> {
        self.grid.validate(spec)?;
        spec.check_x(&self.grid, self.x)?;
        let cells = self.grid.cells_checked()?;
        check_len("target", self.target, cells, "batch x height x width =")?;
        let classes = format!("must be -1 or a class from 0 to {}", spec.c_out - 1);
        check_each("target", self.target, &classes, |t| {
            t >= -1 && t < spec.c_out as i32
        })?;
        if self.step_weights.is_empty() {
            return Err(Error::invalid(
                "stepWeights is empty: the unroll needs at least 1 step",
            ));
        }
        if self.step_weights.len() > 100_000 {
            return Err(Error::invalid(format!(
                "stepWeights has {} entries; the unroll is limited to 100000 steps",
                self.step_weights.len()
            )));
        }
        let weight = |w: f32| w.is_finite() && w >= 0.0;
        let must = "must be finite and >= 0";
        check_each("stepWeights", self.step_weights, must, weight)?;
        for (name, w) in [
            ("noiseStd", self.noise_std),
            ("settleWeight", self.settle_weight),
        ] {
            if !weight(w) {
                return Err(Error::invalid(format!("{name} is {w} ({must})")));
            }
        }
        if let Some(h0) = self.h0 {
            let want = cells
                .checked_mul(spec.c_h)
                .ok_or_else(|| Error::invalid("h0 size overflows"))?;
            check_len("h0", h0, want, "batch x height x width x cH =")?;
            check_finite("h0", h0)?;
        }
        Ok(())
    }

    /// Bytes the unroll keeps: every state and every activation of one chunk of samples
    /// per thread, which is what `train_step` allocates.
    pub fn bytes_needed(&self, spec: &Spec, threads: usize) -> usize {
        let pad = Padded::new(spec, &self.grid);
        let t = self.step_weights.len();
        let noisy_inputs = if self.noise_std > 0.0 {
            t * pad.len()
        } else {
            0
        };
        let per_sample =
            (t + 1) * pad.len() + noisy_inputs + t * self.grid.cells_per_sample() * spec.features;
        let samples = CHUNK.min(self.grid.batch) * threads.max(1);
        per_sample
            .saturating_mul(samples)
            .saturating_mul(std::mem::size_of::<f64>())
    }
}

/// Forward + backward over a batch: the loss and the gradient of every parameter.
/// `params` is in the flat layout; generic so the gradient checks can run in f64. In f32
/// on a CPU with AVX2 + FMA this runs the SIMD kernels (`train_step_with_simd`).
pub fn train_step<T: Real>(
    spec: &Spec,
    params: &[T],
    batch: &Batch,
    cancel: &AtomicBool,
) -> Result<TrainOutput<T>> {
    train_step_with_simd(spec, params, batch, cancel, Simd::detect())
}

/// `train_step` with the kernel chosen by the caller: `Simd::Avx2` runs the f32 SIMD path
/// (`train::avx2`: the same math summed in another order, and the same noise stream
/// computed four Box-Muller pairs at a time, so equal within float rounding), falling back
/// to the portable code where the CPU lacks AVX2/FMA; f64 always runs the portable code,
/// as does `Simd::Portable`. The gradient is summed over fixed chunks of samples in a
/// fixed order either way, so it does not depend on the thread count.
pub fn train_step_with_simd<T: Real>(
    spec: &Spec,
    params: &[T],
    batch: &Batch,
    cancel: &AtomicBool,
    simd: Simd,
) -> Result<TrainOutput<T>> {
    spec.validate()?;
    check_len("params", params, spec.param_count(), "this spec needs")?;
    batch.validate(spec)?;
    let threads = rayon::current_num_threads();
    let need = batch.bytes_needed(spec, threads);
    if need > DEFAULT_MAX_BYTES {
        return Err(Error::TooLarge(format!(
            "this training batch would hold {} of activations (limit {}): use a \
             smaller batch, grid or unroll",
            format_bytes(need as f64),
            format_bytes(DEFAULT_MAX_BYTES as f64)
        )));
    }

    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx2 && crate::kernel::avx2_available() {
        if let Some(p32) = T::as_f32_slice(params) {
            let p32 = Params::split(spec, p32);
            let out = driver::run(&avx2::Avx2::new(spec, &p32), spec, &p32, batch, cancel)?;
            return Ok(TrainOutput {
                loss: out.loss,
                grad: T::vec_from_f32(out.grad),
                exact: out.exact,
                cells_correct: out.cells_correct,
                cells_supervised: out.cells_supervised,
            });
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = simd;

    let p = Params::split(spec, params);
    driver::run(&portable::Portable, spec, &p, batch, cancel)
}
