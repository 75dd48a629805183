//! Settled-tile skipping on the GPU (`GpuSession::set_freeze`), on whatever adapter wgpu
//! finds (lavapipe in CI; no adapter is a failure unless SEAD_SKIP_GPU_TESTS=1):
//! - with freeze 0 it gives exactly (bit for bit) the states, outputs, statistics and converge
//!   results of plain GPU stepping, step by step, while computing fewer tiles once states stop
//!   changing;
//! - with freeze > 0 it stops where the CPU's skipping stops, and the shipped binary adder
//!   gives the same sums in the same steps as the CPU backend with the same freeze;
//! - on 2D grids too, with freeze 0 (a tile is computed when a tile of its row or of the rows
//!   above and below it changed next to it), and a 2D grid skipping agrees with the CPU
//!   stepping every cell;
//! - bad settings are refused.

mod common;
use common::{ctx, plane, row, states_agree, stats_agree, step_cpu_gpu};
use sead_core::Stepper;

#[path = "../benches/support/addition.rs"]
mod addition;

use addition::{encode_into, exact_sum, load_model, random_digits, shipped};
use sead_core::testdata::{
    creeping_row, fan_in_params, new_biases, one_hot_x, saturate, scalar_spec, small_spec_1d, Lcg,
};
use sead_core::{
    infer::DEFAULT_MAX_BYTES, Boundary, ConvergeOptions, Grid, Quantize, Session, Simd, Spec,
    StepStats, Update,
};
use sead_gpu::{GpuContext, GpuSession, SessionOptions};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Two sessions hold the same hidden states, outputs and step counts, bit for bit; a
/// difference is reported by its first index and the count, not by dumping the arrays.
fn assert_same(a: &GpuSession, b: &GpuSession, what: &str) {
    fn first_diff<T: PartialEq + std::fmt::Debug>(what: &str, name: &str, a: &[T], b: &[T]) {
        assert_eq!(a.len(), b.len(), "{what}: {name} lengths");
        let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        if let Some(&i) = diff.first() {
            panic!(
                "{what}: {name} differs at {} of {} entries, first at {i}: {:?} vs {:?}",
                diff.len(),
                a.len(),
                a[i],
                b[i]
            );
        }
    }
    let h = |s: &GpuSession| s.hidden().unwrap().iter().map(|v| v.to_bits()).collect();
    let (ha, hb): (Vec<u32>, Vec<u32>) = (h(a), h(b));
    first_diff(what, "hidden state (bits)", &ha, &hb);
    first_diff(
        what,
        "outputs",
        &a.outputs().unwrap(),
        &b.outputs().unwrap(),
    );
    assert_eq!(a.steps(), b.steps(), "{what}: steps");
}

/// Plain and skipping GPU sessions side by side: every call's hidden state, outputs and
/// statistics must be equal. Calls alternate 1 and 3 steps (so tiles are skipped inside a
/// window too), sample 1 sits out every third call (so samples' clocks differ in parity),
/// and the parameters change to `p2` halfway. Then three converge calls (back to `p`, so the
/// still tiles are forgotten; `p` again, so they are kept; `p2`), whose results must be
/// equal too. Returns the cells each computed in the step calls, summed over samples.
fn compare(
    ctx: &Arc<GpuContext>,
    spec: Spec,
    grid: Grid,
    x: &[f32],
    p: &[f32],
    p2: &[f32],
) -> (u64, u64) {
    let opts = SessionOptions::default();
    let mut plain = GpuSession::new(ctx.clone(), spec, grid, x, &opts).unwrap();
    // At most 3 workgroups per dimension: the listed tiles' indirect dispatch is folded
    // into 2D, with a few workgroups past the list.
    let folded = SessionOptions {
        max_workgroups_per_dim: Some(3),
        ..SessionOptions::default()
    };
    let mut skip = GpuSession::new(ctx.clone(), spec, grid, x, &folded).unwrap();
    skip.set_freeze(Some(0.0)).unwrap();
    let never = AtomicBool::new(false);
    let what = |t: &str| format!("{spec:?} {}x{}: {t}", grid.height, grid.width);
    for t in 0..24 {
        let params = if t < 12 { p } else { p2 };
        let active = [true, t % 3 != 0, true];
        let n = 1 + 2 * (t % 2);
        let (mut sa, mut sb) = (
            vec![StepStats::default(); 3 * n],
            vec![StepStats::default(); 3 * n],
        );
        plain
            .step(params, n, Some(&active), &mut sa, &never)
            .unwrap();
        skip.step(params, n, Some(&active), &mut sb, &never)
            .unwrap();
        let what = what(&format!("call {t}"));
        assert_same(&plain, &skip, &what);
        assert_eq!(sa, sb, "{what}: statistics");
    }
    let sum = |s: &GpuSession| s.cells_computed().iter().sum::<u64>();
    let counts = (sum(&plain), sum(&skip));
    // The samples have taken 48, 32 and 48 steps: each call gives them different budgets.
    for (i, params) in [p, p, p2].into_iter().enumerate() {
        let opts = ConvergeOptions {
            patience: 2,
            tol: 1e-3,
            max_steps: 60 + 25 * i as u64,
        };
        let ra = plain.converge(params, opts, &never).unwrap();
        let rb = skip.converge(params, opts, &never).unwrap();
        let what = what(&format!("converge call {i}"));
        assert_eq!(ra, rb, "{what}: results");
        assert_same(&plain, &skip, &what);
    }
    counts
}

/// 3 samples of 301 cells: several tiles, the last one partial, so the periodic wrap joins
/// tiles of different sizes.
const GRID: Grid = row(3, 301);
/// 24 calls of 1 or 3 steps (48 steps); sample 1 sits out 8 calls (16 steps).
const DENSE: u64 = 301 * (3 * 48 - 16);

/// Random models, and the same with large biases that drive most channels to tanh's exact
/// +-1, where states stop changing.
#[test]
fn freeze_zero_gives_exactly_the_states_of_plain_stepping() {
    let Some(ctx) = ctx() else { return };
    for (i, update) in [Update::Replace, Update::Residual].into_iter().enumerate() {
        for (j, boundary) in [Boundary::Zero, Boundary::Periodic].into_iter().enumerate() {
            let spec = small_spec_1d(update, boundary);
            let seed = 10 * i as u64 + j as u64;
            let some = skipped_once_saturated(&ctx, spec, GRID, seed, "saturated");
            assert!(some <= DENSE, "{spec:?}: {some} of {DENSE} cells computed");
        }
    }
}

/// A front that spreads one cell a step from a seed cell near the row's start, through
/// still tiles (and, periodic, around the row's ends): a tile must be computed when its
/// neighbour changes, even though it did not change itself. h' = tanh(3 relu(30 x +
/// 15 (h_left + h + h_right) - 5)): exactly 0 until a neighbour is on, then exactly 1.
#[test]
fn freeze_zero_carries_a_front_across_still_tiles() {
    let Some(ctx) = ctx() else { return };
    for boundary in [Boundary::Zero, Boundary::Periodic] {
        let seeds = [(0, 5), (0, 150), (0, 296)];
        front_skips_still_tiles(&ctx, scalar_spec(boundary), GRID, seeds);
    }
}

#[test]
fn a_cell_that_moves_less_than_freeze_keeps_its_state_as_on_the_cpu() {
    let Some(ctx) = ctx() else { return };
    // h' = tanh(0.5 h + x): h creeps towards its fixed point by ever smaller steps. With
    // freeze 1e-3 the creeping stops once a step would move h by at most 1e-3, at the same
    // step on both backends.
    let c = creeping_row();
    let mut cpu = Session::new(c.spec, c.grid, &c.x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    let mut gpu = GpuSession::new(ctx, c.spec, c.grid, &c.x, &Default::default()).unwrap();
    cpu.set_freeze(Some(1e-3)).unwrap();
    gpu.set_freeze(Some(1e-3)).unwrap();
    let (sc, sg) = step_cpu_gpu(&mut cpu, &mut gpu, &c.params, 60, None);
    let last = |s: &[StepStats]| s.iter().rposition(|st| st.max_delta > 0.0).unwrap();
    assert_eq!(
        last(&sg),
        last(&sc),
        "the state stops moving at the same step"
    );
    assert!(last(&sg) > 2 && last(&sg) < 30);
    for (a, b) in gpu.hidden().unwrap().iter().zip(cpu.hidden()) {
        assert!(
            (a - b).abs() < 1e-5,
            "hidden {a} on the GPU, {b} on the CPU"
        );
    }
    // The row is one tile: once nothing moves, nothing is computed, as on the CPU.
    assert_eq!(gpu.cells_computed(), cpu.cells_computed());
    let opts = ConvergeOptions {
        patience: 2,
        tol: 1e-3,
        max_steps: 1000,
    };
    let r = gpu
        .converge(&c.params, opts, &AtomicBool::new(false))
        .unwrap();
    assert!(r[0].converged);
}

/// Sums `pairs` with the shipped binary adder on both backends, freeze 1e-5, and checks
/// every answer against schoolbook addition; returns the steps (CPU, GPU) and the cells
/// each computed.
fn add_both(ctx: &Arc<GpuContext>, pairs: &[(Vec<u8>, Vec<u8>)]) -> [(Vec<u64>, u64); 2] {
    let m = load_model(&shipped("addition-base2")).unwrap();
    let w = pairs[0].0.len() + 1;
    let mut x = Vec::new();
    for (a, b) in pairs {
        encode_into(&mut x, a, b, 2, w);
    }
    let grid = row(pairs.len(), w);
    let opts = ConvergeOptions {
        patience: 4,
        tol: 1e-3,
        max_steps: 2 * w as u64 + 66,
    };
    let never = AtomicBool::new(false);
    let mut cpu = Session::new(m.spec, grid, &x, Simd::detect(), DEFAULT_MAX_BYTES).unwrap();
    cpu.set_freeze(Some(1e-5)).unwrap();
    let gopts = SessionOptions {
        check_every: 64,
        ..SessionOptions::default()
    };
    let mut gpu = GpuSession::new(ctx.clone(), m.spec, grid, &x, &gopts).unwrap();
    gpu.set_freeze(Some(1e-5)).unwrap();
    let rc = cpu.converge(&m.params, opts, &never).unwrap();
    let rg = gpu.converge(&m.params, opts, &never).unwrap();
    let (oc, og) = (cpu.outputs(), gpu.outputs().unwrap());
    for (i, (a, b)) in pairs.iter().enumerate() {
        let want = exact_sum(a, b, 2, w);
        assert!(rc[i].converged && rg[i].converged, "pair {i} settles");
        assert_eq!(&oc[i * w..(i + 1) * w], &want[..], "pair {i} on the CPU");
        assert_eq!(&og[i * w..(i + 1) * w], &want[..], "pair {i} on the GPU");
    }
    let steps = |r: &[sead_core::SampleResult]| r.iter().map(|s| s.steps).collect::<Vec<_>>();
    [
        (steps(&rc), cpu.cells_computed().iter().sum()),
        (steps(&rg), gpu.cells_computed().iter().sum()),
    ]
}

#[test]
fn the_shipped_adder_carries_across_a_long_chain_computing_few_tiles() {
    let Some(ctx) = ctx() else { return };
    // 1...1 + 1 over 1,000 digits: the carry crosses every cell, one cell a step.
    let n = 1000;
    let mut one = vec![0u8; n];
    one[0] = 1;
    let [(sc, cc), (sg, cg)] = add_both(&ctx, &[(vec![1u8; n], one)]);
    assert_eq!(sg, sc, "the same steps on both backends");
    // The CPU computes about 3 cells a step here, the GPU 3 tiles of up to 64 cells (plus
    // every cell in the first steps): under 10% of the cell updates at this length, and a
    // share that falls as 1 / length.
    let dense = sg[0] * (n as u64 + 1);
    assert!(
        cg * 10 < dense,
        "the GPU should compute under 10% of the cell updates, computed {cg} of {dense} (CPU: {cc})"
    );
}

#[test]
fn the_shipped_adder_sums_random_pairs_as_the_cpu_does() {
    let Some(ctx) = ctx() else { return };
    let mut rng = Lcg(5);
    let pairs: Vec<_> = (0..16)
        .map(|_| {
            (
                random_digits(&mut rng, 2, 300),
                random_digits(&mut rng, 2, 300),
            )
        })
        .collect();
    let [(sc, _), (sg, _)] = add_both(&ctx, &pairs);
    assert_eq!(sg, sc, "the same steps on both backends");
}

#[test]
fn bad_freeze_settings_are_refused() {
    let Some(ctx) = ctx() else { return };
    for dims in [1, 2] {
        let spec = Spec {
            dims,
            ..small_spec_1d(Update::Replace, Boundary::Zero)
        };
        let grid = plane(1, dims, 2);
        let opts = SessionOptions::default();
        let x = vec![0.0; grid.cells() * spec.c_in];
        let mut s = GpuSession::new(ctx.clone(), spec, grid, &x, &opts).unwrap();
        for bad in [-1e-3, f32::NAN, f32::INFINITY] {
            let e = s.set_freeze(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("freeze must be finite and >= 0"), "{e}");
        }
        s.set_freeze(Some(0.0)).unwrap();
        s.set_freeze(None).unwrap();
    }
}

// ---- 2D grids: a tile of row y is computed when a cell changed in a tile of rows y - 1, y
// or y + 1 overlapping its columns widened by one cell.

/// `small_spec_1d`'s channels on a plane (3x3 neighbourhood): 16-cell tiles.
fn small_spec_2d(update: Update, boundary: Boundary) -> Spec {
    Spec {
        dims: 2,
        ..small_spec_1d(update, boundary)
    }
}

/// 3 samples of each size: rows of several tiles, the last one partial (37 = 16 + 16 + 5,
/// 70 = 4 x 16 + 6); one cell; fewer cells than a tile. The 24 x 70 grid has 120 tiles per
/// sample, so the folded dispatch of `compare` has many rows.
const GRIDS_2D: [Grid; 4] = [
    plane(3, 5, 37),
    plane(3, 1, 1),
    plane(3, 2, 3),
    plane(3, 24, 70),
];

/// Cell updates of the 24 step calls of `compare` without skipping (sample 1 sits out 16 of
/// the 48 steps).
fn dense(grid: &Grid) -> u64 {
    grid.cells_per_sample() as u64 * (3 * 48 - 16)
}

/// `compare` on `spec` with parameters (`fan_in_params`) and inputs drawn from `Lcg(seed)`,
/// then with large biases (`saturate`) that drive most channels to tanh's exact +-1 (or, with
/// the quantizer, fix them), where states stop changing: plain stepping must compute every
/// cell both times, and skipping fewer than half of them once `saturated` (what the biases
/// did, for the messages). Returns the cells skipping computed before the biases.
fn skipped_once_saturated(
    ctx: &Arc<GpuContext>,
    spec: Spec,
    grid: Grid,
    seed: u64,
    saturated: &str,
) -> u64 {
    let mut rng = Lcg(seed);
    let mut p = fan_in_params(&spec, &mut rng);
    let x = one_hot_x(&spec, grid.cells(), &mut rng);
    let all = dense(&grid);
    let (plain, some) = compare(ctx, spec, grid, &x, &p, &new_biases(&spec, &p));
    assert_eq!(plain, all, "plain stepping computes every cell");
    saturate(&spec, &mut p, &mut rng);
    let (_, skipped) = compare(ctx, spec, grid, &x, &p, &new_biases(&spec, &p));
    eprintln!(
        "{}D {}x{} {:?} {:?} {:?}: {saturated}, {skipped} of {all} cells computed",
        spec.dims, grid.height, grid.width, spec.update, spec.boundary, spec.quantize
    );
    assert!(
        skipped < all / 2,
        "{spec:?} {grid:?}: {saturated}, states should be skipped ({skipped} of {all} cells \
         computed)"
    );
    some
}

/// Parameters of `scalar_spec` (1D or 2D) for a front: h' = tanh(3 relu(30 x + 15 (sum of the
/// neighbourhood's h) - 5)), exactly 0 until a neighbour is on, then exactly 1; output 1
/// where h is 1. Then the same with another output bias, which changes no state.
fn front_params(spec: &Spec) -> (Vec<f32>, Vec<f32>) {
    let l = spec.layout();
    let mut p = vec![0.0f32; spec.param_count()];
    // W1 rows: neighbour, then channel (x, h); the centre is the middle neighbour.
    let k = spec.k();
    for n in 0..k {
        p[l.w1.start + 2 * n + 1] = 15.0;
    }
    p[l.w1.start + 2 * (k / 2)] = 30.0;
    p[l.b1.start] = -5.0;
    p[l.w2.start] = 3.0;
    p[l.wo.start + 1] = 1.0;
    let mut p2 = p.clone();
    p2[l.bo.start] = 0.5;
    (p, p2)
}

/// `compare` on the front of `front_params` from one seed cell `(y, x)` per sample: plain
/// stepping computes every cell, and skipping under 90% of them (the still tiles are skipped).
fn front_skips_still_tiles(
    ctx: &Arc<GpuContext>,
    spec: Spec,
    grid: Grid,
    seeds: [(usize, usize); 3],
) {
    let (p, p2) = front_params(&spec);
    let mut x = vec![0.0f32; grid.cells()];
    for (b, (y, col)) in seeds.into_iter().enumerate() {
        x[b * grid.cells_per_sample() + y * grid.width + col] = 1.0;
    }
    let (plain, skipped) = compare(ctx, spec, grid, &x, &p, &p2);
    let all = dense(&grid);
    assert_eq!(plain, all);
    let boundary = spec.boundary;
    eprintln!(
        "front, {}D {boundary:?}: {skipped} of {all} cells computed",
        spec.dims
    );
    assert!(
        skipped < all * 9 / 10,
        "{boundary:?}: still tiles should be skipped ({skipped} of {all} cells computed)"
    );
}

#[test]
fn freeze_zero_in_2d_gives_exactly_the_states_of_plain_stepping() {
    let Some(ctx) = ctx() else { return };
    for (g, grid) in GRIDS_2D.iter().enumerate() {
        for (i, update) in [Update::Replace, Update::Residual].into_iter().enumerate() {
            for (j, boundary) in [Boundary::Zero, Boundary::Periodic].into_iter().enumerate() {
                let spec = small_spec_2d(update, boundary);
                if g == 3 {
                    let x = vec![0.0; grid.cells() * spec.c_in];
                    let s = GpuSession::new(ctx.clone(), spec, *grid, &x, &Default::default());
                    let tile = s.unwrap().layout().0 as usize;
                    assert!(
                        grid.width > 4 * tile,
                        "several tiles per row ({tile} cells each)"
                    );
                }
                let seed = 100 * g as u64 + 10 * i as u64 + j as u64;
                let some = skipped_once_saturated(&ctx, spec, *grid, seed, "saturated");
                let all = dense(grid);
                assert!(some <= all, "{spec:?}: {some} of {all} cells computed");
            }
        }
    }
}

/// The front of `freeze_zero_carries_a_front_across_still_tiles` on a plane: from a seed
/// cell it spreads one cell a step in all 8 directions, through still tiles (down from the
/// top row, up from the bottom row, and periodic, around both edges): a tile must be
/// computed when a tile of the row above or below changes, even though its own row did not.
/// h' = tanh(3 relu(30 x + 15 (sum of the 3x3 h) - 5)): exactly 0 until a neighbour is on,
/// then exactly 1.
#[test]
fn freeze_zero_carries_a_front_across_still_tiles_in_2d() {
    let Some(ctx) = ctx() else { return };
    let grid = plane(3, 20, 70);
    for boundary in [Boundary::Zero, Boundary::Periodic] {
        let spec = Spec {
            dims: 2,
            ..scalar_spec(boundary)
        };
        front_skips_still_tiles(&ctx, spec, grid, [(0, 5), (10, 35), (19, 66)]);
    }
}

/// Quantized models (h' rounded to -1, 0, +1) in 1D and 2D, both updates and boundaries:
/// freeze 0 gives exactly plain stepping's states (sign bits of zeros included); random
/// models, then the same with large biases that fix most channels at once, whose tiles are
/// then skipped.
#[test]
fn freeze_zero_with_the_quantizer_gives_exactly_the_states_of_plain_stepping() {
    let Some(ctx) = ctx() else { return };
    for (g, (dims, grid)) in [(1, GRID), (2, GRIDS_2D[0])].into_iter().enumerate() {
        for (i, update) in [Update::Replace, Update::Residual].into_iter().enumerate() {
            for (j, boundary) in [Boundary::Zero, Boundary::Periodic].into_iter().enumerate() {
                let spec = Spec {
                    dims,
                    quantize: Quantize::Ternary,
                    ..small_spec_1d(update, boundary)
                };
                let seed = 700 + 100 * g as u64 + 10 * i as u64 + j as u64;
                skipped_once_saturated(&ctx, spec, grid, seed, "fixed by its biases");
            }
        }
    }
}

/// The GPU skipping a 2D grid (freeze 0) against the CPU stepping every cell, with the
/// tolerances of tests/agreement.rs (and its reasons): hidden states within 5e-5 after 6
/// steps, outputs equal but for near-ties (logit gap under 1e-3), per-step max |h' - h|
/// within 5e-5 and changed outputs equal; then, for models that saturate, converge steps
/// and flags equal (their last max |h' - h| is exactly 0 on both, so no near-tol split).
#[test]
fn freeze_zero_in_2d_agrees_with_the_cpu() {
    let Some(ctx) = ctx() else { return };
    let grid = plane(3, 9, 37);
    for (i, update) in [Update::Replace, Update::Residual].into_iter().enumerate() {
        for (j, boundary) in [Boundary::Zero, Boundary::Periodic].into_iter().enumerate() {
            let spec = small_spec_2d(update, boundary);
            let mut rng = Lcg(300 + 10 * i as u64 + j as u64);
            let mut p = fan_in_params(&spec, &mut rng);
            let x = one_hot_x(&spec, grid.cells(), &mut rng);
            for saturated in [false, true] {
                if saturated {
                    saturate(&spec, &mut p, &mut rng);
                }
                let what = format!("{spec:?} saturated {saturated}");
                let mut cpu =
                    Session::new(spec, grid, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
                let mut gpu =
                    GpuSession::new(ctx.clone(), spec, grid, &x, &SessionOptions::default())
                        .unwrap();
                gpu.set_freeze(Some(0.0)).unwrap();
                let (cs, gs) = step_cpu_gpu(&mut cpu, &mut gpu, &p, 6, None);
                let (dh, ties) = states_agree(&spec, &what, &cpu, &gpu, &p);
                stats_agree(&what, &cs, &gs, ties == 0);
                eprintln!("{what}: hidden max diff {dh:.1e}, near-ties {ties}");
                if saturated {
                    let opts = ConvergeOptions {
                        patience: 3,
                        tol: 1e-4,
                        max_steps: 100,
                    };
                    let never = AtomicBool::new(false);
                    let rc = cpu.converge(&p, opts, &never).unwrap();
                    let rg = gpu.converge(&p, opts, &never).unwrap();
                    for (a, b) in rc.iter().zip(&rg) {
                        assert!(a.converged, "{what}: the saturated model settles");
                        assert_eq!((a.steps, a.converged), (b.steps, b.converged), "{what}");
                        assert_eq!(a.last, b.last, "{what}");
                    }
                    states_agree(&spec, &format!("{what}, after converging"), &cpu, &gpu, &p);
                    let (cc, cg) = (
                        cpu.cells_computed().iter().sum::<u64>(),
                        gpu.cells_computed().iter().sum::<u64>(),
                    );
                    assert!(cg < cc, "{what}: the GPU computed {cg} cells, the CPU {cc}");
                }
            }
        }
    }
}
