//! The AVX2 + FMA inference kernel: the same step as `portable::forward_tile`, fused and
//! register-blocked.
//!
//! A tile of cells is processed `MR` cells at a time. For each block of cells:
//!
//! 1. perceive: z = b1 + [neighbourhood rows] x W1, a GEMM of `MR` cells x 3C (per row
//!    segment) times 3C x F, computed 16 features (2 vectors) at a time with `MR` x 2
//!    accumulators in registers; each W1 row is loaded once per block (from L1) and every
//!    input broadcast once per feature block. ReLU is applied on the way out to a small
//!    scratch `[MR][F]`.
//! 2. mix: u = b2 (+ h) + a x W2, the same register-blocked GEMM over the scratch, then
//!    tanh (the rational approximation of `crate::real::tanh_f32`, vectorised, with the
//!    same exact +-1 beyond `SATURATE`), written straight to the next state; |h' - h| is
//!    folded into a running max vector.
//! 3. readout: logits = bo + h' x Wo (the same GEMM), then the argmax per cell.
//!
//! Feature, hidden and output counts that are not multiples of 8 use a masked last vector
//! (masked loads give zeros, so the padded lanes stay exactly 0 and are never stored to
//! the state). Nothing is allocated: the scratch comes with the call.
//!
//! `forward_train_rows` is the same kernel for the training forward: it keeps the ReLU
//! features of every cell (for the backward pass) instead of reading out.
//!
//! Every function here that uses AVX2/FMA is a `#[target_feature(enable = "avx2,fma")]`
//! function; the ways in are `forward_tile` and `forward_train_rows`, which check the CPU
//! (`available`) and every bound the raw-pointer code relies on before entering. The
//! helpers `gemm`, `row_ptrs`, `load_block`, `store_block`, `lane_mask` and the macros
//! `row_blocks` and `col_blocks` are shared with `avx2_train`.

use super::portable::{Source, Tile, TileStats};
use crate::real::{tanh_coef, TERNARY_HALF};
use crate::spec::{Params, Quantize, Spec, Update};
use std::arch::x86_64::*;

/// Cells per register block.
pub const MR: usize = super::portable::BLOCK_CELLS;

/// True when this CPU runs AVX2 and FMA (the result is cached by the standard library).
#[inline]
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Rounds up to a multiple of 8 (a vector of f32).
#[inline]
fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// One inference step over `n` consecutive cells of one row: the same contract as
/// `portable::forward_tile`. Falls back to the portable kernel if the CPU lacks AVX2/FMA
/// (only reachable when a caller builds `Simd::Avx2` by hand on such a CPU).
///
/// Panics (like the portable kernel's slice indexing) if a buffer is smaller than the
/// shapes say.
pub fn forward_tile(spec: &Spec, p: &Params<f32>, cells: Tile) -> TileStats {
    if !available() {
        return super::portable::forward_tile(spec, p, cells);
    }
    let n = cells.outputs.len();
    assert_eq!(
        p.wo.len(),
        spec.c_h * spec.c_out,
        "Wo size does not match the spec"
    );
    assert_eq!(p.bo.len(), spec.c_out, "bo size does not match the spec");
    let Some(rows) = Ctx::checked(spec, p, cells.source, cells.out, n) else {
        return TileStats::default();
    };
    let (fp, cop) = (pad8(spec.features), pad8(spec.c_out));
    let scratch = &mut cells.scratch.tile;
    if scratch.len() < MR * (fp + cop) {
        scratch.resize(MR * (fp + cop), 0.0);
    }
    let (z, logits) = scratch.split_at_mut(MR * fp);
    let ctx = Ctx {
        ldz: fp,
        cop,
        readout: true,
        quantize: spec.quantize == Quantize::Ternary,
        z: z.as_mut_ptr(),
        logits: logits.as_mut_ptr(),
        ..rows
    };
    // SAFETY: `available()` confirmed AVX2 and FMA on this CPU, so the target-feature
    // function may run. `Ctx::checked` and the asserts above establish every bound `tile`
    // documents: each neighbourhood row of each of the n cells lies in `src`, the old hidden
    // states lie in `src`, `out` holds n*C floats, `outputs` n bytes, every parameter tensor
    // has its spec size, and the scratch holds MR*(F8 + C_out8) floats. `out`, `outputs`
    // and the scratch are exclusive borrows, so nothing aliases the writes.
    unsafe { tile(&ctx, n, cells.outputs.as_mut_ptr()) }
}

/// The training forward of one row segment of `n` cells (n = `acts.len() / F`): writes
/// h' (the hidden part of each `out` cell, as `forward_tile`) and the ReLU features
/// `acts[i*F + f]` the backward pass needs; no readout.
///
/// Panics if a buffer is smaller than the shapes say, or if the CPU lacks AVX2/FMA (the
/// caller checks `available()` first).
pub fn forward_train_rows(
    spec: &Spec,
    p: &Params<f32>,
    source: Source,
    out: &mut [f32],
    acts: &mut [f32],
) {
    assert!(available(), "the AVX2 training kernel needs AVX2 and FMA");
    let f = spec.features;
    let n = acts.len() / f;
    assert!(acts.len() == n * f, "acts must hold whole cells");
    let Some(rows) = Ctx::checked(spec, p, source, out, n) else {
        return;
    };
    // Training keeps the unrounded tanh (the backward pass needs it; the driver rounds) and
    // reads out nothing, so `quantize`, `readout` and the logits stay off.
    let ctx = Ctx {
        ldz: f,
        zcell: f,
        z: acts.as_mut_ptr(),
        ..rows
    };
    // SAFETY: AVX2 and FMA are present (asserted). `Ctx::checked` establishes the bounds
    // `tile` needs for n cells as in `forward_tile`; the features go to `acts` (n*F floats,
    // rows written with the last partial vector masked), and with `readout` off neither the
    // logits scratch nor the outputs pointer is touched, so a dangling one is never read.
    unsafe {
        tile(&ctx, n, std::ptr::NonNull::dangling().as_ptr());
    }
}

/// `real::ternary` on 8 lanes: +1 above 1/2, -1 below -1/2, else 0 (NaN gives 0, as in the
/// scalar version).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ternary8(t: __m256) -> __m256 {
    let one = _mm256_set1_ps(1.0);
    let half = _mm256_set1_ps(TERNARY_HALF);
    let up = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(t, half), one);
    let down = _mm256_and_ps(
        _mm256_cmp_ps::<_CMP_LT_OQ>(t, _mm256_sub_ps(_mm256_setzero_ps(), half)),
        one,
    );
    _mm256_sub_ps(up, down)
}

/// Raw views of everything one tile needs. Built only by `forward_tile` and
/// `forward_train_rows`, through `Ctx::checked`.
struct Ctx {
    c: usize,
    ci: usize,
    ch: usize,
    f: usize,
    co: usize,
    /// Row stride of the features within a block (F rounded up to 8 in the scratch, F in
    /// the training activations).
    ldz: usize,
    /// Offset of cell i0's features from `z`: 0 when `z` is a one-block scratch, F when it
    /// is the whole tile's activations (training).
    zcell: usize,
    /// C_out rounded up to a multiple of 8: the logits scratch row stride.
    cop: usize,
    /// Compute logits and argmax outputs (inference); training skips them.
    readout: bool,
    nseg: usize,
    residual: bool,
    /// Round h' to -1, 0, +1 (`real::ternary`).
    quantize: bool,
    w1: *const f32,
    b1: *const f32,
    w2: *const f32,
    b2: *const f32,
    wo: *const f32,
    bo: *const f32,
    src: *const f32,
    bases: [usize; 3],
    old: usize,
    out: *mut f32,
    /// ReLU features: `[MR][ldz]` scratch for the current block, or `[n][F]` activations.
    z: *mut f32,
    /// `[MR][cop]` logits of the current block.
    logits: *mut f32,
}

impl Ctx {
    /// The views both ways in share, for `n` cells, after asserting every bound the pointer
    /// code relies on: `out` holds the n cells, there are 1 or 3 neighbourhood rows and each
    /// lies in `src` for all n cells, as do the old cells; W1, b1, W2, b2 have the spec's
    /// sizes. None for an empty tile (the shapes are still checked). Where the features go
    /// and whether to read out are the caller's to set; they start off.
    fn checked(
        spec: &Spec,
        p: &Params<f32>,
        source: Source,
        out: &mut [f32],
        n: usize,
    ) -> Option<Ctx> {
        let Source { src, bases, old } = source;
        let (c, ch, f) = (spec.c(), spec.c_h, spec.features);
        let nseg = bases.len();
        assert!(
            out.len() == n * c,
            "out holds {} floats, need {}",
            out.len(),
            n * c
        );
        assert!((1..=3).contains(&nseg), "bases must have 1 or 3 entries");
        assert_eq!(
            p.w1.len(),
            nseg * 3 * c * f,
            "W1 size does not match the spec"
        );
        assert_eq!(p.b1.len(), f, "b1 size does not match the spec");
        assert_eq!(p.w2.len(), f * ch, "W2 size does not match the spec");
        assert_eq!(p.b2.len(), ch, "b2 size does not match the spec");
        if n == 0 {
            return None;
        }
        for &b in bases {
            // Cell n-1's neighbourhood row ends at b + (n-1)*C + 3C.
            assert!(
                b + (n + 2) * c <= src.len(),
                "neighbourhood rows run past src"
            );
        }
        assert!(old + n * c <= src.len(), "old cells run past src");
        let mut seg_bases = [0usize; 3];
        seg_bases[..nseg].copy_from_slice(bases);
        Some(Ctx {
            c,
            ci: spec.c_in,
            ch,
            f,
            co: spec.c_out,
            ldz: 0,
            zcell: 0,
            cop: 0,
            readout: false,
            nseg,
            residual: spec.update == Update::Residual,
            quantize: false,
            w1: p.w1.as_ptr(),
            b1: p.b1.as_ptr(),
            w2: p.w2.as_ptr(),
            b2: p.b2.as_ptr(),
            wo: p.wo.as_ptr(),
            bo: p.bo.as_ptr(),
            src: src.as_ptr(),
            bases: seg_bases,
            old,
            out: out.as_mut_ptr(),
            z: std::ptr::null_mut(),
            logits: std::ptr::null_mut(),
        })
    }
}

/// Lanes `0..rem` set (rem in 1..=8).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn lane_mask(rem: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(rem as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// Loads vector `v` (floats 8v..8v+8 from `p`) of a column block of NV vectors; with
/// `MASKED` the block's last vector loads only the lanes in `mask` (the rest read as 0 and
/// are not touched in memory).
///
/// # Safety
/// The lanes loaded must lie in one allocation the caller may read.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn load<const NV: usize, const MASKED: bool>(
    p: *const f32,
    v: usize,
    mask: __m256i,
) -> __m256 {
    // SAFETY: the caller guarantees the loaded lanes are readable.
    unsafe {
        let p = p.add(8 * v);
        if MASKED && v == NV - 1 {
            _mm256_maskload_ps(p, mask)
        } else {
            _mm256_loadu_ps(p)
        }
    }
}

/// Stores `x` as vector `v` of a column block at `p`, the last one masked as in `load`.
///
/// # Safety
/// The lanes stored must lie in one allocation the caller may write.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store<const NV: usize, const MASKED: bool>(
    p: *mut f32,
    v: usize,
    mask: __m256i,
    x: __m256,
) {
    // SAFETY: the caller guarantees the stored lanes are writable.
    unsafe {
        let p = p.add(8 * v);
        if MASKED && v == NV - 1 {
            _mm256_maskstore_ps(p, mask, x)
        } else {
            _mm256_storeu_ps(p, x)
        }
    }
}

/// An M x NV block of accumulators every row of which starts as the column block at `p`
/// (a bias).
///
/// # Safety
/// As `load`, for each of the NV vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn bias_block<const M: usize, const NV: usize, const MASKED: bool>(
    p: *const f32,
    mask: __m256i,
) -> [[__m256; NV]; M] {
    let mut acc = [[_mm256_setzero_ps(); NV]; M];
    for v in 0..NV {
        // SAFETY: the caller guarantees the block's lanes are readable.
        let b = unsafe { load::<NV, MASKED>(p, v, mask) };
        for row in acc.iter_mut() {
            row[v] = b;
        }
    }
    acc
}

/// Loads an M x NV block: row r is the column block at `p + r*ld`.
///
/// # Safety
/// As `load`, for every row and vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn load_block<const M: usize, const NV: usize, const MASKED: bool>(
    p: *const f32,
    ld: usize,
    mask: __m256i,
) -> [[__m256; NV]; M] {
    let mut acc = [[_mm256_setzero_ps(); NV]; M];
    for (r, row) in acc.iter_mut().enumerate() {
        for (v, x) in row.iter_mut().enumerate() {
            // SAFETY: the caller guarantees every row's lanes are readable.
            *x = unsafe { load::<NV, MASKED>(p.add(r * ld), v, mask) };
        }
    }
    acc
}

/// Stores an M x NV block: row r to the column block at `p + r*ld`.
///
/// # Safety
/// As `store`, for every row and vector.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn store_block<const M: usize, const NV: usize, const MASKED: bool>(
    p: *mut f32,
    ld: usize,
    mask: __m256i,
    acc: [[__m256; NV]; M],
) {
    for (r, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            // SAFETY: the caller guarantees every row's lanes are writable.
            unsafe { store::<NV, MASKED>(p.add(r * ld), v, mask, x) };
        }
    }
}

/// The A operand of `gemm`: M row pointers `stride` floats apart, the first at `p`.
///
/// # Safety
/// Each of the M rows starts inside `p`'s allocation.
#[inline]
pub(super) unsafe fn row_ptrs<const M: usize>(p: *const f32, stride: usize) -> [*const f32; M] {
    let mut a = [std::ptr::null(); M];
    for (r, ar) in a.iter_mut().enumerate() {
        // SAFETY: the caller guarantees row r starts inside the allocation.
        *ar = unsafe { p.add(r * stride) };
    }
    a
}

/// The register-blocked GEMM step every layer uses: for j in 0..k,
/// `acc[r][v] += a[r][j*sa] * w[j*ldw + 8v .. +8]`, the last vector masked with `MASKED`.
///
/// # Safety
/// For every r and j < k, `a[r].add(j*sa)` is readable; for every j < k and v < NV the lanes
/// of `w.add(j*ldw + 8v)` that are loaded (all 8, or the mask's for the last vector when
/// `MASKED`) are readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gemm<const M: usize, const NV: usize, const MASKED: bool>(
    mut acc: [[__m256; NV]; M],
    a: [*const f32; M],
    sa: usize,
    k: usize,
    w: *const f32,
    ldw: usize,
    mask: __m256i,
) -> [[__m256; NV]; M] {
    // SAFETY: the caller guarantees every address read here is in bounds (see above).
    unsafe {
        for j in 0..k {
            // Row j's start: in bounds (it is read), unlike one row past the last.
            let wp = w.add(j * ldw);
            let mut wv = [_mm256_setzero_ps(); NV];
            for (v, x) in wv.iter_mut().enumerate() {
                *x = load::<NV, MASKED>(wp, v, mask);
            }
            for (row, ar) in acc.iter_mut().zip(a) {
                let b = _mm256_broadcast_ss(&*ar.add(j * sa));
                for (x, &wx) in row.iter_mut().zip(&wv) {
                    *x = _mm256_fmadd_ps(b, wx, *x);
                }
            }
        }
        acc
    }
}

/// tanh of 8 lanes: `crate::real::tanh_f32` vectorised (FMA in the polynomials, so within
/// an ulp or two of it), exactly +-1 where |x| >= SATURATE.
///
/// # Safety
/// Outside AVX2/FMA code, call only after `available()` returned true.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn tanh8(x: __m256) -> __m256 {
    use tanh_coef::*;
    let sign = _mm256_set1_ps(-0.0);
    let ax = _mm256_andnot_ps(sign, x);
    let sat = _mm256_cmp_ps::<_CMP_GE_OQ>(ax, _mm256_set1_ps(SATURATE));
    let xc = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-CLAMP)),
        _mm256_set1_ps(CLAMP),
    );
    let x2 = _mm256_mul_ps(xc, xc);
    let s = _mm256_set1_ps;
    let mut p = _mm256_fmadd_ps(x2, s(A13), s(A11));
    p = _mm256_fmadd_ps(x2, p, s(A9));
    p = _mm256_fmadd_ps(x2, p, s(A7));
    p = _mm256_fmadd_ps(x2, p, s(A5));
    p = _mm256_fmadd_ps(x2, p, s(A3));
    p = _mm256_fmadd_ps(x2, p, s(A1));
    p = _mm256_mul_ps(p, xc);
    let mut q = _mm256_fmadd_ps(x2, s(B6), s(B4));
    q = _mm256_fmadd_ps(x2, q, s(B2));
    q = _mm256_fmadd_ps(x2, q, s(B0));
    let r = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(p, q), s(-1.0)), s(1.0));
    let one = _mm256_or_ps(_mm256_and_ps(x, sign), s(1.0));
    _mm256_blendv_ps(r, one, sat)
}

/// Runs `$f::<M>($ctx, i0, $args..)` over rows (cells) 0..$n: blocks of M = MR rows
/// starting at i0, then one shorter block for the rest.
macro_rules! row_blocks {
    ($n:expr, $f:ident($ctx:expr $(, $arg:expr)*)) => {{
        let n: usize = $n;
        let mut i0 = 0;
        while i0 + MR <= n {
            $f::<MR>($ctx, i0 $(, $arg)*);
            i0 += MR;
        }
        match n - i0 {
            0 => {}
            1 => $f::<1>($ctx, i0 $(, $arg)*),
            2 => $f::<2>($ctx, i0 $(, $arg)*),
            3 => $f::<3>($ctx, i0 $(, $arg)*),
            4 => $f::<4>($ctx, i0 $(, $arg)*),
            5 => $f::<5>($ctx, i0 $(, $arg)*),
            _ => unreachable!("MR is 6"),
        }
    }};
}
pub(super) use row_blocks;
// `row_blocks` spells out the short blocks 1..MR.
const _: () = assert!(MR == 6);

/// Where one block function call works: rows (cells) i0..i0+M, columns col..col+8*NV;
/// `mask` selects the lanes of the last vector when the block is partial (MASKED).
#[derive(Clone, Copy)]
pub(super) struct Block {
    pub i0: usize,
    pub col: usize,
    pub mask: __m256i,
}

/// Covers columns 0..$cols of rows $i0.. in blocks of at most two vectors, calling
/// `$f::<M, NV, MASKED>($args.., Block { i0, col, mask })` for each: two whole vectors while
/// 16 or more columns remain, the last vector masked where a block is partial.
macro_rules! col_blocks {
    ($cols:expr, $i0:expr, $f:ident::<$m:ident>($($arg:expr),*)) => {{
        let (cols, i0): (usize, usize) = ($cols, $i0);
        let mut col = 0;
        let whole = _mm256_setzero_si256(); // the mask of an unmasked block: unused
        while col < cols {
            let rem = cols - col;
            col += if rem >= 16 {
                $f::<$m, 2, false>($($arg,)* Block { i0, col, mask: whole });
                16
            } else if rem > 8 {
                $f::<$m, 2, true>($($arg,)* Block { i0, col, mask: lane_mask(rem - 8) });
                rem
            } else if rem == 8 {
                $f::<$m, 1, false>($($arg,)* Block { i0, col, mask: whole });
                8
            } else {
                $f::<$m, 1, true>($($arg,)* Block { i0, col, mask: lane_mask(rem) });
                rem
            };
        }
    }};
}
pub(super) use col_blocks;

/// Runs all n cells of the tile: full blocks of MR cells, then one short block.
///
/// # Safety
/// AVX2 and FMA are available, and `ctx`/`outputs` satisfy the bounds `forward_tile`
/// asserts for these n cells.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile(ctx: &Ctx, n: usize, outputs: *mut u8) -> TileStats {
    let mut maxd = _mm256_setzero_ps();
    let mut changed = 0u64;
    // SAFETY: every block covers cells i0..i0+M with i0 + M <= n, inside the bounds the
    // caller established for n cells.
    unsafe { row_blocks!(n, block(ctx, outputs, &mut maxd, &mut changed)) };
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` is 8 writable floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), maxd) };
    TileStats {
        max_delta: lanes.iter().fold(0.0f32, |m, &v| m.max(v)),
        changed,
    }
}

/// One block of M cells starting at cell i0: perceive, mix, tanh, delta, readout, argmax.
///
/// # Safety
/// As `tile`, with i0 + M <= n.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const M: usize>(
    ctx: &Ctx,
    i0: usize,
    outputs: *mut u8,
    maxd: &mut __m256,
    changed: &mut u64,
) {
    // SAFETY: the column blocks stay inside F, C_h and C_out (the masks cover the last
    // partial vector), the cells inside i0..i0+M, which the caller bounds.
    unsafe {
        col_blocks!(ctx.f, i0, perceive::<M>(ctx));
        col_blocks!(ctx.ch, i0, mix::<M>(ctx, maxd));
        if !ctx.readout {
            return;
        }
        col_blocks!(ctx.co, i0, readout::<M>(ctx));
        for r in 0..M {
            let l = std::slice::from_raw_parts(ctx.logits.add(r * ctx.cop), ctx.co);
            let mut best = 0;
            for o in 1..l.len() {
                if l[o] > l[best] {
                    best = o;
                }
            }
            let slot = &mut *outputs.add(i0 + r);
            if *slot != best as u8 {
                *changed += 1;
                *slot = best as u8;
            }
        }
    }
}

/// Features col..col+8*NV of cells i0..i0+M: z = relu(b1 + rows x W1), into the scratch.
///
/// # Safety
/// As `block`; the masked lanes are exactly the columns past F.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn perceive<const M: usize, const NV: usize, const MASKED: bool>(ctx: &Ctx, b: Block) {
    let Block { i0, col, mask } = b;
    // SAFETY: b1 and W1 columns col..col+8*NV are in bounds with the mask on the last
    // vector; each cell's neighbourhood row of 3C floats lies in src (checked for all n
    // cells); the scratch row r holds fp >= col + 8*NV floats.
    unsafe {
        let seg = 3 * ctx.c;
        let mut acc = bias_block::<M, NV, MASKED>(ctx.b1.add(col), mask);
        for s in 0..ctx.nseg {
            let a = row_ptrs::<M>(ctx.src.add(ctx.bases[s] + i0 * ctx.c), ctx.c);
            let w = ctx.w1.add(s * seg * ctx.f + col);
            acc = gemm::<M, NV, MASKED>(acc, a, 1, seg, w, ctx.f, mask);
        }
        let zero = _mm256_setzero_ps();
        for x in acc.iter_mut().flatten() {
            *x = _mm256_max_ps(*x, zero);
        }
        store_block::<M, NV, MASKED>(ctx.z.add(i0 * ctx.zcell + col), ctx.ldz, mask, acc);
    }
}

/// Hidden channels col..col+8*NV of cells i0..i0+M: h' = tanh(b2 (+ h) + a x W2), written
/// to the next state; folds |h' - h| into `maxd`.
///
/// # Safety
/// As `block`; the masked lanes are exactly the channels past C_h.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn mix<const M: usize, const NV: usize, const MASKED: bool>(
    ctx: &Ctx,
    maxd: &mut __m256,
    b: Block,
) {
    let Block { i0, col, mask } = b;
    // SAFETY: b2 and W2 columns col..col+8*NV are in bounds with the mask; the old and new
    // hidden channels col.. of cell i0+r lie in src/out (cells < n, channel < C_h with the
    // mask); the scratch rows hold F features each.
    unsafe {
        // The old hidden channels col.. of the block's cells, row stride C.
        let h_old = ctx.src.add(ctx.old + i0 * ctx.c + ctx.ci + col);
        let mut acc = bias_block::<M, NV, MASKED>(ctx.b2.add(col), mask);
        if ctx.residual {
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, x) in row.iter_mut().enumerate() {
                    *x = _mm256_add_ps(*x, load::<NV, MASKED>(h_old.add(r * ctx.c), v, mask));
                }
            }
        }
        let a = row_ptrs::<M>(ctx.z.add(i0 * ctx.zcell), ctx.ldz);
        acc = gemm::<M, NV, MASKED>(acc, a, 1, ctx.f, ctx.w2.add(col), ctx.ch, mask);
        let sign = _mm256_set1_ps(-0.0);
        let mut m = *maxd;
        for (r, row) in acc.iter().enumerate() {
            for (v, &u) in row.iter().enumerate() {
                let h = if ctx.quantize {
                    ternary8(tanh8(u))
                } else {
                    tanh8(u)
                };
                let hp = ctx.out.add((i0 + r) * ctx.c + ctx.ci + col);
                store::<NV, MASKED>(hp, v, mask, h);
                // Masked lanes: h = tanh(0) = 0 and h_old = 0, so they add nothing.
                let old = load::<NV, MASKED>(h_old.add(r * ctx.c), v, mask);
                let d = _mm256_andnot_ps(sign, _mm256_sub_ps(h, old));
                m = _mm256_max_ps(m, d);
            }
        }
        *maxd = m;
    }
}

/// Outputs col..col+8*NV of cells i0..i0+M: logits = bo + h' x Wo, into the scratch.
///
/// # Safety
/// As `block`, after `mix` wrote h' of these cells; the masked lanes are the outputs past
/// C_out.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn readout<const M: usize, const NV: usize, const MASKED: bool>(ctx: &Ctx, b: Block) {
    let Block { i0, col, mask } = b;
    // SAFETY: bo and Wo columns col..col+8*NV are in bounds with the mask; cell i0+r's
    // C_h new hidden channels lie in `out`; the logits scratch row holds cop floats.
    unsafe {
        let acc = bias_block::<M, NV, MASKED>(ctx.bo.add(col), mask);
        let a = row_ptrs::<M>(ctx.out.add(i0 * ctx.c + ctx.ci), ctx.c);
        let acc = gemm::<M, NV, MASKED>(acc, a, 1, ctx.ch, ctx.wo.add(col), ctx.co, mask);
        // The scratch row is padded to whole vectors, so no mask is needed.
        store_block::<M, NV, false>(ctx.logits.add(col), ctx.cop, mask, acc);
    }
}
