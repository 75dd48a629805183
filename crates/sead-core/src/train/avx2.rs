//! The f32 step kernels on AVX2 + FMA: register-blocked GEMMs over whole rows of cells
//! (`kernel::avx2`, `kernel::avx2_train`) in place of the portable per-cell loops.
//!
//! Forward, per row: `avx2::forward_train_rows` (perceive, ReLU, mix, tanh; features kept).
//! Backward, per step, from the driver's dpre = gh * (1 - h^2):
//!
//! - dz = [a > 0] * (dpre W2^T) (`dz_rows`, into a padded buffer with the state's halo
//!   geometry and F channels per cell);
//! - gW2 += a^T dpre and gW1 += S^T dz over all cells (`outer_acc`);
//! - the gradient at h_{t-1} gathered from the neighbours' dz through W1 with the
//!   neighbour order reversed (`rows_gemm`); the halo of the dz buffer is filled exactly as
//!   the state's is, which is what `Padded::fold_halo` does in the portable code. Only the
//!   hidden channels are computed (the input channels' gradient is dropped anyway).
//!
//! The same math summed in another order, so it equals the portable path within float
//! rounding.

use super::driver::{Back, Ctx, StepGrads, StepKernels};
use crate::kernel::avx2::forward_train_rows;
use crate::kernel::avx2_train::{dz_rows, outer_acc, rows_gemm, Run};
use crate::kernel::Simd;
use crate::kernel::Source;
use crate::spec::{Padded, Params, Spec, Update};

/// The AVX2 kernels with the weights rearranged once per call for the backward GEMMs.
/// Only built where `kernel::avx2_available()`; the kernels assert it.
pub(super) struct Avx2 {
    /// W2 transposed, `[C_h][F]`.
    w2t: Vec<f32>,
    /// `[K][F][C_h]`: row (k', f) column j = W1[K-1-k'][C_in + j][f], the hidden-channel
    /// rows of W1 with the neighbour order reversed (cell p reads neighbour p + d through
    /// W1[k(d)], so cell q receives from q - d).
    wb1: Vec<f32>,
}

impl Avx2 {
    pub(super) fn new(spec: &Spec, p: &Params<f32>) -> Self {
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
        Avx2 { w2t, wb1 }
    }
}

/// The backward step's working memory.
pub(super) struct Scratch {
    /// The padded geometry with F channels per cell: the dz buffer's.
    pad_f: Padded,
    /// dz, padded. Every float a step reads it writes first (interior by `dz_rows`, halo
    /// by `fill_halo`), so it is zeroed only here.
    dzp: Vec<f32>,
    runs: Vec<Run>,
}

impl StepKernels<f32> for Avx2 {
    type Scratch = Scratch;
    const NOISE: Simd = Simd::Avx2;

    fn scratch(&self, cx: &Ctx<f32>) -> Scratch {
        let pad_f = Padded {
            c: cx.spec.features,
            ..cx.pad
        };
        Scratch {
            pad_f,
            dzp: vec![0.0; pad_f.len()],
            runs: Vec::with_capacity(cx.grid.height),
        }
    }

    #[inline]
    fn forward_row(&self, cx: &Ctx<f32>, src: &[f32], y: usize, out: &mut [f32], acts: &mut [f32]) {
        let rows = cx.pad.neighbour_rows(y);
        let at = cx.pad.at(y, 0);
        let source = Source {
            src,
            bases: &rows[..cx.nseg],
            old: at,
        };
        forward_train_rows(cx.spec, cx.p, source, out, acts);
    }

    fn backward(&self, cx: &Ctx<f32>, back: Back<f32>, g: StepGrads<f32>, scratch: &mut Scratch) {
        let (spec, pad) = (cx.spec, cx.pad);
        let pad_f = scratch.pad_f;
        let (c, ch, f) = (spec.c(), spec.c_h, spec.features);
        let seg = 3 * c;
        let (h, w) = (cx.grid.height, cx.grid.width);
        let cells = h * w;
        let nseg = cx.nseg;

        for y in 0..h {
            let at = pad_f.at(y, 0);
            let dz = &mut scratch.dzp[at..at + w * f];
            dz_rows(
                f,
                ch,
                &back.dpre[y * w * ch..(y + 1) * w * ch],
                &back.acts[y * w * f..(y + 1) * w * f],
                &self.w2t,
                dz,
            );
            for cell in dz.chunks_exact(f) {
                for (gb, &d) in g.b1.iter_mut().zip(cell) {
                    *gb += d;
                }
            }
        }

        // gW2 += a^T dpre over every cell of the sample.
        outer_acc(
            g.w2,
            ch,
            f,
            ch,
            back.acts,
            f,
            back.dpre,
            ch,
            &[Run {
                a: 0,
                b: 0,
                n: cells,
            }],
        );
        // gW1[s] += (neighbourhood rows s)^T dz, one run per grid row.
        for s in 0..nseg {
            scratch.runs.clear();
            for y in 0..h {
                scratch.runs.push(Run {
                    a: pad.neighbour_rows(y)[s],
                    b: pad_f.at(y, 0),
                    n: w,
                });
            }
            outer_acc(
                &mut g.w1[s * seg * f..(s + 1) * seg * f],
                f,
                seg,
                f,
                back.prev,
                c,
                &scratch.dzp,
                f,
                &scratch.runs,
            );
        }

        // The gradient at h_{t-1}: gathered from the neighbours' dz (plus dpre itself for
        // the residual update).
        pad_f.fill_halo(&mut scratch.dzp, spec.boundary, h);
        let residual = spec.update == Update::Residual;
        for y in 0..h {
            let rows = pad_f.neighbour_rows(y);
            let init = residual.then(|| &back.dpre[y * w * ch..(y + 1) * w * ch]);
            rows_gemm(
                w,
                &scratch.dzp,
                &rows[..nseg],
                f,
                3 * f,
                &self.wb1,
                ch,
                &mut g.h[y * w * ch..(y + 1) * w * ch],
                ch,
                init,
            );
        }
    }
}
