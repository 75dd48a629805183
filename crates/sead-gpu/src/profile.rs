//! GPU time per kernel, from timestamp queries (`GpuOptions::profile`). Every dispatch sead
//! records is bracketed by two timestamps; a submission holding any is waited for at once,
//! and its times are added up per kernel. `cargo bench -p sead-gpu` prints them with
//! `SEAD_GPU_PROFILE=1`. Waiting on every submission serializes the host and the GPU, so
//! wall-clock figures taken with profiling on are not comparable with those taken without.
//!
//! The timestamps measure each dispatch from the start of the GPU work it heads to the end
//! of its own; between two dispatches that depend on each other wgpu puts a barrier, so on
//! a GPU the spans do not overlap and they add up to the pass.

use crate::context::GpuContext;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::thread::ThreadId;

/// Queries per submission (two per dispatch): wgpu's largest query set. Dispatches past
/// 2,048 in one submission run untimed, and are counted as such.
const CAPACITY: u32 = 4096;

/// The GPU time of one kernel, summed over a run.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The entry point, e.g. "step_forward" (with the layer for grad_outer).
    pub kernel: String,
    pub dispatches: u64,
    pub seconds: f64,
}

/// What `GpuContext::take_profile` returns: per-kernel times, largest first, and the
/// dispatches left untimed (past a submission's query capacity, or recorded by a second
/// thread while the first one's submission was pending).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub kernels: Vec<KernelTime>,
    pub untimed: u64,
}

impl Profile {
    /// Total GPU time of the timed dispatches.
    pub fn seconds(&self) -> f64 {
        self.kernels.iter().fold(0.0, |t, k| t + k.seconds) // (an empty sum() is -0.0)
    }

    /// One line per kernel: dispatches, total and mean time, share of the total.
    pub fn table(&self) -> String {
        let total = self.seconds().max(f64::MIN_POSITIVE);
        let mut out = String::new();
        for k in &self.kernels {
            out += &format!(
                "{:<22} {:>9} dispatches {:>11.3} ms {:>10.2} us each {:>5.1}%\n",
                k.kernel,
                k.dispatches,
                k.seconds * 1e3,
                k.seconds * 1e6 / k.dispatches.max(1) as f64,
                100.0 * k.seconds / total
            );
        }
        if self.untimed > 0 {
            out += &format!("({} dispatches untimed)\n", self.untimed);
        }
        out
    }
}

pub(crate) struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The thread whose dispatches fill the query set now (until its submission).
    owner: Option<ThreadId>,
    /// Kernel of each timed dispatch of the pending submission (queries 2i, 2i + 1).
    pending: Vec<&'static str>,
    totals: BTreeMap<&'static str, (u64, f64)>,
    untimed: u64,
}

impl Profiler {
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        let bytes = 8 * CAPACITY as u64;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Profiler {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("sead kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: CAPACITY,
            }),
            resolve: buffer(
                "timestamps (resolved)",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: buffer(
                "timestamps (readback)",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            period_ns: queue.get_timestamp_period() as f64,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The query pair for one more dispatch of `kernel` by this thread, if there is room.
    fn slot(&self, kernel: &'static str) -> Option<u32> {
        let mut s = self.state();
        let me = std::thread::current().id();
        let n = s.pending.len() as u32;
        if s.owner.is_some_and(|o| o != me) || 2 * n + 2 > CAPACITY {
            s.untimed += 1;
            return None;
        }
        s.owner = Some(me);
        s.pending.push(kernel);
        Some(2 * n)
    }

    pub(crate) fn take(&self) -> Profile {
        let mut s = self.state();
        let mut kernels: Vec<KernelTime> = s
            .totals
            .iter()
            .map(|(k, &(n, secs))| KernelTime {
                kernel: k.to_string(),
                dispatches: n,
                seconds: secs,
            })
            .collect();
        kernels.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        let p = Profile {
            kernels,
            untimed: s.untimed,
        };
        s.totals.clear();
        s.untimed = 0;
        p
    }
}

impl GpuContext {
    /// Dispatches `x` x `y` workgroups of the pass's pipeline, timed as `kernel` when
    /// profiling.
    pub(crate) fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass,
        kernel: &'static str,
        (x, y): (u32, u32),
    ) {
        self.timed(pass, kernel, |pass| pass.dispatch_workgroups(x, y, 1));
    }

    /// An indirect dispatch (the size read from `args` at byte `at`), timed as `kernel` when
    /// profiling.
    pub(crate) fn dispatch_indirect(
        &self,
        pass: &mut wgpu::ComputePass,
        kernel: &'static str,
        args: &wgpu::Buffer,
        at: u64,
    ) {
        self.timed(pass, kernel, |pass| {
            pass.dispatch_workgroups_indirect(args, at)
        });
    }

    fn timed(
        &self,
        pass: &mut wgpu::ComputePass,
        kernel: &'static str,
        run: impl FnOnce(&mut wgpu::ComputePass),
    ) {
        match self
            .profiler
            .as_ref()
            .and_then(|p| Some((p, p.slot(kernel)?)))
        {
            Some((p, q)) => {
                pass.write_timestamp(&p.queries, q);
                run(pass);
                pass.write_timestamp(&p.queries, q + 1);
            }
            None => run(pass),
        }
    }

    /// Submits `enc`. When profiling, also resolves this thread's pending timestamps, waits
    /// for the work and adds its times up (a failure to read them only loses them).
    pub(crate) fn submit(&self, mut enc: wgpu::CommandEncoder) {
        let Some(p) = &self.profiler else {
            self.queue.submit([enc.finish()]);
            return;
        };
        let me = std::thread::current().id();
        let mut s = p.state();
        if s.owner != Some(me) || s.pending.is_empty() {
            drop(s);
            self.queue.submit([enc.finish()]);
            return;
        }
        let n = 2 * s.pending.len() as u32;
        enc.resolve_query_set(&p.queries, 0..n, &p.resolve, 0);
        enc.copy_buffer_to_buffer(&p.resolve, 0, &p.readback, 0, 8 * n as u64);
        self.queue.submit([enc.finish()]);
        let pending = std::mem::take(&mut s.pending);
        s.owner = None;
        match self.read_mapped(&p.readback, 8 * n as u64) {
            Ok(raw) => {
                let ticks: &[u64] = bytemuck::cast_slice(&raw);
                for (i, kernel) in pending.iter().enumerate() {
                    let dt = ticks[2 * i + 1].saturating_sub(ticks[2 * i]);
                    let e = s.totals.entry(kernel).or_default();
                    e.0 += 1;
                    e.1 += dt as f64 * p.period_ns * 1e-9;
                }
            }
            Err(_) => s.untimed += pending.len() as u64,
        }
    }

    /// Whether this context times its kernels (`GpuOptions::profile`).
    pub fn profiling(&self) -> bool {
        self.profiler.is_some()
    }

    /// The kernel times added up since the last call (None when not profiling), and resets
    /// them: call it before the work to time, to drop warm-up runs.
    pub fn take_profile(&self) -> Option<Profile> {
        self.profiler.as_ref().map(Profiler::take)
    }
}
