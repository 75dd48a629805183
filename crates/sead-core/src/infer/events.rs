//! Event-driven stepping for quantized specs (docs/DESIGN.md, "Event-driven stepping").
//!
//! A quantized cell's next state is an exact function of its neighbourhood's bits (3 cells
//! in 1D, 3x3 in 2D, itself included), and the kernels compute each cell from those bits
//! alone, wherever it falls in a tile. So a cell none of whose neighbours changed in the
//! last step would compute its current state again, bit for bit: only the neighbourhoods of
//! the cells that changed need computing. Each sample keeps that set as a sorted list of
//! runs of cells, built from the list of cells that changed, so a step costs in proportion
//! to the changes: two carry fronts far apart cost two small neighbourhoods, never the span
//! between them.

use super::{
    compute_pieces, current_and_spare, cut_into_pieces, split_by_items, Run, Sample, StepStats,
    TILE,
};
use crate::kernel::Simd;
use crate::spec::{Boundary, Grid, Padded, Params, Spec};
use rayon::prelude::*;

/// One sample's lists of runs of cells, `(row, first column, one past the last)`, sorted.
#[derive(Default)]
pub(super) struct Lists {
    /// The cells the next step computes: disjoint, and runs of a row never touch.
    active: Vec<Run>,
    /// Scratch, kept so a step of one work item (a few cells) allocates nothing: the cells
    /// that changed in this step, the work items' pieces of `active` and where each ends.
    changed: Vec<Run>,
    pieces: Vec<Run>,
    ends: Vec<usize>,
}

impl Lists {
    /// Every cell active (a fresh sample, or new parameters): what the sample computed
    /// before says nothing about what it computes next.
    pub(super) fn reset(&mut self, grid: &Grid) {
        self.active.clear();
        self.active
            .extend((0..grid.height).map(|y| (y, 0, grid.width)));
    }

    /// Cells the next step computes.
    pub(super) fn active_cells(&self) -> usize {
        self.active.iter().map(|&(_, a, b)| b - a).sum()
    }
}

/// The most memory one sample's lists can take, in bytes: every other cell of every row
/// changing gives the most runs. The lists reserve exactly what a step can need, so their
/// capacities stay within this (`Session::bytes_needed` counts it for quantized specs).
pub(super) fn bytes_bound(dims: usize, grid: &Grid, periodic: bool) -> usize {
    let half = grid.height.saturating_mul(grid.width.div_ceil(2));
    let wrap = if periodic { 2 * grid.height } else { 0 };
    let shifts = if dims == 1 { 1 } else { 3 };
    let items = grid.cells_per_sample() / TILE + 1;
    // active before merging; changed, and its parts while items commit in parallel; pieces.
    let runs = (shifts * (half + wrap))
        .saturating_add(2 * half)
        .saturating_add(half + items);
    runs.saturating_mul(size_of::<Run>())
        .saturating_add(items * size_of::<usize>())
}

/// One event-driven step of one sample: computes its active cells into the spare buffer
/// and the outputs, commits the cells whose state bits changed, and makes the next active
/// list from them. Returns the statistics plain stepping would report: a cell not computed
/// would have moved by exactly 0 and kept its output.
pub(super) fn step_sample(
    spec: &Spec,
    pad: &Padded,
    grid: &Grid,
    simd: Simd,
    p: &Params<f32>,
    s: &mut Sample,
) -> StepStats {
    let lists = &mut s.events;
    let cells = lists.active_cells();
    lists.pieces.clear();
    lists
        .pieces
        .reserve_exact(lists.active.len() + cells / TILE + 1);
    lists.ends.clear();
    lists.ends.reserve_exact(cells / TILE + 1);
    cut_into_pieces(
        lists.active.iter().copied(),
        &mut lists.pieces,
        &mut lists.ends,
    );
    let (state, spare) = current_and_spare(&mut s.bufs, s.cur);
    let stats = compute_pieces(
        spec,
        pad,
        grid.width,
        simd,
        p,
        state,
        &lists.pieces,
        &lists.ends,
        spare,
        &mut s.outputs,
    );
    // The state stays in bufs[cur]: copying the changed cells back costs less than keeping
    // two buffers in step. Each item commits its own cells (in parallel when there are
    // several), listing those whose hidden bits changed: -0 and +0 are different states to
    // a bit-for-bit caller.
    let (c_in, c_h) = (spec.c_in, spec.c_h);
    let spare: &[f32] = spare;
    let commit = |item: &[Run], a: usize, state: &mut [f32], changed: &mut Vec<Run>| {
        for &(y, x0, x1) in item {
            for x in x0..x1 {
                let at = pad.at(y, x) + c_in;
                let (new, old) = (&spare[at..at + c_h], &mut state[at - a..at - a + c_h]);
                if new
                    .iter()
                    .zip(old.iter())
                    .any(|(n, o)| n.to_bits() != o.to_bits())
                {
                    old.copy_from_slice(new);
                    push_run(changed, (y, x, x + 1));
                }
            }
        }
    };
    lists.changed.clear();
    // A run of n cells holds at most (n + 1) / 2 runs of changes.
    let most = lists
        .active
        .iter()
        .map(|&(_, a, b)| (b - a).div_ceil(2))
        .sum();
    lists.changed.reserve_exact(most);
    if lists.ends.len() <= 1 {
        commit(&lists.pieces, 0, state, &mut lists.changed);
    } else {
        let parts = split_by_items(state, &lists.pieces, &lists.ends, |y, x| pad.at(y, x));
        let mut first = 0;
        let items: Vec<_> = (lists.ends.iter().zip(parts))
            .map(|(&end, part)| {
                let item = &lists.pieces[first..end];
                first = end;
                (item, part)
            })
            .collect();
        let found: Vec<Vec<Run>> = items
            .into_par_iter()
            .map(|(item, (a, part))| {
                let most = item.iter().map(|&(_, a, b)| (b - a).div_ceil(2)).sum();
                let mut changed = Vec::with_capacity(most);
                commit(item, a, part, &mut changed);
                changed
            })
            .collect();
        for run in found.into_iter().flatten() {
            push_run(&mut lists.changed, run);
        }
    }
    let (height, width) = (grid.height, grid.width);
    let periodic = spec.boundary == Boundary::Periodic;
    if periodic {
        for &(y, x0, x1) in &lists.changed {
            if spec.dims == 2 && (y == 0 || y + 1 == height) {
                for x in x0..x1 {
                    sync_halo(pad, state, (y, x), (height, width), spec);
                }
            } else {
                // (Twice on a one-cell row: the same copy.)
                if x0 == 0 {
                    sync_halo(pad, state, (y, 0), (height, width), spec);
                }
                if x1 == width {
                    sync_halo(pad, state, (y, width - 1), (height, width), spec);
                }
            }
        }
    }
    neighbourhoods(
        &lists.changed,
        spec.dims,
        (height, width),
        periodic,
        &mut lists.active,
    );
    s.computed += cells as u64;
    s.steps += 1;
    StepStats {
        max_delta: stats.max_delta,
        changed: stats.changed,
    }
}

/// Appends a run to a sorted list of runs, joining it to the last when they touch.
fn push_run(runs: &mut Vec<Run>, (y, x0, x1): Run) {
    match runs.last_mut() {
        Some((row, _, end)) if *row == y && *end == x0 => *end = x1,
        _ => runs.push((y, x0, x1)),
    }
}

/// Copies the hidden channels of interior cell (y, x) into the periodic halo cells that
/// wrap it (the inputs never change). `Padded::fill_halo` does the same for every cell.
fn sync_halo(
    pad: &Padded,
    buf: &mut [f32],
    (y, x): (usize, usize),
    (height, width): (usize, usize),
    spec: &Spec,
) {
    // Padded columns and rows holding the cell: its own first, then the wrapped copies.
    let cols = [
        Some(x + 1),
        (x == 0).then_some(width + 1),
        (x + 1 == width).then_some(0),
    ];
    let rows = if spec.dims == 1 {
        [Some(0), None, None]
    } else {
        [
            Some(y + 1),
            (y == 0).then_some(height + 1),
            (y + 1 == height).then_some(0),
        ]
    };
    let (c, c_in, c_h) = (spec.c(), spec.c_in, spec.c_h);
    let src = pad.at(y, x) + c_in;
    for r in rows.into_iter().flatten() {
        for col in cols.into_iter().flatten() {
            let dst = (r * pad.cols + col) * c + c_in;
            if dst != src {
                buf.copy_within(src..src + c_h, dst);
            }
        }
    }
}

/// Leaves in `out` the cells whose neighbourhood holds a cell of `changed` (sorted, disjoint
/// runs): each run widened by a cell on each side, in its row and (2D) the rows above and
/// below, clipped at the edges or wrapped around a periodic grid; sorted, with overlapping
/// and touching runs of a row merged. The work follows the number of runs, not the grid.
pub(super) fn neighbourhoods(
    changed: &[Run],
    dims: usize,
    (height, width): (usize, usize),
    periodic: bool,
    out: &mut Vec<Run>,
) {
    out.clear();
    let shifts: &[isize] = if dims == 1 { &[0] } else { &[-1, 0, 1] };
    // Each run gives one widened run per shift, each row two wrapped cells at most.
    let rows = if periodic {
        changed.chunk_by(|a, b| a.0 == b.0).count()
    } else {
        0
    };
    out.reserve_exact(shifts.len() * (changed.len() + 2 * rows));
    for &d in shifts {
        let mut rest = changed;
        while let Some(&(y, _, _)) = rest.first() {
            let n = rest.iter().take_while(|r| r.0 == y).count();
            let (row, tail) = rest.split_at(n);
            rest = tail;
            let r = y as isize + d;
            let r = if (0..height as isize).contains(&r) {
                r as usize
            } else if periodic {
                r.rem_euclid(height as isize) as usize
            } else {
                continue;
            };
            // The wrapped cells go first and last, where they sort.
            if periodic && row[n - 1].2 == width {
                out.push((r, 0, 1));
            }
            out.extend(
                row.iter()
                    .map(|&(_, a, b)| (r, a.saturating_sub(1), (b + 1).min(width))),
            );
            if periodic && row[0].1 == 0 {
                out.push((r, width - 1, width));
            }
        }
    }
    // 1D comes out sorted; 2D interleaves three sorted passes.
    if !out.is_sorted() {
        out.sort_unstable();
    }
    let mut n = 0usize;
    for i in 0..out.len() {
        let (r, a, b) = out[i];
        match n.checked_sub(1).map(|k| &mut out[k]) {
            Some(last) if last.0 == r && a <= last.2 => last.2 = last.2.max(b),
            _ => {
                out[n] = (r, a, b);
                n += 1;
            }
        }
    }
    out.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::neighbourhoods;
    use crate::infer::Run;

    fn near(changed: &[Run], dims: usize, shape: (usize, usize), periodic: bool) -> Vec<Run> {
        let mut out = vec![(9, 9, 9)]; // cleared first
        neighbourhoods(changed, dims, shape, periodic, &mut out);
        out
    }

    #[test]
    fn a_1d_run_widens_by_a_cell_each_side_and_far_runs_stay_apart() {
        let w = (1, 1_000_000);
        assert_eq!(
            near(&[(0, 10, 11), (0, 900_000, 900_001)], 1, w, false),
            vec![(0, 9, 12), (0, 899_999, 900_002)]
        );
        assert_eq!(near(&[(0, 3, 4), (0, 5, 6)], 1, w, false), vec![(0, 2, 7)]);
        assert_eq!(near(&[(0, 3, 4), (0, 6, 7)], 1, w, false), vec![(0, 2, 8)]);
        assert_eq!(near(&[], 1, w, true), vec![]);
        // Zero boundary clips; periodic wraps.
        assert_eq!(
            near(&[(0, 0, 1), (0, 9, 10)], 1, (1, 10), false),
            vec![(0, 0, 2), (0, 8, 10)]
        );
        assert_eq!(
            near(&[(0, 0, 1)], 1, (1, 10), true),
            vec![(0, 0, 2), (0, 9, 10)]
        );
        assert_eq!(
            near(&[(0, 9, 10)], 1, (1, 10), true),
            vec![(0, 0, 1), (0, 8, 10)]
        );
        assert_eq!(near(&[(0, 0, 10)], 1, (1, 10), true), vec![(0, 0, 10)]);
        assert_eq!(near(&[(0, 0, 1)], 1, (1, 1), true), vec![(0, 0, 1)]);
    }

    #[test]
    fn a_2d_cell_reaches_its_3x3_neighbourhood() {
        let shape = (4, 6);
        assert_eq!(
            near(&[(1, 2, 3)], 2, shape, false),
            vec![(0, 1, 4), (1, 1, 4), (2, 1, 4)]
        );
        assert_eq!(
            near(&[(0, 0, 1)], 2, shape, false),
            vec![(0, 0, 2), (1, 0, 2)]
        );
        // Periodic, the corner's neighbourhood wraps: columns 5, 0, 1 of rows 3, 0, 1.
        let wrapped = [0, 1, 3].map(|y| [(y, 0, 2), (y, 5, 6)]).concat();
        assert_eq!(near(&[(0, 0, 1)], 2, shape, true), wrapped);
        // Runs of different rows that touch end to end stay apart; rows merge.
        assert_eq!(
            near(&[(1, 4, 6), (2, 0, 1)], 2, shape, false),
            vec![
                (0, 3, 6),
                (1, 0, 2),
                (1, 3, 6),
                (2, 0, 2),
                (2, 3, 6),
                (3, 0, 2)
            ]
        );
        // Grids one and two rows high meet the same row twice; nothing is counted twice.
        assert_eq!(near(&[(0, 1, 2)], 2, (1, 3), true), vec![(0, 0, 3)]);
        assert_eq!(
            near(&[(0, 1, 2)], 2, (2, 3), true),
            vec![(0, 0, 3), (1, 0, 3)]
        );
    }
}
