//! Packed short rows (`step_packed`): a batch of short 1D rows laid end to end and tiled
//! as one row must give exactly (bit for bit) what tiling each row gives: the same hidden
//! states, outputs, per-step statistics and settle steps, on whatever adapter wgpu finds
//! (lavapipe in CI; no adapter is a failure unless SEAD_SKIP_GPU_TESTS=1). The rows are
//! 1 to 37 cells, so tiles hold several samples, and samples span tiles; both boundaries
//! and both updates; samples sit out calls and settle at different steps inside a window;
//! batches split into groups and dispatches folded into 2D.

mod common;
use common::ctx;

use sead_core::testdata::{one_hot_x, small_spec_1d, Lcg};
use sead_core::{Boundary, ConvergeOptions, Grid, StepStats, Update};
use sead_gpu::{GpuSession, SessionOptions};
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
    let opts = SessionOptions {
        check_every: 4,
        pack_short_rows: pack,
        // Three samples per group, at most 3 workgroups per dispatch dimension.
        max_group_bytes: small_groups.then_some(3 * per_sample),
        max_workgroups_per_dim: small_groups.then_some(3),
        ..SessionOptions::default()
    };
    GpuSession::new(ctx.clone(), spec, grid, x, &opts).unwrap()
}

fn assert_same(a: &GpuSession, b: &GpuSession, what: &str) {
    assert_eq!(
        a.hidden().unwrap(),
        b.hidden().unwrap(),
        "{what}: hidden state"
    );
    assert_eq!(
        a.outputs().unwrap(),
        b.outputs().unwrap(),
        "{what}: outputs"
    );
    assert_eq!(a.steps(), b.steps(), "{what}: steps");
}

#[test]
fn packed_rows_step_exactly_as_rows_tiled_alone() {
    let Some(ctx) = ctx() else { return };
    let never = AtomicBool::new(false);
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
            let grid = Grid {
                batch: 7,
                height: 1,
                width,
            };
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
                let n = 1 + call;
                let mut sa = vec![StepStats::default(); n * 7];
                let mut sb = sa.clone();
                packed.step(&p, n, Some(&active), &mut sa, &never).unwrap();
                alone.step(&p, n, Some(&active), &mut sb, &never).unwrap();
                assert_eq!(sa, sb, "{what}, call {call}: statistics");
                assert_same(&packed, &alone, &format!("{what}, call {call}"));
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
            let ra = packed.converge(&calm, opts, &never).unwrap();
            let rb = alone.converge(&calm, opts, &never).unwrap();
            assert_eq!(ra, rb, "{what}: converge results");
            assert_same(&packed, &alone, &format!("{what}, converged"));
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
