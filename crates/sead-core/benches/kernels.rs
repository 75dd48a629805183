//! CPU kernel benchmarks: inference steps (1D and 2D, plain and skipping settled cells) and
//! training steps, with cell-steps per second, GFLOP/s and the fraction of this machine's
//! measured peak FP32 FMA rate.
//!
//!     cargo bench -p sead-core
//!
//! The peak is measured here, first: a pure AVX2 FMA loop (`_mm256_fmadd_ps`, 12
//! independent accumulators, more than FMA latency x pipes = 4 x 2 on current x86 cores)
//! run on every core at once. The theoretical figure printed beside it is
//! cores x clock ("cpu MHz" in /proc/cpuinfo) x FLOPs per cycle, taking 2 x 256-bit FMA
//! pipes per core (AMD Zen 2-5, Intel Haswell and later): 2 pipes x 8 lanes x 2 FLOPs = 32
//! FP32 FLOPs per cycle. Under a hypervisor "cpu MHz" is the nominal clock (a core that
//! boosts beats it), and the vCPUs may share physical cores or other processes may be
//! running (the bench prints the load average, and says so when all threads together are
//! no faster than one); the percentages therefore use the measured all-thread peak, the
//! best of a measurement before and one after the benchmarks, never the theoretical one.
//! Run it on a quiet machine: every figure drops under load.
//!
//! FLOPs of a cell-step are 2 x `Spec::macs_per_cell_step()`; a training cell-step counts
//! 3x that (the backward as twice the forward).

#[path = "../../sead-gpu/benches/support/timed.rs"]
mod timed;

use criterion::Criterion;
use sead_core::testdata::{bench_spec, fan_in_params, mul_spec, one_hot_x, BenchTrain, Lcg};
use sead_core::{infer::DEFAULT_MAX_BYTES, pool, train_step, Grid, Session, Simd, Spec, StepStats};
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use timed::timed;

/// Inference target: fraction of peak for 1D width 1e6.
const INFER_TARGET: f64 = 0.50;
/// Training target: fraction of peak for batch 128, width 17, T = 40.
const TRAIN_TARGET: f64 = 0.45;

// ---------------------------------------------------------------------------------------
// Peak FP32 FMA rate.

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_loop(iters: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(seed); 12];
    for (k, a) in acc.iter_mut().enumerate() {
        *a = _mm256_add_ps(*a, _mm256_set1_ps(k as f32 * 1e-3));
    }
    let m = _mm256_set1_ps(black_box(0.999_999));
    let b = _mm256_set1_ps(black_box(1e-7));
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, m, b);
        }
    }
    let mut s = _mm256_setzero_ps();
    for a in acc {
        s = _mm256_add_ps(s, a);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` is 8 writable floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
    lanes.iter().sum()
}

/// FP32 GFLOP/s of the FMA loop on `threads` threads at once (best of 3 runs).
fn measure_peak(threads: usize) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return f64::NAN;
        }
        const PER_ITER: f64 = 12.0 * 8.0 * 2.0;
        let iters: u64 = 60_000_000;
        // Warm up so the cores have left their idle clocks.
        // SAFETY: AVX2 and FMA were detected above.
        black_box(unsafe { fma_loop(black_box(iters), 1.0) });
        let mut best = 0.0f64;
        for _ in 0..3 {
            let barrier = Barrier::new(threads + 1);
            let secs = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|t| {
                        let barrier = &barrier;
                        s.spawn(move || {
                            barrier.wait();
                            // SAFETY: AVX2 and FMA were detected above.
                            black_box(unsafe { fma_loop(black_box(iters), t as f32) })
                        })
                    })
                    .collect();
                let t0 = Instant::now();
                barrier.wait();
                for h in hs {
                    h.join().unwrap();
                }
                t0.elapsed().as_secs_f64()
            });
            best = best.max(threads as f64 * iters as f64 * PER_ITER / secs / 1e9);
        }
        best
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = threads;
        f64::NAN
    }
}

/// (cores, mean "cpu MHz") from /proc/cpuinfo, if readable.
fn cpuinfo_clock() -> Option<(usize, f64)> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
        .collect();
    if mhz.is_empty() {
        return None;
    }
    Some((mhz.len(), mhz.iter().sum::<f64>() / mhz.len() as f64))
}

// ---------------------------------------------------------------------------------------
// Reporting.

/// One benchmark's result, turned into a percentage once the peak is known.
struct Figure {
    gflops: f64,
    line: String,
    target: Option<f64>,
}

#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Report {
    /// Prints (and keeps for the summary) one figure: seconds per iteration and the
    /// cell-steps one iteration does; `flop_factor` is 1 for inference, 3 for training.
    fn figure(
        &mut self,
        label: &str,
        spec: &Spec,
        secs: f64,
        cell_steps: f64,
        flop_factor: f64,
        target: Option<f64>,
    ) {
        if !secs.is_finite() {
            return; // filtered out on the command line
        }
        let rate = cell_steps / secs;
        let gflops = rate * 2.0 * spec.macs_per_cell_step() as f64 * flop_factor / 1e9;
        let line = format!(
            "{label}: {:.3} ms/iter, {:.3e} cell-steps/s, {gflops:.1} GFLOP/s",
            secs * 1e3,
            rate,
        );
        println!("FIGURE {line}");
        self.figures.push(Figure {
            gflops,
            line,
            target,
        });
    }

    fn note(&mut self, line: String) {
        println!("FIGURE {line}");
        self.notes.push(line);
    }

    /// The summary: every figure as a fraction of `peak`, with its target.
    fn summary(&self, peak: f64) {
        println!();
        println!("summary:");
        for n in &self.notes {
            println!("  {n}");
        }
        for f in &self.figures {
            let frac = f.gflops / peak;
            let target = match f.target {
                Some(t) => format!(
                    "target >= {:.0}%: {}",
                    t * 100.0,
                    if frac >= t { "MET" } else { "NOT MET" }
                ),
                None => "no target".to_string(),
            };
            println!(
                "  {}, {:.1}% of measured peak ({target})",
                f.line,
                frac * 100.0
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The benchmarks.

fn bench_infer(
    c: &mut Criterion,
    rep: &mut Report,
    label: &str,
    spec: Spec,
    grid: Grid,
    simd: Simd,
    target: Option<f64>,
) {
    let never = AtomicBool::new(false);
    let mut rng = Lcg(7);
    let p = fan_in_params(&spec, &mut rng);
    let x = one_hot_x(&spec, grid.cells(), &mut rng);
    let mut s = Session::new(spec, grid, &x, simd, DEFAULT_MAX_BYTES).unwrap();
    s.refresh_outputs(&p).unwrap();
    let mut stats = vec![StepStats::default(); grid.batch];
    let secs = timed(c, label, || {
        s.step(&p, 1, None, &mut stats, &never).unwrap();
        black_box(&stats);
    });
    rep.figure(label, &spec, secs, grid.cells() as f64, 1.0, target);
}

/// Skipping settled cells (freeze 0) on a `mul_spec` grid where about 1% of the cells (those
/// with input channel 0 set) flip between -1 and +1 every step and the rest have settled:
/// h0' = tanh(0.5 - 20 relu(x0 + h0 - 1) + 20 relu(x0 - h0 - 1)), every other weight zero
/// but the readout of h0. A step computes the 3x3 neighbourhoods of the flipping cells; the
/// figure counts the cells computed, and a note the whole grid's cells a second.
fn bench_skipping(c: &mut Criterion, rep: &mut Report, label: &str, grid: Grid, simd: Simd) {
    let spec = mul_spec();
    let never = AtomicBool::new(false);
    let l = spec.layout();
    let (cc, f) = (spec.c(), spec.features);
    let centre = 4; // the middle of the 3x3 neighbourhood
    let w1 = |ch: usize, feature: usize| l.w1.start + (centre * cc + ch) * f + feature;
    let h0 = spec.c_in;
    let mut p = vec![0.0f32; spec.param_count()];
    p[w1(0, 0)] = 1.0;
    p[w1(h0, 0)] = 1.0;
    p[l.b1.start] = -1.0;
    p[w1(0, 1)] = 1.0;
    p[w1(h0, 1)] = -1.0;
    p[l.b1.start + 1] = -1.0;
    p[l.w2.start] = -20.0; // feature 0 -> h0
    p[l.w2.start + spec.c_h] = 20.0; // feature 1 -> h0
    p[l.b2.start] = 0.5;
    p[l.wo.start + 1] = 1.0; // h0 -> output 1
    let mut x = vec![0.0f32; grid.cells() * spec.c_in];
    for (i, cell) in x.chunks_exact_mut(spec.c_in).enumerate() {
        cell[if i % 97 == 0 { 0 } else { 1 }] = 1.0;
    }
    let mut s = Session::new(spec, grid, &x, simd, DEFAULT_MAX_BYTES).unwrap();
    s.set_freeze(Some(0.0)).unwrap();
    s.refresh_outputs(&p).unwrap();
    let mut stats = vec![StepStats::default(); grid.batch];
    for _ in 0..4 {
        s.step(&p, 1, None, &mut stats, &never).unwrap();
    }
    let computed = |s: &Session| s.cells_computed().iter().sum::<u64>();
    let (before, mut steps) = (computed(&s), 0u64);
    let secs = timed(c, label, || {
        s.step(&p, 1, None, &mut stats, &never).unwrap();
        steps += 1;
        black_box(&stats);
    });
    if !secs.is_finite() || steps == 0 {
        return;
    }
    let per_step = (computed(&s) - before) as f64 / steps as f64;
    rep.figure(label, &spec, secs, per_step, 1.0, None);
    rep.note(format!(
        "{label}: {:.1}% of the cells computed a step; {:.3e} grid cell-steps/s",
        100.0 * per_step / grid.cells() as f64,
        grid.cells() as f64 / secs
    ));
}

fn bench_train(
    c: &mut Criterion,
    rep: &mut Report,
    label: &str,
    spec: Spec,
    grid: Grid,
    t: usize,
    target: Option<f64>,
) {
    let never = AtomicBool::new(false);
    let case = BenchTrain::new(&spec, grid, t);
    let batch = case.batch();
    let secs = timed(c, label, || {
        black_box(train_step(&spec, &case.params, &batch, &never).unwrap());
    });
    rep.figure(label, &spec, secs, (grid.cells() * t) as f64, 3.0, target);
}

fn main() {
    let threads = pool::default_threads();
    println!(
        "sead-core CPU kernels: {threads} threads, simd {}",
        Simd::detect().name()
    );
    let mut rep = Report::default();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        rep.note(format!(
            "load average at start: {} (other processes on these CPUs lower every figure)",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let peak_start = measure_peak(threads);
    let one = measure_peak(1);
    println!(
        "FIGURE peak at start: {peak_start:.1} GFLOP/s ({threads} threads), {one:.1} (1 thread)"
    );

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let s1 = bench_spec(1);
    let simd = Simd::detect();
    bench_infer(
        &mut c,
        &mut rep,
        "cpu/step_forward_1d/W=17/B=128",
        s1,
        Grid {
            batch: 128,
            height: 1,
            width: 17,
        },
        simd,
        None,
    );
    bench_infer(
        &mut c,
        &mut rep,
        "cpu/step_forward_1d_portable/W=17/B=128",
        s1,
        Grid {
            batch: 128,
            height: 1,
            width: 17,
        },
        Simd::Portable,
        None,
    );
    let wide = Grid {
        batch: 1,
        height: 1,
        width: 1_000_000,
    };
    bench_infer(
        &mut c,
        &mut rep,
        "cpu/step_forward_1d/W=1000000/B=1",
        s1,
        wide,
        simd,
        Some(INFER_TARGET),
    );
    let held = Session::bytes_needed(&s1, &wide);
    let cells = wide.cells();
    let state = cells * s1.c_h * 4;
    let inputs = cells * s1.c_in * 4;
    let limit = 2 * state + inputs + (64 << 20);
    let mem = format!(
        "memory W=1000000: the session holds {:.1} MB; target 2 x state ({:.1} MB of h) + inputs \
         ({:.1} MB of x) + 64 MB = {:.1} MB: {}",
        held as f64 / 1e6,
        state as f64 / 1e6,
        inputs as f64 / 1e6,
        limit as f64 / 1e6,
        if held <= limit { "MET" } else { "NOT MET" }
    );
    rep.note(mem);
    let s2 = bench_spec(2);
    bench_infer(
        &mut c,
        &mut rep,
        "cpu/step_forward_2d/64x64/B=8",
        s2,
        Grid {
            batch: 8,
            height: 64,
            width: 64,
        },
        simd,
        None,
    );
    let mul_grid = Grid {
        batch: 8,
        height: 64,
        width: 65,
    };
    bench_infer(
        &mut c,
        &mut rep,
        "cpu/step_forward_2d_mul/64x65/B=8",
        mul_spec(),
        mul_grid,
        simd,
        None,
    );
    bench_skipping(
        &mut c,
        &mut rep,
        "cpu/step_skipping_2d_mul/64x65/B=8/1%_changing",
        mul_grid,
        simd,
    );
    bench_train(
        &mut c,
        &mut rep,
        "cpu/train_step_1d/W=17/B=128/T=40",
        s1,
        Grid {
            batch: 128,
            height: 1,
            width: 17,
        },
        40,
        Some(TRAIN_TARGET),
    );
    bench_train(
        &mut c,
        &mut rep,
        "cpu/train_step_2d/64x64/B=8/T=8",
        s2,
        Grid {
            batch: 8,
            height: 64,
            width: 64,
        },
        8,
        None,
    );
    c.final_summary();

    // The peak again, after the benchmarks: the best of the two is the machine's rate (a
    // busy moment lowers one measurement, never raises it).
    let peak_end = measure_peak(threads);
    let peak = peak_start.max(peak_end);
    rep.note(format!(
        "measured peak FP32 FMA (AVX2 _mm256_fmadd_ps, 12 accumulators, {threads} threads at \
         once): {peak:.1} GFLOP/s (best of before {peak_start:.1} and after {peak_end:.1}; one \
         thread alone: {one:.1})"
    ));
    if threads > 1 && peak < 1.3 * one {
        rep.note(format!(
            "note: {threads} threads together were no faster than one ({:.2} GHz x 32 \
             FLOPs/cycle alone): another process was using these CPUs, or they share one \
             physical core's FMA pipes (SMT siblings on the host); either way the \
             percentages use the {threads}-thread figure, the rate the benchmarks could get",
            one / 32.0
        ));
    }
    match cpuinfo_clock() {
        Some((cores, mhz)) => rep.note(format!(
            "theoretical: {cores} cores x {mhz:.0} MHz (/proc/cpuinfo) x 32 FLOPs/cycle \
             (2 x 256-bit FMA pipes x 8 lanes x 2) = {:.1} GFLOP/s; measured/theoretical = {:.2}",
            cores as f64 * mhz * 32.0 / 1e3,
            peak / (cores as f64 * mhz * 32.0 / 1e3)
        )),
        None => rep.note("theoretical: /proc/cpuinfo not readable".to_string()),
    }
    rep.summary(peak);
}
