//! Training: unroll T steps from h = 0 keeping what the backward pass needs, softmax
//! cross-entropy on supervised cells at weighted steps, and back-propagation through time.

use crate::error::{format_bytes, Error, Result};
use crate::kernel::portable::{argmax, mix_update, perceive, readout};
use crate::kernel::Simd;
use crate::noise::NoiseStream;
use crate::real::Real;
use crate::spec::{Grid, Padded, Params, Spec, Update};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Samples per gradient chunk. Fixed, not tied to the thread count, so the summation order
/// (and therefore every bit of the gradient) is the same on any machine.
pub(crate) const CHUNK: usize = 4;

/// Default cap on the memory one training call may hold for activations.
pub const DEFAULT_MAX_BYTES: usize = 4 << 30;

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
    pub fn validate(&self, spec: &Spec) -> Result<()> {
        self.grid.validate(spec)?;
        let cells = self.grid.cells_checked()?;
        let want_x = cells
            .checked_mul(spec.c_in)
            .ok_or_else(|| Error::invalid("x size overflows"))?;
        if self.x.len() != want_x {
            return Err(Error::invalid(format!(
                "x has {} values but batch x height x width x cIn = {want_x}",
                self.x.len()
            )));
        }
        if let Some(i) = self.x.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "x[{i}] is {} (must be finite)",
                self.x[i]
            )));
        }
        if self.target.len() != cells {
            return Err(Error::invalid(format!(
                "target has {} values but batch x height x width = {cells}",
                self.target.len()
            )));
        }
        if let Some(i) = self
            .target
            .iter()
            .position(|&t| t < -1 || t >= spec.c_out as i32)
        {
            return Err(Error::invalid(format!(
                "target[{i}] is {} (must be -1 or a class from 0 to {})",
                self.target[i],
                spec.c_out - 1
            )));
        }
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
        if let Some(i) = self
            .step_weights
            .iter()
            .position(|w| !w.is_finite() || *w < 0.0)
        {
            return Err(Error::invalid(format!(
                "stepWeights[{i}] is {} (must be finite and >= 0)",
                self.step_weights[i]
            )));
        }
        if !self.noise_std.is_finite() || self.noise_std < 0.0 {
            return Err(Error::invalid(format!(
                "noiseStd is {} (must be finite and >= 0)",
                self.noise_std
            )));
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

/// Working memory for one sample's unroll, reused across the samples of a chunk.
struct Work<T> {
    /// The state after each step, S_0..S_T.
    states: Vec<T>,
    /// With noise: the noisy state each step read, S_{t-1} + noise (empty without noise).
    inputs: Vec<T>,
    acts: Vec<T>,
    ds: Vec<T>,
    gh: Vec<T>,
    z: Vec<T>,
    dz: Vec<T>,
    dpre: Vec<T>,
    logits: Vec<T>,
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
/// (`train_avx2`: the same math summed in another order, and the same noise stream
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
    if params.len() != spec.param_count() {
        return Err(Error::invalid(format!(
            "params has {} values but this spec needs {}",
            params.len(),
            spec.param_count()
        )));
    }
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

    let p = Params::split(spec, params);
    let grid = batch.grid;
    let cells = grid.cells_per_sample();
    let n_sup = batch.target.iter().filter(|&&t| t >= 0).count() as u64;
    let inv_nsup = if n_sup == 0 { 0.0 } else { 1.0 / n_sup as f64 };
    let n_params = spec.param_count();

    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx2 && crate::kernel::avx2_available() {
        if let Some(p32) = T::as_f32_slice(params) {
            let out = crate::train_avx2::train_f32(spec, p32, batch, cancel, n_sup, inv_nsup)?;
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

    let chunks: Vec<Result<(f64, Vec<T>, u32, u64)>> = (0..grid.batch.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut grad = vec![T::ZERO; n_params];
            let mut work = Work::new(spec, &grid, batch.step_weights.len(), batch.noise_std > 0.0);
            let (mut loss, mut exact, mut correct) = (0.0, 0u32, 0u64);
            for b in chunk * CHUNK..((chunk + 1) * CHUNK).min(grid.batch) {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let x = &batch.x[b * cells * spec.c_in..(b + 1) * cells * spec.c_in];
                let target = &batch.target[b * cells..(b + 1) * cells];
                let noise = NoiseStream::new(batch.noise_seed, b as u64);
                let r = work.run_sample(
                    spec, &p, &grid, x, target, batch, noise, inv_nsup, &mut grad,
                );
                loss += r.0;
                exact += r.1 as u32;
                correct += r.2;
            }
            Ok((loss, grad, exact, correct))
        })
        .collect();

    let mut out = TrainOutput {
        loss: 0.0,
        grad: vec![T::ZERO; n_params],
        exact: 0,
        cells_correct: 0,
        cells_supervised: n_sup,
    };
    for chunk in chunks {
        let (loss, grad, exact, correct) = chunk?;
        out.loss += loss;
        for (g, v) in out.grad.iter_mut().zip(grad) {
            *g += v;
        }
        out.exact += exact;
        out.cells_correct += correct;
    }
    Ok(out)
}

impl<T: Real> Work<T> {
    fn new(spec: &Spec, grid: &Grid, steps: usize, noisy: bool) -> Self {
        let pad = Padded::new(spec, grid);
        let cells = grid.cells_per_sample();
        Work {
            states: vec![T::ZERO; (steps + 1) * pad.len()],
            inputs: vec![T::ZERO; if noisy { steps * pad.len() } else { 0 }],
            acts: vec![T::ZERO; steps * cells * spec.features],
            ds: vec![T::ZERO; pad.len()],
            gh: vec![T::ZERO; cells * spec.c_h],
            z: vec![T::ZERO; spec.features],
            dz: vec![T::ZERO; spec.features],
            dpre: vec![T::ZERO; spec.c_h],
            logits: vec![T::ZERO; spec.c_out],
        }
    }

    /// Unrolls one sample, adds its gradient into `grad`; returns (its share of the loss,
    /// whether it is exact after the last step, its correct supervised cells then).
    #[allow(clippy::too_many_arguments)]
    fn run_sample(
        &mut self,
        spec: &Spec,
        p: &Params<T>,
        grid: &Grid,
        x: &[f32],
        target: &[i32],
        batch: &Batch,
        mut noise: NoiseStream,
        inv_nsup: f64,
        grad: &mut [T],
    ) -> (f64, bool, u64) {
        let pad = Padded::new(spec, grid);
        let plen = pad.len();
        let (c, ci, ch, f) = (spec.c(), spec.c_in, spec.c_h, spec.features);
        let steps = batch.step_weights.len();
        let (h, w) = (grid.height, grid.width);
        let nseg = if spec.dims == 1 { 1 } else { 3 };

        // S_0: x clamped, h = 0.
        initial_state(spec, &pad, grid, x, &mut self.states[..plen]);

        let mut loss = 0.0;
        let mut exact = true;
        let mut correct = 0u64;
        for t in 1..=steps {
            let (before, after) = self.states.split_at_mut(t * plen);
            let clean = &before[(t - 1) * plen..];
            let next = &mut after[..plen];
            // With noise, step t reads h + noise, kept apart from the clean state (which the
            // loss at step t-1 and the tanh derivative need) for the backward pass.
            let prev: &[T] = if batch.noise_std > 0.0 {
                let inp = &mut self.inputs[(t - 1) * plen..t * plen];
                inp.copy_from_slice(clean);
                for y in 0..h {
                    for xx in 0..w {
                        let at = pad.at(y, xx) + ci;
                        for v in &mut inp[at..at + ch] {
                            *v += T::from_f32(batch.noise_std * noise.normal());
                        }
                    }
                }
                pad.fill_halo(inp, spec.boundary, h);
                inp
            } else {
                clean
            };
            next.copy_from_slice(prev);
            let acts = &mut self.acts[(t - 1) * (h * w * f)..t * (h * w * f)];
            let mut bases = [0usize; 3];
            for y in 0..h {
                let rows = pad.neighbour_rows(y);
                for xx in 0..w {
                    for s in 0..nseg {
                        bases[s] = rows[s] + xx * c;
                    }
                    perceive(spec, p, prev, &bases[..nseg], &mut self.z);
                    let at = pad.at(y, xx) + ci;
                    mix_update(
                        spec,
                        p,
                        &mut self.z,
                        &prev[at..at + ch],
                        &mut next[at..at + ch],
                    );
                    let cell = y * w + xx;
                    acts[cell * f..(cell + 1) * f].copy_from_slice(&self.z);
                }
            }
            pad.fill_halo(next, spec.boundary, h);

            let weight = batch.step_weights[t - 1] as f64;
            let score = score_step(
                spec,
                p,
                &pad,
                grid,
                target,
                next,
                weight,
                t == steps,
                inv_nsup,
                &mut self.logits,
            );
            loss += score.loss;
            if t == steps {
                exact = score.exact;
                correct = score.correct;
            }
        }

        self.backward(spec, p, grid, target, batch, inv_nsup, grad);
        (loss, exact, correct)
    }

    #[allow(clippy::too_many_arguments)]
    fn backward(
        &mut self,
        spec: &Spec,
        p: &Params<T>,
        grid: &Grid,
        target: &[i32],
        batch: &Batch,
        inv_nsup: f64,
        grad: &mut [T],
    ) {
        let pad = Padded::new(spec, grid);
        let plen = pad.len();
        let (c, ci, ch, f, co) = (spec.c(), spec.c_in, spec.c_h, spec.features, spec.c_out);
        let seg = 3 * c;
        let (h, w) = (grid.height, grid.width);
        let nseg = if spec.dims == 1 { 1 } else { 3 };
        let layout = spec.layout();
        let (gw1, rest) = grad.split_at_mut(layout.b1.start);
        let (gb1, rest) = rest.split_at_mut(f);
        let (gw2, rest) = rest.split_at_mut(f * ch);
        let (gb2, rest) = rest.split_at_mut(ch);
        let (gwo, gbo) = rest.split_at_mut(ch * co);

        self.gh.fill(T::ZERO);
        for t in (1..=batch.step_weights.len()).rev() {
            let cur = &self.states[t * plen..(t + 1) * plen];
            let prev = if batch.noise_std > 0.0 {
                &self.inputs[(t - 1) * plen..t * plen]
            } else {
                &self.states[(t - 1) * plen..t * plen]
            };

            // Loss at step t.
            let weight = batch.step_weights[t - 1] as f64;
            if weight > 0.0 {
                let scale = weight * inv_nsup;
                readout_backward(
                    spec,
                    p,
                    &pad,
                    grid,
                    target,
                    cur,
                    scale,
                    &mut self.logits,
                    &mut self.gh,
                    gwo,
                    gbo,
                );
            }

            // Step t: S_{t-1} -> h_t.
            self.ds.fill(T::ZERO);
            let acts = &self.acts[(t - 1) * (h * w * f)..t * (h * w * f)];
            let mut bases = [0usize; 3];
            for y in 0..h {
                let rows = pad.neighbour_rows(y);
                for xx in 0..w {
                    let cell = y * w + xx;
                    let at = pad.at(y, xx) + ci;
                    let h_new = &cur[at..at + ch];
                    let gh = &self.gh[cell * ch..(cell + 1) * ch];
                    for j in 0..ch {
                        self.dpre[j] = gh[j] * (T::ONE - h_new[j] * h_new[j]);
                        gb2[j] += self.dpre[j];
                    }
                    let a = &acts[cell * f..(cell + 1) * f];
                    for k in 0..f {
                        if a[k] > T::ZERO {
                            let wrow = &p.w2[k * ch..(k + 1) * ch];
                            let grow = &mut gw2[k * ch..(k + 1) * ch];
                            let mut da = T::ZERO;
                            for j in 0..ch {
                                grow[j] += a[k] * self.dpre[j];
                                da += wrow[j] * self.dpre[j];
                            }
                            self.dz[k] = da;
                        } else {
                            self.dz[k] = T::ZERO;
                        }
                        gb1[k] += self.dz[k];
                    }
                    for s in 0..nseg {
                        bases[s] = rows[s] + xx * c;
                    }
                    for (s, &base) in bases[..nseg].iter().enumerate() {
                        for jj in 0..seg {
                            let row = (s * seg + jj) * f;
                            let wrow = &p.w1[row..row + f];
                            let grow = &mut gw1[row..row + f];
                            let v = prev[base + jj];
                            let mut acc = T::ZERO;
                            for k in 0..f {
                                grow[k] += v * self.dz[k];
                                acc += wrow[k] * self.dz[k];
                            }
                            self.ds[base + jj] += acc;
                        }
                    }
                    if spec.update == Update::Residual {
                        for j in 0..ch {
                            self.ds[at + j] += self.dpre[j];
                        }
                    }
                }
            }
            pad.fold_halo(&mut self.ds, spec.boundary, h);
            for y in 0..h {
                for xx in 0..w {
                    let cell = y * w + xx;
                    let at = pad.at(y, xx) + ci;
                    self.gh[cell * ch..(cell + 1) * ch].copy_from_slice(&self.ds[at..at + ch]);
                }
            }
        }
    }
}

/// Writes S_0 into `s0` (a padded sample): x clamped, h = 0, halo filled.
pub(crate) fn initial_state<T: Real>(
    spec: &Spec,
    pad: &Padded,
    grid: &Grid,
    x: &[f32],
    s0: &mut [T],
) {
    let ci = spec.c_in;
    s0.fill(T::ZERO);
    for y in 0..grid.height {
        for xx in 0..grid.width {
            let cell = y * grid.width + xx;
            let at = pad.at(y, xx);
            for i in 0..ci {
                s0[at + i] = T::from_f32(x[cell * ci + i]);
            }
        }
    }
    pad.fill_halo(s0, spec.boundary, grid.height);
}

/// What the forward pass learns from the state after a step: its weighted share of the
/// loss, and (after the last step) whether every supervised cell is right and how many are.
pub(crate) struct StepScore {
    pub loss: f64,
    pub exact: bool,
    pub correct: u64,
}

/// Scores the state `next` after step `t` of `steps`: cross-entropy weighted by the step's
/// weight, and accuracy after the last step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_step<T: Real>(
    spec: &Spec,
    p: &Params<T>,
    pad: &Padded,
    grid: &Grid,
    target: &[i32],
    next: &[T],
    weight: f64,
    last: bool,
    inv_nsup: f64,
    logits: &mut [T],
) -> StepScore {
    let mut score = StepScore {
        loss: 0.0,
        exact: true,
        correct: 0,
    };
    if weight <= 0.0 && !last {
        return score;
    }
    let (ci, ch) = (spec.c_in, spec.c_h);
    for y in 0..grid.height {
        for xx in 0..grid.width {
            let cell = y * grid.width + xx;
            let Ok(class) = usize::try_from(target[cell]) else {
                continue;
            };
            let at = pad.at(y, xx) + ci;
            readout(spec, p, &next[at..at + ch], logits);
            if weight > 0.0 {
                score.loss += weight * inv_nsup * cross_entropy(logits, class);
            }
            if last {
                if argmax(logits) == class {
                    score.correct += 1;
                } else {
                    score.exact = false;
                }
            }
        }
    }
    score
}

/// The readout's share of the backward pass at one step: d CE / d logits =
/// scale x (softmax - onehot) for each supervised cell, into the readout's gradients and
/// the hidden state's (`gh`, `[cells][C_h]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn readout_backward<T: Real>(
    spec: &Spec,
    p: &Params<T>,
    pad: &Padded,
    grid: &Grid,
    target: &[i32],
    cur: &[T],
    scale: f64,
    logits: &mut [T],
    gh: &mut [T],
    gwo: &mut [T],
    gbo: &mut [T],
) {
    let (ci, ch, co) = (spec.c_in, spec.c_h, spec.c_out);
    for y in 0..grid.height {
        for xx in 0..grid.width {
            let cell = y * grid.width + xx;
            let Ok(class) = usize::try_from(target[cell]) else {
                continue;
            };
            let at = pad.at(y, xx) + ci;
            let hv = &cur[at..at + ch];
            readout(spec, p, hv, logits);
            softmax_grad(logits, class, scale);
            for (o, &d) in logits.iter().enumerate() {
                gbo[o] += d;
            }
            let gh = &mut gh[cell * ch..(cell + 1) * ch];
            for j in 0..ch {
                let row = &p.wo[j * co..(j + 1) * co];
                let grow = &mut gwo[j * co..(j + 1) * co];
                let mut acc = T::ZERO;
                for o in 0..co {
                    grow[o] += hv[j] * logits[o];
                    acc += row[o] * logits[o];
                }
                gh[j] += acc;
            }
        }
    }
}

/// -log softmax(logits)[class], computed stably.
pub(crate) fn cross_entropy<T: Real>(logits: &[T], class: usize) -> f64 {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, v| m.max(v.to_f64()));
    let sum: f64 = logits.iter().map(|v| (v.to_f64() - max).exp()).sum();
    max + sum.ln() - logits[class].to_f64()
}

/// Replaces logits by scale * (softmax(logits) - onehot(class)).
pub(crate) fn softmax_grad<T: Real>(logits: &mut [T], class: usize, scale: f64) {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, v| m.max(v.to_f64()));
    let sum: f64 = logits.iter().map(|v| (v.to_f64() - max).exp()).sum();
    for (o, l) in logits.iter_mut().enumerate() {
        let pr = (l.to_f64() - max).exp() / sum;
        let onehot = if o == class { 1.0 } else { 0.0 };
        *l = T::from_f64((pr - onehot) * scale);
    }
}
