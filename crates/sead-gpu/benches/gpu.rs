//! GPU kernel benchmarks at the sizes of `cargo bench -p sead-core`: inference steps (1D
//! width 17 batch 128, 1D width 1,000,000, 2D 64x64 batch 8) and a training step (batch
//! 128, width 17, T = 40), with cell-steps per second and GFLOP/s.
//!
//!     cargo bench -p sead-gpu
//!
//! Every iteration is timed to the completion of its GPU work: a `GpuSession::step` call
//! records its steps, submits them and maps the per-step stats back before it returns; a
//! `train_step` reads the gradient back. The figures name the adapter: on a machine
//! without a GPU that is Mesa's lavapipe (software Vulkan on the CPU), whose figures say
//! nothing about a real GPU.
//!
//! With `SEAD_GPU_PEAK_TFLOPS` (the GPU's FP32 peak, which wgpu cannot report) each figure
//! also gives its share of the peak; the target is 25% for the forward step at W=1,000,000.
//!
//! FLOPs of a cell-step are 2 x `Spec::macs_per_cell_step()`; a training cell-step counts
//! 3x that (the backward as twice the forward), as in the CPU bench.

#[path = "support/context.rs"]
mod context;
#[path = "support/timed.rs"]
mod timed;

use criterion::Criterion;
use sead_core::testdata::{bench_spec, fan_in_params, one_hot_x, BenchTrain, Lcg};
use sead_core::Stepper;
use sead_core::{Grid, Spec, StepStats};
use sead_gpu::{GpuContext, GpuSession, SessionOptions};
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use timed::timed;

fn figure(
    unit: &str,
    lines: &mut Vec<String>,
    label: &str,
    spec: &Spec,
    secs: f64,
    cell_steps: f64,
    factor: f64,
) {
    if !secs.is_finite() {
        return; // filtered out on the command line
    }
    let rate = cell_steps / secs;
    let gflops = rate * 2.0 * spec.macs_per_cell_step() as f64 * factor / 1e9;
    // The GPU's FP32 peak is not something wgpu reports: SEAD_GPU_PEAK_TFLOPS gives it.
    let of_peak = std::env::var("SEAD_GPU_PEAK_TFLOPS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(String::new(), |p| {
            format!(" ({:.1}% of {p} TFLOP/s)", gflops / (p * 10.0))
        });
    let line = format!(
        "{label}: {:.3} ms/{unit}, {rate:.3e} cell-steps/s, {gflops:.2} GFLOP/s{of_peak}",
        secs * 1e3
    );
    println!("FIGURE {line}");
    lines.push(line);
}

/// What the benchmarks share: criterion, the figures printed so far and the GPU.
struct Bench {
    c: Criterion,
    lines: Vec<String>,
    ctx: Arc<GpuContext>,
}

impl Bench {
    /// `steps` inference steps per submission of `spec` on `grid`.
    fn infer(&mut self, label: &str, spec: Spec, grid: Grid, steps: usize) {
        let ctx = &self.ctx;
        let never = AtomicBool::new(false);
        let mut rng = Lcg(7);
        let p = fan_in_params(&spec, &mut rng);
        let x = one_hot_x(&spec, grid.cells(), &mut rng);
        let opts = context::tuned(SessionOptions {
            check_every: steps as u32,
            ..Default::default()
        });
        let mut s = match GpuSession::new(ctx.clone(), spec, grid, &x, &opts) {
            Ok(s) => s,
            Err(e) => {
                // A tile forced by SEAD_GPU_TILE may not fit this model's workgroup memory.
                println!("{label}: skipped, {e}");
                return;
            }
        };
        let (tile, threads) = s.layout();
        s.refresh_outputs(&p).unwrap();
        let mut stats = vec![StepStats::default(); steps * grid.batch];
        s.step(&p, steps, None, &mut stats, &never).unwrap(); // pipelines built, caches warm
        context::reset_profile(ctx);
        let secs = timed(&mut self.c, label, || {
            s.step(&p, steps, None, &mut stats, &never).unwrap();
            black_box(&stats);
        });
        context::print_profile(ctx, label);
        let packed = if s.packed_tile().is_some() {
            " packed"
        } else {
            ""
        };
        figure(
            "step",
            &mut self.lines,
            &format!(
                "{label} ({steps} steps per submission, tiles of {tile} cells{packed}, {threads} \
                 threads)"
            ),
            &spec,
            secs / steps as f64,
            grid.cells() as f64,
            1.0,
        );
    }

    /// A training step of `spec` on `grid`, unrolled `t` steps.
    fn train(&mut self, label: &str, spec: Spec, grid: Grid, t: usize) {
        let ctx = &self.ctx;
        let never = AtomicBool::new(false);
        let case = BenchTrain::new(&spec, grid, t);
        let (p, batch) = (&case.params, case.batch());
        black_box(sead_gpu::train_step(ctx, &spec, p, &batch, &never).unwrap());
        context::reset_profile(ctx);
        let secs = timed(&mut self.c, label, || {
            black_box(sead_gpu::train_step(ctx, &spec, p, &batch, &never).unwrap());
        });
        context::print_profile(ctx, label);
        figure(
            "train step",
            &mut self.lines,
            label,
            &spec,
            secs,
            (grid.cells() * t) as f64,
            3.0,
        );
    }
}

/// `batch` samples of `height` rows of `width` cells.
fn plane(batch: usize, height: usize, width: usize) -> Grid {
    Grid {
        batch,
        height,
        width,
    }
}

fn main() {
    let Some(ctx) = context::gpu_or_none() else {
        return;
    };
    let info = ctx.adapter_info().clone();
    let kind = if info.is_software() {
        "SOFTWARE adapter (runs on the CPU): these figures are not GPU figures"
    } else {
        "hardware adapter"
    };
    println!("sead-gpu kernels on {} [{kind}]", info.describe());
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average at start: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut bench = Bench {
        c,
        lines: Vec::new(),
        ctx,
    };
    let s1 = bench_spec(1);
    let s2 = bench_spec(2);
    // Fewer steps per submission where one step is already long (on lavapipe).
    let soft = info.is_software();
    // (label, spec, grid, steps per submission)
    for (label, spec, grid, steps) in [
        ("gpu/step_forward_1d/W=17/B=128", s1, plane(128, 1, 17), 32),
        (
            "gpu/step_forward_1d/W=1000000/B=1",
            s1,
            plane(1, 1, 1_000_000),
            if soft { 2 } else { 32 },
        ),
        (
            "gpu/step_forward_2d/64x64/B=8",
            s2,
            plane(8, 64, 64),
            if soft { 4 } else { 32 },
        ),
    ] {
        bench.infer(label, spec, grid, steps);
    }
    // (label, spec, grid, unrolled steps T)
    for (label, spec, grid, t) in [
        (
            "gpu/train_step_1d/W=17/B=128/T=40",
            s1,
            plane(128, 1, 17),
            40,
        ),
        ("gpu/train_step_2d/64x64/B=8/T=8", s2, plane(8, 64, 64), 8),
    ] {
        bench.train(label, spec, grid, t);
    }
    let Bench { c, lines, .. } = bench;
    c.final_summary();
    println!();
    println!(
        "summary ({}{}):",
        info.describe(),
        if soft {
            ", software: not GPU figures"
        } else {
            ""
        }
    );
    for l in lines {
        println!("  {l}");
    }
    println!(
        "target (issue 4): the forward step at W=1000000 at 25% or more of the GPU's FP32 peak \
         (an H100 SXM: about 67 TFLOP/s, so 16.7); SEAD_GPU_PEAK_TFLOPS=67 prints the share"
    );
}
