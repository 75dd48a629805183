//! The settle rule is defined once, in Rust (`sead_core::ConvergeOptions::settle`, which
//! `Session::converge` applies), and mirrored in WGSL (`sample_update` in step.wgsl, which
//! `GpuSession::converge` runs after every step). This test holds the two together: a table
//! of cases (changed outputs, max |h' - h|, quiet steps so far, steps so far and the step
//! budget, around every boundary of the rule) goes through the Rust function and through the
//! `sample_update` kernel itself, dispatched on the test adapter (lavapipe in CI) with
//! sample states and step stats written by hand, and both must reach the same decision,
//! quiet count and step count.

mod common;

use common::ctx;
use sead_core::{ConvergeOptions, Settle, StepStats};
use sead_gpu::records::{ConvInfo, SampleState, Slot, StepStat};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One row of the table: the state of a sample before its step, and the step's stats.
#[derive(Clone, Copy, Debug)]
struct Case {
    /// Steps the sample had taken before this `converge` call.
    before_call: u64,
    /// Steps taken in this call before this step.
    taken: u32,
    /// Steps in a row with no output change before this step.
    quiet: u32,
    changed: u32,
    max_delta: f32,
    max_steps: u64,
}

/// What the rule decided for a case: the verdict, the new quiet count, the steps taken in
/// the call.
type Decision = (Settle, u32, u32);

fn rust_rule(opts: &ConvergeOptions, c: &Case) -> Decision {
    let mut quiet = c.quiet;
    let stats = StepStats {
        max_delta: c.max_delta,
        changed: c.changed as u64,
    };
    let taken = c.taken + 1;
    let verdict = opts.settle(&mut quiet, stats, c.before_call + taken as u64);
    (verdict, quiet, taken)
}

/// A device on the adapter the other GPU tests use, to dispatch `sample_update` by hand.
fn device(ctx: &sead_gpu::GpuContext) -> (wgpu::Device, wgpu::Queue) {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let inst = wgpu::Instance::new(desc);
    let want = ctx.adapter_info();
    let adapter = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|a| {
            let i = a.get_info();
            i.name == want.name && i.backend.to_str() == want.backend
        })
        .unwrap_or_else(|| panic!("the test adapter {} is gone", want.describe()));
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("settle rule test"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("opening a device on the test adapter")
}

/// Runs `sample_update` once over `cases` (one sample each) in converge mode (`mode` 1) or
/// plain stepping (0), and returns the sample states after it.
fn gpu_update(
    dev: &(wgpu::Device, wgpu::Queue),
    mode: u32,
    opts: &ConvergeOptions,
    cases: &[Case],
) -> Vec<SampleState> {
    let (device, queue) = dev;
    let batch = cases.len();
    let src = sead_gpu::kernels::step_source();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("step.wgsl"),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    // A small spec's override constants; sample_update reads none of them.
    let constants = [
        ("C_IN", 1.0),
        ("C_H", 1.0),
        ("F", 1.0),
        ("C_OUT", 2.0),
        ("DIMS", 1.0),
        ("PERIODIC", 0.0),
        ("RESIDUAL", 0.0),
        ("TERNARY_HALF", sead_core::real::TERNARY_HALF as f64),
        ("TC", 32.0),
        ("WG", 128.0),
    ];
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("sample_update"),
        layout: None,
        module: &module,
        entry_point: Some("sample_update"),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            zero_initialize_workgroup_memory: true,
        },
        cache: None,
    });
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    let buffer = |label: &str, bytes: &[u8], usage: wgpu::BufferUsages| {
        let b = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len() as u64,
            usage,
            mapped_at_creation: false,
        });
        queue.write_buffer(&b, 0, bytes);
        b
    };
    // The host's part (`GpuSession::converge`): each sample's budget is the steps left
    // before max_steps, at most 2^32 - 1 per call.
    let states: Vec<SampleState> = cases
        .iter()
        .map(|c| SampleState {
            live: 1,
            clock: ((c.before_call + c.taken as u64) & 1) as u32,
            taken: c.taken,
            quiet: c.quiet,
            budget: c
                .max_steps
                .saturating_sub(c.before_call)
                .min(u32::MAX as u64) as u32,
            ..SampleState::default()
        })
        .collect();
    let stats: Vec<StepStat> = cases
        .iter()
        .map(|c| StepStat {
            max_delta: c.max_delta,
            changed: c.changed,
            computed: 0, // unused here
        })
        .collect();
    let samples = buffer(
        "sample states",
        bytemuck::cast_slice(&states),
        storage | wgpu::BufferUsages::COPY_SRC,
    );
    let stats = buffer("step stats", bytemuck::cast_slice(&stats), storage);
    let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
    let slot = buffer("slot", bytemuck::bytes_of(&Slot::default()), uniform);
    let conv = ConvInfo {
        batch: batch as u32,
        mode,
        patience: opts.patience,
        tol: opts.tol,
    };
    let conv = buffer("converge info", bytemuck::bytes_of(&conv), uniform);
    let bytes = std::mem::size_of_val(states.as_slice()) as u64;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("sample_update"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 4,
                resource: samples.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 5,
                resource: stats.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 8,
                resource: slot.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 9,
                resource: conv.as_entire_binding(),
            },
        ],
    });
    let mut enc = device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(batch.div_ceil(64) as u32, 1, 1);
    }
    enc.copy_buffer_to_buffer(&samples, 0, &staging, 0, bytes);
    queue.submit([enc.finish()]);
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        r.expect("mapping the sample states");
        flag.store(true, Ordering::Release);
    });
    while !done.load(Ordering::Acquire) {
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("waiting for the GPU");
    }
    let view = staging
        .get_mapped_range(..)
        .expect("reading the sample states");
    bytemuck::pod_collect_to_vec(&view)
}

/// The kernel's decision from a sample state it wrote.
fn gpu_decision(s: &SampleState) -> Decision {
    let (taken, quiet) = (s.taken, s.quiet);
    let verdict = match (s.live, s.converged) {
        (1, 0) => Settle::Running,
        (0, 1) => Settle::Converged,
        (0, 0) => Settle::OutOfSteps,
        _ => panic!("impossible sample state {s:?}"),
    };
    (verdict, quiet, taken)
}

/// Every combination of values on and around the rule's boundaries, for these options.
fn table(opts: &ConvergeOptions) -> Vec<Case> {
    let tol = opts.tol;
    let deltas = [
        0.0,
        tol / 2.0,
        f32::from_bits(tol.to_bits() - 1),
        tol,
        f32::from_bits(tol.to_bits() + 1),
        1.0,
        f32::MAX,
    ];
    let p = opts.patience;
    let quiets = [0, p - 1, p, p + 1, 1000, u32::MAX - 1, u32::MAX];
    let changed = [0, 1, 7, u32::MAX];
    // (steps before the call, taken in it before this step, max_steps): the step leaves
    // steps to spare, reaches max_steps exactly, or (a later call) starts past it.
    let clocks: [(u64, u32, u64); 7] = [
        (0, 0, 1),
        (0, 0, 2),
        (0, 5, 100),
        (10, 4, 15),
        (10, 3, 15),
        (1 << 40, 7, (1 << 40) + 8),
        (3, u32::MAX - 2, 3 + u32::MAX as u64),
    ];
    let mut cases = Vec::new();
    for &max_delta in &deltas {
        for &quiet in &quiets {
            for &changed in &changed {
                for &(before_call, taken, max_steps) in &clocks {
                    cases.push(Case {
                        before_call,
                        taken,
                        quiet,
                        changed,
                        max_delta,
                        max_steps,
                    });
                }
            }
        }
    }
    cases
}

#[test]
fn the_gpu_kernel_settles_samples_by_the_rust_rule() {
    let Some(ctx) = ctx() else { return };
    let dev = device(&ctx);
    let mut seen = [0usize; 3];
    for patience in [1, 2, 4] {
        for tol in [1e-6f32, 1e-3, 0.25] {
            let opts = ConvergeOptions {
                patience,
                tol,
                max_steps: 0, // per case
            };
            let cases = table(&opts);
            let after = gpu_update(&dev, 1, &opts, &cases);
            for (c, s) in cases.iter().zip(&after) {
                let opts = ConvergeOptions {
                    max_steps: c.max_steps,
                    ..opts
                };
                let want = rust_rule(&opts, c);
                assert_eq!(gpu_decision(s), want, "{opts:?}, {c:?}");
                // The step's stats are kept as the sample's last.
                assert_eq!((s.last_delta, s.last_changed), (c.max_delta, c.changed));
                seen[want.0 as usize] += 1;
            }
        }
    }
    // The table reaches every verdict, many times.
    assert!(seen.iter().all(|&n| n > 100), "verdicts seen: {seen:?}");
}

/// Plain stepping (`GpuSession::step`) runs the same kernel with the rule off: it counts
/// the step and never stops a sample, however quiet.
#[test]
fn plain_steps_never_settle() {
    let Some(ctx) = ctx() else { return };
    let dev = device(&ctx);
    let opts = ConvergeOptions {
        patience: 0,
        tol: 0.0,
        max_steps: 0,
    };
    let cases = table(&ConvergeOptions {
        patience: 1,
        tol: 1e-3,
        max_steps: 0,
    });
    for (c, s) in cases.iter().zip(gpu_update(&dev, 0, &opts, &cases)) {
        assert_eq!(
            (s.live, s.taken, s.quiet, s.converged),
            (1, c.taken + 1, c.quiet, 0),
            "{c:?}"
        );
    }
}
