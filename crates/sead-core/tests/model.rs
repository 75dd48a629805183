//! The kernels against a naive reference written straight from the formulas of
//! docs/DESIGN.md, "The model" (no
//! padding, explicit neighbour indexing), gradients against central finite differences in
//! f64, and the light cone.

use sead_core::real::ternary;
use sead_core::testdata::{partly_supervised, settling_case, Lcg, SETTLING_OPTIONS};
use sead_core::{
    infer::DEFAULT_MAX_BYTES, train_step, train_step_with_simd, Batch, Boundary, ConvergeOptions,
    Grid, Quantize, Session, Simd, Spec, StepStats, Update,
};
use std::sync::atomic::AtomicBool;

mod common;
use common::avx2_or_skip;

/// 1D and 2D, both updates, both boundaries, for each of `quantizers` in turn.
fn specs(quantizers: &[Quantize]) -> Vec<Spec> {
    let mut v = Vec::new();
    for &quantize in quantizers {
        for dims in [1, 2] {
            for update in [Update::Replace, Update::Residual] {
                for boundary in [Boundary::Zero, Boundary::Periodic] {
                    v.push(Spec {
                        dims,
                        c_in: 2,
                        c_h: 3,
                        features: 5,
                        c_out: 3,
                        update,
                        boundary,
                        quantize,
                    });
                }
            }
        }
    }
    v
}

/// Without the quantizer, then with it.
const BOTH: [Quantize; 2] = [Quantize::None, Quantize::Ternary];

/// `batch` samples of 6 cells in 1D, of 4 x 3 in 2D.
fn grid_for(spec: &Spec, batch: usize) -> Grid {
    let (height, width) = [(1, 6), (4, 3)][spec.dims - 1];
    Grid {
        batch,
        height,
        width,
    }
}

fn random_params(spec: &Spec, rng: &mut Lcg) -> Vec<f64> {
    (0..spec.param_count()).map(|_| rng.sym(0.8)).collect()
}

fn random_x(spec: &Spec, grid: &Grid, rng: &mut Lcg) -> Vec<f32> {
    (0..grid.cells() * spec.c_in)
        .map(|_| rng.sym(1.0) as f32)
        .collect()
}

/// Neighbour of (y, x) at offset (dy, dx), or None outside a zero-boundary grid.
fn neighbour(
    spec: &Spec,
    g: &Grid,
    y: usize,
    x: usize,
    dy: i64,
    dx: i64,
) -> Option<(usize, usize)> {
    let (h, w) = (g.height as i64, g.width as i64);
    let (ny, nx) = (y as i64 + dy, x as i64 + dx);
    match spec.boundary {
        Boundary::Periodic => Some((ny.rem_euclid(h) as usize, nx.rem_euclid(w) as usize)),
        Boundary::Zero if ny < 0 || ny >= h || nx < 0 || nx >= w => None,
        Boundary::Zero => Some((ny as usize, nx as usize)),
    }
}

/// One step of the model (docs/DESIGN.md, "The model") for one sample, in f64. `h` is
/// `[cells][C_h]`.
fn naive_step(spec: &Spec, g: &Grid, p: &[f64], x: &[f64], h: &[f64]) -> Vec<f64> {
    let l = spec.layout();
    let (c, ci, ch, f) = (spec.c(), spec.c_in, spec.c_h, spec.features);
    let offsets: Vec<(i64, i64)> = if spec.dims == 1 {
        vec![(0, -1), (0, 0), (0, 1)]
    } else {
        (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
            .collect()
    };
    let mut out = vec![0.0; g.height * g.width * ch];
    for y in 0..g.height {
        for xx in 0..g.width {
            let cell = y * g.width + xx;
            let mut a = vec![0.0; f];
            for (ff, av) in a.iter_mut().enumerate() {
                let mut z = p[l.b1.start + ff];
                for (k, &(dy, dx)) in offsets.iter().enumerate() {
                    let Some((ny, nx)) = neighbour(spec, g, y, xx, dy, dx) else {
                        continue;
                    };
                    let n = ny * g.width + nx;
                    for cc in 0..c {
                        let s = if cc < ci {
                            x[n * ci + cc]
                        } else {
                            h[n * ch + cc - ci]
                        };
                        z += p[l.w1.start + (k * c + cc) * f + ff] * s;
                    }
                }
                *av = z.max(0.0);
            }
            for j in 0..ch {
                let mut u = p[l.b2.start + j];
                for (ff, &av) in a.iter().enumerate() {
                    u += p[l.w2.start + ff * ch + j] * av;
                }
                if spec.update == Update::Residual {
                    u += h[cell * ch + j];
                }
                out[cell * ch + j] = match spec.quantize {
                    Quantize::None => u.tanh(),
                    Quantize::Ternary => ternary(u.tanh()),
                };
            }
        }
    }
    out
}

fn naive_logits(spec: &Spec, p: &[f64], h: &[f64]) -> Vec<f64> {
    let l = spec.layout();
    (0..spec.c_out)
        .map(|o| {
            p[l.bo.start + o]
                + (0..spec.c_h)
                    .map(|j| p[l.wo.start + j * spec.c_out + o] * h[j])
                    .sum::<f64>()
        })
        .collect()
}

fn naive_run(spec: &Spec, g: &Grid, p: &[f64], x: &[f32], steps: usize) -> Vec<Vec<f64>> {
    naive_run_from(spec, g, p, x, None, steps)
}

/// `naive_run` from the hidden state `h0` (`[batch][cells][C_h]`; None: zero).
fn naive_run_from(
    spec: &Spec,
    g: &Grid,
    p: &[f64],
    x: &[f32],
    h0: Option<&[f32]>,
    steps: usize,
) -> Vec<Vec<f64>> {
    let cells = g.cells_per_sample();
    (0..g.batch)
        .map(|b| {
            let xb: Vec<f64> = x[b * cells * spec.c_in..(b + 1) * cells * spec.c_in]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let per = cells * spec.c_h;
            let mut h: Vec<f64> = match h0 {
                Some(h0) => h0[b * per..(b + 1) * per]
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
                None => vec![0.0; per],
            };
            for _ in 0..steps {
                h = naive_step(spec, g, p, &xb, &h);
            }
            h
        })
        .collect()
}

/// A batch without noise, settling penalty or initial state.
fn plain_batch<'a>(g: Grid, x: &'a [f32], target: &'a [i32], weights: &'a [f32]) -> Batch<'a> {
    Batch {
        grid: g,
        x,
        target,
        step_weights: weights,
        noise_std: 0.0,
        noise_seed: 0,
        settle_weight: 0.0,
        h0: None,
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

#[test]
fn session_matches_naive_reference() {
    let never = AtomicBool::new(false);
    for spec in specs(&BOTH) {
        let mut rng = Lcg(11);
        let g = grid_for(&spec, 3);
        let p = random_params(&spec, &mut rng);
        let x = random_x(&spec, &g, &mut rng);
        let steps = 7;
        let want = naive_run(&spec, &g, &p, &x, steps);
        let pf = to_f32(&p);
        let mut s = Session::new(spec, g, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
        s.refresh_outputs(&pf).unwrap();
        let mut stats = vec![StepStats::default(); steps * g.batch];
        s.step(&pf, steps, None, &mut stats, &never).unwrap();
        let got = s.hidden();
        let want_flat: Vec<f64> = want.concat();
        for (i, (a, b)) in got.iter().zip(&want_flat).enumerate() {
            assert!((*a as f64 - b).abs() < 2e-5, "{spec:?} h[{i}]: {a} vs {b}");
        }
        // Outputs are the argmax of the logits.
        let logits = s.logits(&pf).unwrap();
        let outs = s.outputs();
        for (cell, &o) in outs.iter().enumerate() {
            let l = &logits[cell * spec.c_out..(cell + 1) * spec.c_out];
            let best = (0..spec.c_out).fold(0, |b, i| if l[i] > l[b] { i } else { b });
            assert_eq!(o as usize, best);
        }
        assert_eq!(s.steps(), vec![steps as u64; g.batch]);
    }
}

/// The loss train_step reports equals the naive forward's weighted cross-entropy, from h = 0
/// and from a given initial state h0 (random values in [-1, 1], and whole ones -1, 0, 1).
#[test]
fn training_loss_matches_naive_reference() {
    let never = AtomicBool::new(false);
    for (spec, start) in specs(&BOTH)
        .into_iter()
        .flat_map(|s| [(s, 0), (s, 1), (s, 2)])
    {
        let mut rng = Lcg(5);
        let g = grid_for(&spec, 2);
        let p = random_params(&spec, &mut rng);
        let x = random_x(&spec, &g, &mut rng);
        let target = partly_supervised(&spec, g.cells(), &mut rng);
        let weights = [0.0f32, 0.5, 0.0, 0.25, 0.25];
        let h0: Vec<f32> = (0..g.cells() * spec.c_h)
            .map(|_| match start {
                1 => rng.next() as f32 * 2.0 - 1.0,
                _ => rng.below(3) as f32 - 1.0,
            })
            .collect();
        let h0 = (start > 0).then_some(&h0[..]);
        let batch = Batch {
            h0,
            ..plain_batch(g, &x, &target, &weights)
        };
        let out = train_step(&spec, &p, &batch, &never).unwrap();
        let n_sup = target.iter().filter(|&&t| t >= 0).count() as f64;
        let mut want = 0.0;
        for (t, &w) in weights.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            let hs = naive_run_from(&spec, &g, &p, &x, h0, t + 1);
            let cells = g.cells_per_sample();
            for b in 0..g.batch {
                for cell in 0..cells {
                    let Ok(class) = usize::try_from(target[b * cells + cell]) else {
                        continue;
                    };
                    let l = naive_logits(&spec, &p, &hs[b][cell * spec.c_h..(cell + 1) * spec.c_h]);
                    let max = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let lse = max + l.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                    want += w as f64 * (lse - l[class]) / n_sup;
                }
            }
        }
        assert!(
            (out.loss - want).abs() < 1e-9 * want.max(1.0),
            "{spec:?} start {start}: {} vs {want}",
            out.loss
        );
        assert_eq!(out.cells_supervised as f64, n_sup);
    }
}

/// Back-propagation through time against central finite differences, in f64, for every
/// parameter, in 1D and 2D, both updates, both boundaries, noise off.
#[test]
fn gradients_match_finite_differences() {
    check_gradients(0.0, 0.0);
}

/// With the settling penalty on (and noise, so the penalty sees noisy steps).
#[test]
fn gradients_match_finite_differences_with_settling() {
    check_gradients(0.3, 0.7);
}

/// The same with noise on h: the noise is a fixed function of the seed, so the loss is a
/// deterministic function of the parameters and its gradient must match too.
#[test]
fn gradients_match_finite_differences_with_noise() {
    check_gradients(0.3, 0.0);
}

/// From a random initial state h0 instead of zero (noise and settling on too).
#[test]
fn gradients_match_finite_differences_from_h0() {
    check_gradients_from(0.3, 0.7, true);
}

/// A gradient check's grid (2 samples), random parameters, inputs and a class for every cell.
fn gradient_case(spec: &Spec, seed: u64) -> (Grid, Vec<f64>, Vec<f32>, Vec<i32>) {
    let mut rng = Lcg(seed);
    let g = grid_for(spec, 2);
    let p = random_params(spec, &mut rng);
    let x = random_x(spec, &g, &mut rng);
    let target = (0..g.cells())
        .map(|_| rng.below(spec.c_out) as i32)
        .collect();
    (g, p, x, target)
}

fn check_gradients(noise_std: f32, settle_weight: f32) {
    check_gradients_from(noise_std, settle_weight, false);
}

fn check_gradients_from(noise_std: f32, settle_weight: f32, random_h0: bool) {
    let never = AtomicBool::new(false);
    for spec in specs(&[Quantize::None]) {
        let (g, p, x, target) = gradient_case(&spec, 23);
        let mut rng = Lcg(29);
        let h0: Vec<f32> = (0..g.cells() * spec.c_h)
            .map(|_| rng.next() as f32 * 2.0 - 1.0)
            .collect();
        let weights = [0.0f32, 0.3, 0.0, 0.7];
        let batch = Batch {
            noise_std,
            noise_seed: 17,
            settle_weight,
            h0: random_h0.then_some(&h0[..]),
            ..plain_batch(g, &x, &target, &weights)
        };
        let analytic = train_step(&spec, &p, &batch, &never).unwrap().grad;
        let eps = 1e-6;
        let mut worst: f64 = 0.0;
        for i in 0..p.len() {
            let mut plus = p.clone();
            plus[i] += eps;
            let mut minus = p.clone();
            minus[i] -= eps;
            let lp = train_step(&spec, &plus, &batch, &never).unwrap().loss;
            let lm = train_step(&spec, &minus, &batch, &never).unwrap().loss;
            let numeric = (lp - lm) / (2.0 * eps);
            let err = (analytic[i] - numeric).abs() / (1e-6 + numeric.abs().max(analytic[i].abs()));
            worst = worst.max(err);
            assert!(
                (analytic[i] - numeric).abs() < 1e-7 + 1e-5 * numeric.abs(),
                "{spec:?} param {i}: analytic {} numeric {numeric}",
                analytic[i]
            );
        }
        eprintln!(
            "{spec:?} noise {noise_std} settle {settle_weight}: worst relative gradient error {worst:.2e}"
        );
    }
}

/// A quantized model's loss as the straight-through estimator sees it: h_t = t_t + d_t with
/// t_t = tanh(...) and d_t = round(t_t) - t_t held fixed. With `frozen` = None the offsets are
/// computed (the true quantized forward) and returned, one `[cells][C_h]` vector per sample
/// and step; with Some, they are reused, so the loss is smooth in the parameters and its
/// finite differences are the estimator's gradient.
#[allow(clippy::too_many_arguments)]
fn straight_through_loss(
    spec: &Spec,
    g: &Grid,
    p: &[f64],
    x: &[f32],
    target: &[i32],
    weights: &[f32],
    settle: f64,
    frozen: Option<&[Vec<f64>]>,
) -> (f64, Vec<Vec<f64>>) {
    let smooth = Spec {
        quantize: Quantize::None,
        ..*spec
    };
    let cells = g.cells_per_sample();
    let n_sup = target.iter().filter(|&&t| t >= 0).count() as f64;
    let mut offsets = Vec::new();
    let mut loss = 0.0;
    for b in 0..g.batch {
        let xb: Vec<f64> = x[b * cells * spec.c_in..(b + 1) * cells * spec.c_in]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mut h = vec![0.0; cells * spec.c_h];
        for (t, &w) in weights.iter().enumerate() {
            let soft = naive_step(&smooth, g, p, &xb, &h);
            let d: Vec<f64> = match frozen {
                Some(f) => f[b * weights.len() + t].clone(),
                None => soft.iter().map(|&v| ternary(v) - v).collect(),
            };
            if w > 0.0 {
                // The settling penalty compares the unrounded new state with the old one.
                // ...where the rounded value changed (h here is a whole number up to the
                // float error of t + (round(t) - t), hence the round).
                let moved: f64 = soft
                    .iter()
                    .zip(&h)
                    .filter(|(v, o)| ternary(**v) != o.round())
                    .map(|(v, o)| (v - o) * (v - o))
                    .sum();
                loss += settle * w as f64 * moved / (g.batch * cells * spec.c_h) as f64;
            }
            h = soft.iter().zip(&d).map(|(v, e)| v + e).collect();
            offsets.push(d);
            for cell in 0..cells {
                let Ok(class) = usize::try_from(target[b * cells + cell]) else {
                    continue;
                };
                let l = naive_logits(spec, p, &h[cell * spec.c_h..(cell + 1) * spec.c_h]);
                let max = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + l.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                loss += w as f64 * (lse - l[class]) / n_sup;
            }
        }
    }
    (loss, offsets)
}

/// A quantized model's gradient is the straight-through estimator's: back-propagation
/// through time matches central differences of `straight_through_loss` with the rounding
/// offsets held fixed, for every parameter, 1D and 2D, both updates and boundaries. For the
/// readout (Wo, bo), which the rounding does not touch, that is the loss's true gradient.
#[test]
fn quantized_gradients_are_straight_through() {
    let never = AtomicBool::new(false);
    for (spec, settle) in specs(&[Quantize::Ternary])
        .into_iter()
        .zip([0.0, 0.5].into_iter().cycle())
    {
        let (g, p, x, target) = gradient_case(&spec, 29);
        let weights = [0.0f32, 0.3, 0.0, 0.7];
        let batch = Batch {
            settle_weight: settle as f32,
            ..plain_batch(g, &x, &target, &weights)
        };
        let out = train_step(&spec, &p, &batch, &never).unwrap();
        let (loss, offsets) =
            straight_through_loss(&spec, &g, &p, &x, &target, &weights, settle, None);
        assert!(
            (out.loss - loss).abs() < 1e-9 * loss.max(1.0),
            "{spec:?}: loss {} vs {loss}",
            out.loss
        );
        let eps = 1e-6;
        let l = spec.layout();
        for i in 0..p.len() {
            let at = |q: &[f64]| {
                straight_through_loss(&spec, &g, q, &x, &target, &weights, settle, Some(&offsets)).0
            };
            let mut plus = p.clone();
            plus[i] += eps;
            let mut minus = p.clone();
            minus[i] -= eps;
            let numeric = (at(&plus) - at(&minus)) / (2.0 * eps);
            assert!(
                (out.grad[i] - numeric).abs() < 1e-7 + 1e-5 * numeric.abs(),
                "{spec:?} param {i}: analytic {} straight-through numeric {numeric}",
                out.grad[i]
            );
            if i >= l.wo.start {
                // The readout's own finite differences, with nothing held fixed.
                let full = |q: &[f64]| train_step(&spec, q, &batch, &never).unwrap().loss;
                let true_numeric = (full(&plus) - full(&minus)) / (2.0 * eps);
                assert!(
                    (out.grad[i] - true_numeric).abs() < 1e-7 + 1e-5 * true_numeric.abs(),
                    "{spec:?} readout param {i}: analytic {} numeric {true_numeric}",
                    out.grad[i]
                );
            }
        }
    }
}

/// The f32 training path computes the same gradient as the f64 one, to float precision,
/// with each f32 kernel: portable, and AVX2 (train_step would pick whichever the CPU has,
/// and `Simd::Avx2` falls back to portable without it, so each is named here and AVX2 is
/// under the AVX2 tests' skip policy).
#[test]
fn f32_gradient_agrees_with_f64() {
    let mut simds = vec![Simd::Portable];
    if avx2_or_skip("f32_gradient_agrees_with_f64") {
        simds.push(Simd::Avx2);
    }
    let never = AtomicBool::new(false);
    for (simd, spec) in simds
        .iter()
        .flat_map(|&k| specs(&BOTH).into_iter().map(move |s| (k, s)))
    {
        let mut rng = Lcg(31);
        let g = grid_for(&spec, 5);
        let p = random_params(&spec, &mut rng);
        let x = random_x(&spec, &g, &mut rng);
        let target: Vec<i32> = (0..g.cells())
            .map(|_| rng.below(spec.c_out) as i32)
            .collect();
        let weights = [0.1f32, 0.2, 0.3, 0.4];
        let batch = Batch {
            noise_std: 0.1,
            noise_seed: 9,
            settle_weight: 0.3,
            ..plain_batch(g, &x, &target, &weights)
        };
        let g64 = train_step(&spec, &p, &batch, &never).unwrap();
        let g32 = train_step_with_simd(&spec, &to_f32(&p), &batch, &never, simd).unwrap();
        let scale = g64.grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in g32.grad.iter().zip(&g64.grad) {
            assert!(
                (*a as f64 - b).abs() < 1e-4 * scale,
                "{simd:?} {spec:?}: {a} vs {b}"
            );
        }
        assert!((g32.loss - g64.loss).abs() < 1e-5 * g64.loss);
    }
}

/// Noise is seeded: the same seed gives the same result on any thread count, another seed
/// another result.
#[test]
fn noise_is_seeded_and_thread_independent() {
    let never = AtomicBool::new(false);
    let spec = specs(&[Quantize::None])[0];
    let mut rng = Lcg(3);
    let g = Grid {
        batch: 9,
        height: 1,
        width: 6,
    };
    let p = to_f32(&random_params(&spec, &mut rng));
    let x = random_x(&spec, &g, &mut rng);
    let target: Vec<i32> = (0..g.cells())
        .map(|_| rng.below(spec.c_out) as i32)
        .collect();
    let weights = [0.5f32, 0.5];
    let run = |seed: u64, threads: usize| {
        let batch = Batch {
            noise_std: 0.3,
            noise_seed: seed,
            ..plain_batch(g, &x, &target, &weights)
        };
        sead_core::pool::with_threads(threads, || train_step(&spec, &p, &batch, &never).unwrap())
            .unwrap()
    };
    let a = run(1, 1);
    let b = run(1, 2);
    let c = run(2, 2);
    assert_eq!(a.loss.to_bits(), b.loss.to_bits());
    assert_eq!(a.grad, b.grad);
    assert_ne!(a.loss, c.loss);
}

/// After t steps a cell is unaffected by an input more than t cells away (Chebyshev
/// distance in 2D, around the ring with a periodic boundary).
#[test]
fn light_cone() {
    let never = AtomicBool::new(false);
    for spec in specs(&[Quantize::None]) {
        let mut rng = Lcg(77);
        let g = if spec.dims == 1 {
            Grid {
                batch: 1,
                height: 1,
                width: 31,
            }
        } else {
            Grid {
                batch: 1,
                height: 13,
                width: 15,
            }
        };
        let mut p = to_f32(&random_params(&spec, &mut rng));
        // Positive feature biases keep the ReLUs open, so the signal reaches the cone's edge.
        p[spec.layout().b1].fill(1.0);
        let x = random_x(&spec, &g, &mut rng);
        let (py, px) = (g.height / 2, 3);
        let mut x2 = x.clone();
        x2[(py * g.width + px) * spec.c_in] += 1.0;
        let mut a = Session::new(spec, g, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
        let mut b = Session::new(spec, g, &x2, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
        let mut stats = vec![StepStats::default(); 1];
        let dist = |y: usize, x: usize| {
            let d = |u: usize, v: usize, n: usize| {
                let d = u.abs_diff(v);
                if spec.boundary == Boundary::Periodic {
                    d.min(n - d)
                } else {
                    d
                }
            };
            d(y, py, g.height).max(d(x, px, g.width))
        };
        for t in 1..=8 {
            a.step(&p, 1, None, &mut stats, &never).unwrap();
            b.step(&p, 1, None, &mut stats, &never).unwrap();
            let (ha, hb) = (a.hidden(), b.hidden());
            let mut inside_changed = false;
            for y in 0..g.height {
                for xx in 0..g.width {
                    let cell = y * g.width + xx;
                    let same = ha[cell * spec.c_h..(cell + 1) * spec.c_h]
                        == hb[cell * spec.c_h..(cell + 1) * spec.c_h];
                    if dist(y, xx) > t {
                        assert!(
                            same,
                            "{spec:?} step {t}: cell ({y},{xx}) outside the cone changed"
                        );
                    } else if dist(y, xx) == t && !same {
                        inside_changed = true;
                    }
                }
            }
            // The perturbation shrinks with distance until f32 can no longer hold it, so the
            // edge is checked on the first steps only; the outside on all of them.
            if t <= 4 {
                assert!(
                    inside_changed,
                    "{spec:?} step {t}: the cone's edge did not move"
                );
            }
        }
    }
}

/// A model whose update ignores its input settles at once; steps and flags are reported.
#[test]
fn converge_reports_steps_and_stops_settled_samples() {
    let never = AtomicBool::new(false);
    // h' = tanh(0.5 * relu(x)): constant after the first step.
    let c = settling_case();
    let session = || Session::new(c.spec, c.grid, &c.x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    let mut s = session();
    let r = s.converge(&c.params, SETTLING_OPTIONS, &never).unwrap();
    // Sample 0 never changes: settled after 3 quiet steps. Sample 1's outputs flip on
    // step 1 (class 0 -> 1), then 3 quiet steps.
    assert_eq!((r[0].steps, r[0].converged), (3, true));
    assert_eq!((r[1].steps, r[1].converged), (4, true));
    assert_eq!(s.outputs(), vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    // A limit below that stops without converging.
    let limited = ConvergeOptions {
        max_steps: 2,
        ..SETTLING_OPTIONS
    };
    let r = session().converge(&c.params, limited, &never).unwrap();
    assert_eq!((r[1].steps, r[1].converged), (2, false));
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let never = AtomicBool::new(false);
    let spec = specs(&[Quantize::None])[0];
    let g = Grid {
        batch: 1,
        height: 1,
        width: 4,
    };
    let e = Session::new(spec, g, &[0.0; 3], Simd::Portable, DEFAULT_MAX_BYTES)
        .err()
        .unwrap();
    assert!(e.to_string().contains("x has 3 values"), "{e}");
    let e = Session::new(
        spec,
        g,
        &[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        Simd::Portable,
        DEFAULT_MAX_BYTES,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("x[1] is NaN"), "{e}");
    let huge = Grid {
        batch: 100_000,
        height: 1,
        width: 100_000,
    };
    let e = Session::new(spec, huge, &[], Simd::Portable, DEFAULT_MAX_BYTES)
        .err()
        .unwrap();
    assert!(e.to_string().contains("GiB"), "{e}");
    let bad = Spec { dims: 3, ..spec };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("spec.dims"));
    let mut s = Session::new(spec, g, &[0.0; 8], Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    let mut stats = vec![StepStats::default(); 1];
    let e = s.step(&[0.0; 3], 1, None, &mut stats, &never).unwrap_err();
    assert!(e.to_string().contains("params has 3 values"), "{e}");
    let target = [0, 5, 0, 0];
    let x = [0.0f32; 8];
    let batch = plain_batch(g, &x, &target, &[1.0]);
    let p = vec![0.0f32; spec.param_count()];
    let e = train_step(&spec, &p, &batch, &never).unwrap_err();
    assert!(e.to_string().contains("target[1] is 5"), "{e}");
    let cancelled = AtomicBool::new(true);
    let ok_batch = Batch {
        target: &[0, 1, 0, 1],
        ..batch
    };
    assert_eq!(
        train_step(&spec, &p, &ok_batch, &cancelled).unwrap_err(),
        sead_core::Error::Cancelled
    );
}
