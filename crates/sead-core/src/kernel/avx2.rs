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
//! helpers `gemm`, `load`, `store` and `lane_mask` are shared with `avx2_train`.

use super::portable::{Scratch, TileStats};
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
#[allow(clippy::too_many_arguments)]
pub fn forward_tile(
    spec: &Spec,
    p: &Params<f32>,
    src: &[f32],
    bases: &[usize],
    old: usize,
    out: &mut [f32],
    outputs: &mut [u8],
    scratch: &mut Scratch<f32>,
) -> TileStats {
    if !available() {
        return super::portable::forward_tile(spec, p, src, bases, old, out, outputs, scratch);
    }
    let (c, ci, ch, f, co) = (spec.c(), spec.c_in, spec.c_h, spec.features, spec.c_out);
    let n = outputs.len();
    let nseg = bases.len();
    // Every bound the pointer code below relies on, checked once per tile.
    assert_row_shapes(spec, p, nseg, n, out);
    assert_eq!(p.wo.len(), ch * co, "Wo size does not match the spec");
    assert_eq!(p.bo.len(), co, "bo size does not match the spec");
    if n == 0 {
        return TileStats::default();
    }
    for &b in bases {
        // Cell n-1's neighbourhood row ends at b + (n-1)*C + 3C.
        assert!(
            b + (n + 2) * c <= src.len(),
            "neighbourhood rows run past src"
        );
    }
    assert!(old + n * c <= src.len(), "old cells run past src");
    let (fp, cop) = (pad8(f), pad8(co));
    if scratch.tile.len() < MR * (fp + cop) {
        scratch.tile.resize(MR * (fp + cop), 0.0);
    }
    let (z, logits) = scratch.tile.split_at_mut(MR * fp);
    let mut seg_bases = [0usize; 3];
    seg_bases[..nseg].copy_from_slice(bases);
    let ctx = Ctx {
        c,
        ci,
        ch,
        f,
        co,
        ldz: fp,
        zcell: 0,
        cop,
        readout: true,
        nseg,
        residual: spec.update == Update::Residual,
        quantize: spec.quantize == Quantize::Ternary,
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
        z: z.as_mut_ptr(),
        logits: logits.as_mut_ptr(),
    };
    // SAFETY: `available()` confirmed AVX2 and FMA on this CPU, so the target-feature
    // function may run. The asserts above establish every bound `tile` documents: each
    // neighbourhood row of each of the n cells lies in `src` (base + (n+2)*C <= len), the
    // old hidden states lie in `src`, `out` holds n*C floats, `outputs` n bytes, every
    // parameter tensor has its spec size, and the scratch holds MR*(F8 + C_out8) floats.
    // `out`, `outputs` and the scratch are exclusive borrows, so nothing aliases the writes.
    unsafe { tile(&ctx, n, outputs.as_mut_ptr()) }
}

/// The bounds both kernels' pointer code relies on: `out` holds `n` cells, there are 1 or 3
/// neighbourhood rows, and W1, b1, W2, b2 have the spec's sizes.
fn assert_row_shapes(spec: &Spec, p: &Params<f32>, nseg: usize, n: usize, out: &[f32]) {
    let (c, ch, f) = (spec.c(), spec.c_h, spec.features);
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
}

/// The training forward of one row segment of `n` cells (n = `acts.len() / F`): writes
/// h' (the hidden part of each `out` cell, as `forward_tile`) and the ReLU features
/// `acts[i*F + f]` the backward pass needs; no readout.
///
/// Panics if a buffer is smaller than the shapes say, or if the CPU lacks AVX2/FMA (the
/// caller checks `available()` first).
#[allow(clippy::too_many_arguments)]
pub fn forward_train_rows(
    spec: &Spec,
    p: &Params<f32>,
    src: &[f32],
    bases: &[usize],
    old: usize,
    out: &mut [f32],
    acts: &mut [f32],
) {
    assert!(available(), "the AVX2 training kernel needs AVX2 and FMA");
    let (c, ci, ch, f) = (spec.c(), spec.c_in, spec.c_h, spec.features);
    let n = acts.len() / f;
    let nseg = bases.len();
    assert!(acts.len() == n * f, "acts must hold whole cells");
    assert_row_shapes(spec, p, nseg, n, out);
    if n == 0 {
        return;
    }
    for &b in bases {
        assert!(
            b + (n + 2) * c <= src.len(),
            "neighbourhood rows run past src"
        );
    }
    assert!(old + n * c <= src.len(), "old cells run past src");
    let mut seg_bases = [0usize; 3];
    seg_bases[..nseg].copy_from_slice(bases);
    let ctx = Ctx {
        c,
        ci,
        ch,
        f,
        co: spec.c_out,
        ldz: f,
        zcell: f,
        cop: 0,
        readout: false,
        nseg,
        residual: spec.update == Update::Residual,
        // Training keeps the unrounded tanh (the backward pass needs it); the driver rounds.
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
        z: acts.as_mut_ptr(),
        logits: std::ptr::null_mut(),
    };
    // SAFETY: AVX2 and FMA are present (asserted). The asserts establish the bounds `tile`
    // needs for n cells as in `forward_tile`; the features go to `acts` (n*F floats, rows
    // written with the last partial vector masked), and with `readout` off neither the
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
/// `forward_train_rows`, after their checks.
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

/// Lanes `0..rem` set (rem in 1..=8).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn lane_mask(rem: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(rem as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// Loads 8 floats, or with `MASKED` only the lanes in `mask` (the rest read as 0 and
/// are not touched in memory).
///
/// # Safety
/// The lanes loaded must lie in one allocation the caller may read.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn load<const MASKED: bool>(p: *const f32, mask: __m256i) -> __m256 {
    // SAFETY: the caller guarantees the loaded lanes are readable.
    unsafe {
        if MASKED {
            _mm256_maskload_ps(p, mask)
        } else {
            _mm256_loadu_ps(p)
        }
    }
}

/// Stores 8 floats, or with `MASKED` only the lanes in `mask`.
///
/// # Safety
/// The lanes stored must lie in one allocation the caller may write.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn store<const MASKED: bool>(p: *mut f32, mask: __m256i, v: __m256) {
    // SAFETY: the caller guarantees the stored lanes are writable.
    unsafe {
        if MASKED {
            _mm256_maskstore_ps(p, mask, v)
        } else {
            _mm256_storeu_ps(p, v)
        }
    }
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
                *x = if MASKED && v == NV - 1 {
                    _mm256_maskload_ps(wp.add(8 * v), mask)
                } else {
                    _mm256_loadu_ps(wp.add(8 * v))
                };
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

/// Runs all n cells of the tile: full blocks of MR cells, then one short block.
///
/// # Safety
/// AVX2 and FMA are available, and `ctx`/`outputs` satisfy the bounds `forward_tile`
/// asserts for these n cells.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile(ctx: &Ctx, n: usize, outputs: *mut u8) -> TileStats {
    let mut maxd = _mm256_setzero_ps();
    let mut changed = 0u64;
    let mut i0 = 0;
    // SAFETY: every block below covers cells i0..i0+M with i0 + M <= n, inside the bounds
    // the caller established for n cells.
    unsafe {
        while i0 + MR <= n {
            block::<MR>(ctx, i0, outputs, &mut maxd, &mut changed);
            i0 += MR;
        }
        match n - i0 {
            0 => {}
            1 => block::<1>(ctx, i0, outputs, &mut maxd, &mut changed),
            2 => block::<2>(ctx, i0, outputs, &mut maxd, &mut changed),
            3 => block::<3>(ctx, i0, outputs, &mut maxd, &mut changed),
            4 => block::<4>(ctx, i0, outputs, &mut maxd, &mut changed),
            5 => block::<5>(ctx, i0, outputs, &mut maxd, &mut changed),
            _ => unreachable!("MR is 6"),
        }
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` is 8 writable floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), maxd) };
    TileStats {
        max_delta: lanes.iter().fold(0.0f32, |m, &v| m.max(v)),
        changed,
    }
}

/// Picks the vector count and mask for the next column block of `rem` columns (at most
/// two vectors at a time) and calls `$f::<M, NV, MASKED>($args.., mask)`; evaluates to the
/// columns the block covered.
macro_rules! col_block {
    ($rem:expr, $f:ident::<$m:ident>($($arg:expr),*)) => {{
        let rem: usize = $rem;
        if rem >= 16 {
            $f::<$m, 2, false>($($arg),*, _mm256_setzero_si256());
            16
        } else if rem > 8 {
            $f::<$m, 2, true>($($arg),*, lane_mask(rem - 8));
            rem
        } else if rem == 8 {
            $f::<$m, 1, false>($($arg),*, _mm256_setzero_si256());
            8
        } else {
            $f::<$m, 1, true>($($arg),*, lane_mask(rem));
            rem
        }
    }};
}
pub(super) use col_block;

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
        let mut col = 0;
        while col < ctx.f {
            col += col_block!(ctx.f - col, perceive::<M>(ctx, i0, col));
        }
        let mut col = 0;
        while col < ctx.ch {
            col += col_block!(ctx.ch - col, mix::<M>(ctx, i0, col, maxd));
        }
        if !ctx.readout {
            return;
        }
        let mut col = 0;
        while col < ctx.co {
            col += col_block!(ctx.co - col, readout::<M>(ctx, i0, col));
        }
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
unsafe fn perceive<const M: usize, const NV: usize, const MASKED: bool>(
    ctx: &Ctx,
    i0: usize,
    col: usize,
    mask: __m256i,
) {
    // SAFETY: b1 and W1 columns col..col+8*NV are in bounds with the mask on the last
    // vector; each cell's neighbourhood row of 3C floats lies in src (checked for all n
    // cells); the scratch row r holds fp >= col + 8*NV floats.
    unsafe {
        let seg = 3 * ctx.c;
        let mut acc = [[_mm256_setzero_ps(); NV]; M];
        for v in 0..NV {
            let b = if MASKED && v == NV - 1 {
                load::<true>(ctx.b1.add(col + 8 * v), mask)
            } else {
                load::<false>(ctx.b1.add(col + 8 * v), mask)
            };
            for row in acc.iter_mut() {
                row[v] = b;
            }
        }
        for s in 0..ctx.nseg {
            let mut a = [std::ptr::null(); M];
            for (r, ar) in a.iter_mut().enumerate() {
                *ar = ctx.src.add(ctx.bases[s] + (i0 + r) * ctx.c);
            }
            acc = gemm::<M, NV, MASKED>(
                acc,
                a,
                1,
                seg,
                ctx.w1.add(s * seg * ctx.f + col),
                ctx.f,
                mask,
            );
        }
        let zero = _mm256_setzero_ps();
        let z = ctx.z.add(i0 * ctx.zcell);
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                let zp = z.add(r * ctx.ldz + col + 8 * v);
                if MASKED && v == NV - 1 {
                    store::<true>(zp, mask, _mm256_max_ps(x, zero));
                } else {
                    store::<false>(zp, mask, _mm256_max_ps(x, zero));
                }
            }
        }
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
    i0: usize,
    col: usize,
    maxd: &mut __m256,
    mask: __m256i,
) {
    // SAFETY: b2 and W2 columns col..col+8*NV are in bounds with the mask; the old and new
    // hidden channels col.. of cell i0+r lie in src/out (cells < n, channel < C_h with the
    // mask); the scratch rows hold F features each.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; M];
        for v in 0..NV {
            let last = MASKED && v == NV - 1;
            let b = if last {
                load::<true>(ctx.b2.add(col + 8 * v), mask)
            } else {
                load::<false>(ctx.b2.add(col + 8 * v), mask)
            };
            for (r, row) in acc.iter_mut().enumerate() {
                row[v] = if ctx.residual {
                    _mm256_add_ps(b, load_h_old::<NV, MASKED>(ctx, i0 + r, col, v, mask))
                } else {
                    b
                };
            }
        }
        let mut a = [std::ptr::null(); M];
        for (r, ar) in a.iter_mut().enumerate() {
            *ar = ctx.z.add(i0 * ctx.zcell + r * ctx.ldz) as *const f32;
        }
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
                let hp = ctx.out.add((i0 + r) * ctx.c + ctx.ci + col + 8 * v);
                if MASKED && v == NV - 1 {
                    store::<true>(hp, mask, h);
                } else {
                    store::<false>(hp, mask, h);
                }
                // Masked lanes: h = tanh(0) = 0 and h_old = 0, so they add nothing.
                let h_old = load_h_old::<NV, MASKED>(ctx, i0 + r, col, v, mask);
                let d = _mm256_andnot_ps(sign, _mm256_sub_ps(h, h_old));
                m = _mm256_max_ps(m, d);
            }
        }
        *maxd = m;
    }
}

/// Vector v of hidden channels col.. of cell i in the current state (masked past C_h
/// when it is the last vector of a masked block).
///
/// # Safety
/// As `mix`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_h_old<const NV: usize, const MASKED: bool>(
    ctx: &Ctx,
    i: usize,
    col: usize,
    v: usize,
    mask: __m256i,
) -> __m256 {
    // SAFETY: cell i < n and channels col + 8v .. (masked at C_h) lie in src.
    unsafe {
        let hp = ctx.src.add(ctx.old + i * ctx.c + ctx.ci + col + 8 * v);
        if MASKED && v == NV - 1 {
            load::<true>(hp, mask)
        } else {
            load::<false>(hp, mask)
        }
    }
}

/// Outputs col..col+8*NV of cells i0..i0+M: logits = bo + h' x Wo, into the scratch.
///
/// # Safety
/// As `block`, after `mix` wrote h' of these cells; the masked lanes are the outputs past
/// C_out.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn readout<const M: usize, const NV: usize, const MASKED: bool>(
    ctx: &Ctx,
    i0: usize,
    col: usize,
    mask: __m256i,
) {
    // SAFETY: bo and Wo columns col..col+8*NV are in bounds with the mask; cell i0+r's
    // C_h new hidden channels lie in `out`; the logits scratch row holds cop floats.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; M];
        for v in 0..NV {
            let b = if MASKED && v == NV - 1 {
                load::<true>(ctx.bo.add(col + 8 * v), mask)
            } else {
                load::<false>(ctx.bo.add(col + 8 * v), mask)
            };
            for row in acc.iter_mut() {
                row[v] = b;
            }
        }
        let mut a = [std::ptr::null(); M];
        for (r, ar) in a.iter_mut().enumerate() {
            *ar = ctx.out.add((i0 + r) * ctx.c + ctx.ci) as *const f32;
        }
        acc = gemm::<M, NV, MASKED>(acc, a, 1, ctx.ch, ctx.wo.add(col), ctx.co, mask);
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                _mm256_storeu_ps(ctx.logits.add(r * ctx.cop + col + 8 * v), x);
            }
        }
    }
}
