//! Settled-tile skipping on the GPU (`GpuSession::set_freeze`), on whatever adapter wgpu
//! finds (lavapipe in CI; no adapter is a failure unless SEAD_SKIP_GPU_TESTS=1):
//! - with freeze 0 it gives exactly (bit for bit) the states, outputs and statistics of plain
//!   GPU stepping, step by step, while computing fewer tiles once states stop changing;
//! - with freeze > 0 it stops where the CPU's skipping stops, and the shipped binary adder
//!   gives the same sums in the same steps as the CPU backend with the same freeze;
//! - bad settings are refused.

mod common;
use common::{assert_same, ctx};

#[path = "../benches/support/addition.rs"]
mod addition;

use addition::{encode_into, exact_sum, load_model, random_digits, shipped};
use sead_core::testdata::{
    creeping_params, fan_in_params, one_hot_x, scalar_spec, small_spec_1d, Lcg,
};
use sead_core::{
    infer::DEFAULT_MAX_BYTES, Boundary, ConvergeOptions, Grid, Session, Simd, Spec, StepStats,
    Update,
};
use sead_gpu::{GpuContext, GpuSession, SessionOptions};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Plain and skipping GPU sessions side by side: every call's hidden state, outputs and
/// statistics must be equal. Calls alternate 1 and 3 steps (so tiles are skipped inside a
/// window too), sample 1 sits out every third call (so samples' clocks differ in parity),
/// and the parameters change to `p2` halfway. Returns the cells each computed, summed over
/// samples.
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
        let what = format!("{spec:?} call {t}");
        assert_same(&plain, &skip, &what);
        assert_eq!(sa, sb, "{what}: statistics");
    }
    let sum = |s: &GpuSession| s.cells_computed().iter().sum::<u64>();
    (sum(&plain), sum(&skip))
}

/// 3 samples of 301 cells: several tiles, the last one partial, so the periodic wrap joins
/// tiles of different sizes.
const GRID: Grid = Grid {
    batch: 3,
    height: 1,
    width: 301,
};
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
            let mut rng = Lcg(10 * i as u64 + j as u64);
            let mut p = fan_in_params(&spec, &mut rng);
            let x = one_hot_x(&spec, GRID.cells(), &mut rng);
            let changed = |p: &[f32]| {
                let mut p2 = p.to_vec();
                p2[spec.layout().bo.start] += 3.0; // flips outputs of kept states too
                p2[spec.layout().b1.start] += 0.25;
                p2
            };
            let (dense, some) = compare(&ctx, spec, GRID, &x, &p, &changed(&p));
            assert_eq!(dense, DENSE, "plain stepping computes every cell");
            assert!(some <= dense, "{spec:?}: {some} of {dense} cells computed");
            for v in &mut p[spec.layout().b2] {
                *v = if rng.next() < 0.5 { -12.0 } else { 12.0 };
            }
            let (_, skipped) = compare(&ctx, spec, GRID, &x, &p, &changed(&p));
            assert!(
                skipped < DENSE / 2,
                "{spec:?}: saturated states should be skipped ({skipped} of {DENSE} cells computed)"
            );
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
        let spec = scalar_spec(boundary);
        let l = spec.layout();
        let mut p = vec![0.0f32; spec.param_count()];
        // W1 rows: neighbour (left, centre, right), then channel (x, h).
        p[l.w1.start + 1] = 15.0;
        p[l.w1.start + 2] = 30.0;
        p[l.w1.start + 3] = 15.0;
        p[l.w1.start + 5] = 15.0;
        p[l.b1.start] = -5.0;
        p[l.w2.start] = 3.0;
        p[l.wo.start + 1] = 1.0;
        let mut p2 = p.clone();
        p2[l.bo.start] = 0.5;
        let mut x = vec![0.0f32; GRID.cells()];
        for (b, seed) in [5, 150, 296].into_iter().enumerate() {
            x[b * GRID.width + seed] = 1.0;
        }
        let (dense, skipped) = compare(&ctx, spec, GRID, &x, &p, &p2);
        assert_eq!(dense, DENSE);
        assert!(
            skipped < DENSE * 9 / 10,
            "{boundary:?}: still tiles should be skipped ({skipped} of {DENSE} cells computed)"
        );
    }
}

#[test]
fn a_cell_that_moves_less_than_freeze_keeps_its_state_as_on_the_cpu() {
    let Some(ctx) = ctx() else { return };
    // h' = tanh(0.5 h + x): h creeps towards its fixed point by ever smaller steps. With
    // freeze 1e-3 the creeping stops once a step would move h by at most 1e-3, at the same
    // step on both backends.
    let spec = scalar_spec(Boundary::Zero);
    let p = creeping_params(&spec);
    let grid = Grid {
        batch: 1,
        height: 1,
        width: 4,
    };
    let x = [1.0, 1.0, 1.0, 1.0];
    let never = AtomicBool::new(false);
    let mut cpu = Session::new(spec, grid, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    cpu.set_freeze(Some(1e-3)).unwrap();
    let mut gpu = GpuSession::new(ctx.clone(), spec, grid, &x, &SessionOptions::default()).unwrap();
    gpu.set_freeze(Some(1e-3)).unwrap();
    let (mut sc, mut sg) = (
        vec![StepStats::default(); 60],
        vec![StepStats::default(); 60],
    );
    cpu.step(&p, 60, None, &mut sc, &never).unwrap();
    gpu.step(&p, 60, None, &mut sg, &never).unwrap();
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
    let r = gpu.converge(&p, opts, &never).unwrap();
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
    let grid = Grid {
        batch: pairs.len(),
        height: 1,
        width: w,
    };
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
    let spec = small_spec_1d(Update::Replace, Boundary::Zero);
    let grid = Grid {
        batch: 1,
        height: 1,
        width: 4,
    };
    let opts = SessionOptions::default();
    let mut s = GpuSession::new(ctx.clone(), spec, grid, &[0.0; 12], &opts).unwrap();
    for bad in [-1e-3, f32::NAN, f32::INFINITY] {
        let e = s.set_freeze(Some(bad)).unwrap_err().to_string();
        assert!(e.contains("freeze must be finite and >= 0"), "{e}");
    }
    let spec2 = Spec { dims: 2, ..spec };
    let grid2 = Grid {
        batch: 1,
        height: 2,
        width: 2,
    };
    let mut s2 = GpuSession::new(ctx, spec2, grid2, &[0.0; 12], &opts).unwrap();
    let e = s2.set_freeze(Some(0.0)).unwrap_err().to_string();
    assert!(e.contains("1D"), "{e}");
    s2.set_freeze(None).unwrap();
}
