//! Settled-cell skipping (`Session::set_freeze`): with freeze 0 it must give exactly the
//! states, outputs and statistics of plain stepping, step by step, while computing fewer
//! cells once states stop changing; bad settings are refused.

use sead_core::testdata::{
    creeping_params, fan_in_params, one_hot_x, scalar_spec, small_spec_1d, Lcg,
};
use sead_core::{
    infer::DEFAULT_MAX_BYTES, Boundary, ConvergeOptions, Grid, Session, Simd, Spec, StepStats,
    Update,
};
use std::sync::atomic::AtomicBool;

/// Plain and skipping sessions side by side for `steps` steps: every step's hidden state,
/// outputs and statistics must be equal. Sample 1 sits out every third step, and the
/// parameters change halfway. Returns the cells each computed, summed over samples.
fn compare(spec: Spec, simd: Simd, saturate: bool, seed: u64) -> (u64, u64) {
    let mut rng = Lcg(seed);
    let grid = Grid {
        batch: 3,
        height: 1,
        width: 37,
    };
    let mut p = fan_in_params(&spec, &mut rng);
    if saturate {
        // Large biases drive most channels to tanh's exact +-1, where states stop changing.
        for v in &mut p[spec.layout().b2] {
            *v = if rng.next() < 0.5 { -12.0 } else { 12.0 };
        }
    }
    let mut p2 = p.clone();
    p2[spec.layout().bo.start] += 3.0; // flips outputs of kept states too
    p2[spec.layout().b1.start] += 0.25;
    let x = one_hot_x(&spec, grid.cells(), &mut rng);
    let mut plain = Session::new(spec, grid, &x, simd, DEFAULT_MAX_BYTES).unwrap();
    let mut skip = Session::new(spec, grid, &x, simd, DEFAULT_MAX_BYTES).unwrap();
    skip.set_freeze(Some(0.0)).unwrap();
    let never = AtomicBool::new(false);
    let (mut sa, mut sb) = (vec![StepStats::default(); 3], vec![StepStats::default(); 3]);
    for t in 0..40 {
        let params = if t < 20 { &p } else { &p2 };
        let active = [true, t % 3 != 0, true];
        plain
            .step(params, 1, Some(&active), &mut sa, &never)
            .unwrap();
        skip.step(params, 1, Some(&active), &mut sb, &never)
            .unwrap();
        let what = format!("{spec:?} {simd:?} saturate {saturate} step {t}");
        assert_eq!(plain.hidden(), skip.hidden(), "{what}: hidden state");
        assert_eq!(plain.outputs(), skip.outputs(), "{what}: outputs");
        assert_eq!(sa, sb, "{what}: statistics");
    }
    assert_eq!(plain.steps(), skip.steps());
    let sum = |s: &Session| s.cells_computed().iter().sum::<u64>();
    (sum(&plain), sum(&skip))
}

#[test]
fn freeze_zero_gives_exactly_the_states_of_plain_stepping() {
    let mut simds = vec![Simd::Portable];
    if Simd::parse("avx2").is_ok() {
        simds.push(Simd::Avx2);
    }
    for (i, update) in [Update::Replace, Update::Residual].into_iter().enumerate() {
        for (j, boundary) in [Boundary::Zero, Boundary::Periodic].into_iter().enumerate() {
            for &simd in &simds {
                let spec = small_spec_1d(update, boundary);
                let seed = 10 * i as u64 + j as u64;
                let (dense, _) = compare(spec, simd, false, seed);
                assert_eq!(
                    dense,
                    3 * 37 * 40 - 37 * 14,
                    "plain stepping computes every cell"
                );
                let (dense, skipped) = compare(spec, simd, true, seed);
                assert!(
                    skipped < dense / 2,
                    "{spec:?} {simd:?}: saturated states should be skipped ({skipped} of {dense} cells computed)"
                );
            }
        }
    }
}

#[test]
fn a_cell_that_moves_less_than_freeze_keeps_its_state() {
    // h' = tanh(0.5 h + x): h creeps towards its fixed point by ever smaller steps. With
    // freeze 1e-3 the creeping stops once a step would move h by at most 1e-3.
    let spec = scalar_spec(Boundary::Zero);
    let p = creeping_params(&spec);
    let grid = Grid {
        batch: 1,
        height: 1,
        width: 4,
    };
    let x = [1.0, 1.0, 1.0, 1.0];
    let mut s = Session::new(spec, grid, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    s.set_freeze(Some(1e-3)).unwrap();
    let never = AtomicBool::new(false);
    let mut stats = vec![StepStats::default(); 60];
    s.step(&p, 60, None, &mut stats, &never).unwrap();
    let last_move = stats.iter().rposition(|st| st.max_delta > 0.0).unwrap();
    assert!(
        last_move > 2 && last_move < 30,
        "the state should stop moving after a few steps, not at step {last_move}"
    );
    assert!(stats[last_move].max_delta > 1e-3);
    // Once nothing moves, nothing is computed.
    let computed = s.cells_computed()[0];
    assert_eq!(computed, 4 * (last_move as u64 + 2));
    // converge settles there too.
    let r = s
        .converge(
            &p,
            ConvergeOptions {
                patience: 2,
                tol: 1e-3,
                max_steps: 1000,
            },
            &never,
        )
        .unwrap();
    assert!(r[0].converged);
}

#[test]
fn bad_freeze_settings_are_refused() {
    let spec = small_spec_1d(Update::Replace, Boundary::Zero);
    let grid = Grid {
        batch: 1,
        height: 1,
        width: 4,
    };
    let mut s = Session::new(spec, grid, &[0.0; 12], Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
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
    let mut s2 = Session::new(spec2, grid2, &[0.0; 12], Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
    let e = s2.set_freeze(Some(0.0)).unwrap_err().to_string();
    assert!(e.contains("1D"), "{e}");
    s2.set_freeze(None).unwrap();
}
