//! AVX2 + FMA kernels for the f32 backward pass (`crate::train`'s fast path). Each is a
//! register-blocked GEMM built on `avx2::gemm` (MR rows x up to 16 columns of
//! accumulators), behind a safe function that asserts every bound first:
//!
//! - `dz_rows`: dz = [a > 0] * (dpre x W2^T), the gradient at the features;
//! - `outer_acc`: g += A^T B summed over cells, the weight gradients of W1 and W2;
//! - `rows_gemm`: out = init + [neighbourhood rows] x W, the gradient flowing back to the
//!   hidden state (a gather over the neighbours' dz, with the neighbour order reversed in
//!   the packed weights, so no cell scatters into another).
//!
//! All of them panic if the CPU lacks AVX2/FMA; the caller checks `avx2::available()`.

use super::avx2::{
    available, col_blocks, gemm, lane_mask, load, load_block, row_blocks, row_ptrs, store_block,
    Block, MR,
};
use std::arch::x86_64::*;

/// A kernel computed by `run` in blocks of up to MR rows x 16 columns: each of the three
/// below fills in one block.
trait Blocked {
    /// Computes block `b` of the kernel's output.
    ///
    /// # Safety
    /// AVX2/FMA present; the rows and columns of `b` lie within those the kernel's safe
    /// wrapper bounded (the masked lanes are the columns past the last).
    unsafe fn block<const M: usize, const NV: usize, const MASKED: bool>(&self, b: Block);
}

/// Runs `k` over rows 0..rows and columns 0..cols, block by block.
///
/// # Safety
/// AVX2/FMA present; `k`'s safe wrapper asserted the bounds of these rows and columns.
#[target_feature(enable = "avx2,fma")]
unsafe fn run(k: &impl Blocked, rows: usize, cols: usize) {
    // SAFETY: each block covers rows i0..i0+M <= rows.
    unsafe { row_blocks!(rows, run_rows(k, cols)) }
}

/// # Safety
/// As `run`, with i0 + M <= rows.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_rows<const M: usize>(k: &impl Blocked, i0: usize, cols: usize) {
    // SAFETY: column blocks stay below `cols` (masked tail).
    unsafe { col_blocks!(cols, i0, block_of::<M>(k)) }
}

/// `k.block`, as a function `col_blocks!` can name.
///
/// # Safety
/// As `Blocked::block`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_of<const M: usize, const NV: usize, const MASKED: bool>(
    k: &impl Blocked,
    b: Block,
) {
    // SAFETY: the caller's guarantees are the block's.
    unsafe { k.block::<M, NV, MASKED>(b) }
}

/// One run of cells for `outer_acc`: cell i of the run reads `a[a + i*sa ..]` and
/// `b[b + i*sb ..]`.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub a: usize,
    pub b: usize,
    pub n: usize,
}

/// dz[i*F + f] = (acts[i*F + f] > 0) ? sum_j dpre[i*C_h + j] * w2t[j*F + f] : 0 for the
/// n = `dz.len() / F` cells; `w2t` is W2 transposed, `[C_h][F]`.
pub fn dz_rows(f: usize, ch: usize, dpre: &[f32], acts: &[f32], w2t: &[f32], dz: &mut [f32]) {
    assert!(available(), "the AVX2 training kernels need AVX2 and FMA");
    assert!(f > 0 && ch > 0, "F and C_h must be positive");
    let n = dz.len() / f;
    assert!(dz.len() == n * f, "dz must hold whole cells");
    assert!(acts.len() >= n * f, "acts holds fewer cells than dz");
    assert!(dpre.len() >= n * ch, "dpre holds fewer cells than dz");
    assert!(w2t.len() == ch * f, "W2^T must be C_h x F");
    let ctx = DzCtx {
        f,
        ch,
        dpre: dpre.as_ptr(),
        acts: acts.as_ptr(),
        w2t: w2t.as_ptr(),
        dz: dz.as_mut_ptr(),
    };
    // SAFETY: AVX2/FMA asserted; the asserts bound every cell (i < n) and column (f < F,
    // j < C_h) the kernel reads or writes, and `dz` is an exclusive borrow.
    unsafe { run(&ctx, n, f) }
}

struct DzCtx {
    f: usize,
    ch: usize,
    dpre: *const f32,
    acts: *const f32,
    w2t: *const f32,
    dz: *mut f32,
}

impl Blocked for DzCtx {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const M: usize, const NV: usize, const MASKED: bool>(&self, b: Block) {
        // SAFETY: dpre rows i0+r < n hold C_h floats; W2^T rows hold F floats, read at
        // col..col+8*NV with the mask on the last vector; acts/dz rows likewise.
        unsafe {
            let a = row_ptrs::<M>(self.dpre.add(b.i0 * self.ch), self.ch);
            let acc = [[_mm256_setzero_ps(); NV]; M];
            let mut acc =
                gemm::<M, NV, MASKED>(acc, a, 1, self.ch, self.w2t.add(b.col), self.f, b.mask);
            // Zero dz where the feature was off: [a > 0]. (One vector at a time: a whole
            // block of acts beside the accumulators would not fit in the registers.)
            let zero = _mm256_setzero_ps();
            for (r, row) in acc.iter_mut().enumerate() {
                let at = (b.i0 + r) * self.f + b.col;
                for (v, x) in row.iter_mut().enumerate() {
                    let open = _mm256_cmp_ps::<_CMP_GT_OQ>(
                        load::<NV, MASKED>(self.acts.add(at), v, b.mask),
                        zero,
                    );
                    *x = _mm256_and_ps(*x, open);
                }
            }
            store_block::<M, NV, MASKED>(self.dz.add(b.i0 * self.f + b.col), self.f, b.mask, acc);
        }
    }
}

/// g[r*ldg + col] += sum over the runs and their cells i of
/// a[run.a + i*sa + r] * b[run.b + i*sb + col], for r < rows, col < cols.
#[allow(clippy::too_many_arguments)]
pub fn outer_acc(
    g: &mut [f32],
    ldg: usize,
    rows: usize,
    cols: usize,
    a: &[f32],
    sa: usize,
    b: &[f32],
    sb: usize,
    runs: &[Run],
) {
    assert!(available(), "the AVX2 training kernels need AVX2 and FMA");
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(cols <= ldg, "cols must fit in a row of g");
    assert!(
        (rows - 1) * ldg + cols <= g.len(),
        "g is smaller than rows x ldg"
    );
    for run in runs {
        if run.n > 0 {
            assert!(
                run.a + (run.n - 1) * sa + rows <= a.len(),
                "a run reads past a"
            );
            assert!(
                run.b + (run.n - 1) * sb + cols <= b.len(),
                "a run reads past b"
            );
        }
    }
    let ctx = OuterCtx {
        ldg,
        a: a.as_ptr(),
        sa,
        b: b.as_ptr(),
        sb,
        runs,
        g: g.as_mut_ptr(),
    };
    // SAFETY: AVX2/FMA asserted; the asserts bound every element of g, a and b the kernel
    // touches (rows < `rows`, columns < `cols`, cells < run.n), and `g` is an exclusive
    // borrow that does not alias `a` or `b` (shared borrows).
    unsafe { run(&ctx, rows, cols) }
}

struct OuterCtx<'r> {
    ldg: usize,
    a: *const f32,
    sa: usize,
    b: *const f32,
    sb: usize,
    runs: &'r [Run],
    g: *mut f32,
}

impl Blocked for OuterCtx<'_> {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const M: usize, const NV: usize, const MASKED: bool>(&self, b: Block) {
        // SAFETY: g rows i0+r < rows, columns col..col+8*NV (masked past `cols`); every
        // cell of every run reads a[run.a + i*sa + i0 + r] and b[run.b + i*sb + col ..],
        // bounded by the asserts.
        unsafe {
            let g = self.g.add(b.i0 * self.ldg + b.col);
            let mut acc = load_block::<M, NV, MASKED>(g, self.ldg, b.mask);
            for run in self.runs.iter().filter(|run| run.n > 0) {
                let a = row_ptrs::<M>(self.a.add(run.a + b.i0), 1);
                acc = gemm::<M, NV, MASKED>(
                    acc,
                    a,
                    self.sa,
                    run.n,
                    self.b.add(run.b + b.col),
                    self.sb,
                    b.mask,
                );
            }
            store_block::<M, NV, MASKED>(g, self.ldg, b.mask, acc);
        }
    }
}

/// out[i*ldo + j] = init[i*ldo + j] (or 0) + sum over segments s and kk < kseg of
/// a[bases[s] + i*sa + kk] * w[(s*kseg + kk)*ncols + j], for cells i < n and j < ncols.
#[allow(clippy::too_many_arguments)]
pub fn rows_gemm(
    n: usize,
    a: &[f32],
    bases: &[usize],
    sa: usize,
    kseg: usize,
    w: &[f32],
    ncols: usize,
    out: &mut [f32],
    ldo: usize,
    init: Option<&[f32]>,
) {
    assert!(available(), "the AVX2 training kernels need AVX2 and FMA");
    if n == 0 || ncols == 0 {
        return;
    }
    let nseg = bases.len();
    assert!((1..=3).contains(&nseg), "bases must have 1 to 3 entries");
    assert!(ncols <= ldo, "ncols must fit in a row of out");
    assert!(
        w.len() == nseg * kseg * ncols,
        "w must be segments x kseg x ncols"
    );
    assert!(
        (n - 1) * ldo + ncols <= out.len(),
        "out is smaller than n rows"
    );
    if let Some(init) = init {
        assert!(
            (n - 1) * ldo + ncols <= init.len(),
            "init is smaller than n rows"
        );
    }
    for &b in bases {
        assert!(
            b + (n - 1) * sa + kseg <= a.len(),
            "rows of a run past its end"
        );
    }
    let mut seg_bases = [0usize; 3];
    seg_bases[..nseg].copy_from_slice(bases);
    let ctx = RowsCtx {
        a: a.as_ptr(),
        bases: seg_bases,
        nseg,
        sa,
        kseg,
        w: w.as_ptr(),
        ncols,
        out: out.as_mut_ptr(),
        ldo,
        init: init.map_or(std::ptr::null(), |v| v.as_ptr()),
    };
    // SAFETY: AVX2/FMA asserted; the asserts bound every row of a each cell reads, every
    // element of w, out and init touched (cells < n, columns < ncols with a masked tail);
    // `out` is an exclusive borrow, the rest shared.
    unsafe { run(&ctx, n, ncols) }
}

struct RowsCtx {
    a: *const f32,
    bases: [usize; 3],
    nseg: usize,
    sa: usize,
    kseg: usize,
    w: *const f32,
    ncols: usize,
    out: *mut f32,
    ldo: usize,
    /// Null when the output starts from zero.
    init: *const f32,
}

impl Blocked for RowsCtx {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const M: usize, const NV: usize, const MASKED: bool>(&self, b: Block) {
        // SAFETY: out/init rows i0+r < n, columns col..col+8*NV masked past ncols; a rows
        // bases[s] + (i0+r)*sa .. + kseg and w rows of ncols, all bounded by the asserts.
        unsafe {
            let at = b.i0 * self.ldo + b.col;
            let mut acc = if self.init.is_null() {
                [[_mm256_setzero_ps(); NV]; M]
            } else {
                load_block::<M, NV, MASKED>(self.init.add(at), self.ldo, b.mask)
            };
            for s in 0..self.nseg {
                let a = row_ptrs::<M>(self.a.add(self.bases[s] + b.i0 * self.sa), self.sa);
                let w = self.w.add(s * self.kseg * self.ncols + b.col);
                acc = gemm::<M, NV, MASKED>(acc, a, 1, self.kseg, w, self.ncols, b.mask);
            }
            store_block::<M, NV, MASKED>(self.out.add(at), self.ldo, b.mask, acc);
        }
    }
}
