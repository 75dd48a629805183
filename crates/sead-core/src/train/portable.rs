//! The portable step kernels, generic over f32/f64: one cell at a time, the math the AVX2
//! path is held to.

use super::driver::{dense_backward_row, Back, Ctx, StepGrads, StepKernels};
use crate::kernel::portable::{mix_update, perceive};
use crate::kernel::Simd;
use crate::real::Real;
use crate::spec::Update;

pub(super) struct Portable;

/// The backward step's working memory.
pub(super) struct Scratch<T> {
    /// d loss / d S_{t-1}, padded like the state.
    ds: Vec<T>,
    /// d loss / d z of one cell.
    dz: Vec<T>,
}

impl<T: Real> StepKernels<T> for Portable {
    type Scratch = Scratch<T>;
    const NOISE: Simd = Simd::Portable;

    fn scratch(&self, cx: &Ctx<T>) -> Scratch<T> {
        Scratch {
            ds: vec![T::ZERO; cx.pad.len()],
            dz: vec![T::ZERO; cx.spec.features],
        }
    }

    #[inline]
    fn forward_row(&self, cx: &Ctx<T>, src: &[T], y: usize, out: &mut [T], acts: &mut [T]) {
        let (spec, p) = (cx.spec, cx.p);
        let (c, ci, ch, f) = (spec.c(), spec.c_in, spec.c_h, spec.features);
        let rows = cx.pad.neighbour_rows(y);
        let old = cx.pad.at(y, 0) + ci;
        let mut bases = [0usize; 3];
        for xx in 0..cx.grid.width {
            for s in 0..cx.nseg {
                bases[s] = rows[s] + xx * c;
            }
            // perceive writes z into acts; mix_update ReLUs it in place, as the backward wants.
            let z = &mut acts[xx * f..(xx + 1) * f];
            perceive(spec, p, src, &bases[..cx.nseg], z);
            let at = xx * c;
            mix_update(
                spec,
                p,
                z,
                &src[old + at..old + at + ch],
                &mut out[at + ci..at + ci + ch],
            );
        }
    }

    fn backward(&self, cx: &Ctx<T>, back: Back<T>, g: StepGrads<T>, scratch: &mut Scratch<T>) {
        let (spec, p, pad) = (cx.spec, cx.p, cx.pad);
        let (c, ci, ch, f) = (spec.c(), spec.c_in, spec.c_h, spec.features);
        let seg = 3 * c;
        let (h, w) = (cx.grid.height, cx.grid.width);
        let Scratch { ds, dz } = scratch;

        ds.fill(T::ZERO);
        let mut bases = [0usize; 3];
        for y in 0..h {
            let rows = pad.neighbour_rows(y);
            for xx in 0..w {
                let cell = y * w + xx;
                let at = pad.at(y, xx) + ci;
                let dpre = &back.dpre[cell * ch..(cell + 1) * ch];
                let a = &back.acts[cell * f..(cell + 1) * f];
                for k in 0..f {
                    if a[k] > T::ZERO {
                        let span = k * ch..(k + 1) * ch;
                        dz[k] =
                            dense_backward_row(a[k], &p.w2[span.clone()], &mut g.w2[span], dpre);
                    } else {
                        dz[k] = T::ZERO;
                    }
                    g.b1[k] += dz[k];
                }
                for s in 0..cx.nseg {
                    bases[s] = rows[s] + xx * c;
                }
                for (s, &base) in bases[..cx.nseg].iter().enumerate() {
                    for jj in 0..seg {
                        let row = (s * seg + jj) * f;
                        let span = row..row + f;
                        let v = back.prev[base + jj];
                        ds[base + jj] +=
                            dense_backward_row(v, &p.w1[span.clone()], &mut g.w1[span], dz);
                    }
                }
                if spec.update == Update::Residual {
                    for j in 0..ch {
                        ds[at + j] += dpre[j];
                    }
                }
            }
        }
        pad.fold_halo(ds, spec.boundary, h);
        for y in 0..h {
            for xx in 0..w {
                let cell = y * w + xx;
                let at = pad.at(y, xx) + ci;
                g.h[cell * ch..(cell + 1) * ch].copy_from_slice(&ds[at..at + ch]);
            }
        }
    }
}
