//! Settled-cell skipping (`Session::set_freeze`): with freeze 0 it must give exactly the
//! states, outputs and statistics of plain stepping, step by step, while computing fewer
//! cells once states stop changing; bad settings are refused.

use sead_core::testdata::{
    self, creeping_row, fan_in_params, new_biases, one_hot_x, small_spec_1d, Case, Lcg,
};
use sead_core::{
    infer::DEFAULT_MAX_BYTES, Boundary, ConvergeOptions, Grid, Session, Simd, Spec, StepStats,
    Update,
};
use std::sync::atomic::AtomicBool;

mod common;
use common::{simds, step_both, ChangeTracker};

/// Parameters for `spec`; with `saturate`, large biases drive most channels to tanh's exact
/// +-1, where states stop changing.
fn params(spec: &Spec, saturate: bool, rng: &mut Lcg) -> Vec<f32> {
    let mut p = fan_in_params(spec, rng);
    if saturate {
        testdata::saturate(spec, &mut p, rng);
    }
    p
}

/// Plain and skipping sessions side by side for 40 steps on 3 samples of `height x width`:
/// every step's hidden state, outputs and statistics must be equal. Sample 1 sits out every
/// third step, and the parameters change from `p` to `p2` halfway. The cells each sample
/// computes must be exactly those next to a change: the cells with a cell of their
/// neighbourhood (3x3 in 2D, clipped or wrapped at the edges) whose state changed in the
/// sample's last step, or every cell at the first step and after new parameters. Returns
/// the cells each session computed, summed over samples.
fn compare_with(
    spec: Spec,
    (height, width): (usize, usize),
    simd: Simd,
    x: &[f32],
    (p, p2): (&[f32], &[f32]),
    what: &str,
) -> (u64, u64) {
    let grid = Grid {
        batch: 3,
        height,
        width,
    };
    let mut plain = Session::new(spec, grid, x, simd, DEFAULT_MAX_BYTES).unwrap();
    let mut skip = Session::new(spec, grid, x, simd, DEFAULT_MAX_BYTES).unwrap();
    skip.set_freeze(Some(0.0)).unwrap();
    let mut tracker = ChangeTracker::new(&spec, (height, width), plain.hidden(), false);
    for t in 0..40 {
        let params = if t < 20 { p } else { p2 };
        if t == 20 {
            tracker.recompute_all();
        }
        let active = [true, t % 3 != 0, true];
        let what = format!("{what} {spec:?} {height}x{width} {simd:?} step {t}");
        let after = step_both(&mut plain, &mut skip, params, &active, &what);
        tracker.step(&active, after);
        assert_eq!(
            skip.cells_computed(),
            tracker.expected,
            "{what}: cells computed"
        );
    }
    assert_eq!(plain.steps(), skip.steps());
    let sum = |s: &Session| s.cells_computed().iter().sum::<u64>();
    (sum(&plain), sum(&skip))
}

/// `compare_with` on random parameters and inputs; the new parameters flip outputs of kept
/// states too.
fn compare(spec: Spec, shape: (usize, usize), simd: Simd, saturate: bool, seed: u64) -> (u64, u64) {
    let mut rng = Lcg(seed);
    let p = params(&spec, saturate, &mut rng);
    let p2 = new_biases(&spec, &p);
    let x = one_hot_x(&spec, 3 * shape.0 * shape.1, &mut rng);
    compare_with(
        spec,
        shape,
        simd,
        &x,
        (&p, &p2),
        &format!("saturate {saturate}"),
    )
}

/// Every update, boundary and SIMD kernel on grids of `shapes` (`dims` 1 or 2): exact
/// agreement, every cell computed by plain stepping, and fewer than half of them by skipping
/// once states saturate (on grids of more than `min_cells_to_save` cells: on a tiny
/// periodic grid every cell neighbours every other).
fn freeze_zero_agrees(dims: usize, shapes: &[(usize, usize)], min_cells_to_save: usize) {
    for (i, update) in [Update::Replace, Update::Residual].into_iter().enumerate() {
        for (j, boundary) in [Boundary::Zero, Boundary::Periodic].into_iter().enumerate() {
            for simd in simds() {
                for &(height, width) in shapes {
                    let spec = Spec {
                        dims,
                        ..small_spec_1d(update, boundary)
                    };
                    let seed = 10 * i as u64 + j as u64;
                    let cells = (height * width) as u64;
                    let (dense, _) = compare(spec, (height, width), simd, false, seed);
                    assert_eq!(
                        dense,
                        cells * (3 * 40 - 14),
                        "plain stepping computes every cell"
                    );
                    let (dense, skipped) = compare(spec, (height, width), simd, true, seed);
                    assert!(skipped <= dense);
                    if cells > min_cells_to_save as u64 {
                        assert!(
                            skipped < dense / 2,
                            "{spec:?} {height}x{width} {simd:?}: saturated states should be \
                             skipped ({skipped} of {dense} cells computed)"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn freeze_zero_gives_exactly_the_states_of_plain_stepping() {
    freeze_zero_agrees(1, &[(1, 37)], 0);
}

#[test]
fn freeze_zero_gives_exactly_the_states_of_plain_stepping_in_2d() {
    // Non-square, tiny, and one of several work items (rows wider than a tile).
    freeze_zero_agrees(2, &[(5, 37), (1, 1), (2, 3), (8, 8), (3, 2100)], 9);
}

/// Parameters of a 2D `small_spec_1d` shape for a front: h0' = tanh(20 relu(x0 + h0 of the
/// neighbour at (dy, dx))), every other weight zero but the readout of h0 into output 1. A
/// cell with x0 set turns on (h0 = 1), and a cell turns on when that neighbour is on: the
/// front moves one cell a step towards (-dy, -dx) across cells that stay exactly 0.
fn front_params(spec: &Spec, (dy, dx): (isize, isize)) -> Vec<f32> {
    let l = spec.layout();
    let (c, f) = (spec.c(), spec.features);
    let w1 = |k: usize, ch: usize| l.w1.start + (k * c + ch) * f;
    let mut p = vec![0.0f32; spec.param_count()];
    p[w1(4, 0)] = 1.0; // x0 of the centre
    p[w1(((dy + 1) * 3 + dx + 1) as usize, spec.c_in)] = 1.0; // h0 of the neighbour
    p[l.w2.start] = 20.0;
    p[l.wo.start + 1] = 1.0;
    p
}

#[test]
fn fronts_crossing_a_settled_2d_grid_are_followed_in_every_direction() {
    for update in [Update::Replace, Update::Residual] {
        for boundary in [Boundary::Zero, Boundary::Periodic] {
            for simd in simds() {
                for dy in -1..=1isize {
                    for dx in -1..=1isize {
                        if (dy, dx) == (0, 0) {
                            continue;
                        }
                        let spec = Spec {
                            dims: 2,
                            ..small_spec_1d(update, boundary)
                        };
                        let p = front_params(&spec, (dy, dx));
                        let mut p2 = p.clone();
                        p2[spec.layout().bo.start + 1] -= 2.0; // on cells now read 0
                        for shape in [(5, 37), (6, 6)] {
                            let cells = 3 * shape.0 * shape.1;
                            // x1 set everywhere but at a few seeds, a different few per sample.
                            let mut x = vec![0.0f32; cells * spec.c_in];
                            for (i, cell) in x.chunks_exact_mut(spec.c_in).enumerate() {
                                cell[usize::from(i % 29 != 3)] = 1.0;
                            }
                            let what = format!("front from ({dy}, {dx})");
                            let (dense, skipped) =
                                compare_with(spec, shape, simd, &x, (&p, &p2), &what);
                            assert!(
                                skipped < dense / 2,
                                "{what} {shape:?}: {skipped} of {dense} cells computed"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn converge_with_freeze_zero_takes_the_steps_of_plain_stepping_in_2d() {
    let never = AtomicBool::new(false);
    for boundary in [Boundary::Zero, Boundary::Periodic] {
        for simd in simds() {
            let spec = Spec {
                dims: 2,
                ..small_spec_1d(Update::Residual, boundary)
            };
            let mut rng = Lcg(5);
            let p = params(&spec, true, &mut rng);
            let grid = Grid {
                batch: 4,
                height: 6,
                width: 19,
            };
            let x = one_hot_x(&spec, grid.cells(), &mut rng);
            let opts = ConvergeOptions {
                patience: 3,
                tol: 1e-4,
                max_steps: 300,
            };
            let mut plain = Session::new(spec, grid, &x, simd, DEFAULT_MAX_BYTES).unwrap();
            let mut skip = Session::new(spec, grid, &x, simd, DEFAULT_MAX_BYTES).unwrap();
            skip.set_freeze(Some(0.0)).unwrap();
            let a = plain.converge(&p, opts, &never).unwrap();
            let b = skip.converge(&p, opts, &never).unwrap();
            let what = format!("{boundary:?} {simd:?}");
            assert_eq!(a, b, "{what}: converge results");
            assert!(a.iter().all(|r| r.converged), "{what}: {a:?}");
            assert_eq!(plain.hidden(), skip.hidden(), "{what}");
            assert_eq!(plain.outputs(), skip.outputs(), "{what}");
            let (dense, skipped) = (
                plain.cells_computed().iter().sum::<u64>(),
                skip.cells_computed().iter().sum::<u64>(),
            );
            assert!(
                skipped < dense,
                "{what}: {skipped} of {dense} cells computed"
            );
        }
    }
}

#[test]
fn a_cell_that_moves_less_than_freeze_keeps_its_state() {
    // h' = tanh(0.5 h + x): h creeps towards its fixed point by ever smaller steps. With
    // freeze 1e-3 the creeping stops once a step would move h by at most 1e-3.
    let Case {
        spec,
        params: p,
        grid,
        x,
    } = creeping_row();
    let mut s = Session::new(spec, grid, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    s.set_freeze(Some(1e-3)).unwrap();
    let never = AtomicBool::new(false);
    let mut stats = vec![StepStats::default(); 60];
    s.step(&p, 60, None, &mut stats, &never).unwrap();
    let last_move = stats.iter().rposition(|st| st.max_delta > 0.0).unwrap();
    assert!(
        last_move > 2 && last_move < 30,
        "the state should stop moving after a few steps, not at step {last_move}"
    );
    assert!(stats[last_move].max_delta > 1e-3);
    // Once nothing moves, nothing is computed.
    let computed = s.cells_computed()[0];
    assert_eq!(computed, 4 * (last_move as u64 + 2));
    // converge settles there too.
    let r = s
        .converge(
            &p,
            ConvergeOptions {
                patience: 2,
                tol: 1e-3,
                max_steps: 1000,
            },
            &never,
        )
        .unwrap();
    assert!(r[0].converged);
}

#[test]
fn bad_freeze_settings_are_refused_in_1d_and_2d() {
    let spec_1d = small_spec_1d(Update::Replace, Boundary::Zero);
    // (dims, height, width, bad settings)
    let cases: [(usize, usize, usize, &[f32]); 2] = [
        (1, 1, 4, &[-1e-3, f32::NAN, f32::INFINITY]),
        (2, 2, 2, &[-1e-3, f32::NAN]),
    ];
    for (dims, height, width, bads) in cases {
        let spec = Spec { dims, ..spec_1d };
        let grid = Grid {
            batch: 1,
            height,
            width,
        };
        let mut s =
            Session::new(spec, grid, &[0.0; 12], Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
        for &bad in bads {
            let e = s.set_freeze(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("freeze must be finite and >= 0"), "{e}");
        }
        if dims == 2 {
            // 2D grids skip settled cells too.
            s.set_freeze(Some(0.0)).unwrap();
            s.set_freeze(None).unwrap();
        }
    }
}
