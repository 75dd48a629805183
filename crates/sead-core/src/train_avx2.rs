//! The f32 training path on AVX2 + FMA: the same unroll, loss and back-propagation through
//! time as `train::train_step`'s portable code, with the per-cell loops replaced by
//! register-blocked GEMMs over whole rows of cells (`kernel::avx2`, `kernel::avx2_train`).
//!
//! Per step, forward: `avx2::forward_train_rows` (perceive, ReLU, mix, tanh; features kept).
//! Per step, backward, for the row(s) of a sample:
//!
//! - dpre = gh * (1 - h^2), dz = [a > 0] * (dpre W2^T)  (`dz_rows`, into a padded buffer
//!   with the state's halo geometry and F channels per cell);
//! - gW2 += a^T dpre and gW1 += S^T dz over all cells (`outer_acc`);
//! - the gradient at h_{t-1} gathered from the neighbours' dz through W1 with the
//!   neighbour order reversed (`rows_gemm`); the halo of the dz buffer is filled exactly as
//!   the state's is, which is what `Padded::fold_halo` does in the portable code. Only the
//!   hidden channels are computed (the input channels' gradient is dropped anyway).
//!
//! The noise, the loss, the readout gradient and the chunked, ordered summation of the
//! gradient are the portable code's, so the result equals it within float rounding and
//! does not depend on the thread count.

use crate::error::{Error, Result};
use crate::kernel::avx2::forward_train_rows;
use crate::kernel::avx2_train::{dz_rows, outer_acc, rows_gemm, Run};
use crate::kernel::Simd;
use crate::noise::NoiseStream;
use crate::spec::{Grid, Padded, Params, Spec, Update};
use crate::train::{initial_state, readout_backward, score_step, Batch, TrainOutput, CHUNK};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// One chunk's (loss, gradient, exact samples, correct cells).
type ChunkSum = (f64, Vec<f32>, u32, u64);

/// Weights rearranged once per call for the backward GEMMs.
struct Packed {
    /// W2 transposed, `[C_h][F]`.
    w2t: Vec<f32>,
    /// `[K][F][C_h]`: row (k', f) column j = W1[K-1-k'][C_in + j][f], the hidden-channel
    /// rows of W1 with the neighbour order reversed (cell p reads neighbour p + d through
    /// W1[k(d)], so cell q receives from q - d).
    wb1: Vec<f32>,
}

impl Packed {
    fn new(spec: &Spec, p: &Params<f32>) -> Self {
        let (c, ci, ch, f, k) = (spec.c(), spec.c_in, spec.c_h, spec.features, spec.k());
        let mut w2t = vec![0.0f32; ch * f];
        for ff in 0..f {
            for j in 0..ch {
                w2t[j * f + ff] = p.w2[ff * ch + j];
            }
        }
        let mut wb1 = vec![0.0f32; k * f * ch];
        for kk in 0..k {
            let src_k = k - 1 - kk;
            for ff in 0..f {
                for j in 0..ch {
                    wb1[(kk * f + ff) * ch + j] = p.w1[(src_k * c + ci + j) * f + ff];
                }
            }
        }
        Packed { w2t, wb1 }
    }
}

/// `train::train_step` for f32 on AVX2 + FMA. The caller has validated the spec, the
/// parameters and the batch, checked the memory limit and the CPU.
pub(crate) fn train_f32(
    spec: &Spec,
    params: &[f32],
    batch: &Batch,
    cancel: &AtomicBool,
    n_sup: u64,
    inv_nsup: f64,
) -> Result<TrainOutput<f32>> {
    let p = Params::split(spec, params);
    let packed = Packed::new(spec, &p);
    let grid = batch.grid;
    let cells = grid.cells_per_sample();
    let n_params = spec.param_count();

    let chunks: Vec<Result<ChunkSum>> = (0..grid.batch.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut grad = vec![0.0f32; n_params];
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
                    spec, &p, &packed, &grid, x, target, batch, noise, inv_nsup, &mut grad,
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
        grad: vec![0.0f32; n_params],
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

/// Working memory for one sample's unroll, reused across the samples of a chunk.
struct Work {
    pad: Padded,
    /// The padded geometry with F channels per cell: the dz buffer's.
    pad_f: Padded,
    /// The state after each step, S_0..S_T.
    states: Vec<f32>,
    /// With noise: the noisy state each step read, S_{t-1} + noise (empty without noise).
    inputs: Vec<f32>,
    acts: Vec<f32>,
    dzp: Vec<f32>,
    gh: Vec<f32>,
    dpre: Vec<f32>,
    logits: Vec<f32>,
    runs: Vec<Run>,
    /// One step's noise, `[cells][C_h]`.
    noise: Vec<f32>,
}

impl Work {
    fn new(spec: &Spec, grid: &Grid, steps: usize, noisy: bool) -> Self {
        let pad = Padded::new(spec, grid);
        let pad_f = Padded {
            c: spec.features,
            ..pad
        };
        let cells = grid.cells_per_sample();
        Work {
            pad,
            pad_f,
            states: vec![0.0; (steps + 1) * pad.len()],
            inputs: vec![0.0; if noisy { steps * pad.len() } else { 0 }],
            acts: vec![0.0; steps * cells * spec.features],
            dzp: vec![0.0; pad_f.len()],
            gh: vec![0.0; cells * spec.c_h],
            dpre: vec![0.0; cells * spec.c_h],
            logits: vec![0.0; spec.c_out],
            runs: Vec::with_capacity(grid.height),
            noise: vec![0.0; cells * spec.c_h],
        }
    }

    /// Unrolls one sample, adds its gradient into `grad`; returns (its share of the loss,
    /// whether it is exact after the last step, its correct supervised cells then).
    #[allow(clippy::too_many_arguments)]
    fn run_sample(
        &mut self,
        spec: &Spec,
        p: &Params<f32>,
        packed: &Packed,
        grid: &Grid,
        x: &[f32],
        target: &[i32],
        batch: &Batch,
        mut noise: NoiseStream,
        inv_nsup: f64,
        grad: &mut [f32],
    ) -> (f64, bool, u64) {
        let pad = self.pad;
        let plen = pad.len();
        let (c, ci, ch, f) = (spec.c(), spec.c_in, spec.c_h, spec.features);
        let steps = batch.step_weights.len();
        let (h, w) = (grid.height, grid.width);
        let nseg = if spec.dims == 1 { 1 } else { 3 };
        let row_acts = w * f;

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
            let prev: &[f32] = if batch.noise_std > 0.0 {
                // The same values, in the same order, as the portable code's normal() calls.
                noise.fill_normal(&mut self.noise, Simd::Avx2);
                let inp = &mut self.inputs[(t - 1) * plen..t * plen];
                inp.copy_from_slice(clean);
                for y in 0..h {
                    for xx in 0..w {
                        let at = pad.at(y, xx) + ci;
                        let cell = y * w + xx;
                        let nv = &self.noise[cell * ch..(cell + 1) * ch];
                        for (v, &e) in inp[at..at + ch].iter_mut().zip(nv) {
                            *v += batch.noise_std * e;
                        }
                    }
                }
                pad.fill_halo(inp, spec.boundary, h);
                inp
            } else {
                clean
            };
            next.copy_from_slice(prev);
            let acts = &mut self.acts[(t - 1) * (h * row_acts)..t * (h * row_acts)];
            for y in 0..h {
                let rows = pad.neighbour_rows(y);
                let at = pad.at(y, 0);
                forward_train_rows(
                    spec,
                    p,
                    prev,
                    &rows[..nseg],
                    at,
                    &mut next[at..at + w * c],
                    &mut acts[y * row_acts..(y + 1) * row_acts],
                );
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

        self.backward(spec, p, packed, grid, target, batch, inv_nsup, grad);
        (loss, exact, correct)
    }

    #[allow(clippy::too_many_arguments)]
    fn backward(
        &mut self,
        spec: &Spec,
        p: &Params<f32>,
        packed: &Packed,
        grid: &Grid,
        target: &[i32],
        batch: &Batch,
        inv_nsup: f64,
        grad: &mut [f32],
    ) {
        let (pad, pad_f) = (self.pad, self.pad_f);
        let plen = pad.len();
        let (c, ci, ch, f, co) = (spec.c(), spec.c_in, spec.c_h, spec.features, spec.c_out);
        let seg = 3 * c;
        let (h, w) = (grid.height, grid.width);
        let cells = h * w;
        let nseg = if spec.dims == 1 { 1 } else { 3 };
        let layout = spec.layout();
        let (gw1, rest) = grad.split_at_mut(layout.b1.start);
        let (gb1, rest) = rest.split_at_mut(f);
        let (gw2, rest) = rest.split_at_mut(f * ch);
        let (gb2, rest) = rest.split_at_mut(ch);
        let (gwo, gbo) = rest.split_at_mut(ch * co);
        let residual = spec.update == Update::Residual;

        self.gh.fill(0.0);
        // The dz halo: zeros stay zeros (zero boundary); periodic halos are refilled below.
        self.dzp.fill(0.0);
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

            // Step t: S_{t-1} -> h_t. dpre = gh * tanh'(.), then dz.
            let acts = &self.acts[(t - 1) * (cells * f)..t * (cells * f)];
            for y in 0..h {
                for xx in 0..w {
                    let cell = y * w + xx;
                    let at = pad.at(y, xx) + ci;
                    let h_new = &cur[at..at + ch];
                    let gh = &self.gh[cell * ch..(cell + 1) * ch];
                    let dpre = &mut self.dpre[cell * ch..(cell + 1) * ch];
                    for j in 0..ch {
                        dpre[j] = gh[j] * (1.0 - h_new[j] * h_new[j]);
                        gb2[j] += dpre[j];
                    }
                }
            }
            for y in 0..h {
                let at = pad_f.at(y, 0);
                let dz = &mut self.dzp[at..at + w * f];
                dz_rows(
                    f,
                    ch,
                    &self.dpre[y * w * ch..(y + 1) * w * ch],
                    &acts[y * w * f..(y + 1) * w * f],
                    &packed.w2t,
                    dz,
                );
                for cell in dz.chunks_exact(f) {
                    for (g, &d) in gb1.iter_mut().zip(cell) {
                        *g += d;
                    }
                }
            }

            // gW2 += a^T dpre over every cell of the sample.
            outer_acc(
                gw2,
                ch,
                f,
                ch,
                acts,
                f,
                &self.dpre,
                ch,
                &[Run {
                    a: 0,
                    b: 0,
                    n: cells,
                }],
            );
            // gW1[s] += (neighbourhood rows s)^T dz, one run per grid row.
            for s in 0..nseg {
                self.runs.clear();
                for y in 0..h {
                    self.runs.push(Run {
                        a: pad.neighbour_rows(y)[s],
                        b: pad_f.at(y, 0),
                        n: w,
                    });
                }
                outer_acc(
                    &mut gw1[s * seg * f..(s + 1) * seg * f],
                    f,
                    seg,
                    f,
                    prev,
                    c,
                    &self.dzp,
                    f,
                    &self.runs,
                );
            }

            // The gradient at h_{t-1}: gathered from the neighbours' dz (plus dpre itself
            // for the residual update).
            pad_f.fill_halo(&mut self.dzp, spec.boundary, h);
            for y in 0..h {
                let rows = pad_f.neighbour_rows(y);
                let init = if residual {
                    Some(&self.dpre[y * w * ch..(y + 1) * w * ch])
                } else {
                    None
                };
                rows_gemm(
                    w,
                    &self.dzp,
                    &rows[..nseg],
                    f,
                    3 * f,
                    &packed.wb1,
                    ch,
                    &mut self.gh[y * w * ch..(y + 1) * w * ch],
                    ch,
                    init,
                );
            }
        }
    }
}
