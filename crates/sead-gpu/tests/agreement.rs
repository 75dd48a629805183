//! The GPU kernels held to the CPU kernels (sead-core), on whatever adapter wgpu finds: in
//! CI, Mesa's software Vulkan driver (lavapipe). No adapter is a failure, not a skip,
//! unless SEAD_SKIP_GPU_TESTS=1.
//!
//! Tolerances, and why:
//! - Hidden states: 5e-5 absolute after 6 steps (states lie in [-1, 1]). Both backends
//!   sum in the same order, but the GPU compiler may fuse multiply-adds (and the CPU's
//!   AVX2 kernel does, in another order), so each perceive sum of K*C terms of size ~1
//!   differs by a few f32 ulps (~1e-6); a step of these random models amplifies a state
//!   difference by at most ~2-3 (|W2| |W1| row sums), so 6 steps stay under ~1e-5 with
//!   margin. Measured worst: printed by the test.
//! - Outputs (argmax): equal on every cell whose two largest CPU logits differ by more
//!   than 1e-3 (a near-tie may legitimately flip under 1e-5 state differences).
//! - Per-step stats: max |h' - h| within 5e-5 absolute; changed-output counts equal
//!   (up to the near-ties above).
//! - Convergence steps and flags: equal per sample (the settle test runs on the GPU after
//!   every step with the CPU's rule), except where the deciding max |h' - h| lies within
//!   0.1% of tol: a 1e-8 difference in it may then fall on either side, and the two may
//!   settle one step apart (at most 10% of the samples; reported).
//! - Loss: 1e-5 relative (the GPU computes the cross-entropy in f32, the CPU in f64).
//! - Gradient: each entry within 2e-5 x the largest |entry| of the f64 reference gradient,
//!   or 4x the CPU f32 backend's own worst error on the same batch where that is larger
//!   (sead-core holds its own f32 gradient to 1e-4, `f32_gradient_agrees_with_f64`). The
//!   GPU sums over (step, cell) rows in fixed chunks of rows, the CPU over samples; either
//!   way a relative error of ~sqrt(rows) f32 ulps. Measured on lavapipe for the small
//!   models: at most 1.5e-6 (the CPU's f32 path: 2.1e-6), so 2e-5 keeps a 10x margin for
//!   other devices; for the wide 2D model (181 x 70 W1) rounding grows with the fan-in on
//!   both backends: printed by the test.
//! - Quantized models (spec.quantize "ternary"): states are -1, 0 or +1, so hidden states,
//!   outputs, per-step stats and settle results are equal exactly; the f32 differences
//!   above could only show if a tanh landed within ~1e-6 of the threshold 1/2, which these
//!   seeds avoid (it would fail a test, not pass silently). Training: the tolerances above,
//!   and the CPU's own f32 gradient must be within 2e-5 of the f64 one (no rounding went
//!   the other way on the CPU either, which would loosen the bound).

mod common;
use common::{
    assert_same_training, ctx, outputs_agree, plane, row, states_agree, stats_agree, step_cpu_gpu,
};
use sead_core::Stepper;

use sead_core::testdata::{
    bench_spec, max_abs_diff, partly_supervised, settling_case, Lcg, SETTLING_OPTIONS,
};
use sead_core::{
    infer::DEFAULT_MAX_BYTES, train_step, Batch, Boundary, ConvergeOptions, Grid, Quantize,
    Session, Simd, Spec, StepStats, Update,
};
use sead_gpu::{GpuContext, GpuError, GpuOptions, GpuSession, SessionOptions};
use std::sync::atomic::AtomicBool;

/// Every (dims, update, boundary) with odd channel counts, quantized as `quantize` says.
fn all_specs(quantize: Quantize) -> Vec<Spec> {
    let mut v = Vec::new();
    let mut i = 0;
    for dims in [1, 2] {
        for update in [Update::Replace, Update::Residual] {
            for boundary in [Boundary::Zero, Boundary::Periodic] {
                v.push(Spec {
                    dims,
                    c_in: [3, 1, 0, 2][i % 4],
                    c_h: [5, 7, 3, 9][i % 4],
                    features: [9, 13, 7, 11][i % 4],
                    c_out: [3, 2, 5, 3][i % 4],
                    update,
                    boundary,
                    quantize,
                });
                i += 1;
            }
        }
    }
    v
}

fn grid_for(spec: &Spec, batch: usize) -> Grid {
    if spec.dims == 1 {
        row(batch, 37)
    } else {
        plane(batch, 7, 9)
    }
}

fn params(spec: &Spec, rng: &mut Lcg, scale: f64) -> Vec<f32> {
    (0..spec.param_count())
        .map(|_| rng.sym(scale) as f32)
        .collect()
}

fn inputs(spec: &Spec, g: &Grid, rng: &mut Lcg) -> Vec<f32> {
    (0..g.cells() * spec.c_in)
        .map(|_| rng.sym(1.0) as f32)
        .collect()
}

/// Each spec of `all_specs(quantize)` with a random case: `batch` samples (`grid_for`), then
/// parameters within +-`scale` and inputs within +-1, drawn in that order from `Lcg(seed + i)`
/// for the i-th spec.
fn random_cases(
    quantize: Quantize,
    seed: u64,
    batch: usize,
    scale: f64,
) -> impl Iterator<Item = (Spec, Grid, Vec<f32>, Vec<f32>)> {
    all_specs(quantize)
        .into_iter()
        .zip(seed..)
        .map(move |(spec, seed)| {
            let mut rng = Lcg(seed);
            let g = grid_for(&spec, batch);
            let p = params(&spec, &mut rng, scale);
            let x = inputs(&spec, &g, &mut rng);
            (spec, g, p, x)
        })
}

#[test]
fn tanh_is_the_cpu_tanh_with_exact_saturation() {
    let Some(ctx) = ctx() else { return };
    // W1 = W2 = 0, so h' = tanh(b2): one hidden channel per test value.
    let values: Vec<f32> = (0..=400)
        .map(|i| -10.0 + 0.05 * i as f32)
        .chain([
            -9.0,
            9.0,
            -8.999_999,
            8.999_999,
            7.904_581_5,
            -7.904_581_5,
            0.0,
            1e-8,
            -1e-8,
            30.0,
            -30.0,
        ])
        .collect();
    let spec = Spec {
        dims: 1,
        c_in: 1,
        c_h: values.len(),
        features: 1,
        c_out: 1,
        update: Update::Replace,
        boundary: Boundary::Zero,
        quantize: Quantize::None,
    };
    let l = spec.layout();
    let mut p = vec![0.0f32; spec.param_count()];
    p[l.b2.clone()].copy_from_slice(&values);
    let g = row(1, 2);
    let mut s = GpuSession::new(ctx, spec, g, &[0.0, 0.0], &SessionOptions::default()).unwrap();
    let mut st = vec![StepStats::default(); 1];
    s.step(&p, 1, None, &mut st, &AtomicBool::new(false))
        .unwrap();
    let h = s.hidden().unwrap();
    // Same polynomial, but WGSL lets the division be 2.5 ulp off (Rust's is exact) and lets
    // the compiler fuse the 10 multiply-adds of the two Horner sums, each of which can then
    // round differently. Lavapipe gives the CPU's bits; NVIDIA's Vulkan driver was 5 ulp off
    // at tanh(5.35). 16 ulp (1e-6 near 1) keeps a margin and is far under the state
    // tolerance below.
    let mut worst = (0u32, 0.0f32);
    for (j, &v) in values.iter().enumerate() {
        let want = sead_core::real::tanh_f32(v);
        let got = h[j];
        if v.abs() >= 9.0 {
            assert_eq!(got, want, "tanh({v}) must saturate to exactly {want}");
        }
        let ulps = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32;
        let ulps = if got == want { 0 } else { ulps };
        if ulps > worst.0 {
            worst = (ulps, v);
        }
    }
    eprintln!("tanh: worst difference {} ulp, at {}", worst.0, worst.1);
    assert!(
        worst.0 <= 16,
        "tanh({}): the GPU is {} ulp from the CPU, over 16",
        worst.1,
        worst.0
    );
}

#[test]
fn steps_agree_with_cpu() {
    let Some(ctx) = ctx() else { return };
    for (spec, g, p, x) in random_cases(Quantize::None, 100, 3, 0.5) {
        let n = 6;
        for simd in [Simd::Portable, Simd::detect()] {
            let mut cpu = Session::new(spec, g, &x, simd, DEFAULT_MAX_BYTES).unwrap();
            let mut gpu = GpuSession::new(
                ctx.clone(),
                spec,
                g,
                &x,
                &SessionOptions {
                    check_every: 4,
                    ..Default::default()
                },
            )
            .unwrap();
            let (cs, gs) = step_cpu_gpu(&mut cpu, &mut gpu, &p, n, None);
            let what = format!("{spec:?} {simd:?}");
            let (dh, ties) = states_agree(&spec, &what, &cpu, &gpu, &p);
            stats_agree(&what, &cs, &gs, ties == 0);
            let (cl, gl) = (cpu.logits(&p).unwrap(), gpu.logits(&p).unwrap());
            assert!(max_abs_diff(&cl, &gl) < 2e-4, "{spec:?}: logits differ");
            assert_eq!(gpu.steps(), vec![n as u64; g.batch]);
            eprintln!("{spec:?} {simd:?}: hidden max diff {dh:.1e}, near-ties {ties}");

            // Then 3 more steps on samples 0 and 2 only.
            let active = [true, false, true];
            let (_, gs) = step_cpu_gpu(&mut cpu, &mut gpu, &p, 3, Some(&active));
            assert_eq!(gpu.steps(), vec![9, 6, 9]);
            assert_eq!(cpu.steps(), gpu.steps());
            for t in 0..3 {
                assert_eq!(
                    gs[t * 3 + 1],
                    StepStats::default(),
                    "an inactive sample reports zeros"
                );
            }
            let dh = max_abs_diff(&cpu.hidden(), &gpu.hidden().unwrap());
            assert!(
                dh < 1e-4,
                "{spec:?}: hidden differs by {dh} after masked steps"
            );
        }
    }
}

#[test]
fn convergence_agrees_with_cpu() {
    let Some(ctx) = ctx() else { return };
    let never = AtomicBool::new(false);
    let opts = ConvergeOptions {
        patience: 3,
        tol: 1e-4,
        max_steps: 300,
    };
    let (mut total, mut near) = (0, 0);
    // Small weights: a contraction, so every sample settles, at its own pace.
    for (spec, g, p, x) in random_cases(Quantize::None, 200, 6, 0.25) {
        let mut cpu = Session::new(spec, g, &x, Simd::detect(), DEFAULT_MAX_BYTES).unwrap();
        let mut gpu = GpuSession::new(
            ctx.clone(),
            spec,
            g,
            &x,
            &SessionOptions {
                check_every: 5,
                ..Default::default()
            },
        )
        .unwrap();
        let rc = cpu.converge(&p, opts, &never).unwrap();
        let rg = gpu.converge(&p, opts, &never).unwrap();
        let split = check_settle(&spec, &rc, &rg, opts.tol);
        total += rc.len();
        near += split.len();
        if split.is_empty() {
            let cl = cpu.logits(&p).unwrap();
            outputs_agree(
                &spec,
                "converge",
                &cpu.outputs(),
                &gpu.outputs().unwrap(),
                &cl,
            );
        }
        let steps: Vec<u64> = rg.iter().map(|r| r.steps).collect();
        eprintln!("{spec:?}: steps {steps:?}");
        // A second call continues from there.
        let more = ConvergeOptions {
            max_steps: 500,
            tol: 1e-5,
            ..opts
        };
        let rc = cpu.converge(&p, more, &never).unwrap();
        let rg = gpu.converge(&p, more, &never).unwrap();
        let keep: Vec<usize> = (0..rc.len()).filter(|b| !split.contains(b)).collect();
        let pick = |r: &[sead_core::SampleResult]| keep.iter().map(|&b| r[b]).collect::<Vec<_>>();
        near += check_settle(&spec, &pick(&rc), &pick(&rg), more.tol).len();
    }
    // Near-threshold splits are rare events, not the rule.
    assert!(
        near * 10 <= total,
        "{near} of {total} samples settled at another step"
    );
}

/// Per sample, the CPU and the GPU settle at the same step, except where the deciding
/// max |h' - h| was within 0.1% of tol (f32 rounding may then put it on either side), where
/// they may differ by one step. Returns those samples.
fn check_settle(
    spec: &Spec,
    rc: &[sead_core::SampleResult],
    rg: &[sead_core::SampleResult],
    tol: f32,
) -> Vec<usize> {
    let mut split = Vec::new();
    for (b, (a, c)) in rc.iter().zip(rg).enumerate() {
        if (a.steps, a.converged) == (c.steps, c.converged) {
            // (A sample still moving at maxSteps may be on a limit cycle, where 1e-5 state
            // differences grow; its last delta is not compared.)
            assert!(
                !a.converged || (a.last.max_delta - c.last.max_delta).abs() < 1e-5,
                "{spec:?} sample {b}: {a:?} vs {c:?}"
            );
            continue;
        }
        let first = if a.steps < c.steps { a } else { c };
        assert!(
            a.converged
                && c.converged
                && a.steps.abs_diff(c.steps) == 1
                && tol - first.last.max_delta < 1e-3 * tol,
            "{spec:?} sample {b}: cpu {a:?} vs gpu {c:?}"
        );
        eprintln!(
            "{spec:?} sample {b}: settled one step apart at max |h' - h| {} vs tol {tol}",
            first.last.max_delta
        );
        split.push(b);
    }
    split
}

/// A model that settles at once (sead-core's own convergence test, on the GPU).
#[test]
fn convergence_counts_steps_like_the_cpu() {
    let Some(ctx) = ctx() else { return };
    let never = AtomicBool::new(false);
    let c = settling_case();
    let session =
        || GpuSession::new(ctx.clone(), c.spec, c.grid, &c.x, &Default::default()).unwrap();
    let mut s = session();
    let r = s.converge(&c.params, SETTLING_OPTIONS, &never).unwrap();
    assert_eq!((r[0].steps, r[0].converged), (3, true));
    assert_eq!((r[1].steps, r[1].converged), (4, true));
    assert_eq!(s.outputs().unwrap(), vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    let limited = ConvergeOptions {
        max_steps: 2,
        ..SETTLING_OPTIONS
    };
    let r = session().converge(&c.params, limited, &never).unwrap();
    assert_eq!((r[1].steps, r[1].converged), (2, false));
}

fn train_batch_data(spec: &Spec, g: &Grid, rng: &mut Lcg) -> (Vec<f32>, Vec<i32>) {
    let x = inputs(spec, g, rng);
    let target = partly_supervised(spec, g.cells(), rng);
    (x, target)
}

/// The GPU gradient and loss of one batch against the f64 CPU reference (and the f32 CPU
/// backend's error, printed beside it), with and without noise.
fn assert_training_agrees(ctx: &GpuContext, spec: Spec, seed: u64) {
    let never = AtomicBool::new(false);
    let mut rng = Lcg(seed);
    let g = grid_for(&spec, 5);
    let p = params(&spec, &mut rng, 0.6);
    let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
    let (x, target) = train_batch_data(&spec, &g, &mut rng);
    for (weights, noise) in [
        (&[0.0f32, 0.0, 0.0, 0.5, 0.0, 1.0][..], 0.0f32),
        (&[0.1, 0.2, 0.3, 0.4][..], 0.1),
    ] {
        let batch = common::batch(g, &x, &target, weights, (noise, 9));
        let want = train_step(&spec, &p64, &batch, &never).unwrap();
        let cpu = train_step(&spec, &p, &batch, &never).unwrap();
        let gpu = sead_gpu::train_step(ctx, &spec, &p, &batch, &never).unwrap();
        let scale = want.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = |g: &[f32]| {
            g.iter()
                .zip(&want.grad)
                .map(|(&a, w)| (a as f64 - w).abs() / scale)
                .fold(0.0f64, f64::max)
        };
        let (worst_gpu, worst_cpu) = (worst(&gpu.grad), worst(&cpu.grad));
        if spec.quantize == Quantize::Ternary {
            assert!(
                worst_cpu < 2e-5,
                "{spec:?} noise {noise}: the CPU's f32 gradient is {worst_cpu:.1e} from f64 \
                 (a rounding went the other way: pick another seed)"
            );
        }
        let bound = (2e-5f64).max(4.0 * worst_cpu);
        for (i, ((a, c), w)) in gpu.grad.iter().zip(&cpu.grad).zip(&want.grad).enumerate() {
            assert!(
                (*a as f64 - w).abs() < bound * scale,
                "{spec:?} noise {noise}: grad[{i}] gpu {a} f64 {w} (cpu f32 {c}; bound {bound:.1e} x {scale:.2e})"
            );
        }
        assert!(
            (gpu.loss - want.loss).abs() < 1e-5 * want.loss,
            "{spec:?}: loss {} vs {}",
            gpu.loss,
            want.loss
        );
        assert_eq!(gpu.cells_supervised, cpu.cells_supervised);
        assert_eq!(
            (gpu.exact, gpu.cells_correct),
            (want.exact, want.cells_correct),
            "{spec:?}"
        );
        eprintln!(
            "{spec:?} noise {noise}: loss {:.6} (f64 {:.6}), worst grad error gpu {worst_gpu:.1e} cpu-f32 {worst_cpu:.1e} (of max |g| {scale:.2e})",
            gpu.loss, want.loss
        );
    }
}

#[test]
fn training_agrees_with_cpu() {
    let Some(ctx) = ctx() else { return };
    for (si, spec) in all_specs(Quantize::None).into_iter().enumerate() {
        assert_training_agrees(&ctx, spec, 300 + si as u64);
    }
}

/// Quantized training: states rounded in the forward, tanh' from the unrounded tanh in the
/// backward (straight through), as on the CPU.
#[test]
fn quantized_training_agrees_with_cpu() {
    let Some(ctx) = ctx() else { return };
    for (si, spec) in all_specs(Quantize::Ternary).into_iter().enumerate() {
        assert_training_agrees(&ctx, spec, 600 + si as u64);
    }
    let adder = Spec {
        quantize: Quantize::Ternary,
        ..bench_spec(1)
    };
    assert_training_agrees(&ctx, adder, 610);
}

/// The bits of each value: +0 and -0 differ.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Quantized sessions (1D and 2D, both updates, both boundaries, rows packed or not) hold
/// the CPU's states bit for bit: whole numbers, so no rounding tolerance. Steps, masked steps,
/// then converge.
#[test]
fn quantized_sessions_equal_the_cpu_exactly() {
    let Some(ctx) = ctx() else { return };
    let never = AtomicBool::new(false);
    let (mut packed, mut converged) = (0, 0);
    for (spec, g, p, x) in random_cases(Quantize::Ternary, 500, 4, 1.0) {
        for (simd, pack) in [(Simd::Portable, false), (Simd::detect(), true)] {
            let what = format!("{spec:?} {simd:?} packed rows {pack}");
            let mut cpu = Session::new(spec, g, &x, simd, DEFAULT_MAX_BYTES).unwrap();
            let opts = SessionOptions {
                check_every: 4,
                pack_short_rows: pack,
                ..Default::default()
            };
            let mut gpu = GpuSession::new(ctx.clone(), spec, g, &x, &opts).unwrap();
            packed += gpu.packed_tile().is_some() as usize;
            let n = 10;
            let (cs, gs) = step_cpu_gpu(&mut cpu, &mut gpu, &p, n, None);
            let h = cpu.hidden();
            assert_eq!(
                bits(&h),
                bits(&gpu.hidden().unwrap()),
                "{what}: hidden states"
            );
            // Only the quantizer's values, and not all one of them.
            assert!(h.iter().all(|v| [-1.0, 0.0, 1.0].contains(v)), "{what}");
            assert!(
                h.iter().any(|&v| v != h[0]),
                "{what}: every state is {}",
                h[0]
            );
            assert_eq!(cpu.outputs(), gpu.outputs().unwrap(), "{what}: outputs");
            assert_eq!(cs, gs, "{what}: step stats");

            let active = [true, false, true, true];
            let (cs, gs) = step_cpu_gpu(&mut cpu, &mut gpu, &p, 3, Some(&active));
            assert_eq!(cpu.steps(), gpu.steps(), "{what}");
            let (hc, hg) = (cpu.hidden(), gpu.hidden().unwrap());
            assert_eq!(bits(&hc), bits(&hg), "{what}: masked steps");
            assert_eq!(cs, gs, "{what}: masked step stats");

            // A quantized step moves a channel by 0, 1 or 2: tol 0.5 settles on a fixed point.
            let opts = ConvergeOptions {
                patience: 2,
                tol: 0.5,
                max_steps: 120,
            };
            let rc = cpu.converge(&p, opts, &never).unwrap();
            let rg = gpu.converge(&p, opts, &never).unwrap();
            assert_eq!(rc, rg, "{what}: converge results");
            assert_eq!(
                cpu.hidden(),
                gpu.hidden().unwrap(),
                "{what}: after converge"
            );
            assert_eq!(
                cpu.outputs(),
                gpu.outputs().unwrap(),
                "{what}: after converge"
            );
            converged += rg.iter().filter(|r| r.converged).count();
            let steps: Vec<u64> = rg.iter().map(|r| r.steps).collect();
            eprintln!("{what}: converge steps {steps:?}");
        }
    }
    assert!(packed > 0, "no session packed its rows");
    // The residual models settle, each sample at its own step; the others cycle to
    // max_steps.
    assert!(converged > 0, "no sample settled");
}

/// Layers as wide as the shipped models' and wider: the binary adder's shape, and a 2D
/// model whose W1 gradient (181 x 70) takes several output tiles of grad_outer each way.
#[test]
fn training_agrees_on_wide_layers() {
    let Some(ctx) = ctx() else { return };
    let adder = bench_spec(1); // the binary adder's shape
    let wide = Spec {
        dims: 2,
        c_in: 3,
        c_h: 17,
        features: 70,
        c_out: 3,
        update: Update::Residual,
        boundary: Boundary::Periodic,
        quantize: Quantize::None,
    };
    assert_training_agrees(&ctx, adder, 400);
    assert_training_agrees(&ctx, wide, 401);
}

#[test]
fn training_is_deterministic_and_chunks_agree() {
    let Some(ctx) = ctx() else { return };
    let never = AtomicBool::new(false);
    let spec = all_specs(Quantize::None)[5];
    let mut rng = Lcg(77);
    let g = grid_for(&spec, 7);
    let p = params(&spec, &mut rng, 0.6);
    let (x, target) = train_batch_data(&spec, &g, &mut rng);
    let weights = [0.2f32, 0.0, 0.5, 1.0, 0.25];
    let batch = common::batch(g, &x, &target, &weights, (0.05, 3));
    let a = sead_gpu::train_step(&ctx, &spec, &p, &batch, &never).unwrap();
    let b = sead_gpu::train_step(&ctx, &spec, &p, &batch, &never).unwrap();
    assert_same_training(&a, &b, "the same batch");
    // A memory cap of about 2 samples' worth splits the batch into 4 chunks.
    let per = sead_gpu::train::bytes_needed(&spec, &Grid { batch: 1, ..g }, weights.len());
    let c = sead_gpu::train_step_with_limit(&ctx, &spec, &p, &batch, &never, (2 * per) as usize)
        .unwrap();
    let scale = a.grad.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max_abs_diff(&a.grad, &c.grad) < 1e-5 * scale);
    assert!((a.loss - c.loss).abs() < 1e-6 * a.loss);
    assert_eq!((a.exact, a.cells_correct), (c.exact, c.cells_correct));
    // Cancelled before it starts.
    let stop = AtomicBool::new(true);
    assert_eq!(
        sead_gpu::train_step(&ctx, &spec, &p, &batch, &stop).unwrap_err(),
        GpuError::Cancelled
    );
}

/// A wide row split into one-sample groups, with dispatches folded into 2D (the caps are
/// lowered so a small test exercises the paths a million-cell batch takes on a real GPU).
#[test]
fn wide_rows_are_grouped_and_folded() {
    let Some(ctx) = ctx() else { return };
    let spec = Spec {
        dims: 1,
        c_in: 2,
        c_h: 3,
        features: 5,
        c_out: 2,
        update: Update::Residual,
        boundary: Boundary::Periodic,
        quantize: Quantize::None,
    };
    let mut rng = Lcg(5);
    let g = row(3, 100_000);
    let p = params(&spec, &mut rng, 0.5);
    let x = inputs(&spec, &g, &mut rng);
    let opts = SessionOptions {
        check_every: 2,
        max_group_bytes: Some(2 * 100_000 * 3 * 4),
        max_workgroups_per_dim: Some(1000),
        ..Default::default()
    };
    let mut gpu = GpuSession::new(ctx, spec, g, &x, &opts).unwrap();
    assert_eq!(gpu.groups(), 3);
    let mut cpu = Session::new(spec, g, &x, Simd::detect(), DEFAULT_MAX_BYTES).unwrap();
    let n = 5;
    let mut cs = vec![StepStats::default(); n * 3];
    let mut gs = cs.clone();
    let never = AtomicBool::new(false);
    cpu.step(&p, n, None, &mut cs, &never).unwrap();
    gpu.step(&p, n, Some(&[true, true, true]), &mut gs, &never)
        .unwrap();
    states_agree(&spec, "wide", &cpu, &gpu, &p);
    stats_agree("wide", &cs, &gs, false);
}

#[test]
fn errors_say_what_is_wrong() {
    let Some(ctx) = ctx() else { return };
    let e = GpuContext::new(&GpuOptions {
        adapter: Some("no-such-gpu".into()),
        ..Default::default()
    })
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, GpuError::Unavailable(_)), "{e:?}");
    assert!(
        msg.contains("no-such-gpu") && msg.contains("wgpu found"),
        "{msg}"
    );
    assert!(
        msg.contains(&ctx.adapter_info().name),
        "the error lists the adapters: {msg}"
    );
    let spec = all_specs(Quantize::None)[0];
    let g = grid_for(&spec, 1);
    let e =
        GpuSession::new(ctx.clone(), spec, g, &[1.0; 3], &SessionOptions::default()).unwrap_err();
    assert!(e.to_string().contains("x has 3 values"), "{e}");
    let x = vec![0.0; g.cells() * spec.c_in];
    let mut s = GpuSession::new(ctx, spec, g, &x, &SessionOptions::default()).unwrap();
    let e = s
        .converge(
            &[1.0; 3],
            ConvergeOptions {
                patience: 1,
                tol: 1e-3,
                max_steps: 5,
            },
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(e.to_string().contains("params has 3 values"), "{e}");
    let p = vec![0.0; spec.param_count()];
    let e = s
        .step(
            &p,
            3,
            None,
            &mut [StepStats::default(); 3],
            &AtomicBool::new(true),
        )
        .unwrap_err();
    assert_eq!(e, GpuError::Cancelled);
}

/// What the GPU trainer does not implement it refuses by name, rather than ignoring it.
#[test]
fn training_refuses_what_it_does_not_implement() {
    let Some(ctx) = ctx() else { return };
    let spec = all_specs(Quantize::None)[0];
    let g = grid_for(&spec, 2);
    let mut rng = Lcg(3);
    let p = params(&spec, &mut rng, 0.5);
    let (x, target) = train_batch_data(&spec, &g, &mut rng);
    let h0 = vec![0.0f32; g.cells() * spec.c_h];
    let batch = common::batch(g, &x, &target, &[0.0, 1.0], (0.0, 0));
    let never = AtomicBool::new(false);
    for (bad, name) in [
        (
            Batch {
                settle_weight: 1.0,
                ..batch
            },
            "settleWeight",
        ),
        (
            Batch {
                h0: Some(&h0),
                ..batch
            },
            "h0",
        ),
    ] {
        let e = sead_gpu::train_step(&ctx, &spec, &p, &bad, &never).unwrap_err();
        assert!(
            e.to_string().contains(name) && e.to_string().contains("CPU backend"),
            "{e}"
        );
    }
    assert!(sead_gpu::train_step(&ctx, &spec, &p, &batch, &never).is_ok());
}
