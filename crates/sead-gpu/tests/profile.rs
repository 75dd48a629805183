//! Kernel profiling (`GpuOptions::profile`): every dispatch is counted under its kernel with
//! a GPU time, the results are those of an unprofiled context bit for bit, and dispatches
//! past a submission's query capacity are counted as untimed, not lost or misattributed.

mod common;
use common::{ctx, row};
use sead_core::Stepper;

use sead_core::testdata::{bench_spec, fan_in_params, one_hot_x, Lcg};
use sead_core::{Grid, Spec, StepStats};
use sead_gpu::{GpuContext, GpuError, GpuOptions, GpuSession, Profile, SessionOptions};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A profiling context on the default adapter, or None where the adapter has no timestamp
/// queries inside passes (then the error must say so).
fn profiling_ctx() -> Option<Arc<GpuContext>> {
    ctx()?;
    match GpuContext::new(&GpuOptions {
        profile: true,
        ..Default::default()
    }) {
        Ok(c) => Some(Arc::new(c)),
        Err(GpuError::Unavailable(m)) if m.contains("timestamp queries") => {
            eprintln!("this adapter cannot profile: {m}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn count(p: &Profile, kernel: &str) -> u64 {
    p.kernels
        .iter()
        .find(|k| k.kernel == kernel)
        .map_or(0, |k| k.dispatches)
}

fn assert_timed(p: &Profile) {
    assert!(!p.kernels.is_empty());
    for k in &p.kernels {
        assert!(
            k.seconds > 0.0 && k.seconds < 60.0,
            "{}: {} s over {} dispatches",
            k.kernel,
            k.seconds,
            k.dispatches
        );
    }
}

fn session(ctx: &Arc<GpuContext>, spec: Spec, grid: Grid, check_every: u32) -> GpuSession {
    let x = one_hot_x(&spec, grid.cells(), &mut Lcg(5));
    let opts = SessionOptions {
        check_every,
        ..Default::default()
    };
    GpuSession::new(ctx.clone(), spec, grid, &x, &opts).unwrap()
}

#[test]
fn profiling_counts_every_dispatch_and_changes_nothing() {
    let (Some(plain), Some(prof)) = (ctx(), profiling_ctx()) else {
        return;
    };
    assert!(plain.take_profile().is_none() && !plain.profiling());
    let spec = bench_spec(1);
    let p = fan_in_params(&spec, &mut Lcg(3));
    let grid = row(3, 37);
    let never = AtomicBool::new(false);
    let mut stats = vec![StepStats::default(); 10 * grid.batch];
    let mut want = vec![StepStats::default(); 10 * grid.batch];

    // Plain stepping: 10 steps in windows of 4, 4 and 2.
    let mut a = session(&plain, spec, grid, 4);
    let mut b = session(&prof, spec, grid, 4);
    let _ = prof.take_profile();
    a.step(&p, 10, None, &mut want, &never).unwrap();
    b.step(&p, 10, None, &mut stats, &never).unwrap();
    common::assert_same(&a, &b, "profiled stepping");
    assert_eq!(stats, want);
    let prof_steps = prof.take_profile().unwrap();
    assert_timed(&prof_steps);
    assert_eq!(
        count(&prof_steps, "step_forward") + count(&prof_steps, "step_packed"),
        10
    );
    assert_eq!(count(&prof_steps, "sample_update"), 10);
    assert_eq!(prof_steps.untimed, 0);
    assert_eq!(
        prof.take_profile().unwrap(),
        Profile::default(),
        "take_profile resets"
    );

    // Skipping settled tiles: three kernels a step, none other.
    a.set_freeze(Some(1e-5)).unwrap();
    b.set_freeze(Some(1e-5)).unwrap();
    a.step(&p, 6, None, &mut want[..6 * grid.batch], &never)
        .unwrap();
    b.step(&p, 6, None, &mut stats[..6 * grid.batch], &never)
        .unwrap();
    common::assert_same(&a, &b, "profiled skipping");
    let prof_skip = prof.take_profile().unwrap();
    assert_timed(&prof_skip);
    for kernel in ["queue_tiles", "step_forward", "sample_update"] {
        assert_eq!(count(&prof_skip, kernel), 6, "{kernel}: {prof_skip:?}");
    }
    assert_eq!(prof_skip.kernels.len(), 3, "{prof_skip:?}");

    // Training: T forward steps, T - 1 gradient steps back to S_1, each layer once.
    let t = 5;
    let x = one_hot_x(&spec, grid.cells(), &mut Lcg(8));
    let target: Vec<i32> = (0..grid.cells()).map(|i| (i % spec.c_out) as i32).collect();
    let weights = vec![0.25f32; t];
    let batch = common::batch(grid, &x, &target, &weights, (0.1, 2));
    let ga = sead_gpu::train_step(&plain, &spec, &p, &batch, &never).unwrap();
    let gb = sead_gpu::train_step(&prof, &spec, &p, &batch, &never).unwrap();
    common::assert_same_training(&ga, &gb, "profiled training");
    let prof_train = prof.take_profile().unwrap();
    assert_timed(&prof_train);
    for (kernel, n) in [
        ("train_noise", t),
        ("train_forward", t),
        ("train_loss", t),
        ("train_dz", t),
        ("train_dh", t - 1),
        ("grad_outer (W1, b1)", 1),
        ("grad_outer (W2, b2)", 1),
        ("grad_outer (Wo, bo)", 1),
        ("grad_sum", 1),
    ] {
        assert_eq!(count(&prof_train, kernel), n as u64, "{kernel}");
    }
    let table = prof_train.table();
    assert!(
        table.contains("train_forward") && table.contains("dispatches"),
        "{table}"
    );
}

#[test]
fn dispatches_past_the_query_capacity_are_untimed() {
    let Some(prof) = profiling_ctx() else { return };
    let spec = bench_spec(1);
    let p = fan_in_params(&spec, &mut Lcg(4));
    let grid = row(1, 8);
    // One window of 1,100 steps: 2,200 dispatches in one submission, 2,048 timed.
    let mut s = session(&prof, spec, grid, 1100);
    let mut stats = vec![StepStats::default(); 1100];
    let _ = prof.take_profile();
    s.step(&p, 1100, None, &mut stats, &AtomicBool::new(false))
        .unwrap();
    let pr = prof.take_profile().unwrap();
    let timed: u64 = pr.kernels.iter().map(|k| k.dispatches).sum();
    assert_eq!((timed, pr.untimed), (2048, 152), "{pr:?}");
    assert!(pr.table().contains("152 dispatches untimed"));
}
