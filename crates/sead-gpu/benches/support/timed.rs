//! One criterion benchmark that also returns its median time per iteration; used by the CPU
//! and the GPU kernel benchmarks (sead-core's benches/kernels.rs, sead-gpu's benches/gpu.rs), so
//! their figures are measured the same way.

use criterion::Criterion;
use std::time::Instant;

/// Runs a criterion benchmark and also returns the median seconds per iteration it saw
/// (NaN where the command line filtered it out).
pub fn timed(c: &mut Criterion, label: &str, mut step: impl FnMut()) -> f64 {
    let mut per_iter: Vec<f64> = Vec::new();
    c.bench_function(label, |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                step();
            }
            let dt = t0.elapsed();
            per_iter.push(dt.as_secs_f64() / iters as f64);
            dt
        })
    });
    per_iter.sort_by(f64::total_cmp);
    per_iter
        .get(per_iter.len() / 2)
        .copied()
        .unwrap_or(f64::NAN)
}
