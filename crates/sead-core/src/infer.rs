//! Inference: a batch of grids stepped in place (double-buffered, nothing allocated per
//! step), with per-sample change statistics and convergence detection.
//!
//! Quantized specs step event-driven by default (`events`, docs/DESIGN.md "Event-driven
//! stepping"): only the neighbourhoods of the cells that changed in the last step are
//! computed, which gives exactly what computing every cell gives.
//!
//! Settled-cell skipping (`Session::set_freeze`, 1D and 2D): a cell whose neighbourhood
//! (3 cells in 1D, 3x3 in 2D) did not change in the last step would compute exactly what
//! it computed then, so it is not computed again. The plain model's states never stop
//! changing in their last bits (about 1e-7 a step, measured on the shipped adders), so
//! with skipping on, a cell whose hidden state would move by at most `freeze` in every
//! channel keeps its state bit for bit. A carry crossing 100,000 digits then costs a few
//! cells a step instead of every cell.

mod events;

use crate::error::{format_bytes, Error, Result};
use crate::kernel::portable::{argmax, readout};
use crate::kernel::{forward_tile, Scratch, Simd, TileStats};
use crate::spec::{Boundary, Grid, Padded, Params, Quantize, Spec};
use crate::stepper::Settle;
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cells per parallel work item: big enough to amortise scheduling, small enough to
/// balance two to a hundred threads on a million-cell row.
const TILE: usize = 2048;

/// Default cap on a session's memory. A 32-bit target (the WebAssembly build) has at most
/// 4 GiB of memory in all, and 16 GiB does not fit its usize: there the cap is 3 GiB.
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_MAX_BYTES: usize = 16 << 30;
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_MAX_BYTES: usize = 3 << 30;

thread_local! {
    /// Each thread's kernel scratch, kept between steps so a step allocates nothing (it is
    /// rebuilt only when a spec with other feature or output counts comes along).
    static SCRATCH: RefCell<Option<Scratch<f32>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's scratch, sized for `spec`.
fn with_scratch<R>(spec: &Spec, f: impl FnOnce(&mut Scratch<f32>) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let scratch = match &mut *slot {
            Some(s) if s.fits(spec) => s,
            other => other.insert(Scratch::new(spec)),
        };
        f(scratch)
    })
}

/// One sample's two state buffers (padded, `[cells][C]`), its outputs and its clock.
struct Sample {
    bufs: [Vec<f32>; 2],
    cur: usize,
    outputs: Vec<u8>,
    steps: u64,
    /// Cell updates computed so far (steps x cells without skipping).
    computed: u64,
    /// With skipping on: the cells whose state changed in the last step (per row, sorted,
    /// disjoint ranges), and the outputs of the cells being computed. The state stays in
    /// bufs[cur]; the other buffer receives the candidates.
    dirty: Vec<Vec<Range<usize>>>,
    candidate_outputs: Vec<u8>,
    /// Quantized specs: the cells the next event-driven step computes.
    events: events::Lists,
}

/// A sample's current state buffer (`bufs[cur]`) and its spare one.
fn current_and_spare(bufs: &mut [Vec<f32>; 2], cur: usize) -> (&mut Vec<f32>, &mut Vec<f32>) {
    let [a, b] = bufs;
    if cur == 0 {
        (a, b)
    } else {
        (b, a)
    }
}

/// The samples a step runs (all when `active` is None), each with its statistics slot.
fn active_samples<'a>(
    samples: &'a mut [Sample],
    stats: &'a mut [StepStats],
    active: Option<&'a [bool]>,
) -> impl ParallelIterator<Item = (&'a mut Sample, &'a mut StepStats)> {
    samples
        .par_iter_mut()
        .zip(stats.par_iter_mut())
        .enumerate()
        .filter(move |(b, _)| active.is_none_or(|a| a[*b]))
        .map(|(_, pair)| pair)
}

/// A run of cells of one row: `(row, first column, one past the last)`.
type Run = (usize, usize, usize);

/// A work item of a skipping or event-driven step: its runs of cells, the float offset and
/// the cell index at which its part of the spare buffer and of the outputs start, and those
/// parts.
type Tile<'a> = (&'a [Run], usize, usize, &'a mut [f32], &'a mut [u8]);

/// Cuts `runs` (sorted) into work items of at most TILE cells: leaves the pieces, each
/// within one row, in `pieces` and where each item's pieces end in `ends`.
fn cut_into_pieces(runs: impl Iterator<Item = Run>, pieces: &mut Vec<Run>, ends: &mut Vec<usize>) {
    pieces.clear();
    ends.clear();
    let mut filled = 0;
    for (y, start, end) in runs {
        let mut x0 = start;
        while x0 < end {
            let x1 = end.min(x0 + TILE - filled);
            pieces.push((y, x0, x1));
            filled += x1 - x0;
            x0 = x1;
            if filled == TILE {
                ends.push(pieces.len());
                filled = 0;
            }
        }
    }
    if filled > 0 {
        ends.push(pieces.len());
    }
}

/// Computes the cells of `pieces` (work items ending at `ends`, from `cut_into_pieces`)
/// from the state `src` into the same cells of `spare` and `outputs` (`[height][width]`,
/// updated in place), the items in parallel. Returns their statistics.
#[allow(clippy::too_many_arguments)]
fn compute_pieces(
    spec: &Spec,
    pad: &Padded,
    width: usize,
    simd: Simd,
    p: &Params<f32>,
    src: &[f32],
    pieces: &[Run],
    ends: &[usize],
    spare: &mut [f32],
    outputs: &mut [u8],
) -> TileStats {
    let (c, nseg) = (spec.c(), if spec.dims == 1 { 1 } else { 3 });
    let run = |(item, a, oa, out, o): Tile| {
        with_scratch(spec, |scratch| {
            let mut st = TileStats::default();
            for &(y, x0, x1) in item {
                let rows = pad.neighbour_rows(y);
                let mut bases = [0usize; 3];
                for k in 0..nseg {
                    bases[k] = rows[k] + x0 * c;
                }
                let (at, cell) = (pad.at(y, x0), y * width + x0);
                st = st.merge(forward_tile(
                    simd,
                    spec,
                    p,
                    src,
                    &bases[..nseg],
                    at,
                    &mut out[at - a..pad.at(y, x1) - a],
                    &mut o[cell - oa..cell - oa + (x1 - x0)],
                    scratch,
                ));
            }
            st
        })
    };
    if ends.len() <= 1 {
        // One item (the common case once few cells change): no thread hand-off.
        return run((pieces, 0, 0, spare, outputs));
    }
    let spares = split_by_items(spare, pieces, ends, |y, x| pad.at(y, x));
    let outs = split_by_items(outputs, pieces, ends, |y, x| y * width + x);
    let mut first = 0;
    let tiles: Vec<Tile> = (ends.iter().zip(spares).zip(outs))
        .map(|((&end, (a, out)), (oa, o))| {
            let item = &pieces[first..end];
            first = end;
            (item, a, oa, out, o)
        })
        .collect();
    tiles
        .into_par_iter()
        .map(run)
        .reduce(TileStats::default, TileStats::merge)
}

/// Splits `buf` into the parts work items write (items of `pieces` ending at `ends`, in
/// order): each item's part runs from `at` of its first cell to `at` of the end of its last,
/// returned with the offset where it starts.
fn split_by_items<'a, T>(
    buf: &'a mut [T],
    pieces: &[Run],
    ends: &[usize],
    at: impl Fn(usize, usize) -> usize,
) -> Vec<(usize, &'a mut [T])> {
    let mut parts = Vec::with_capacity(ends.len());
    let (mut rest, mut rest_at) = (buf, 0);
    let mut first = 0;
    for &end in ends {
        let ((y0, x0, _), (y1, _, x1)) = (pieces[first], pieces[end - 1]);
        first = end;
        let (a, b) = (at(y0, x0), at(y1, x1));
        let (part, tail) = std::mem::take(&mut rest)[a - rest_at..].split_at_mut(b - a);
        (rest, rest_at) = (tail, b);
        parts.push((a, part));
    }
    parts
}

/// Per-sample statistics of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    /// max over the sample's cells and hidden channels of |h' - h|.
    pub max_delta: f32,
    /// Cells whose argmax output changed.
    pub changed: u64,
}

/// When to call a sample settled.
#[derive(Clone, Copy, Debug)]
pub struct ConvergeOptions {
    /// Steps in a row with no output change needed.
    pub patience: u32,
    /// max |h' - h| of the last step must be below this.
    pub tol: f32,
    /// Give up after this many steps (counted from the session's start).
    pub max_steps: u64,
}

impl ConvergeOptions {
    /// Checks patience >= 1 and a finite tol > 0; the error names the option.
    pub fn validate(&self) -> Result<()> {
        if self.patience == 0 {
            return Err(Error::invalid("patience must be at least 1"));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(Error::invalid(format!(
                "tol must be finite and > 0, got {}",
                self.tol
            )));
        }
        Ok(())
    }
}

/// How one sample ended a `converge` call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleResult {
    /// Steps the sample has taken in total.
    pub steps: u64,
    pub converged: bool,
    pub last: StepStats,
}

/// With many classes the logits outgrow the session itself: `logits` refuses to return more
/// than the session's memory limit rather than fail to allocate (which aborts the process).
pub fn check_logits_bytes(spec: &Spec, grid: &Grid, max_bytes: usize) -> Result<()> {
    let need = grid.cells().saturating_mul(spec.c_out).saturating_mul(4);
    if need > max_bytes {
        return Err(Error::TooLarge(format!(
            "the logits of {} cells x {} classes need {}, over the session's limit of {}",
            grid.cells(),
            spec.c_out,
            format_bytes(need as f64),
            format_bytes(max_bytes as f64)
        )));
    }
    Ok(())
}

/// Refuses a session that would need more than `max_bytes`: `need` is the backend's
/// `bytes_needed`, `memory` says whose memory it is ("" for the host's).
pub fn check_session_bytes(
    spec: &Spec,
    grid: &Grid,
    need: usize,
    max_bytes: usize,
    memory: &str,
) -> Result<()> {
    if need > max_bytes {
        return Err(Error::TooLarge(format!(
            "a session of {} x {} x {} cells with {} channels needs {}{memory}, over the \
             limit of {}",
            grid.batch,
            grid.height,
            grid.width,
            spec.c(),
            format_bytes(need as f64),
            format_bytes(max_bytes as f64)
        )));
    }
    Ok(())
}

/// Checks `step`'s active mask and statistics buffer against the batch (shared with the GPU
/// session).
pub fn check_step_args(
    batch: usize,
    n: usize,
    active: Option<&[bool]>,
    stats: &[StepStats],
) -> Result<()> {
    if let Some(a) = active {
        if a.len() != batch {
            return Err(Error::invalid(format!(
                "active has {} entries but the batch has {batch} samples",
                a.len()
            )));
        }
    }
    if stats.len() != n * batch {
        return Err(Error::invalid(format!(
            "stats has {} entries, need steps x batch = {}",
            stats.len(),
            n * batch
        )));
    }
    Ok(())
}

/// A batch of grids being stepped.
pub struct Session {
    spec: Spec,
    grid: Grid,
    pad: Padded,
    simd: Simd,
    samples: Vec<Sample>,
    /// The memory limit the session was made under; also bounds what `logits` returns.
    max_bytes: usize,
    /// Settled-cell skipping: a cell keeps its state when no hidden channel would move by
    /// more than this. None: every cell is computed every step.
    freeze: Option<f32>,
    /// The parameters of the last skipping step: other parameters make every cell dirty.
    freeze_params: Vec<f32>,
    /// Event-driven stepping of quantized specs (on unless switched off for comparison).
    event_driven: bool,
    /// The parameters the samples' event lists were made under; None when the lists are
    /// stale (a fresh session, or a step taken another way): the next step computes every
    /// cell.
    event_params: Option<Vec<f32>>,
}

impl Session {
    /// Memory a session of this shape holds, in bytes (for a quantized spec, with the most
    /// its event lists can take).
    pub fn bytes_needed(spec: &Spec, grid: &Grid) -> usize {
        let pad = Padded::new(spec, grid);
        let mut per_sample = (2 * pad.len())
            .saturating_mul(4)
            .saturating_add(grid.cells_per_sample());
        if spec.quantize == Quantize::Ternary {
            let periodic = spec.boundary == Boundary::Periodic;
            per_sample = per_sample.saturating_add(events::bytes_bound(spec.dims, grid, periodic));
        }
        per_sample.saturating_mul(grid.batch)
    }

    /// Sets x (`[batch][height][width][C_in]`) and h = 0 in both buffers.
    pub fn new(spec: Spec, grid: Grid, x: &[f32], simd: Simd, max_bytes: usize) -> Result<Self> {
        spec.validate()?;
        grid.validate(&spec)?;
        let need = Self::bytes_needed(&spec, &grid);
        check_session_bytes(&spec, &grid, need, max_bytes, "")?;
        spec.check_x(&grid, x)?;
        let cells = grid.cells_per_sample();
        let pad = Padded::new(&spec, &grid);
        let mut samples = Vec::with_capacity(grid.batch);
        for b in 0..grid.batch {
            let mut buf = vec![0.0f32; pad.len()];
            let xb = &x[b * cells * spec.c_in..(b + 1) * cells * spec.c_in];
            for y in 0..grid.height {
                for xx in 0..grid.width {
                    let cell = y * grid.width + xx;
                    let at = pad.at(y, xx);
                    buf[at..at + spec.c_in]
                        .copy_from_slice(&xb[cell * spec.c_in..(cell + 1) * spec.c_in]);
                }
            }
            pad.fill_halo(&mut buf, spec.boundary, grid.height);
            samples.push(Sample {
                bufs: [buf.clone(), buf],
                cur: 0,
                outputs: vec![0; cells],
                steps: 0,
                computed: 0,
                dirty: Vec::new(),
                candidate_outputs: Vec::new(),
                events: events::Lists::default(),
            });
        }
        Ok(Session {
            spec,
            grid,
            pad,
            simd,
            samples,
            max_bytes,
            freeze: None,
            freeze_params: Vec::new(),
            event_driven: true,
            event_params: None,
        })
    }

    /// Switches settled-cell skipping on (`Some(freeze)`) or off. With it on, a cell is
    /// computed only when a cell of its neighbourhood (3 cells in 1D, 3x3 in 2D) changed in
    /// the last step, and a cell whose every hidden channel would move by at most `freeze`
    /// keeps its state. `Some(0.0)` skips only what would not change at all: the states
    /// stay those of plain stepping. Every cell is computed at the next step.
    pub fn set_freeze(&mut self, freeze: Option<f32>) -> Result<()> {
        if let Some(f) = freeze {
            if !(f.is_finite() && f >= 0.0) {
                return Err(Error::invalid(format!(
                    "freeze must be finite and >= 0, got {f}"
                )));
            }
        }
        self.freeze = freeze;
        self.freeze_params.clear();
        let (height, width) = (self.grid.height, self.grid.width);
        for s in &mut self.samples {
            s.dirty = vec![vec![0..width]; height];
            s.candidate_outputs = if freeze.is_some() {
                vec![0; height * width]
            } else {
                Vec::new()
            };
        }
        Ok(())
    }

    /// Switches event-driven stepping (the default for quantized specs) off or back on.
    /// Off, a quantized spec computes every cell every step, as a continuous one does: the
    /// same states, outputs and statistics, at the cost of every cell; for tests and
    /// benchmarks that compare the two. Settled-cell skipping (`set_freeze`), when on, takes
    /// precedence over both.
    pub fn set_event_driven(&mut self, on: bool) {
        self.event_driven = on;
    }

    /// True when the next step is event-driven: a quantized spec, event-driven stepping on
    /// and settled-cell skipping off.
    pub fn is_event_driven(&self) -> bool {
        self.event_driven && self.freeze.is_none() && self.spec.quantize == Quantize::Ternary
    }

    /// Cell updates each sample has computed (with skipping on or event-driven stepping,
    /// fewer than steps x cells).
    pub fn cells_computed(&self) -> Vec<u64> {
        self.samples.iter().map(|s| s.computed).collect()
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// Recomputes every output from the current hidden state (the outputs a step compares
    /// against). Call after `new` before the first step, and after changing parameters.
    pub fn refresh_outputs(&mut self, params: &[f32]) -> Result<()> {
        self.spec.check_params(params)?;
        if self.event_params.as_deref() != Some(params) {
            // These outputs are not what the lists' parameters would give.
            self.event_params = None;
        }
        let p = Params::split(&self.spec, params);
        let (spec, pad, grid) = (&self.spec, &self.pad, &self.grid);
        self.samples.par_iter_mut().for_each(|s| {
            let mut logits = vec![0.0f32; spec.c_out];
            let buf = &s.bufs[s.cur];
            for y in 0..grid.height {
                for x in 0..grid.width {
                    let at = pad.at(y, x) + spec.c_in;
                    readout(spec, &p, &buf[at..at + spec.c_h], &mut logits);
                    s.outputs[y * grid.width + x] = argmax(&logits) as u8;
                }
            }
        });
        Ok(())
    }

    /// Runs `n` steps on the samples marked active (all when `active` is None) and writes
    /// each step's per-sample stats to `stats[step * batch + sample]` (inactive: zeros).
    pub fn step(
        &mut self,
        params: &[f32],
        n: usize,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
        cancel: &AtomicBool,
    ) -> Result<()> {
        self.spec.check_params(params)?;
        let batch = self.grid.batch;
        check_step_args(batch, n, active, stats)?;
        self.prepare(params);
        let p = Params::split(&self.spec, params);
        for t in 0..n {
            self.step_prepared(&p, active, &mut stats[t * batch..(t + 1) * batch], cancel)?;
        }
        Ok(())
    }

    /// Readies the per-sample lists of the stepping mode the next steps use, for `params`:
    /// what was computed with other parameters, or recorded by another mode, is dropped and
    /// every cell is computed at the next step.
    fn prepare(&mut self, params: &[f32]) {
        if self.freeze.is_some() && self.freeze_params != params {
            // What a cell computed with other parameters says nothing about these.
            for s in &mut self.samples {
                for row in &mut s.dirty {
                    row.clear();
                    row.push(0..self.grid.width);
                }
            }
            self.freeze_params = params.to_vec();
        }
        if !self.is_event_driven() {
            self.event_params = None;
        } else if self.event_params.as_deref() != Some(params) {
            for s in &mut self.samples {
                s.events.reset(&self.grid);
            }
            self.event_params = Some(params.to_vec());
        }
    }

    /// One step, in the stepping mode that is on, after `step`'s checks and `prepare`
    /// (`converge` checks once, not every step); first it looks at `cancel`.
    fn step_prepared(
        &mut self,
        p: &Params<f32>,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
        cancel: &AtomicBool,
    ) -> Result<()> {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        match self.freeze {
            Some(freeze) => self.step_once_skipping(p, freeze, active, stats),
            None if self.is_event_driven() => self.step_once_events(p, active, stats),
            None => self.step_once(p, active, stats),
        }
        Ok(())
    }

    /// One event-driven step (quantized specs): each sample computes the neighbourhoods of
    /// the cells that changed in its last step (`events`).
    fn step_once_events(
        &mut self,
        p: &Params<f32>,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
    ) {
        let (spec, pad, grid, simd) = (&self.spec, &self.pad, &self.grid, self.simd);
        let step = |(s, stat): (&mut Sample, &mut StepStats)| {
            *stat = events::step_sample(spec, pad, grid, simd, p, s);
        };
        let is_active = |b: usize| active.is_none_or(|a| a[b]);
        let work: usize = (self.samples.iter().enumerate())
            .filter(|(b, _)| is_active(*b))
            .map(|(_, s)| s.events.active_cells())
            .sum();
        if work <= TILE {
            // A few cells in all (a carry front): handing them to other threads would
            // cost more than computing them here.
            (self.samples.iter_mut().zip(stats.iter_mut()).enumerate())
                .filter(|(b, _)| is_active(*b))
                .for_each(|(_, pair)| step(pair));
        } else {
            active_samples(&mut self.samples, stats, active).for_each(step);
        }
    }

    /// One step with settled-cell skipping: computes the cells next to last step's changes
    /// (in 2D, the changes in the cell's row and the rows above and below it) into the spare
    /// buffer, then commits the cells that moved by more than `freeze`.
    fn step_once_skipping(
        &mut self,
        p: &Params<f32>,
        freeze: f32,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
    ) {
        let (spec, pad, grid, simd) = (&self.spec, &self.pad, &self.grid, self.simd);
        let (c_in, c_h, width) = (spec.c_in, spec.c_h, grid.width);
        let periodic = spec.boundary == Boundary::Periodic;
        active_samples(&mut self.samples, stats, active).for_each(|(s, stat)| {
            let todo = cells_to_compute(&s.dirty, width, periodic);
            let (mut pieces, mut ends) = (Vec::new(), Vec::new());
            let runs = todo.iter().map(|(y, r)| (*y, r.start, r.end));
            cut_into_pieces(runs, &mut pieces, &mut ends);
            let (state, spare) = current_and_spare(&mut s.bufs, s.cur);
            // The candidates' own statistics are not the step's: the commit below decides.
            compute_pieces(
                spec,
                pad,
                width,
                simd,
                p,
                state,
                &pieces,
                &ends,
                spare,
                &mut s.candidate_outputs,
            );
            // Commit the cells that moved; the rest keep their state. Every computed cell's
            // output is the readout of the state it keeps (after new parameters, a kept
            // state can have a new output).
            let mut st = StepStats::default();
            let mut logits = vec![0.0f32; spec.c_out];
            for row in &mut s.dirty {
                row.clear();
            }
            for (y, r) in &todo {
                let dirty = &mut s.dirty[*y];
                for x in r.clone() {
                    let at = pad.at(*y, x) + c_in;
                    let cell = y * width + x;
                    let (new, old) = (&spare[at..at + c_h], &mut state[at..at + c_h]);
                    let moved = new
                        .iter()
                        .zip(old.iter())
                        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                    let output = if moved > freeze {
                        old.copy_from_slice(new);
                        st.max_delta = st.max_delta.max(moved);
                        match dirty.last_mut() {
                            Some(r) if r.end == x => r.end = x + 1,
                            _ => dirty.push(x..x + 1),
                        }
                        s.candidate_outputs[cell]
                    } else if moved == 0.0 {
                        s.candidate_outputs[cell] // the kept state is the new one
                    } else {
                        readout(spec, p, old, &mut logits);
                        argmax(&logits) as u8
                    };
                    if s.outputs[cell] != output {
                        s.outputs[cell] = output;
                        st.changed += 1;
                    }
                }
            }
            if periodic {
                pad.fill_halo(state, spec.boundary, grid.height);
            }
            s.computed += todo.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
            s.steps += 1;
            *stat = st;
        });
    }

    fn step_once(&mut self, p: &Params<f32>, active: Option<&[bool]>, stats: &mut [StepStats]) {
        let (spec, pad, grid, simd) = (&self.spec, &self.pad, &self.grid, self.simd);
        let c = spec.c();
        let row_len = pad.cols * c;
        let nseg = if spec.dims == 1 { 1 } else { 3 };
        // A sample of one tile, or enough samples to keep every thread busy: each sample
        // runs on one thread (nested parallel iterators would cost more than a small
        // sample's work). Otherwise a sample's tiles are spread across threads.
        let tiles_per_sample = grid.height * grid.width.div_ceil(TILE);
        let active_count = active.map_or(grid.batch, |a| a.iter().filter(|&&x| x).count());
        let whole_samples =
            tiles_per_sample == 1 || active_count >= 4 * rayon::current_num_threads();
        let run_tile = |y: usize, x0: usize, src: &[f32], out: &mut [f32], o: &mut [u8]| {
            let rows = pad.neighbour_rows(y);
            let mut bases = [0usize; 3];
            for k in 0..nseg {
                bases[k] = rows[k] + x0 * c;
            }
            with_scratch(spec, |scratch| {
                forward_tile(
                    simd,
                    spec,
                    p,
                    src,
                    &bases[..nseg],
                    pad.at(y, x0),
                    out,
                    o,
                    scratch,
                )
            })
        };
        active_samples(&mut self.samples, stats, active).for_each(|(s, stat)| {
            let (src, dst) = current_and_spare(&mut s.bufs, s.cur);
            let src: &[f32] = src;
            let first_row = if spec.dims == 1 { 0 } else { 1 };
            let tile_stats = if whole_samples {
                let mut st = TileStats::default();
                let rows = dst.chunks_mut(row_len).skip(first_row).take(grid.height);
                for (y, (row, outs)) in rows.zip(s.outputs.chunks_mut(grid.width)).enumerate() {
                    let tiles = row[c..(grid.width + 1) * c]
                        .chunks_mut(TILE * c)
                        .zip(outs.chunks_mut(TILE));
                    for (i, (out, o)) in tiles.enumerate() {
                        st = st.merge(run_tile(y, i * TILE, src, out, o));
                    }
                }
                st
            } else {
                dst.par_chunks_mut(row_len)
                    .skip(first_row)
                    .take(grid.height)
                    .zip(s.outputs.par_chunks_mut(grid.width))
                    .enumerate()
                    .map(|(y, (row, outs))| {
                        row[c..(grid.width + 1) * c]
                            .par_chunks_mut(TILE * c)
                            .zip(outs.par_chunks_mut(TILE))
                            .enumerate()
                            .map(|(i, (out, o))| run_tile(y, i * TILE, src, out, o))
                            .reduce(TileStats::default, TileStats::merge)
                    })
                    .reduce(TileStats::default, TileStats::merge)
            };
            pad.fill_halo(dst, spec.boundary, grid.height);
            s.cur ^= 1;
            s.steps += 1;
            s.computed += (grid.height * grid.width) as u64;
            *stat = StepStats {
                max_delta: tile_stats.max_delta,
                changed: tile_stats.changed,
            };
        });
    }

    /// Steps every unsettled sample until it settles (outputs unchanged for `patience`
    /// steps and the last max |h' - h| below `tol`) or reaches `max_steps`. A settled
    /// sample costs nothing more.
    pub fn converge(
        &mut self,
        params: &[f32],
        opts: ConvergeOptions,
        cancel: &AtomicBool,
    ) -> Result<Vec<SampleResult>> {
        opts.validate()?;
        self.refresh_outputs(params)?;
        self.prepare(params);
        let batch = self.grid.batch;
        let mut quiet = vec![0u32; batch];
        let mut results: Vec<SampleResult> = self
            .samples
            .iter()
            .map(|s| SampleResult {
                steps: s.steps,
                converged: false,
                last: StepStats::default(),
            })
            .collect();
        let mut active: Vec<bool> = self
            .samples
            .iter()
            .map(|s| s.steps < opts.max_steps)
            .collect();
        let mut stats = vec![StepStats::default(); batch];
        let p = Params::split(&self.spec, params);
        while active.iter().any(|&a| a) {
            self.step_prepared(&p, Some(&active), &mut stats, cancel)?;
            for b in 0..batch {
                if !active[b] {
                    continue;
                }
                let st = stats[b];
                let r = &mut results[b];
                r.steps = self.samples[b].steps;
                r.last = st;
                match opts.settle(&mut quiet[b], st, r.steps) {
                    Settle::Running => {}
                    end => {
                        r.converged = end == Settle::Converged;
                        active[b] = false;
                    }
                }
            }
        }
        Ok(results)
    }

    /// The argmax output of every cell, `[batch][height][width]`.
    pub fn outputs(&self) -> Vec<u8> {
        self.samples
            .iter()
            .flat_map(|s| s.outputs.iter().copied())
            .collect()
    }

    /// Steps taken by each sample.
    pub fn steps(&self) -> Vec<u64> {
        self.samples.iter().map(|s| s.steps).collect()
    }

    /// The hidden state, `[batch][height][width][C_h]`.
    pub fn hidden(&self) -> Vec<f32> {
        let (spec, pad, grid) = (&self.spec, &self.pad, &self.grid);
        let mut out = Vec::with_capacity(grid.cells() * spec.c_h);
        for s in &self.samples {
            let buf = &s.bufs[s.cur];
            for y in 0..grid.height {
                for x in 0..grid.width {
                    let at = pad.at(y, x) + spec.c_in;
                    out.extend_from_slice(&buf[at..at + spec.c_h]);
                }
            }
        }
        out
    }

    /// The logits of every cell, `[batch][height][width][C_out]`.
    pub fn logits(&self, params: &[f32]) -> Result<Vec<f32>> {
        self.spec.check_params(params)?;
        let p = Params::split(&self.spec, params);
        let (spec, pad, grid) = (&self.spec, &self.pad, &self.grid);
        check_logits_bytes(spec, grid, self.max_bytes)?;
        let mut out = vec![0.0f32; grid.cells() * spec.c_out];
        let mut cell = 0;
        for s in &self.samples {
            let buf = &s.bufs[s.cur];
            for y in 0..grid.height {
                for x in 0..grid.width {
                    let at = pad.at(y, x) + spec.c_in;
                    readout(
                        spec,
                        &p,
                        &buf[at..at + spec.c_h],
                        &mut out[cell..cell + spec.c_out],
                    );
                    cell += spec.c_out;
                }
            }
        }
        Ok(out)
    }
}

/// The cells a skipping step computes, row by row (`(row, cells)`, rows ascending, each
/// row's ranges sorted and disjoint): those whose neighbourhood holds a cell of `dirty`
/// (one list of ranges per row; in 2D a cell's neighbourhood spans its row and the rows
/// above and below it, wrapping around on a periodic boundary).
fn cells_to_compute(
    dirty: &[Vec<Range<usize>>],
    width: usize,
    periodic: bool,
) -> Vec<(usize, Range<usize>)> {
    let height = dirty.len();
    let mut todo = Vec::new();
    let mut wide = Vec::new();
    for y in 0..height {
        // The distinct rows of the neighbourhood (a 1D grid has one row, and a periodic
        // grid of one or two rows meets the same row twice).
        let (above, below) = if periodic {
            (Some((y + height - 1) % height), Some((y + 1) % height))
        } else {
            (y.checked_sub(1), Some(y + 1).filter(|&b| b < height))
        };
        let mut picked = [y; 3];
        let mut m = 1;
        for r in [above, below].into_iter().flatten() {
            if !picked[..m].contains(&r) {
                picked[m] = r;
                m += 1;
            }
        }
        let mut rows: [&[Range<usize>]; 3] = [&[]; 3];
        let mut n = 0;
        for &r in &picked[..m] {
            if !dirty[r].is_empty() {
                rows[n] = &dirty[r];
                n += 1;
            }
        }
        if n == 0 {
            continue;
        }
        widen_into(&rows[..n], width, periodic, &mut wide);
        todo.extend(wide.drain(..).map(|r| (y, r)));
    }
    todo
}

/// Leaves in `wide` the cells of a row whose neighbourhood holds a cell of the ranges in
/// `dirty` (each list sorted and disjoint): each range widened by a cell on each side
/// (around the row's ends on a periodic boundary), sorted and merged.
fn widen_into(
    dirty: &[&[Range<usize>]],
    width: usize,
    periodic: bool,
    wide: &mut Vec<Range<usize>>,
) {
    wide.clear();
    for row in dirty {
        wide.extend(
            row.iter()
                .map(|r| r.start.saturating_sub(1)..(r.end + 1).min(width)),
        );
        if periodic {
            if row.first().is_some_and(|r| r.start == 0) {
                wide.push(width - 1..width);
            }
            if row.last().is_some_and(|r| r.end == width) {
                wide.push(0..1);
            }
        }
    }
    if periodic || dirty.len() > 1 {
        wide.sort_unstable_by_key(|r| r.start);
    }
    let mut n = 0;
    for i in 0..wide.len() {
        let r = wide[i].clone();
        if n > 0 && r.start <= wide[n - 1].end {
            wide[n - 1].end = wide[n - 1].end.max(r.end);
        } else {
            wide[n] = r;
            n += 1;
        }
    }
    wide.truncate(n);
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // lists of one range of cells
mod tests {
    use super::{cells_to_compute, widen_into};
    use std::ops::Range;

    fn widen(dirty: &[Range<usize>], width: usize, periodic: bool) -> Vec<Range<usize>> {
        let mut wide = Vec::new();
        widen_into(&[dirty], width, periodic, &mut wide);
        wide
    }

    #[test]
    fn widen_merges_neighbourhoods_and_wraps_on_a_periodic_row() {
        assert_eq!(widen(&[3..4, 7..8], 10, false), vec![2..5, 6..9]);
        assert_eq!(widen(&[3..4, 6..7], 10, false), vec![2..8]);
        assert_eq!(widen(&[3..4, 5..6], 10, false), vec![2..7]);
        assert_eq!(widen(&[0..1, 9..10], 10, false), vec![0..2, 8..10]);
        assert_eq!(widen(&[0..1], 10, true), vec![0..2, 9..10]);
        assert_eq!(widen(&[9..10], 10, true), vec![0..1, 8..10]);
        assert_eq!(widen(&[0..10], 10, true), vec![0..10]);
        assert_eq!(widen(&[], 10, true), vec![]);
        assert_eq!(widen(&[0..1], 1, true), vec![0..1]);
    }

    #[test]
    fn widen_takes_the_union_of_several_rows() {
        let mut wide = Vec::new();
        widen_into(&[&[8..9], &[1..2], &[3..4]], 12, false, &mut wide);
        assert_eq!(wide, vec![0..5, 7..10]);
        widen_into(&[&[0..1], &[5..6]], 10, true, &mut wide);
        assert_eq!(wide, vec![0..2, 4..7, 9..10]);
    }

    #[test]
    fn a_2d_cell_is_computed_when_a_cell_of_its_3x3_neighbourhood_changed() {
        // 4 rows of 6; one cell changed at (1, 2).
        let mut dirty = vec![Vec::new(); 4];
        dirty[1].push(2..3);
        assert_eq!(
            cells_to_compute(&dirty, 6, false),
            vec![(0, 1..4), (1, 1..4), (2, 1..4)]
        );
        // At a corner: zero boundary stops at the edges, periodic wraps rows and columns.
        let mut dirty = vec![Vec::new(); 4];
        dirty[0].push(0..1);
        assert_eq!(
            cells_to_compute(&dirty, 6, false),
            vec![(0, 0..2), (1, 0..2)]
        );
        assert_eq!(
            cells_to_compute(&dirty, 6, true),
            vec![
                (0, 0..2),
                (0, 5..6),
                (1, 0..2),
                (1, 5..6),
                (3, 0..2),
                (3, 5..6)
            ]
        );
        // Rows one and two high meet the same row twice; nothing is counted twice.
        assert_eq!(cells_to_compute(&[vec![0..1]], 3, true), vec![(0, 0..3)]);
        assert_eq!(
            cells_to_compute(&[vec![1..2], vec![]], 3, true),
            vec![(0, 0..3), (1, 0..3)]
        );
        assert_eq!(cells_to_compute(&[vec![], vec![]], 3, true), vec![]);
    }
}
