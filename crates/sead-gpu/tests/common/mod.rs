//! Shared by the GPU test files: one context per test binary, comparisons of sessions (GPU
//! against GPU bit for bit; CPU against GPU with the tolerances of agreement.rs), grids, and
//! training batches and results.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use sead_core::testdata::max_abs_diff;
use sead_core::{Batch, Grid, Session, Spec, StepStats, Stepper, TrainOutput};
use sead_gpu::{GpuContext, GpuOptions, GpuSession};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

/// The shared context, or None (test skipped) only when SEAD_SKIP_GPU_TESTS=1: no adapter is
/// a failure, not a skip.
pub fn ctx() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new(&GpuOptions::default()) {
        Ok(c) => {
            eprintln!("GPU tests on: {}", c.adapter_info().describe());
            Some(Arc::new(c))
        }
        Err(e) if std::env::var("SEAD_SKIP_GPU_TESTS").as_deref() == Ok("1") => {
            eprintln!("SEAD_SKIP_GPU_TESTS=1: skipping GPU tests ({e})");
            None
        }
        Err(e) => {
            panic!("no GPU adapter for the GPU tests (set SEAD_SKIP_GPU_TESTS=1 to skip them): {e}")
        }
    })
    .clone()
}

/// Two sessions hold the same hidden states, outputs and step counts, bit for bit.
pub fn assert_same(a: &GpuSession, b: &GpuSession, what: &str) {
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

/// `batch` samples of one row of `width` cells.
pub const fn row(batch: usize, width: usize) -> Grid {
    plane(batch, 1, width)
}

/// `batch` samples of `height` rows of `width` cells.
pub const fn plane(batch: usize, height: usize, width: usize) -> Grid {
    Grid {
        batch,
        height,
        width,
    }
}

/// `n` steps of a CPU and a GPU session (of the samples `active` marks, or all); returns the
/// per-step statistics of each.
pub fn step_cpu_gpu(
    cpu: &mut Session,
    gpu: &mut GpuSession,
    p: &[f32],
    n: usize,
    active: Option<&[bool]>,
) -> (Vec<StepStats>, Vec<StepStats>) {
    let never = AtomicBool::new(false);
    let mut cs = vec![StepStats::default(); n * cpu.grid().batch];
    let mut gs = cs.clone();
    cpu.step(p, n, active, &mut cs, &never).unwrap();
    gpu.step(p, n, active, &mut gs, &never).unwrap();
    (cs, gs)
}

/// The gap between the two largest logits of a cell (infinite with a single output).
fn logit_gap(logits: &[f32]) -> f32 {
    let mut v = logits.to_vec();
    v.sort_by(|a, b| b.partial_cmp(a).unwrap());
    if v.len() < 2 {
        f32::INFINITY
    } else {
        v[0] - v[1]
    }
}

/// Outputs equal wherever the CPU's decision is not a near-tie (its two largest logits within
/// 1e-3: a near-tie may legitimately flip under 1e-5 state differences); returns how many
/// cells were near-ties.
pub fn outputs_agree(spec: &Spec, what: &str, cpu: &[u8], gpu: &[u8], cpu_logits: &[f32]) -> usize {
    assert_eq!(cpu.len(), gpu.len());
    let mut ties = 0;
    for (i, (a, b)) in cpu.iter().zip(gpu).enumerate() {
        let gap = logit_gap(&cpu_logits[i * spec.c_out..(i + 1) * spec.c_out]);
        if gap < 1e-3 {
            ties += 1;
            continue;
        }
        assert_eq!(
            a, b,
            "{what} {spec:?}: output of cell {i} differs (logit gap {gap})"
        );
    }
    ties
}

/// A CPU and a GPU session after the same steps under the parameters `p`: hidden states within
/// 5e-5 and outputs equal but for near-ties (`outputs_agree`). Returns the largest hidden-state
/// difference and the number of near-ties.
pub fn states_agree(
    spec: &Spec,
    what: &str,
    cpu: &Session,
    gpu: &GpuSession,
    p: &[f32],
) -> (f32, usize) {
    let dh = max_abs_diff(&cpu.hidden(), &gpu.hidden().unwrap());
    assert!(dh < 5e-5, "{what}: hidden differs by {dh}");
    let cpu_logits = cpu.logits(p).unwrap();
    let ties = outputs_agree(
        spec,
        what,
        &cpu.outputs(),
        &gpu.outputs().unwrap(),
        &cpu_logits,
    );
    (dh, ties)
}

/// The per-step statistics of the same steps on the CPU (`cs`) and the GPU (`gs`): each max
/// |h' - h| within 5e-5 and, with `changed` (where no output was a near-tie), the same count
/// of changed outputs.
pub fn stats_agree(what: &str, cs: &[StepStats], gs: &[StepStats], changed: bool) {
    for (i, (a, b)) in cs.iter().zip(gs).enumerate() {
        assert!(
            (a.max_delta - b.max_delta).abs() < 5e-5,
            "{what}: stats[{i}] {a:?} vs {b:?}"
        );
        if changed {
            assert_eq!(a.changed, b.changed, "{what}: stats[{i}] {a:?} vs {b:?}");
        }
    }
}

/// A training batch of what the GPU trainer implements (no settling penalty, from h = 0),
/// with noise of standard deviation `noise.0` from the seed `noise.1`.
pub fn batch<'a>(
    grid: Grid,
    x: &'a [f32],
    target: &'a [i32],
    step_weights: &'a [f32],
    noise: (f32, u64),
) -> Batch<'a> {
    Batch {
        grid,
        x,
        target,
        step_weights,
        noise_std: noise.0,
        noise_seed: noise.1,
        settle_weight: 0.0,
        h0: None,
    }
}

/// Two training steps give the same gradient and loss, bit for bit.
pub fn assert_same_training(a: &TrainOutput<f32>, b: &TrainOutput<f32>, what: &str) {
    assert_eq!(a.grad, b.grad, "{what}: the same gradient, bit for bit");
    assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "{what}: the same loss");
}
