//! The model spec, the flat parameter layout and the grid shape: the one definition
//! (docs/DESIGN.md, "The model") every backend implements.

use crate::error::{Error, Result};
use std::ops::Range;

/// How the hidden state is written each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// h' = tanh(u)
    Replace,
    /// h' = tanh(h + u)
    Residual,
}

/// What a cell sees beyond the edge of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// Cells outside the grid are all zero.
    Zero,
    /// The grid wraps around.
    Periodic,
}

/// What is done to the hidden state after every step (docs/DESIGN.md, "Quantized states").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantize {
    /// h' = tanh(...) as computed: a continuous state.
    None,
    /// h' rounded to -1, 0 or +1 (`real::ternary`): a finite set of cell states, so fixed
    /// points are exact. 0 is in the set because it is the initial state and the zero
    /// boundary.
    Ternary,
}

/// Largest channel or feature count a spec may use. Far above any model we train; it
/// keeps size arithmetic far from overflow and refuses absurd requests up front.
pub const MAX_CHANNELS: usize = 4096;

/// A model's shape: the same for every cell and step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// 1 (a row, 3 neighbours) or 2 (a plane, 3x3 neighbours).
    pub dims: usize,
    /// Clamped input channels x.
    pub c_in: usize,
    /// Hidden channels h.
    pub c_h: usize,
    /// Features F of the perceive layer.
    pub features: usize,
    /// Output classes.
    pub c_out: usize,
    pub update: Update,
    pub boundary: Boundary,
    pub quantize: Quantize,
}

/// Where each tensor lives in the flat parameter array, in the order docs/DESIGN.md fixes
/// ("The parameter layout"):
/// W1 `[K][C][F]`, b1 `[F]`, W2 `[F][C_h]`, b2 `[C_h]`, Wo `[C_h][C_out]`, bo `[C_out]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub w1: Range<usize>,
    pub b1: Range<usize>,
    pub w2: Range<usize>,
    pub b2: Range<usize>,
    pub wo: Range<usize>,
    pub bo: Range<usize>,
    pub total: usize,
}

impl Spec {
    /// Checks every field; the error names the field and the allowed range.
    pub fn validate(&self) -> Result<()> {
        if self.dims != 1 && self.dims != 2 {
            return Err(Error::invalid(format!(
                "spec.dims must be 1 or 2, got {}",
                self.dims
            )));
        }
        let fields = [
            ("spec.cIn", self.c_in, 0),
            ("spec.cH", self.c_h, 1),
            ("spec.features", self.features, 1),
            ("spec.cOut", self.c_out, 1),
        ];
        for (name, value, min) in fields {
            if value < min || value > MAX_CHANNELS {
                return Err(Error::invalid(format!(
                    "{name} must be an integer from {min} to {MAX_CHANNELS}, got {value}"
                )));
            }
        }
        if self.c_out > 256 {
            return Err(Error::invalid(format!(
                "spec.cOut must be at most 256 (outputs are stored as bytes), got {}",
                self.c_out
            )));
        }
        Ok(())
    }

    /// Neighbours per cell: 3 in 1D, 9 in 2D.
    pub fn k(&self) -> usize {
        if self.dims == 1 {
            3
        } else {
            9
        }
    }

    /// Channels per cell, C = C_in + C_h.
    pub fn c(&self) -> usize {
        self.c_in + self.c_h
    }

    pub fn layout(&self) -> Layout {
        let mut at = 0;
        let mut take = |n: usize| {
            let r = at..at + n;
            at += n;
            r
        };
        let w1 = take(self.k() * self.c() * self.features);
        let b1 = take(self.features);
        let w2 = take(self.features * self.c_h);
        let b2 = take(self.c_h);
        let wo = take(self.c_h * self.c_out);
        let bo = take(self.c_out);
        Layout {
            w1,
            b1,
            w2,
            b2,
            wo,
            bo,
            total: at,
        }
    }

    pub fn param_count(&self) -> usize {
        self.layout().total
    }

    /// Multiply-adds of one cell-step: perceive, mix and readout. FLOPs = 2x this.
    pub fn macs_per_cell_step(&self) -> usize {
        self.k() * self.c() * self.features + self.features * self.c_h + self.c_h * self.c_out
    }

    /// Checks a parameter array's length and that every value is finite.
    pub fn check_params(&self, params: &[f32]) -> Result<()> {
        check_len("params", params, self.param_count(), "this spec needs")?;
        check_finite("params", params)
    }

    /// Checks the clamped inputs x, `[batch][height][width][C_in]`: their length and that
    /// every value is finite (every backend's session and training batch take them).
    pub fn check_x(&self, grid: &Grid, x: &[f32]) -> Result<()> {
        let want = grid
            .cells_checked()?
            .checked_mul(self.c_in)
            .ok_or_else(|| Error::invalid("x size overflows"))?;
        check_len("x", x, want, "batch x height x width x cIn =")?;
        check_finite("x", x)
    }
}

/// Checks an array argument's length; the error reads "`name` has N values but `needs`
/// `want`", `needs` saying where `want` comes from ("this spec needs", "batch x height x
/// width =").
pub fn check_len<T>(name: &str, values: &[T], want: usize, needs: &str) -> Result<()> {
    if values.len() != want {
        return Err(Error::invalid(format!(
            "{name} has {} values but {needs} {want}",
            values.len()
        )));
    }
    Ok(())
}

/// Checks every element of an array argument; the error names the first that `ok` refuses
/// and what it must be: "`name`[i] is v (`must`)".
pub fn check_each<T: Copy + std::fmt::Display>(
    name: &str,
    values: &[T],
    must: &str,
    ok: impl Fn(T) -> bool,
) -> Result<()> {
    match values.iter().position(|&v| !ok(v)) {
        Some(i) => Err(Error::invalid(format!(
            "{name}[{i}] is {} ({must})",
            values[i]
        ))),
        None => Ok(()),
    }
}

/// Checks that every value of a float array argument is finite.
pub fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    check_each(name, values, "must be finite", f32::is_finite)
}

/// Borrowed views of the parameter tensors.
#[derive(Clone, Copy)]
pub struct Params<'a, T> {
    pub w1: &'a [T],
    pub b1: &'a [T],
    pub w2: &'a [T],
    pub b2: &'a [T],
    pub wo: &'a [T],
    pub bo: &'a [T],
}

impl<'a, T> Params<'a, T> {
    /// Splits a flat array whose length the caller has checked against the spec.
    pub fn split(spec: &Spec, flat: &'a [T]) -> Self {
        let l = spec.layout();
        Params {
            w1: &flat[l.w1],
            b1: &flat[l.b1],
            w2: &flat[l.w2],
            b2: &flat[l.b2],
            wo: &flat[l.wo],
            bo: &flat[l.bo],
        }
    }
}

/// Batch and spatial size of a grid. 1D grids have height 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
}

impl Grid {
    pub fn validate(&self, spec: &Spec) -> Result<()> {
        for (name, v) in [
            ("batch", self.batch),
            ("height", self.height),
            ("width", self.width),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!("{name} must be at least 1, got 0")));
            }
        }
        if spec.dims == 1 && self.height != 1 {
            return Err(Error::invalid(format!(
                "height must be 1 for a 1D model, got {}",
                self.height
            )));
        }
        self.cells_checked()?;
        Ok(())
    }

    /// Cells in one sample.
    pub fn cells_per_sample(&self) -> usize {
        self.height * self.width
    }

    /// Total cells, or an error if the count overflows.
    pub fn cells_checked(&self) -> Result<usize> {
        self.batch
            .checked_mul(self.height)
            .and_then(|v| v.checked_mul(self.width))
            .ok_or_else(|| Error::invalid("batch x height x width overflows".to_string()))
    }

    pub fn cells(&self) -> usize {
        self.batch * self.height * self.width
    }
}

/// The state of one sample is stored padded: one halo cell on every side that holds the
/// boundary (zeros, or a copy of the wrapped cell), so every neighbourhood row is one
/// contiguous run of 3*C floats and the perceive layer is a plain GEMM over it.
#[derive(Clone, Copy, Debug)]
pub struct Padded {
    /// Padded rows: height + 2 in 2D, 1 in 1D (a row has no halo above or below).
    pub rows: usize,
    /// Padded columns: width + 2.
    pub cols: usize,
    /// Channels per cell.
    pub c: usize,
    pub dims: usize,
}

impl Padded {
    pub fn new(spec: &Spec, grid: &Grid) -> Self {
        let rows = if spec.dims == 1 { 1 } else { grid.height + 2 };
        Padded {
            rows,
            cols: grid.width + 2,
            c: spec.c(),
            dims: spec.dims,
        }
    }

    /// Floats in one padded sample.
    pub fn len(&self) -> usize {
        self.rows * self.cols * self.c
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Float offset of interior cell (y, x).
    pub fn at(&self, y: usize, x: usize) -> usize {
        let row = if self.dims == 1 { 0 } else { y + 1 };
        (row * self.cols + x + 1) * self.c
    }

    /// Float offsets of the neighbourhood rows of interior row y: each starts at the cell
    /// left of column 0 and runs 3*C floats per cell. 1D has one row, 2D three.
    pub fn neighbour_rows(&self, y: usize) -> [usize; 3] {
        if self.dims == 1 {
            [0, 0, 0]
        } else {
            [
                y * self.cols * self.c,
                (y + 1) * self.cols * self.c,
                (y + 2) * self.cols * self.c,
            ]
        }
    }

    /// Rewrites the halo: zeros for the zero boundary (written once, never touched by a
    /// step), wrapped copies for the periodic one. `height`/`width` are the interior size.
    pub fn fill_halo<T: Copy + Default>(&self, buf: &mut [T], boundary: Boundary, height: usize) {
        let (c, cols) = (self.c, self.cols);
        let width = cols - 2;
        let zero = boundary == Boundary::Zero;
        let interior_rows = if self.dims == 1 { 0..1 } else { 1..height + 1 };
        for r in interior_rows {
            let row = r * cols * c;
            let (left, right) = (row, row + (cols - 1) * c);
            for i in 0..c {
                if zero {
                    buf[left + i] = T::default();
                    buf[right + i] = T::default();
                } else {
                    buf[left + i] = buf[row + width * c + i];
                    buf[right + i] = buf[row + c + i];
                }
            }
        }
        if self.dims == 2 {
            let row_len = cols * c;
            let (top, bottom) = (0, (height + 1) * row_len);
            if zero {
                buf[top..top + row_len].fill(T::default());
                buf[bottom..bottom + row_len].fill(T::default());
            } else {
                // Whole rows, halo columns included, so the corners wrap too.
                buf.copy_within(height * row_len..(height + 1) * row_len, top);
                buf.copy_within(row_len..2 * row_len, bottom);
            }
        }
    }
}

impl Padded {
    /// The adjoint of `fill_halo`: adds the gradient that landed on halo cells back onto
    /// the cells they copy (periodic) or drops it (zero). Undoes the fill in reverse order:
    /// the whole halo rows first (2D), then the halo columns.
    pub fn fold_halo<T: Copy + Default + std::ops::AddAssign>(
        &self,
        buf: &mut [T],
        boundary: Boundary,
        height: usize,
    ) {
        if boundary == Boundary::Zero {
            return;
        }
        let (c, cols) = (self.c, self.cols);
        let width = cols - 2;
        if self.dims == 2 {
            let row_len = cols * c;
            let bottom = (height + 1) * row_len;
            for i in 0..row_len {
                let top_v = buf[i];
                buf[height * row_len + i] += top_v;
                let bottom_v = buf[bottom + i];
                buf[row_len + i] += bottom_v;
            }
        }
        let rows = if self.dims == 1 { 0..1 } else { 1..height + 1 };
        for r in rows {
            let row = r * cols * c;
            let (left, right) = (row, row + (cols - 1) * c);
            for i in 0..c {
                let l = buf[left + i];
                buf[row + width * c + i] += l;
                let rv = buf[right + i];
                buf[row + c + i] += rv;
            }
        }
    }
}
