//! Shared by sead-core's test files: the SIMD kernels to check and the AVX2 skip policy
//! (model, simd, events, skipping), and two sessions stepped side by side (events, skipping).
// Each test binary uses a part of this module.
#![allow(dead_code)]

use sead_core::{Session, Simd, StepStats};
use std::sync::atomic::AtomicBool;

/// The SIMD kernels this CPU runs: portable, and AVX2 where it has it.
pub fn simds() -> Vec<Simd> {
    let mut simds = vec![Simd::Portable];
    if Simd::parse("avx2").is_ok() {
        simds.push(Simd::Avx2);
    }
    simds
}

/// True where the AVX2 kernel runs. Without AVX2 + FMA: false, after printing why `test`
/// skips its AVX2 checks, when SEAD_SKIP_AVX2_TESTS=1; otherwise a failure that says how to
/// skip.
pub fn avx2_or_skip(test: &str) -> bool {
    if Simd::parse("avx2").is_ok() {
        return true;
    }
    if std::env::var("SEAD_SKIP_AVX2_TESTS").as_deref() == Ok("1") {
        eprintln!(
            "SEAD_SKIP_AVX2_TESTS=1: {test}: AVX2 checks skipped: this CPU lacks AVX2/FMA, so \
             there is no AVX2 kernel to check"
        );
        return false;
    }
    panic!(
        "{test}: this CPU lacks AVX2/FMA (as sead detects it), so the AVX2 kernel cannot be \
         checked; set SEAD_SKIP_AVX2_TESTS=1 to skip the AVX2 tests"
    );
}

/// How many cells of one sample's `height x width` grid have a cell of their neighbourhood
/// (3, or 3x3 in 2D; clipped at the edges, or wrapped where `periodic`) marked in `changed`:
/// the cells a step must compute after those changes.
pub fn cells_near(changed: &[bool], height: usize, width: usize, periodic: bool) -> u64 {
    let wrap = |v: usize, d: isize, n: usize| -> Option<usize> {
        let u = v as isize + d;
        if (0..n as isize).contains(&u) {
            Some(u as usize)
        } else if periodic {
            Some(u.rem_euclid(n as isize) as usize)
        } else {
            None
        }
    };
    let mut near = 0;
    for y in 0..height {
        for x in 0..width {
            near += (-1..=1).any(|dy| {
                (-1..=1).any(|dx| match (wrap(y, dy, height), wrap(x, dx, width)) {
                    (Some(ny), Some(nx)) => changed[ny * width + nx],
                    _ => false,
                })
            }) as u64;
        }
    }
    near
}

/// One step of two sessions over the samples `active` marks: both must give the same hidden
/// state, outputs and statistics. Returns the hidden state after the step.
pub fn step_both(
    a: &mut Session,
    b: &mut Session,
    params: &[f32],
    active: &[bool],
    what: &str,
) -> Vec<f32> {
    let never = AtomicBool::new(false);
    let mut sa = vec![StepStats::default(); active.len()];
    let mut sb = sa.clone();
    a.step(params, 1, Some(active), &mut sa, &never).unwrap();
    b.step(params, 1, Some(active), &mut sb, &never).unwrap();
    let after = a.hidden();
    assert_eq!(after, b.hidden(), "{what}: hidden state");
    assert_eq!(a.outputs(), b.outputs(), "{what}: outputs");
    assert_eq!(sa, sb, "{what}: statistics");
    after
}
