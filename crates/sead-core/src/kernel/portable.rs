//! The portable kernels: plain Rust, generic over f32/f64, written so the compiler can
//! vectorise the inner loops over features. They define the math; the SIMD kernels are
//! held to them in the tests.

use crate::real::{ternary, Real};
use crate::spec::{Params, Quantize, Spec, Update};

/// Perceive: z = b1 + sum over neighbourhood rows of (3*C floats starting at `bases[s]`)
/// times the matching rows of W1. `bases` has 1 entry in 1D, 3 in 2D.
#[inline]
pub fn perceive<T: Real>(spec: &Spec, p: &Params<T>, src: &[T], bases: &[usize], z: &mut [T]) {
    let f = spec.features;
    let seg = 3 * spec.c();
    z.copy_from_slice(p.b1);
    for (s, &base) in bases.iter().enumerate() {
        accumulate(
            &src[base..base + seg],
            &p.w1[s * seg * f..(s + 1) * seg * f],
            z,
        );
    }
}

/// z += sum over j of inputs[j] * (row j of `w`, `z.len()` wide), in order of j, skipping
/// zeros: `perceive`'s inner loop. `verify` runs it on one neighbour at a time; the same
/// additions in the same order give the same bits as one call over the whole neighbourhood.
#[inline]
pub fn accumulate<T: Real>(inputs: &[T], w: &[T], z: &mut [T]) {
    let f = z.len();
    for (j, &v) in inputs.iter().enumerate() {
        if v == T::ZERO {
            continue; // one-hot inputs and the zero halo make this common
        }
        let row = &w[j * f..(j + 1) * f];
        for (zf, &wf) in z.iter_mut().zip(row) {
            *zf += wf * v;
        }
    }
}

/// Mix and update: a = relu(z) (in place), h' = tanh(b2 + a W2 [+ h]).
#[inline]
pub fn mix_update<T: Real>(spec: &Spec, p: &Params<T>, z: &mut [T], h_old: &[T], h_new: &mut [T]) {
    let ch = spec.c_h;
    h_new.copy_from_slice(p.b2);
    if spec.update == Update::Residual {
        for (u, &h) in h_new.iter_mut().zip(h_old) {
            *u += h;
        }
    }
    for (f, a) in z.iter_mut().enumerate() {
        if *a > T::ZERO {
            let row = &p.w2[f * ch..(f + 1) * ch];
            for (u, &w) in h_new.iter_mut().zip(row) {
                *u += w * *a;
            }
        } else {
            *a = T::ZERO;
        }
    }
    for u in h_new.iter_mut() {
        *u = u.tanh();
    }
}

/// Applies the spec's quantizer to a freshly computed hidden state (inference; training keeps
/// the unrounded tanh for the backward pass and rounds in the driver).
#[inline]
pub fn quantize<T: Real>(spec: &Spec, h: &mut [T]) {
    if spec.quantize == Quantize::Ternary {
        for v in h.iter_mut() {
            *v = ternary(*v);
        }
    }
}

/// Readout: logits = bo + h Wo.
#[inline]
pub fn readout<T: Real>(spec: &Spec, p: &Params<T>, h: &[T], logits: &mut [T]) {
    let co = spec.c_out;
    logits.copy_from_slice(p.bo);
    for (j, &hj) in h.iter().enumerate() {
        let row = &p.wo[j * co..(j + 1) * co];
        for (l, &w) in logits.iter_mut().zip(row) {
            *l += w * hj;
        }
    }
}

/// Index of the largest value; the first one on ties.
#[inline]
pub fn argmax<T: Real>(v: &[T]) -> usize {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i] > v[best] {
            best = i;
        }
    }
    best
}

/// Cells the SIMD kernels process together (one register block).
pub const BLOCK_CELLS: usize = 6;

/// Scratch space one thread needs for one tile.
pub struct Scratch<T> {
    /// One cell's features (portable kernel).
    pub z: Vec<T>,
    /// One cell's logits (portable kernel).
    pub logits: Vec<T>,
    /// One block of `BLOCK_CELLS` cells for the SIMD kernels: features then logits, each
    /// row padded to a multiple of 8.
    pub tile: Vec<T>,
}

impl<T: Real> Scratch<T> {
    pub fn new(spec: &Spec) -> Self {
        let pad8 = |n: usize| n.div_ceil(8) * 8;
        Scratch {
            z: vec![T::ZERO; spec.features],
            logits: vec![T::ZERO; spec.c_out],
            tile: vec![T::ZERO; BLOCK_CELLS * (pad8(spec.features) + pad8(spec.c_out))],
        }
    }

    /// True when this scratch was sized for a spec with these features and outputs.
    pub fn fits(&self, spec: &Spec) -> bool {
        self.z.len() == spec.features && self.logits.len() == spec.c_out
    }
}

/// What one tile of cells reports: the largest |h' - h| and how many argmax outputs changed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TileStats {
    pub max_delta: f32,
    pub changed: u64,
}

impl TileStats {
    pub fn merge(self, o: TileStats) -> TileStats {
        TileStats {
            max_delta: self.max_delta.max(o.max_delta),
            changed: self.changed + o.changed,
        }
    }
}

/// What `n` consecutive cells of one row read in a step: the inference kernels' and the
/// AVX2 training forward's.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    /// The sample's padded state.
    pub src: &'a [f32],
    /// `bases[s] + i*C` is the start of cell i's neighbourhood row s in `src` (1 row in 1D,
    /// 3 in 2D).
    pub bases: &'a [usize],
    /// The float offset in `src` of cell 0.
    pub old: usize,
}

/// Everything one inference step over `n` consecutive cells of one row reads, writes and
/// works in: the argument of every step kernel (`portable::forward_tile`,
/// `avx2::forward_tile`).
pub struct Tile<'a> {
    pub source: Source<'a>,
    /// The same n cells (n*C floats) of the next state, whose hidden part is written here.
    pub out: &'a mut [f32],
    /// The n argmax outputs, updated in place.
    pub outputs: &'a mut [u8],
    /// The calling thread's working memory.
    pub scratch: &'a mut Scratch<f32>,
}

/// One inference step over a tile of cells, for f32.
pub fn forward_tile(spec: &Spec, p: &Params<f32>, tile: Tile) -> TileStats {
    let c = spec.c();
    let c_in = spec.c_in;
    let Source { src, bases, old } = tile.source;
    let z = &mut tile.scratch.z;
    let mut stats = TileStats::default();
    let mut cell_bases = [0usize; 3];
    let cells = tile.out.chunks_exact_mut(c).zip(tile.outputs.iter_mut());
    for (i, (cell, out_class)) in cells.enumerate() {
        for (cb, &b) in cell_bases.iter_mut().zip(bases) {
            *cb = b + i * c;
        }
        perceive(spec, p, src, &cell_bases[..bases.len()], z);
        let h_old = &src[old + i * c + c_in..old + (i + 1) * c];
        let h_new = &mut cell[c_in..];
        mix_update(spec, p, z, h_old, h_new);
        quantize(spec, h_new);
        for (a, b) in h_new.iter().zip(h_old) {
            stats.max_delta = stats.max_delta.max((a - b).abs());
        }
        readout(spec, p, h_new, &mut tile.scratch.logits);
        let class = argmax(&tile.scratch.logits) as u8;
        if class != *out_class {
            stats.changed += 1;
            *out_class = class;
        }
    }
    stats
}
