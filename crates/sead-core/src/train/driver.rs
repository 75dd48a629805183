//! The one training driver: the unroll over T steps, the noise, the loss, back-propagation
//! through time and the chunked, ordered gradient sum. A path (`portable`, `avx2`) supplies
//! only the step kernels, through `StepKernels`, monomorphised so nothing is called per cell
//! through a pointer.

use super::{Batch, TrainOutput};
use crate::error::{Error, Result};
use crate::kernel::portable::{argmax, readout};
use crate::kernel::Simd;
use crate::noise::NoiseStream;
use crate::real::{ternary, Real};
use crate::spec::{Grid, Padded, Params, Quantize, Spec};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Samples per gradient chunk. Fixed, not tied to the thread count, so the summation order
/// (and therefore every bit of the gradient) is the same on any machine.
pub(super) const CHUNK: usize = 4;

/// One chunk's (loss, gradient, exact samples, correct cells).
type ChunkSum<T> = (f64, Vec<T>, u32, u64);

/// The model and one sample's geometry, as the step kernels read them.
pub(super) struct Ctx<'a, T> {
    pub spec: &'a Spec,
    pub p: &'a Params<'a, T>,
    pub grid: Grid,
    pub pad: Padded,
    /// Neighbourhood rows per cell: 1 in 1D, 3 in 2D.
    pub nseg: usize,
}

/// What one step's backward pass reads, for every cell of the sample.
pub(super) struct Back<'a, T> {
    /// The (noisy, if noise is on) padded state the step read.
    pub prev: &'a [T],
    /// The step's ReLU features, `[cells][F]`.
    pub acts: &'a [T],
    /// d loss / d (pre-tanh), `[cells][C_h]`.
    pub dpre: &'a [T],
}

/// What one step's backward pass writes: its share of the gradient, W1, b1 and W2 (the
/// driver does b2 and the readout), and the gradient flowing on to the state before it.
pub(super) struct StepGrads<'a, T> {
    pub w1: &'a mut [T],
    pub b1: &'a mut [T],
    pub w2: &'a mut [T],
    /// d loss / d h_{t-1}, `[cells][C_h]`: overwritten.
    pub h: &'a mut [T],
}

/// The kernels a training path supplies for one step.
pub(super) trait StepKernels<T: Real>: Sync {
    /// Per-thread working memory of `backward`, reused across samples.
    type Scratch: Send;
    /// How the noise is drawn: the same values either way (`NoiseStream::fill_normal`).
    const NOISE: Simd;

    fn scratch(&self, cx: &Ctx<T>) -> Self::Scratch;

    /// One step over interior row `y`: `out` is that row's cells of the next state (W x C
    /// floats, already a copy of `src`'s), whose hidden channels are written here; `acts`
    /// gets the row's ReLU features (W x F).
    fn forward_row(&self, cx: &Ctx<T>, src: &[T], y: usize, out: &mut [T], acts: &mut [T]);

    /// One step back: adds the step's W1, b1 and W2 gradients into `g` and overwrites
    /// `g.h` with d loss / d h_{t-1}.
    fn backward(&self, cx: &Ctx<T>, back: Back<T>, g: StepGrads<T>, scratch: &mut Self::Scratch);
}

/// Loss, gradient and accuracy of a batch that the caller has validated (spec, params,
/// batch, memory limit, and the CPU for `kernels`).
pub(super) fn run<T: Real, K: StepKernels<T>>(
    kernels: &K,
    spec: &Spec,
    p: &Params<T>,
    batch: &Batch,
    cancel: &AtomicBool,
) -> Result<TrainOutput<T>> {
    let grid = batch.grid;
    let cells = grid.cells_per_sample();
    let n_sup = batch.target.iter().filter(|&&t| t >= 0).count() as u64;
    let inv_nsup = if n_sup == 0 { 0.0 } else { 1.0 / n_sup as f64 };
    // The settling penalty is a mean over every hidden value of the batch.
    let settle_scale = batch.settle_weight as f64 / (grid.batch * cells * spec.c_h) as f64;
    let n_params = spec.param_count();
    let cx = Ctx {
        spec,
        p,
        grid,
        pad: Padded::new(spec, &grid),
        nseg: if spec.dims == 1 { 1 } else { 3 },
    };

    let chunks: Vec<Result<ChunkSum<T>>> = (0..grid.batch.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut grad = vec![T::ZERO; n_params];
            let mut work = Work::new(kernels, &cx, batch);
            let (mut loss, mut exact, mut correct) = (0.0, 0u32, 0u64);
            for b in chunk * CHUNK..((chunk + 1) * CHUNK).min(grid.batch) {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let x = &batch.x[b * cells * spec.c_in..(b + 1) * cells * spec.c_in];
                let target = &batch.target[b * cells..(b + 1) * cells];
                let h0 = batch
                    .h0
                    .map(|h| &h[b * cells * spec.c_h..(b + 1) * cells * spec.c_h]);
                let noise = NoiseStream::new(batch.noise_seed, b as u64);
                let scale = Scale {
                    inv_nsup,
                    settle: settle_scale,
                };
                let r =
                    work.run_sample(kernels, &cx, x, h0, target, batch, noise, scale, &mut grad);
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

/// The loss's normalisers: 1 / supervised cells (cross-entropy), and the settling
/// penalty's weight over every hidden value of the batch (0 when off).
#[derive(Clone, Copy)]
struct Scale {
    inv_nsup: f64,
    settle: f64,
}

/// Working memory for one sample's unroll, reused across the samples of a chunk.
struct Work<T, S> {
    /// The state after each step, S_0..S_T.
    states: Vec<T>,
    /// With noise: the noisy state each step read, S_{t-1} + noise (empty without noise).
    inputs: Vec<T>,
    /// One step's noise, `[cells][C_h]` (empty without noise).
    noise: Vec<f32>,
    acts: Vec<T>,
    gh: Vec<T>,
    dpre: Vec<T>,
    /// The settling penalty's gradient with respect to h_t at the step being undone,
    /// `[cells][C_h]` (empty when the penalty is off).
    settle_grad: Vec<T>,
    /// Quantized specs: each step's unrounded tanh output, `[steps][cells][C_h]`, which the
    /// straight-through backward differentiates (empty otherwise).
    soft: Vec<T>,
    logits: Vec<T>,
    scratch: S,
}

impl<T: Real, S> Work<T, S> {
    fn new<K: StepKernels<T, Scratch = S>>(kernels: &K, cx: &Ctx<T>, batch: &Batch) -> Self {
        let (spec, plen) = (cx.spec, cx.pad.len());
        let steps = batch.step_weights.len();
        let noisy = batch.noise_std > 0.0;
        let cells = cx.grid.cells_per_sample();
        Work {
            states: vec![T::ZERO; (steps + 1) * plen],
            inputs: vec![T::ZERO; if noisy { steps * plen } else { 0 }],
            noise: vec![0.0; if noisy { cells * spec.c_h } else { 0 }],
            acts: vec![T::ZERO; steps * cells * spec.features],
            gh: vec![T::ZERO; cells * spec.c_h],
            dpre: vec![T::ZERO; cells * spec.c_h],
            settle_grad: vec![
                T::ZERO;
                if batch.settle_weight > 0.0 {
                    cells * spec.c_h
                } else {
                    0
                }
            ],
            soft: match spec.quantize {
                Quantize::None => Vec::new(),
                Quantize::Ternary => vec![T::ZERO; steps * cells * spec.c_h],
            },
            logits: vec![T::ZERO; spec.c_out],
            scratch: kernels.scratch(cx),
        }
    }

    /// Unrolls one sample, adds its gradient into `grad`; returns (its share of the loss,
    /// whether it is exact after the last step, its correct supervised cells then).
    #[allow(clippy::too_many_arguments)]
    fn run_sample<K: StepKernels<T, Scratch = S>>(
        &mut self,
        kernels: &K,
        cx: &Ctx<T>,
        x: &[f32],
        h0: Option<&[f32]>,
        target: &[i32],
        batch: &Batch,
        mut noise: NoiseStream,
        scale: Scale,
        grad: &mut [T],
    ) -> (f64, bool, u64) {
        let inv_nsup = scale.inv_nsup;
        let (spec, pad) = (cx.spec, cx.pad);
        let plen = pad.len();
        let (c, ci, ch, f) = (spec.c(), spec.c_in, spec.c_h, spec.features);
        let steps = batch.step_weights.len();
        let (h, w) = (cx.grid.height, cx.grid.width);

        // S_0: x clamped, h = h0 (or 0).
        initial_state(spec, &pad, &cx.grid, x, h0, &mut self.states[..plen]);

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
                noise.fill_normal(&mut self.noise, K::NOISE);
                let inp = &mut self.inputs[(t - 1) * plen..t * plen];
                inp.copy_from_slice(clean);
                for y in 0..h {
                    for xx in 0..w {
                        let at = pad.at(y, xx) + ci;
                        let cell = y * w + xx;
                        let nv = &self.noise[cell * ch..(cell + 1) * ch];
                        for (v, &e) in inp[at..at + ch].iter_mut().zip(nv) {
                            *v += T::from_f32(batch.noise_std * e);
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
            for y in 0..h {
                let at = pad.at(y, 0);
                kernels.forward_row(
                    cx,
                    prev,
                    y,
                    &mut next[at..at + w * c],
                    &mut acts[y * w * f..(y + 1) * w * f],
                );
            }
            if spec.quantize == Quantize::Ternary {
                // Round the new state, keeping the tanh output for the backward pass.
                let soft = &mut self.soft[(t - 1) * h * w * ch..t * h * w * ch];
                for y in 0..h {
                    for xx in 0..w {
                        let at = pad.at(y, xx) + ci;
                        let cell = y * w + xx;
                        let kept = &mut soft[cell * ch..(cell + 1) * ch];
                        for (s, v) in kept.iter_mut().zip(&mut next[at..at + ch]) {
                            *s = *v;
                            *v = ternary(*v);
                        }
                    }
                }
            }
            pad.fill_halo(next, spec.boundary, h);

            let weight = batch.step_weights[t - 1] as f64;
            if weight > 0.0 && scale.settle > 0.0 {
                let prev_clean = &before[(t - 1) * plen..];
                loss += weight * scale.settle * moved(&self.soft, cx, t, prev_clean, next);
            }
            let score = score_step(
                cx,
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

        self.backward(kernels, cx, target, batch, scale, grad);
        (loss, exact, correct)
    }

    fn backward<K: StepKernels<T, Scratch = S>>(
        &mut self,
        kernels: &K,
        cx: &Ctx<T>,
        target: &[i32],
        batch: &Batch,
        scale: Scale,
        grad: &mut [T],
    ) {
        let inv_nsup = scale.inv_nsup;
        let (spec, pad) = (cx.spec, cx.pad);
        let plen = pad.len();
        let (ci, ch, f, co) = (spec.c_in, spec.c_h, spec.features, spec.c_out);
        let (h, w) = (cx.grid.height, cx.grid.width);
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
                let g = ReadoutGrads {
                    wo: &mut *gwo,
                    bo: &mut *gbo,
                    h: &mut self.gh,
                };
                readout_backward(cx, target, cur, scale, &mut self.logits, g);
            }

            // The settling penalty at step t: d/dh_t = 2 c (h_t - h_{t-1}) joins gh now, and
            // its mirror image d/dh_{t-1} = -2 c (h_t - h_{t-1}) is added after the step back.
            let settle = weight > 0.0 && scale.settle > 0.0;
            if settle {
                let coef = T::from_f64(2.0 * weight * scale.settle);
                let clean_prev = &self.states[(t - 1) * plen..t * plen];
                for y in 0..h {
                    for xx in 0..w {
                        let cell = y * w + xx;
                        let at = pad.at(y, xx) + ci;
                        let new = new_hidden(&self.soft, cx, t, cur, cell, at);
                        let old = &clean_prev[at..at + ch];
                        for j in 0..ch {
                            let d = coef * settle_gap(&self.soft, new[j], old[j]);
                            self.settle_grad[cell * ch + j] = d;
                            self.gh[cell * ch + j] += d;
                        }
                    }
                }
            }

            // Step t: S_{t-1} -> h_t. dpre = gh * tanh'(.), then the path's kernels. A
            // quantized step is differentiated straight through the rounding: d round(t)/dt
            // is taken as 1, so tanh' comes from the unrounded t.
            let soft = &self.soft[..];
            for y in 0..h {
                for xx in 0..w {
                    let cell = y * w + xx;
                    let at = pad.at(y, xx) + ci;
                    let h_new = if soft.is_empty() {
                        &cur[at..at + ch]
                    } else {
                        let step = (t - 1) * h * w * ch;
                        &soft[step + cell * ch..step + (cell + 1) * ch]
                    };
                    let gh = &self.gh[cell * ch..(cell + 1) * ch];
                    let dpre = &mut self.dpre[cell * ch..(cell + 1) * ch];
                    for j in 0..ch {
                        dpre[j] = gh[j] * (T::ONE - h_new[j] * h_new[j]);
                        gb2[j] += dpre[j];
                    }
                }
            }
            let back = Back {
                prev,
                acts: &self.acts[(t - 1) * (h * w * f)..t * (h * w * f)],
                dpre: &self.dpre,
            };
            let g = StepGrads {
                w1: &mut *gw1,
                b1: &mut *gb1,
                w2: &mut *gw2,
                h: &mut self.gh,
            };
            kernels.backward(cx, back, g, &mut self.scratch);
            if settle {
                for (g, &d) in self.gh.iter_mut().zip(&self.settle_grad) {
                    *g = *g - d;
                }
            }
        }
    }
}

/// The new hidden value of `cell` at step t (1-based): for a quantized spec the unrounded
/// tanh kept in `soft`, else the state itself (`next`, the padded state after step t).
fn new_hidden<'s, T: Real>(
    soft: &'s [T],
    cx: &Ctx<T>,
    t: usize,
    next: &'s [T],
    cell: usize,
    at: usize,
) -> &'s [T] {
    let ch = cx.spec.c_h;
    if soft.is_empty() {
        &next[at..at + ch]
    } else {
        let step = (t - 1) * cx.grid.cells_per_sample() * ch;
        &soft[step + cell * ch..step + (cell + 1) * ch]
    }
}

/// What the settling penalty squares for one hidden value: h_t - h_{t-1}. For a quantized
/// spec (`soft` non-empty, `new` the unrounded t) only where the rounded value changed, so a
/// settled cell costs nothing however far its t sits from the grid point, and a flip is
/// pulled back toward the old value.
fn settle_gap<T: Real>(soft: &[T], new: T, old: T) -> T {
    if !soft.is_empty() && ternary(new) == old {
        T::ZERO
    } else {
        new - old
    }
}

/// Sum over cells and hidden channels of settle_gap^2 (`prev`, `next`: the clean
/// padded states before and after step t).
fn moved<T: Real>(soft: &[T], cx: &Ctx<T>, t: usize, prev: &[T], next: &[T]) -> f64 {
    let (ci, ch) = (cx.spec.c_in, cx.spec.c_h);
    let mut sum = 0.0;
    for y in 0..cx.grid.height {
        for xx in 0..cx.grid.width {
            let at = cx.pad.at(y, xx) + ci;
            let new = new_hidden(soft, cx, t, next, y * cx.grid.width + xx, at);
            for (&v, &o) in new.iter().zip(&prev[at..at + ch]) {
                let d = settle_gap(soft, v, o).to_f64();
                sum += d * d;
            }
        }
    }
    sum
}

/// Writes S_0 into `s0` (a padded sample): x clamped, h = 0, halo filled.
fn initial_state<T: Real>(
    spec: &Spec,
    pad: &Padded,
    grid: &Grid,
    x: &[f32],
    h0: Option<&[f32]>,
    s0: &mut [T],
) {
    let (ci, ch) = (spec.c_in, spec.c_h);
    s0.fill(T::ZERO);
    for y in 0..grid.height {
        for xx in 0..grid.width {
            let cell = y * grid.width + xx;
            let at = pad.at(y, xx);
            for i in 0..ci {
                s0[at + i] = T::from_f32(x[cell * ci + i]);
            }
            if let Some(h0) = h0 {
                for j in 0..ch {
                    s0[at + ci + j] = T::from_f32(h0[cell * ch + j]);
                }
            }
        }
    }
    pad.fill_halo(s0, spec.boundary, grid.height);
}

/// What the forward pass learns from the state after a step: its weighted share of the
/// loss, and (after the last step) whether every supervised cell is right and how many are.
struct StepScore {
    loss: f64,
    exact: bool,
    correct: u64,
}

/// Scores the state `next` after a step: cross-entropy weighted by the step's weight, and
/// accuracy after the last step.
fn score_step<T: Real>(
    cx: &Ctx<T>,
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
    let ch = cx.spec.c_h;
    for (_, at, class) in supervised(cx, target) {
        readout(cx.spec, cx.p, &next[at..at + ch], logits);
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
    score
}

/// The supervised cells of a sample (those with a target of 0 or more) in row order, each
/// as (cell, offset of its hidden channels in the padded state, target class).
fn supervised<'a, T>(
    cx: &'a Ctx<T>,
    target: &'a [i32],
) -> impl Iterator<Item = (usize, usize, usize)> + 'a {
    let (w, ci) = (cx.grid.width, cx.spec.c_in);
    (0..cx.grid.height)
        .flat_map(move |y| (0..w).map(move |xx| (y, xx)))
        .filter_map(move |(y, xx)| {
            let cell = y * w + xx;
            let class = usize::try_from(target[cell]).ok()?;
            Some((cell, cx.pad.at(y, xx) + ci, class))
        })
}

/// What the readout's backward pass writes: the gradients of Wo and bo, and the hidden
/// state's (`[cells][C_h]`), all added to.
struct ReadoutGrads<'a, T> {
    wo: &'a mut [T],
    bo: &'a mut [T],
    h: &'a mut [T],
}

/// The readout's share of the backward pass at one step: d CE / d logits =
/// scale x (softmax - onehot) for each supervised cell, into `g`.
fn readout_backward<T: Real>(
    cx: &Ctx<T>,
    target: &[i32],
    cur: &[T],
    scale: f64,
    logits: &mut [T],
    g: ReadoutGrads<T>,
) {
    let (spec, p) = (cx.spec, cx.p);
    let (ch, co) = (spec.c_h, spec.c_out);
    for (cell, at, class) in supervised(cx, target) {
        let hv = &cur[at..at + ch];
        readout(spec, p, hv, logits);
        softmax_grad(logits, class, scale);
        for (o, &d) in logits.iter().enumerate() {
            g.bo[o] += d;
        }
        let gh = &mut g.h[cell * ch..(cell + 1) * ch];
        for j in 0..ch {
            let span = j * co..(j + 1) * co;
            gh[j] += dense_backward_row(hv[j], &p.wo[span.clone()], &mut g.wo[span], logits);
        }
    }
}

/// Input i of a dense layer y = x W, backward: adds x_i dy into W's gradient row i
/// (`g_row`) and returns d loss / d x_i = W_i . dy (`w_row` is W's row i).
pub(super) fn dense_backward_row<T: Real>(x_i: T, w_row: &[T], g_row: &mut [T], dy: &[T]) -> T {
    let mut acc = T::ZERO;
    for ((g, &w), &d) in g_row.iter_mut().zip(w_row).zip(dy) {
        *g += x_i * d;
        acc += w * d;
    }
    acc
}

/// -log softmax(logits)[class], computed stably.
fn cross_entropy<T: Real>(logits: &[T], class: usize) -> f64 {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, v| m.max(v.to_f64()));
    let sum: f64 = logits.iter().map(|v| (v.to_f64() - max).exp()).sum();
    max + sum.ln() - logits[class].to_f64()
}

/// Replaces logits by scale * (softmax(logits) - onehot(class)).
fn softmax_grad<T: Real>(logits: &mut [T], class: usize, scale: f64) {
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
