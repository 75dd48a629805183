//! One test body for every backend, through `sead_core::Stepper`: the same generic function
//! runs a CPU `Session` and a `GpuSession` to their fixed points, and they must agree.

mod common;

use common::{ctx, row};
use sead_core::infer::DEFAULT_MAX_BYTES;
use sead_core::testdata::{creeping_params, scalar_spec};
use sead_core::{Boundary, ConvergeOptions, Session, Settle, Simd, StepStats, Stepper};
use sead_gpu::{GpuSession, SessionOptions};
use std::sync::atomic::AtomicBool;

/// Where a run ended, per sample.
#[derive(Debug)]
struct FixedPoint {
    outputs: Vec<u8>,
    hidden: Vec<f32>,
    steps: Vec<u64>,
    converged: Vec<bool>,
    /// The max |h' - h| of each sample's last step.
    last_delta: Vec<f32>,
}

/// Steps every sample, one step at a time, until the settle rule stops it: `converge` written
/// over the trait, so it runs on any backend.
fn run_to_fixed_point<S: Stepper>(
    s: &mut S,
    params: &[f32],
    opts: ConvergeOptions,
) -> Result<FixedPoint, S::Error> {
    let never = AtomicBool::new(false);
    let batch = s.batch();
    s.refresh_outputs(params)?;
    let mut quiet = vec![0u32; batch];
    let mut active = vec![true; batch];
    let mut converged = vec![false; batch];
    let mut last_delta = vec![0.0f32; batch];
    let mut stats = vec![StepStats::default(); batch];
    while active.contains(&true) {
        s.step(params, 1, Some(&active), &mut stats, &never)?;
        let steps = s.steps();
        for b in 0..batch {
            if !active[b] {
                continue;
            }
            last_delta[b] = stats[b].max_delta;
            match opts.settle(&mut quiet[b], stats[b], steps[b]) {
                Settle::Running => {}
                end => {
                    converged[b] = end == Settle::Converged;
                    active[b] = false;
                }
            }
        }
    }
    Ok(FixedPoint {
        outputs: s.outputs()?,
        hidden: s.hidden()?,
        steps: s.steps(),
        converged,
        last_delta,
    })
}

/// The same through the backend's own `converge` (on the GPU, the settle rule runs in the
/// `sample_update` kernel).
fn converge<S: Stepper>(
    s: &mut S,
    params: &[f32],
    opts: ConvergeOptions,
) -> Result<FixedPoint, S::Error> {
    let r = s.converge(params, opts, &AtomicBool::new(false))?;
    Ok(FixedPoint {
        outputs: s.outputs()?,
        hidden: s.hidden()?,
        steps: s.steps(),
        converged: r.iter().map(|r| r.converged).collect(),
        last_delta: r.iter().map(|r| r.last.max_delta).collect(),
    })
}

fn assert_agree(a: &FixedPoint, b: &FixedPoint, what: &str) {
    assert_eq!(a.steps, b.steps, "{what}: steps");
    assert_eq!(a.converged, b.converged, "{what}: converged");
    assert_eq!(a.outputs, b.outputs, "{what}: outputs");
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(close(&a.hidden, &b.hidden), "{what}: hidden");
    assert!(
        close(&a.last_delta, &b.last_delta),
        "{what}: last max delta"
    );
}

#[test]
fn one_body_runs_cpu_and_gpu_sessions_to_the_same_fixed_point() {
    let Some(ctx) = ctx() else { return };
    let spec = scalar_spec(Boundary::Zero);
    // h' = tanh(x + 0.5 h): each sample creeps to its own fixed point by shrinking steps,
    // so its step count depends on its input.
    let p = creeping_params(&spec);
    let grid = row(4, 3);
    let x = [
        0.0, 0.0, 0.0, 0.1, 0.1, 0.1, 1.0, 0.0, 0.5, 2.0, 2.0, 2.0f32,
    ];
    let cpu = || Session::new(spec, grid, &x, Simd::detect(), DEFAULT_MAX_BYTES).unwrap();
    let gpu = || GpuSession::new(ctx.clone(), spec, grid, &x, &SessionOptions::default()).unwrap();
    for (patience, tol, max_steps) in [(2, 1e-4f32, 200), (1, 1e-2, 200), (3, 1e-6, 9)] {
        let opts = ConvergeOptions {
            patience,
            tol,
            max_steps,
        };
        let what = format!("{opts:?}");
        let c = run_to_fixed_point(&mut cpu(), &p, opts).unwrap();
        let g = run_to_fixed_point(&mut gpu(), &p, opts).unwrap();
        eprintln!(
            "{what}: steps {:?}, last deltas {:?}",
            c.steps, c.last_delta
        );
        // The deciding deltas are clear of tol, so float rounding cannot move a decision by
        // a step (agreement.rs covers the near-threshold case).
        for (&d, &conv) in c.last_delta.iter().zip(&c.converged) {
            assert!(
                !conv || d < 0.99 * tol,
                "{what}: last delta {d} too near tol"
            );
        }
        assert_agree(&c, &g, &format!("{what}, stepped: cpu vs gpu"));
        // Each backend's own converge stops where the one-step loop does.
        let cc = converge(&mut cpu(), &p, opts).unwrap();
        let gc = converge(&mut gpu(), &p, opts).unwrap();
        assert_agree(&c, &cc, &format!("{what}, cpu: stepped vs converge"));
        assert_agree(&g, &gc, &format!("{what}, gpu: stepped vs converge"));
    }
}
