//! Shared by sead-core's test files: the SIMD kernels to check and the AVX2 skip policy
//! (model, simd, events, skipping), and two sessions stepped side by side with the cells they
//! must compute (events, skipping).
// Each test binary uses a part of this module.
#![allow(dead_code)]

use sead_core::{Boundary, Session, Simd, Spec, StepStats};
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

/// The cells each sample of a session must compute, step by step, when only what a change
/// can reach is computed: every cell at first and after new parameters (`recompute_all`),
/// then the cells with a cell of their neighbourhood (`cells_near`) whose state changed in
/// the sample's last step.
pub struct ChangeTracker {
    c_h: usize,
    height: usize,
    width: usize,
    periodic: bool,
    by_bits: bool,
    /// The hidden state after the last step.
    before: Vec<f32>,
    /// Per sample, which cells' states changed in its last step.
    pub changed: Vec<Vec<bool>>,
    /// Per sample, the cells it must have computed so far.
    pub expected: Vec<u64>,
}

impl ChangeTracker {
    /// Samples of `height x width` cells of `spec`, starting from the hidden state `h`. With
    /// `by_bits`, a cell's state changes when its bits do (a -0 written over a +0 counts);
    /// otherwise when its value does.
    pub fn new(spec: &Spec, (height, width): (usize, usize), h: Vec<f32>, by_bits: bool) -> Self {
        let batch = h.len() / (height * width * spec.c_h);
        ChangeTracker {
            c_h: spec.c_h,
            height,
            width,
            periodic: spec.boundary == Boundary::Periodic,
            by_bits,
            before: h,
            changed: vec![vec![true; height * width]; batch],
            expected: vec![0; batch],
        }
    }

    /// New parameters: every cell must be computed at the next step.
    pub fn recompute_all(&mut self) {
        self.changed.iter_mut().for_each(|c| c.fill(true));
    }

    /// One step of the samples `active` marks, to the hidden state `after`.
    pub fn step(&mut self, active: &[bool], after: Vec<f32>) {
        let (cells, ch) = (self.height * self.width, self.c_h);
        let same = |a: &[f32], b: &[f32]| {
            if self.by_bits {
                a.iter()
                    .map(|v| v.to_bits())
                    .eq(b.iter().map(|v| v.to_bits()))
            } else {
                a == b
            }
        };
        for b in (0..active.len()).filter(|&b| active[b]) {
            self.expected[b] +=
                cells_near(&self.changed[b], self.height, self.width, self.periodic);
            for (cell, c) in self.changed[b].iter_mut().enumerate() {
                let at = (b * cells + cell) * ch;
                *c = !same(&self.before[at..at + ch], &after[at..at + ch]);
            }
        }
        self.before = after;
    }
}
