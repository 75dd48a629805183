//! How the step kernel lays out its work must not change a bit of what it computes, on
//! whatever adapter wgpu finds (lavapipe in CI; no adapter is a failure unless
//! SEAD_SKIP_GPU_TESTS=1):
//! - Packed short rows (`step_packed`): a batch of short 1D rows laid end to end and tiled
//!   as one row gives exactly what tiling each row gives: the same hidden states, outputs,
//!   per-step statistics and settle steps. The rows are 1 to 37 cells, so tiles hold
//!   several samples, and samples span tiles; both boundaries and both updates; samples sit
//!   out calls and settle at different steps inside a window; batches split into groups
//!   and dispatches folded into 2D.
//! - Tuned layouts (`tile_cells`, `workgroup_threads`): every tile size and workgroup size
//!   gives the default layout's bits, in 1D (plain, packed and skipping) and 2D.
//! - Bad tuning values are refused with an error that names them.

mod common;
use common::{assert_same, ctx, row};
use sead_core::Stepper;

use sead_core::testdata::{bench_spec, fan_in_params, one_hot_x, small_spec_1d, Lcg};
use sead_core::{Boundary, ConvergeOptions, Grid, Quantize, SampleResult, Spec, StepStats, Update};
use sead_gpu::{GpuError, GpuSession, SessionOptions};
use std::sync::atomic::AtomicBool;

fn session(
    ctx: &std::sync::Arc<sead_gpu::GpuContext>,
    spec: sead_core::Spec,
    grid: Grid,
    x: &[f32],
    pack: bool,
    small_groups: bool,
) -> GpuSession {
    let per_sample = (2 * grid.cells_per_sample() * spec.c_h * 4) as u64;
    // The whole batch's per-sample state (10 words a sample) is one binding too.
    let states = (4 * 10 * grid.batch) as u64;
    let opts = SessionOptions {
        check_every: 4,
        pack_short_rows: pack,
        // Groups of three samples where the rows are long enough for the state to fit, at
        // most 3 workgroups per dispatch dimension.
        max_group_bytes: small_groups.then_some((3 * per_sample).max(states)),
        max_workgroups_per_dim: small_groups.then_some(3),
        ..SessionOptions::default()
    };
    GpuSession::new(ctx.clone(), spec, grid, x, &opts).unwrap()
}

/// `n` steps of two sessions (of the samples `active` marks, or all): the same statistics,
/// then the same states.
fn step_same(
    a: &mut GpuSession,
    b: &mut GpuSession,
    p: &[f32],
    n: usize,
    active: Option<&[bool]>,
    what: &str,
) {
    let never = AtomicBool::new(false);
    let mut sa = vec![StepStats::default(); n * a.grid().batch];
    let mut sb = sa.clone();
    a.step(p, n, active, &mut sa, &never).unwrap();
    b.step(p, n, active, &mut sb, &never).unwrap();
    assert_eq!(sa, sb, "{what}: statistics");
    assert_same(a, b, what);
}

/// `converge` on two sessions: the same results, then the same states. Returns the results.
fn converge_same(
    a: &mut GpuSession,
    b: &mut GpuSession,
    p: &[f32],
    opts: ConvergeOptions,
    what: &str,
) -> Vec<SampleResult> {
    let never = AtomicBool::new(false);
    let ra = a.converge(p, opts, &never).unwrap();
    let rb = b.converge(p, opts, &never).unwrap();
    assert_eq!(ra, rb, "{what}: converge results");
    assert_same(a, b, &format!("{what}, converged"));
    ra
}

#[test]
fn packed_rows_step_exactly_as_rows_tiled_alone() {
    let Some(ctx) = ctx() else { return };
    let mut packed_widths = Vec::new();
    for (si, (update, boundary)) in [
        (Update::Replace, Boundary::Zero),
        (Update::Residual, Boundary::Periodic),
        (Update::Replace, Boundary::Periodic),
        (Update::Residual, Boundary::Zero),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = small_spec_1d(update, boundary);
        for (wi, width) in [1usize, 2, 3, 5, 17, 37].into_iter().enumerate() {
            let small_groups = (si + wi) % 2 == 0;
            let mut rng = Lcg(1000 + 10 * si as u64 + wi as u64);
            let grid = row(7, width);
            let x = one_hot_x(&spec, grid.cells(), &mut rng);
            let p: Vec<f32> = (0..spec.param_count()).map(|_| rng.sym_f32(0.6)).collect();
            let mut packed = session(&ctx, spec, grid, &x, true, small_groups);
            let mut alone = session(&ctx, spec, grid, &x, false, small_groups);
            assert!(alone.packed_tile().is_none());
            let Some(tc) = packed.packed_tile() else {
                continue; // packing would not save enough workgroups at this width
            };
            packed_widths.push(width);
            let what = format!("{update:?} {boundary:?} width {width} (tiles of {tc})");
            for call in 0..5 {
                // Samples 1 and 4 sit out every other call, so clocks differ in parity.
                let active: Vec<bool> = (0..7).map(|b| call % 2 == 0 || b % 3 != 1).collect();
                let what = format!("{what}, call {call}");
                step_same(&mut packed, &mut alone, &p, 1 + call, Some(&active), &what);
            }
            // Settling: small weights contract, and each sample settles at its own step,
            // most of them inside a window of 4 steps; those that do not stop at a budget
            // of 122 steps, also inside a window (a settled sample must not be written).
            let calm: Vec<f32> = p.iter().map(|v| v * 0.4).collect();
            let opts = ConvergeOptions {
                patience: 2,
                tol: 1e-4,
                max_steps: 122,
            };
            let ra = converge_same(&mut packed, &mut alone, &calm, opts, &what);
            let settled: Vec<u64> = ra.iter().map(|r| r.steps).collect();
            eprintln!("{what}: settled at {settled:?}");
        }
    }
    // Packing is taken where it saves workgroups: every width but 37 for this model.
    assert!(
        packed_widths.len() >= 16,
        "packing was used for only {packed_widths:?}"
    );
}

/// Steps `session` through 4 calls (with freeze on when `freeze`), returning after each
/// call the hidden state, the outputs and the statistics.
type Trace = Vec<(Vec<f32>, Vec<u8>, Vec<StepStats>)>;

fn trace(mut session: GpuSession, p: &[f32], freeze: bool) -> Trace {
    let never = AtomicBool::new(false);
    if freeze {
        session.set_freeze(Some(0.0)).unwrap();
    }
    let batch = session.grid().batch;
    (0..4)
        .map(|call| {
            let n = 1 + call;
            let mut st = vec![StepStats::default(); n * batch];
            session.step(p, n, None, &mut st, &never).unwrap();
            (session.hidden().unwrap(), session.outputs().unwrap(), st)
        })
        .collect()
}

#[test]
fn every_tile_and_workgroup_size_gives_the_same_bits() {
    let Some(ctx) = ctx() else { return };
    // The binary adder's shape (C = 20, F = 64: padded weight rows of 8 features), in 1D
    // with a short row (packed) and a long one; and a 2D model with odd channel counts.
    let adder = bench_spec(1);
    let plane = Spec {
        dims: 2,
        c_in: 3,
        c_h: 7,
        features: 13,
        c_out: 3,
        update: Update::Residual,
        boundary: Boundary::Periodic,
        quantize: Quantize::None,
    };
    // Tiles of more cells than threads (64 x 32) only fit the small models' workgroup memory.
    let small = small_spec_1d(Update::Residual, Boundary::Periodic);
    let big_tile = [(4, 32), (32, 32), (8, 256), (32, 64), (16, 128)];
    let small_tile = [(4, 32), (64, 32), (8, 256), (32, 64), (16, 128)];
    let plane_grid = common::plane(2, 5, 11);
    let cases = [
        (adder, row(5, 17), false, big_tile),
        (adder, row(2, 150), false, big_tile),
        (adder, row(2, 150), true, big_tile),
        (small, row(20, 5), false, small_tile),
        (plane, plane_grid, false, small_tile),
    ];
    for (ci, (spec, grid, freeze, layouts)) in cases.into_iter().enumerate() {
        let mut rng = Lcg(77 + ci as u64);
        let x = one_hot_x(&spec, grid.cells(), &mut rng);
        let p = fan_in_params(&spec, &mut rng);
        let make = |tile: Option<u32>, threads: Option<u32>| {
            let opts = SessionOptions {
                check_every: 3,
                tile_cells: tile,
                workgroup_threads: threads,
                ..SessionOptions::default()
            };
            GpuSession::new(ctx.clone(), spec, grid, &x, &opts).unwrap()
        };
        let want = trace(make(None, None), &p, freeze);
        for (tile, threads) in layouts {
            let s = make(Some(tile), Some(threads));
            let layout = s.layout();
            let what = format!("case {ci} ({grid:?}, freeze {freeze}), layout {layout:?}");
            assert_eq!(layout, (tile, threads), "{what}");
            let got = trace(s, &p, freeze);
            for (call, (a, b)) in want.iter().zip(&got).enumerate() {
                assert_eq!(a.0, b.0, "{what}, call {call}: hidden state");
                assert_eq!(a.1, b.1, "{what}, call {call}: outputs");
                assert_eq!(a.2, b.2, "{what}, call {call}: statistics");
            }
        }
    }
}

#[test]
fn bad_tuning_values_are_refused() {
    let Some(ctx) = ctx() else { return };
    let spec = small_spec_1d(Update::Replace, Boundary::Zero);
    let grid = row(1, 8);
    let x = vec![0.0; grid.cells() * spec.c_in];
    let try_new = |tile: Option<u32>, threads: Option<u32>| {
        let opts = SessionOptions {
            tile_cells: tile,
            workgroup_threads: threads,
            ..SessionOptions::default()
        };
        GpuSession::new(ctx.clone(), spec, grid, &x, &opts).unwrap_err()
    };
    let e = try_new(Some(12), None);
    assert!(matches!(e, GpuError::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("tileCells must be one of"), "{e}");
    let e = try_new(None, Some(48));
    assert!(matches!(e, GpuError::Invalid(_)), "{e:?}");
    assert!(
        e.to_string().contains("workgroupThreads must be one of"),
        "{e}"
    );
    // A model whose 64-cell tile overflows the device's workgroup memory.
    let wide = Spec {
        c_in: 64,
        c_h: 64,
        features: 256,
        ..spec
    };
    let x = vec![0.0; grid.cells() * wide.c_in];
    let opts = SessionOptions {
        tile_cells: Some(64),
        ..SessionOptions::default()
    };
    let e = GpuSession::new(ctx.clone(), wide, grid, &x, &opts).unwrap_err();
    assert!(matches!(e, GpuError::TooLarge(_)), "{e:?}");
    assert!(e.to_string().contains("workgroup memory"), "{e}");
}

/// A batch whose window of per-step statistics would overflow one buffer binding takes fewer
/// steps per window, with the same results; one whose per-sample state alone would overflow
/// it is refused with the largest batch that fits. (The binding cap is lowered so a small
/// batch takes the path a batch of millions takes on a GPU with 128 MiB bindings.)
#[test]
fn large_batches_take_shorter_windows() {
    let Some(ctx) = ctx() else { return };
    let spec = small_spec_1d(Update::Replace, Boundary::Zero);
    let grid = row(300, 9);
    let mut rng = Lcg(31);
    let x = one_hot_x(&spec, grid.cells(), &mut rng);
    let p = fan_in_params(&spec, &mut rng);
    let make = |cap: Option<u64>| {
        let opts = SessionOptions {
            check_every: 32,
            max_group_bytes: cap,
            ..SessionOptions::default()
        };
        GpuSession::new(ctx.clone(), spec, grid, &x, &opts)
    };
    // 3 words of statistics per sample and step: room for 5 steps.
    let mut capped = make(Some(4 * 3 * 300 * 5)).unwrap();
    assert_eq!(capped.check_every(), 5);
    assert!(capped.groups() > 1);
    let mut full = make(None).unwrap();
    assert_eq!(full.check_every(), 32);
    step_same(&mut capped, &mut full, &p, 12, None, "12 steps");
    let calm: Vec<f32> = p.iter().map(|v| v * 0.3).collect();
    let opts = ConvergeOptions {
        patience: 2,
        tol: 1e-4,
        max_steps: 200,
    };
    converge_same(&mut capped, &mut full, &calm, opts, "capped vs full");
    // 10 words of state per sample: 300 samples need 12,000 bytes.
    let e = make(Some(11_999)).unwrap_err();
    assert!(matches!(e, GpuError::TooLarge(_)), "{e:?}");
    assert!(
        e.to_string().contains("per-sample state") && e.to_string().contains("at most 299 samples"),
        "{e}"
    );
}
