//! Event-driven stepping of quantized specs (the default; `Session::set_event_driven`): it
//! must give exactly the states, outputs and statistics of computing every cell, step by
//! step, while computing exactly the neighbourhoods of the cells that changed; far-apart
//! changes in a long row cost their neighbourhoods only.

use sead_core::testdata::{fan_in_params, new_biases, one_hot_x, scalar_spec, small_spec_1d, Lcg};
use sead_core::{
    infer::DEFAULT_MAX_BYTES, Boundary, ConvergeOptions, Grid, Quantize, Session, Simd, Spec,
    StepStats, Update,
};
use std::sync::atomic::AtomicBool;

mod common;
use common::{simds, step_both, ChangeTracker};

fn quantized(dims: usize, update: Update, boundary: Boundary) -> Spec {
    Spec {
        dims,
        quantize: Quantize::Ternary,
        ..small_spec_1d(update, boundary)
    }
}

/// Random parameters under which some cells keep changing for tens of steps (measured:
/// with plain fan-in weights the residual update locks within a few steps, so its W2 is
/// tripled).
fn params(spec: &Spec, rng: &mut Lcg) -> Vec<f32> {
    let mut p = fan_in_params(spec, rng);
    if spec.update == Update::Residual {
        for v in &mut p[spec.layout().w2] {
            *v *= 3.0;
        }
    }
    p
}

fn sessions(spec: Spec, grid: Grid, x: &[f32], simd: Simd) -> (Session, Session) {
    let events = Session::new(spec, grid, x, simd, DEFAULT_MAX_BYTES).unwrap();
    let mut every = Session::new(spec, grid, x, simd, DEFAULT_MAX_BYTES).unwrap();
    every.set_event_driven(false);
    assert!(events.is_event_driven() && !every.is_event_driven());
    (events, every)
}

/// What one comparison saw, summed over samples.
#[derive(Default)]
struct Seen {
    events: u64,
    every: u64,
    /// (sample, step) pairs of steps 12..22 (before the new parameters) in which a cell
    /// changed: the random parameters must keep cells moving.
    late: u64,
    /// (sample, step) pairs that computed some cells but not all: lists that are neither
    /// empty nor the whole grid.
    partial: u64,
}

const STEPS: usize = 44;
const NEW_PARAMS_AT: usize = 22;

/// Event-driven and every-cell sessions side by side for 44 steps on 3 samples: every
/// step's hidden state, outputs and statistics must be equal. Sample 1 sits out every third
/// step; the parameters change halfway. The cells each sample computes must be exactly
/// those with a cell of their neighbourhood (3, or 3x3, clipped or wrapped) whose state
/// changed in the sample's last step, or every cell at the first step and after new
/// parameters.
fn compare(spec: Spec, (height, width): (usize, usize), simd: Simd, seed: u64) -> Seen {
    let mut rng = Lcg(seed);
    let p = params(&spec, &mut rng);
    let p2 = new_biases(&spec, &p);
    let grid = Grid {
        batch: 3,
        height,
        width,
    };
    let cells = height * width;
    let x = one_hot_x(&spec, 3 * cells, &mut rng);
    let (mut events, mut every) = sessions(spec, grid, &x, simd);
    // By bits: the comparison must see a -0 written over a +0.
    let mut tracker = ChangeTracker::new(&spec, (height, width), every.hidden(), true);
    let mut seen = Seen::default();
    let mut last_computed = vec![0u64; 3];
    for t in 0..STEPS {
        let params = if t < NEW_PARAMS_AT { &p } else { &p2 };
        if t == NEW_PARAMS_AT {
            tracker.recompute_all();
        }
        let active = [true, t % 3 != 0, true];
        let what = format!("{spec:?} {height}x{width} {simd:?} seed {seed} step {t}");
        let after = step_both(&mut every, &mut events, params, &active, &what);
        tracker.step(&active, after);
        let computed = events.cells_computed();
        assert_eq!(computed, tracker.expected, "{what}: cells computed");
        for b in (0..3).filter(|&b| active[b]) {
            if (12..NEW_PARAMS_AT).contains(&t) && tracker.changed[b].contains(&true) {
                seen.late += 1;
            }
            let step = computed[b] - last_computed[b];
            seen.partial += (0 < step && step < cells as u64) as u64;
        }
        last_computed = computed;
    }
    assert_eq!(events.steps(), every.steps());
    let sum = |s: &Session| s.cells_computed().iter().sum::<u64>();
    seen.events = sum(&events);
    seen.every = sum(&every);
    seen
}

/// Every update, boundary and kernel on grids of `shapes`: exact agreement, cells still
/// changing late on every grid of 20 cells or more, every cell computed by the every-cell
/// session, and fewer by the event-driven one, with steps that computed part of a grid.
fn events_agree(dims: usize, shapes: &[(usize, usize)]) {
    let (mut events, mut every, mut partial) = (0, 0, 0);
    for (i, update) in [Update::Replace, Update::Residual].into_iter().enumerate() {
        for (j, boundary) in [Boundary::Zero, Boundary::Periodic].into_iter().enumerate() {
            for simd in simds() {
                for &(height, width) in shapes {
                    let spec = quantized(dims, update, boundary);
                    let seen = compare(spec, (height, width), simd, 10 * i as u64 + j as u64);
                    let cells = (height * width) as u64;
                    let steps = 3 * STEPS as u64 - (STEPS as u64).div_ceil(3);
                    assert_eq!(seen.every, steps * cells);
                    // (Grids of a few cells lock quickly; they are here for their edges.)
                    assert!(
                        seen.late > 0 || cells < 20,
                        "{spec:?} {height}x{width}: no cell changed in steps 12..22"
                    );
                    events += seen.events;
                    every += seen.every;
                    partial += seen.partial;
                }
            }
        }
    }
    assert!(
        events < every && partial > 0,
        "event-driven stepping computed {events} of {every} cells, {partial} steps part of a grid"
    );
}

#[test]
fn event_driven_stepping_gives_exactly_the_every_cell_states_in_1d() {
    // 5,000 cells: more than one parallel work item per step.
    events_agree(1, &[(1, 61), (1, 1), (1, 2), (1, 5000)]);
}

#[test]
fn event_driven_stepping_gives_exactly_the_every_cell_states_in_2d() {
    // 40 x 120: work items that span rows.
    events_agree(2, &[(7, 9), (1, 5), (2, 3), (5, 1), (40, 120)]);
}

/// h' = 1 where the cell's input is 1, or it or its left neighbour is 1 (else 0): a front
/// that moves one cell right per step from each input set to 1. Output 1 where h = 1.
fn front_params(spec: &Spec) -> Vec<f32> {
    let l = spec.layout();
    let c = spec.c(); // x then h
    let (left, centre) = if spec.dims == 1 { (0, 1) } else { (3, 4) };
    let mut p = vec![0.0f32; spec.param_count()];
    p[l.w1.start + left * c + 1] = 1.0;
    p[l.w1.start + centre * c] = 1.0;
    p[l.w1.start + centre * c + 1] = 1.0;
    p[l.w2.start] = 10.0; // tanh(10) rounds to 1
    p[l.wo.start + 1] = 1.0;
    p
}

/// Two fronts far apart in a million-cell grid: after the first step (every cell), each
/// step computes the two fronts' neighbourhoods (3 cells each in 1D, 9 in 2D) and nothing
/// between them. On the periodic grid one front crosses the edge and wraps around.
#[test]
fn far_apart_fronts_cost_only_their_neighbourhoods() {
    let never = AtomicBool::new(false);
    for (dims, height, width) in [(1, 1, 1_000_000), (2, 1000, 1000)] {
        for boundary in [Boundary::Zero, Boundary::Periodic] {
            let spec = Spec {
                dims,
                quantize: Quantize::Ternary,
                ..scalar_spec(boundary)
            };
            let p = front_params(&spec);
            let grid = Grid {
                batch: 1,
                height,
                width,
            };
            let cells = height * width;
            // Rows inside the grid (a 2D neighbourhood at the edge is clipped); the second
            // front wraps around the periodic grid and stays clear of the zero one's edge.
            let far = if boundary == Boundary::Zero { 100 } else { 5 };
            let starts = [(height / 3, width / 3), (2 * height / 3, width - far)];
            let mut x = vec![0.0f32; cells];
            for &(y, xx) in &starts {
                x[y * width + xx] = 1.0;
            }
            let mut s = Session::new(spec, grid, &x, Simd::detect(), DEFAULT_MAX_BYTES).unwrap();
            s.refresh_outputs(&p).unwrap();
            let mut st = [StepStats::default()];
            let per_step = if dims == 1 { 6 } else { 18 };
            let steps = 30;
            for t in 0..steps {
                s.step(&p, 1, None, &mut st, &never).unwrap();
                let want = cells as u64 + t as u64 * per_step;
                assert_eq!(s.cells_computed(), vec![want], "{spec:?} step {t}");
                assert_eq!(st[0].changed, 2, "{spec:?} step {t}: outputs changed");
            }
            let ones: Vec<usize> = s
                .outputs()
                .iter()
                .enumerate()
                .filter(|(_, &o)| o == 1)
                .map(|(i, _)| i)
                .collect();
            let mut want = Vec::new();
            for (y, xx) in starts {
                want.extend((0..steps).map(|i| y * width + (xx + i) % width));
            }
            want.sort_unstable();
            assert_eq!(ones, want, "{spec:?}: the fronts' cells");
        }
    }
}

/// `converge` twice (the second call goes on from the first's lists), outputs refreshed
/// under other parameters in between, and a spell of settled-cell skipping: the event-driven
/// session always matches the every-cell one.
#[test]
fn converge_refresh_and_mode_switches_agree_with_every_cell_stepping() {
    let never = AtomicBool::new(false);
    let mut settled_any = false;
    for (dims, height, width) in [(1, 1, 300), (2, 12, 20)] {
        for update in [Update::Replace, Update::Residual] {
            let spec = quantized(dims, update, Boundary::Periodic);
            let mut rng = Lcg(7);
            let p = params(&spec, &mut rng);
            let mut p2 = p.clone();
            p2[spec.layout().bo.start] += 3.0;
            let grid = Grid {
                batch: 4,
                height,
                width,
            };
            let x = one_hot_x(&spec, grid.cells(), &mut rng);
            let (mut events, mut every) = sessions(spec, grid, &x, Simd::detect());
            let what = format!("{spec:?}");
            let same = |a: &Session, b: &Session, when: &str| {
                assert_eq!(a.hidden(), b.hidden(), "{what} {when}: hidden");
                assert_eq!(a.outputs(), b.outputs(), "{what} {when}: outputs");
                assert_eq!(a.steps(), b.steps(), "{what} {when}: steps");
            };
            let converge_both = |a: &mut Session, b: &mut Session, opts, when: &str| {
                let ra = a.converge(&p, opts, &never).unwrap();
                let rb = b.converge(&p, opts, &never).unwrap();
                assert_eq!(ra, rb, "{what}: {when}");
                same(a, b, when);
                rb
            };
            let opts = ConvergeOptions {
                patience: 3,
                tol: 0.5,
                max_steps: 30,
            };
            let first = converge_both(&mut every, &mut events, opts, "first converge");
            let computed = events.cells_computed();
            let settled: Vec<bool> = first.iter().map(|r| r.converged).collect();
            let longer = ConvergeOptions {
                max_steps: 60,
                ..opts
            };
            converge_both(&mut every, &mut events, longer, "second converge");
            // With tol 0.5 a settled quantized sample's last step changed no state, so its
            // list is empty: going on from the lists, the second call computes nothing for
            // it (starting afresh would compute every cell).
            settled_any |= settled.contains(&true);
            for (b, (c0, c1)) in computed.iter().zip(events.cells_computed()).enumerate() {
                if settled[b] {
                    assert_eq!(c1, *c0, "{what}: sample {b} computed cells again");
                }
            }
            let mut sa = vec![StepStats::default(); 4];
            let mut sb = vec![StepStats::default(); 4];
            let mut both = |a: &mut Session, b: &mut Session, when: &str| {
                a.step(&p, 1, None, &mut sa, &never).unwrap();
                b.step(&p, 1, None, &mut sb, &never).unwrap();
                assert_eq!(sa, sb, "{what} {when}: statistics");
                same(a, b, when);
            };
            every.refresh_outputs(&p2).unwrap();
            events.refresh_outputs(&p2).unwrap();
            both(
                &mut every,
                &mut events,
                "after refreshing under other parameters",
            );
            events.set_freeze(Some(0.0)).unwrap();
            assert!(!events.is_event_driven());
            both(&mut every, &mut events, "skipping settled cells");
            events.set_freeze(None).unwrap();
            both(&mut every, &mut events, "back to event-driven");
            both(&mut every, &mut events, "event-driven again");
        }
    }
    assert!(
        settled_any,
        "no sample settled: the lists' continuity went untested"
    );
}

#[test]
fn continuous_specs_compute_every_cell() {
    let spec = small_spec_1d(Update::Replace, Boundary::Zero);
    let grid = Grid {
        batch: 1,
        height: 1,
        width: 8,
    };
    let x = one_hot_x(&spec, 8, &mut Lcg(1));
    let s = Session::new(spec, grid, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    assert!(!s.is_event_driven());
}

/// A quantized session's memory includes its event lists at their largest (every other
/// cell of a row changing makes a run per two cells, in the changed, active and work lists).
#[test]
fn quantized_sessions_count_the_memory_of_their_lists() {
    let grid = Grid {
        batch: 2,
        height: 1,
        width: 1000,
    };
    let continuous = small_spec_1d(Update::Replace, Boundary::Zero);
    let spec = quantized(1, Update::Replace, Boundary::Zero);
    let run = std::mem::size_of::<(usize, usize, usize)>();
    let (q, c) = (
        Session::bytes_needed(&spec, &grid),
        Session::bytes_needed(&continuous, &grid),
    );
    assert!(q >= c + 2 * 1000 * run, "{q} vs {c}");
}
