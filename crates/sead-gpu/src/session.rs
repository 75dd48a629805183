//! Inference on the GPU with the behaviour of `sead_core::Session`: a batch of grids
//! stepped in place, per-step per-sample change statistics, and per-sample convergence.
//!
//! How the work is laid out:
//! - The batch is split into groups of samples whose buffers fit the device's storage
//!   binding limit (a million-cell sample is 128 MiB of hidden state at C_h = 16; a batch
//!   of them spans several groups). Each group holds x, two copies of h and the outputs.
//! - A window of `check_every` steps is recorded into one command buffer: per step, one
//!   `step_forward` dispatch per group (folded into 2D past the per-dimension cap) and one
//!   `sample_update`; then the per-step stats (or, converging, the per-sample state) are
//!   copied to a staging buffer and read once per window. No round trip per step, no
//!   allocation per step.
//! - `sample_update` runs the settle test on the GPU after every step, so a sample stops at
//!   exactly the step the CPU backend stops it even in the middle of a window; between
//!   windows the host drops settled samples from the dispatch, so they cost nothing.
//! - With `set_freeze` (1D and 2D), tiles whose neighbourhood did not change in the last step
//!   are not computed (settled-tile skipping, described in step.wgsl): the GPU form of
//!   `Session::set_freeze`, by tiles instead of cells. In 2D a tile of row y is computed when
//!   a cell changed in a tile of rows y - 1, y or y + 1 overlapping its columns widened by
//!   one cell (wrapping on a periodic boundary).

use crate::context::{Bind, GpuContext};
use crate::error::{GpuError, Result};
use crate::kernels::{self, bind_group, Res, STAGING, STORAGE, UNIFORM, WG_FLAT};
use crate::records::consts::step::{DISPATCH_WORDS, QUEUE_AT, QUEUE_COUNT_AT};
use crate::records::{
    bytes_of, word_offset, ConvInfo, GroupInfo, SampleState, Slot, StepStat, TileDispatch,
};
use sead_core::kernel::portable::readout;
use sead_core::{ConvergeOptions, Grid, Params, SampleResult, Spec, StepStats, Stepper};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Steps recorded per submission (and between stats readbacks) unless asked otherwise.
pub const DEFAULT_CHECK_EVERY: u32 = 32;

/// Options of a GPU session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Steps per submission; stats are read back (and settled samples dropped) this often.
    /// Fewer for a batch so large that a window's per-step statistics would overflow one
    /// buffer binding (`GpuSession::check_every` says how many).
    pub check_every: u32,
    /// Refuse sessions needing more bytes of GPU memory than this.
    pub max_bytes: usize,
    /// Cap on any one buffer binding (default: the device's binding limit). Lower it to
    /// exercise grouping and the window cap on a small batch.
    pub max_group_bytes: Option<u64>,
    /// Cap on workgroups per dispatch dimension (default: the device's). Lower it to
    /// exercise the 2D folding on a small grid.
    pub max_workgroups_per_dim: Option<u32>,
    /// Pack short 1D rows: lay the samples' rows end to end and tile that, when it takes
    /// at least 10% fewer workgroups than tiling each row (`step_packed` in step.wgsl).
    /// The states are the same bit for bit either way; off is for tests and benchmarks.
    pub pack_short_rows: bool,
    /// Cells per tile of the step kernel (one of `kernels::TILE_CHOICES`); None: the
    /// largest under about 12 KiB of workgroup memory, the fastest measured on an H100.
    /// For tuning on another GPU; the states do not depend on it.
    pub tile_cells: Option<u32>,
    /// Threads per workgroup of the step kernel (one of `kernels::WORKGROUP_CHOICES`);
    /// None: 128. For tuning, as `tile_cells`.
    pub workgroup_threads: Option<u32>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            check_every: DEFAULT_CHECK_EVERY,
            max_bytes: sead_core::infer::DEFAULT_MAX_BYTES,
            max_group_bytes: None,
            max_workgroups_per_dim: None,
            pack_short_rows: true,
            tile_cells: None,
            workgroup_threads: None,
        }
    }
}

/// Bytes of one sample's state, and of one sample's stats of one step.
const SAMPLE_BYTES: u64 = bytes_of::<SampleState>();
const STAT_BYTES: u64 = bytes_of::<StepStat>();

use Bind::{Dynamic as D, Read as R, Uniform as U, Unused as N, Write as W};
// Bindings of step.wgsl: 0 params, 1 xs, 2 hs, 3 outs, 4 samples, 5 stats, 6 active_list,
// 7 info, 8 slot, 9 conv, 10 wpack, 11 tile_still, 12 tile_queue, 13 tile_dispatch (the
// indirect size of `step_forward`, written by `queue_tiles`).
const STEP_KINDS: [Bind; 14] = [R, R, W, W, W, W, R, U, D, U, R, W, W, N];
/// `queue_tiles` (settled-tile skipping).
const QUEUE_KINDS: [Bind; 14] = [N, N, N, N, W, N, R, U, D, N, N, W, W, W];
const UPDATE_KINDS: [Bind; 14] = [N, N, N, N, W, W, N, N, D, U, N, N, N, N];
const READOUT_KINDS: [Bind; 14] = [R, N, W, W, W, N, N, U, N, N, N, N, N, N];

struct Group {
    /// Global index of the first sample, and the sample count.
    start: usize,
    len: usize,
    hs: wgpu::Buffer,
    outs: wgpu::Buffer,
    active: wgpu::Buffer,
    info: wgpu::Buffer,
    /// `tile_still` in step.wgsl: which tiles did not change in the step that made each
    /// copy of h (settled-tile skipping).
    still: wgpu::Buffer,
    /// `tile_queue` and `tile_dispatch` in step.wgsl: the tiles to compute at each step, and
    /// the indirect dispatch size of `step_forward` (settled-tile skipping).
    queue: wgpu::Buffer,
    dispatch: wgpu::Buffer,
    bg_step: wgpu::BindGroup,
    bg_queue: wgpu::BindGroup,
    bg_readout: wgpu::BindGroup,
    /// Samples this window dispatches.
    n_active: u32,
    /// What `info` holds (`n_active` is rewritten when it changes).
    info_host: GroupInfo,
    // Kept alive for the bind groups.
    _x: wgpu::Buffer,
}

/// A batch of grids on the GPU, stepped in place. Mirrors `sead_core::Session`.
pub struct GpuSession {
    ctx: Arc<GpuContext>,
    spec: Spec,
    grid: Grid,
    check_every: u32,
    /// The memory limit the session was made under; also bounds what `logits` returns.
    max_bytes: usize,
    fold_max: u32,
    tiles_per_sample: u32,
    /// With short rows packed (`step_packed`): its cells per tile.
    packed_tile: Option<u32>,
    /// `step_forward`'s cells per tile, and the step kernels' threads per workgroup.
    tile: u32,
    threads: u32,
    steps: Vec<u64>,
    groups: Vec<Group>,
    /// The buffers every group binds: parameters, per-sample states, statistics, step slots.
    shared: Shared,
    /// The step pipeline in use: `p_plain`, or with freeze on `step_forward` skipping.
    p_step: Arc<wgpu::ComputePipeline>,
    /// Stepping every cell: `step_forward`, or `step_packed` when short rows are packed.
    p_plain: Arc<wgpu::ComputePipeline>,
    /// `step_forward`'s tile size and the other override constants of the pipelines.
    consts: Vec<(&'static str, f64)>,
    /// Settled-tile skipping: a cell keeps its state when no hidden channel would move by
    /// more than this. None: every tile is computed every step.
    freeze: Option<f32>,
    /// The parameters of the last skipping step: other parameters make every tile unknown.
    freeze_params: Vec<f32>,
    /// With freeze on: the `queue_tiles` pipeline.
    p_queue: Option<Arc<wgpu::ComputePipeline>>,
    /// Cell updates computed per sample (with freeze; else steps x cells).
    computed: Vec<u64>,
    p_update: Arc<wgpu::ComputePipeline>,
    p_readout: Arc<wgpu::ComputePipeline>,
    /// Host copy of the per-sample state written at the start of each call.
    host_samples: Vec<SampleState>,
}

impl std::fmt::Debug for GpuSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSession")
            .field("spec", &self.spec)
            .field("grid", &self.grid)
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl GpuSession {
    /// Uploads x (`[batch][height][width][C_in]`), sets h = 0 and every output to 0.
    pub fn new(
        ctx: Arc<GpuContext>,
        spec: Spec,
        grid: Grid,
        x: &[f32],
        opts: &SessionOptions,
    ) -> Result<Self> {
        validate(&spec, &grid, x, opts)?;
        let plan = Plan::new(&ctx, &spec, &grid, opts)?;
        let pipes = build_pipelines(&ctx, &spec, &plan)?;
        let shared = create_shared_buffers(&ctx, &spec, &grid, &plan)?;
        let groups = create_groups(&ctx, &spec, &grid, x, &plan, &shared)?;
        ctx.check("creating a GPU session")?;
        let batch = grid.batch;
        Ok(GpuSession {
            ctx,
            spec,
            grid,
            check_every: plan.check_every,
            max_bytes: opts.max_bytes,
            fold_max: plan.fold_max,
            tiles_per_sample: plan.tiles_per_sample,
            packed_tile: plan.packed_tile,
            tile: plan.tile,
            threads: plan.threads,
            steps: vec![0; batch],
            groups,
            shared,
            p_step: pipes.plain.clone(),
            p_plain: pipes.plain,
            consts: plan.consts,
            freeze: None,
            freeze_params: Vec::new(),
            p_queue: None,
            computed: vec![0; batch],
            p_update: pipes.update,
            p_readout: pipes.readout,
            host_samples: vec![SampleState::default(); batch],
        })
    }

    /// Sample groups the batch was split into (1 unless the batch is larger than one buffer).
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Cells per tile when the samples' short rows are packed end to end (`step_packed`);
    /// None when each row is tiled alone.
    pub fn packed_tile(&self) -> Option<u32> {
        self.packed_tile
    }

    /// The step kernel's layout: cells per tile (of `step_packed` when rows are packed and
    /// freeze is off) and threads per workgroup.
    pub fn layout(&self) -> (u32, u32) {
        let tile = match (self.freeze, self.packed_tile) {
            (None, Some(packed)) => packed,
            _ => self.tile,
        };
        (tile, self.threads)
    }

    /// Steps per submission: `SessionOptions::check_every`, or fewer for a batch whose
    /// window of statistics would overflow one buffer binding.
    pub fn check_every(&self) -> u32 {
        self.check_every
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// With freeze on, marks every tile unknown (to be computed) when the parameters are
    /// not those of the last skipping step: what a tile computed with other parameters says
    /// nothing about these.
    fn forget_still_tiles(&mut self, params: &[f32]) {
        if self.freeze.is_none() || self.freeze_params == params {
            return;
        }
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        for g in &self.groups {
            enc.clear_buffer(&g.still, 0, None);
        }
        self.ctx.submit(enc);
        self.freeze_params = params.to_vec();
    }

    /// Adds a call's cell updates: counted by the kernel with freeze on, else steps x cells.
    fn count_computed(&mut self, b: usize, steps: u64, counted: u64) {
        let cells = self.grid.cells_per_sample() as u64;
        self.computed[b] += if self.freeze.is_some() {
            counted
        } else {
            steps * cells
        };
    }

    fn upload_params(&self, params: &[f32]) -> Result<()> {
        self.spec.check_params(params)?;
        self.ctx
            .queue
            .write_buffer(&self.shared.params, 0, bytemuck::cast_slice(params));
        let packed = kernels::pack_step_weights(&self.spec, params);
        self.ctx
            .queue
            .write_buffer(&self.shared.wpack, 0, bytemuck::cast_slice(&packed));
        Ok(())
    }

    /// Writes each sample's state for a call: live flag, clock parity, budget.
    fn upload_samples(&mut self, live: impl Fn(usize) -> bool, budget: impl Fn(usize) -> u32) {
        for (b, s) in self.host_samples.iter_mut().enumerate() {
            *s = SampleState {
                live: live(b) as u32,
                clock: (self.steps[b] & 1) as u32,
                budget: budget(b),
                ..SampleState::default()
            };
        }
        self.ctx.queue.write_buffer(
            &self.shared.samples,
            0,
            bytemuck::cast_slice(&self.host_samples),
        );
    }

    /// Points each group's dispatch at its live samples; returns how many there are.
    fn compact(&mut self, live: &[bool]) -> usize {
        let mut total = 0;
        for g in &mut self.groups {
            let list: Vec<u32> = (0..g.len)
                .filter(|&i| live[g.start + i])
                .map(|i| i as u32)
                .collect();
            g.n_active = list.len() as u32;
            total += list.len();
            if !list.is_empty() {
                self.ctx
                    .queue
                    .write_buffer(&g.active, 0, kernels::words(&list));
            }
            if g.info_host.n_active != g.n_active {
                g.info_host.n_active = g.n_active;
                let at = std::mem::offset_of!(GroupInfo, n_active) as u64;
                self.ctx
                    .queue
                    .write_buffer(&g.info, at, bytemuck::bytes_of(&g.n_active));
            }
        }
        total
    }

    fn write_conv(&self, mode: u32, patience: u32, tol: f32) {
        let conv = ConvInfo {
            batch: self.grid.batch as u32,
            mode,
            patience,
            tol,
        };
        self.ctx
            .queue
            .write_buffer(&self.shared.conv, 0, bytemuck::bytes_of(&conv));
    }

    /// One window of `step` or `converge`: records `m` steps, then reads back the first
    /// `bytes` of `out` (the steps' stats, or the sample states) through `staging`. Nothing
    /// is recorded when `cancel` is set.
    fn run_window(
        &self,
        m: usize,
        out: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        bytes: u64,
        cancel: &AtomicBool,
    ) -> Result<Vec<u8>> {
        if cancel.load(Ordering::Relaxed) {
            return Err(GpuError::Cancelled);
        }
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        self.record_steps(&mut enc, m);
        enc.copy_buffer_to_buffer(out, 0, staging, 0, bytes);
        self.ctx.submit(enc);
        self.ctx.read_mapped(staging, bytes)
    }

    /// Records `m` steps into `enc` (stats rows 0..m, cleared first).
    fn record_steps(&self, enc: &mut wgpu::CommandEncoder, m: usize) {
        let batch = self.grid.batch;
        enc.clear_buffer(&self.shared.stats, 0, Some(STAT_BYTES * (m * batch) as u64));
        if self.p_queue.is_some() {
            // The tile counts and dispatch widths of the window's first two steps (queue_tiles
            // clears each next).
            for g in &self.groups {
                enc.clear_buffer(&g.queue, word_offset(QUEUE_COUNT_AT), Some(word_offset(2)));
                for parity in 0..2 {
                    let x = word_offset(DISPATCH_WORDS * parity);
                    enc.clear_buffer(&g.dispatch, x, Some(word_offset(1)));
                }
            }
        }
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("sead steps"),
            timestamp_writes: None,
        });
        let upd = fold(batch.div_ceil(WG_FLAT as usize) as u32, self.fold_max);
        let live = || self.groups.iter().filter(|g| g.n_active > 0);
        for i in 0..m {
            let off = [i as u32 * self.shared.align];
            match &self.p_queue {
                // Settled-tile skipping: list the tiles to compute, then compute those only.
                Some(p_queue) => {
                    for g in live() {
                        pass.set_bind_group(0, &g.bg_queue, &off);
                        pass.set_pipeline(p_queue);
                        let threads = g.n_active * self.tiles_per_sample;
                        let n = fold(threads.div_ceil(WG_FLAT), self.fold_max);
                        self.ctx.dispatch(&mut pass, "queue_tiles", n);
                        pass.set_pipeline(&self.p_step);
                        pass.set_bind_group(0, &g.bg_step, &off);
                        // This step parity's size.
                        let at = word_offset(DISPATCH_WORDS * (i as u32 & 1));
                        self.ctx
                            .dispatch_indirect(&mut pass, "step_forward", &g.dispatch, at);
                    }
                }
                None => {
                    pass.set_pipeline(&self.p_step);
                    for g in live() {
                        pass.set_bind_group(0, &g.bg_step, &off);
                        let tiles = match self.packed_tile {
                            Some(tc) => {
                                let cells = g.n_active * self.grid.cells_per_sample() as u32;
                                cells.div_ceil(tc)
                            }
                            None => g.n_active * self.tiles_per_sample,
                        };
                        let kernel = match self.packed_tile {
                            Some(_) => "step_packed",
                            None => "step_forward",
                        };
                        self.ctx
                            .dispatch(&mut pass, kernel, fold(tiles, self.fold_max));
                    }
                }
            }
            pass.set_pipeline(&self.p_update);
            pass.set_bind_group(0, &self.shared.bg_update, &off);
            self.ctx.dispatch(&mut pass, "sample_update", upd);
        }
    }

    fn record_refresh_and_submit(&self) {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.p_readout);
            for g in &self.groups {
                pass.set_bind_group(0, &g.bg_readout, &[]);
                let n = (g.len * self.grid.cells_per_sample()).div_ceil(WG_FLAT as usize) as u32;
                self.ctx
                    .dispatch(&mut pass, "readout_outputs", fold(n, self.fold_max));
            }
        }
        self.ctx.submit(enc);
    }
}

/// The session's own API is the core's `Stepper` trait (import `sead_core::Stepper`), so code
/// written once over the trait (the Node binding, tests, benches) runs here as on the CPU. The
/// settle rule `converge` applies is sead-core's `ConvergeOptions::settle`, which
/// `sample_update` (wgsl/step.wgsl) mirrors on the GPU (tests/settle_rule.rs holds them together).
impl Stepper for GpuSession {
    type Error = GpuError;

    /// GPU memory a session of this shape holds, in bytes (besides small per-sample buffers).
    fn bytes_needed(spec: &Spec, grid: &Grid) -> usize {
        let per_cell = 4 * (spec.c_in + 2 * spec.c_h + 1);
        grid.cells().saturating_mul(per_cell)
    }

    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Switches settled-tile skipping on (`Some(freeze)`, 1D and 2D grids) or off, as
    /// `sead_core::Session::set_freeze` does by cells: a cell whose every hidden channel
    /// would move by at most `freeze` keeps its state, and a tile whose cells and neighbour
    /// tiles (in 2D, those of the rows above and below too) did not change in the last step
    /// is not computed. `Some(0.0)` keeps only cells that would not change at all, so the
    /// states stay those of plain stepping, bit for bit. Every tile is computed at the next
    /// step.
    fn set_freeze(&mut self, freeze: Option<f32>) -> Result<()> {
        if let Some(f) = freeze {
            if !(f.is_finite() && f >= 0.0) {
                return Err(GpuError::invalid(format!(
                    "freeze must be finite and >= 0, got {f}"
                )));
            }
        }
        match freeze {
            Some(f) => {
                let mut consts = self.consts.clone();
                consts.push(("FREEZE", f as f64));
                let pipeline = |entry: &str, kinds: &[Bind]| {
                    self.ctx
                        .pipeline(kernels::STEP_MODULE, entry, kinds, &consts)
                };
                self.p_step = pipeline("step_forward", &STEP_KINDS)?;
                self.p_queue = Some(pipeline("queue_tiles", &QUEUE_KINDS)?);
            }
            None => {
                self.p_step = self.p_plain.clone();
                self.p_queue = None;
            }
        }
        self.freeze = freeze;
        self.freeze_params.clear();
        Ok(())
    }

    /// Cell updates each sample has computed: steps x cells, or with `freeze` the cells of
    /// the tiles computed.
    fn cells_computed(&self) -> Vec<u64> {
        self.computed.clone()
    }

    /// Recomputes every output from the current hidden state (as `Session::refresh_outputs`).
    fn refresh_outputs(&mut self, params: &[f32]) -> Result<()> {
        self.upload_params(params)?;
        self.upload_samples(|_| false, |_| 0);
        self.record_refresh_and_submit();
        self.ctx.wait_idle()
    }

    /// Runs `n` steps on the samples marked active (all when `active` is None) and writes
    /// each step's per-sample stats to `stats[step * batch + sample]` (inactive: zeros).
    fn step(
        &mut self,
        params: &[f32],
        n: usize,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
        cancel: &AtomicBool,
    ) -> Result<()> {
        let batch = self.grid.batch;
        sead_core::infer::check_step_args(batch, n, active, stats)?;
        self.upload_params(params)?;
        self.forget_still_tiles(params);
        let live: Vec<bool> = (0..batch).map(|b| active.is_none_or(|a| a[b])).collect();
        self.upload_samples(|b| live[b], |_| u32::MAX);
        self.write_conv(0, 0, 0.0);
        let any = self.compact(&live) > 0;
        stats.fill(StepStats::default());
        if !any {
            return Ok(());
        }
        let k = self.check_every as usize;
        let mut done = 0;
        let mut counted = vec![0u64; batch];
        let result = loop {
            if done >= n {
                break Ok(());
            }
            let m = k.min(n - done);
            let bytes = STAT_BYTES * (m * batch) as u64;
            let (out, staging) = (&self.shared.stats, &self.shared.stats_staging);
            let raw = match self.run_window(m, out, staging, bytes, cancel) {
                Ok(raw) => raw,
                Err(e) => break Err(e),
            };
            let window: Vec<StepStat> = bytemuck::pod_collect_to_vec(&raw);
            for (i, row) in window.chunks_exact(batch).enumerate() {
                for (b, w) in row.iter().enumerate() {
                    stats[(done + i) * batch + b] = StepStats {
                        max_delta: w.max_delta,
                        changed: w.changed as u64,
                    };
                    counted[b] += w.computed as u64;
                }
            }
            done += m;
        };
        for b in 0..batch {
            if live[b] {
                self.steps[b] += done as u64;
                self.count_computed(b, done as u64, counted[b]);
            }
        }
        result
    }

    /// Steps every unsettled sample until it settles (outputs unchanged for `patience`
    /// steps and the last max |h' - h| below `tol`) or reaches `max_steps`, exactly as
    /// `Session::converge` decides it. A settled sample costs nothing more (after the
    /// window it settled in). At most 2^32 - 1 steps per call and sample.
    fn converge(
        &mut self,
        params: &[f32],
        opts: ConvergeOptions,
        cancel: &AtomicBool,
    ) -> Result<Vec<SampleResult>> {
        opts.validate()?;
        self.upload_params(params)?;
        self.forget_still_tiles(params);
        let batch = self.grid.batch;
        let mut live: Vec<bool> = (0..batch).map(|b| self.steps[b] < opts.max_steps).collect();
        let steps0 = self.steps.clone();
        self.upload_samples(
            |b| live[b],
            |b| {
                opts.max_steps
                    .saturating_sub(steps0[b])
                    .min(u32::MAX as u64) as u32
            },
        );
        self.write_conv(1, opts.patience, opts.tol);
        self.record_refresh_and_submit();
        let k = self.check_every as usize;
        let bytes = SAMPLE_BYTES * batch as u64;
        let mut state = self.host_samples.clone();
        let result = loop {
            if self.compact(&live) == 0 {
                break Ok(());
            }
            let (out, staging) = (&self.shared.samples, &self.shared.samples_staging);
            let raw = match self.run_window(k, out, staging, bytes, cancel) {
                Ok(raw) => raw,
                Err(e) => break Err(e),
            };
            state = bytemuck::pod_collect_to_vec(&raw);
            for (l, s) in live.iter_mut().zip(&state) {
                *l = s.live != 0;
            }
        };
        let mut out = Vec::with_capacity(batch);
        for b in 0..batch {
            let s = state[b];
            self.steps[b] = steps0[b] + s.taken as u64;
            self.count_computed(b, s.taken as u64, s.computed());
            out.push(SampleResult {
                steps: self.steps[b],
                converged: s.converged != 0,
                last: StepStats {
                    max_delta: s.last_delta,
                    changed: s.last_changed as u64,
                },
            });
        }
        result.map(|_| out)
    }

    /// The argmax output of every cell, `[batch][height][width]`.
    fn outputs(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.grid.cells());
        for g in &self.groups {
            let n = (g.len * self.grid.cells_per_sample()) as u64;
            let raw = self.ctx.read_buffer(&g.outs, 0, 4 * n)?;
            out.extend(
                bytemuck::cast_slice::<u8, u32>(&raw)
                    .iter()
                    .map(|&v| v as u8),
            );
        }
        Ok(out)
    }

    /// Steps taken by each sample.
    fn steps(&self) -> Vec<u64> {
        self.steps.clone()
    }

    /// The hidden state, `[batch][height][width][C_h]`.
    fn hidden(&self) -> Result<Vec<f32>> {
        let per = (self.grid.cells_per_sample() * self.spec.c_h) as u64 * 4;
        let mut out = Vec::with_capacity(self.grid.cells() * self.spec.c_h);
        for g in &self.groups {
            let bytes = per * g.len as u64;
            let staging = self.ctx.buffer("hidden (readback)", bytes, STAGING)?;
            let half = per * g.len as u64;
            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
            for i in 0..g.len {
                let par = self.steps[g.start + i] & 1;
                enc.copy_buffer_to_buffer(
                    &g.hs,
                    par * half + i as u64 * per,
                    &staging,
                    i as u64 * per,
                    per,
                );
            }
            self.ctx.submit(enc);
            let raw = self.ctx.read_mapped(&staging, bytes)?;
            out.extend_from_slice(bytemuck::cast_slice(&raw));
        }
        Ok(out)
    }

    /// The logits of every cell, `[batch][height][width][C_out]` (the readout of `hidden()`,
    /// computed on the CPU with sead-core's readout).
    fn logits(&self, params: &[f32]) -> Result<Vec<f32>> {
        self.spec.check_params(params)?;
        sead_core::infer::check_logits_bytes(&self.spec, &self.grid, self.max_bytes)?;
        let p = Params::split(&self.spec, params);
        let h = self.hidden()?;
        let (ch, co) = (self.spec.c_h, self.spec.c_out);
        let mut out = vec![0.0f32; self.grid.cells() * co];
        for (hv, l) in h.chunks_exact(ch).zip(out.chunks_exact_mut(co)) {
            readout(&self.spec, &p, hv, l);
        }
        Ok(out)
    }
}

// ---- GpuSession::new's phases.

/// Checks the spec, the grid, the options and x before anything is allocated.
fn validate(spec: &Spec, grid: &Grid, x: &[f32], opts: &SessionOptions) -> Result<()> {
    spec.validate()?;
    grid.validate(spec)?;
    if opts.check_every == 0 || opts.check_every > 4096 {
        return Err(GpuError::invalid(format!(
            "checkEvery must be from 1 to 4096, got {}",
            opts.check_every
        )));
    }
    let need = GpuSession::bytes_needed(spec, grid);
    sead_core::infer::check_session_bytes(spec, grid, need, opts.max_bytes, " of GPU memory")?;
    spec.check_x(grid, x)?;
    // Everything the kernels index is a u32 float index below 2^31.
    if grid.batch > (1 << 24) {
        return Err(GpuError::TooLarge(format!(
            "the GPU backend takes at most {} samples per session, got {}",
            1 << 24,
            grid.batch
        )));
    }
    Ok(())
}

/// How a session lays out its work: the sample groups, the steps per window, the dispatch
/// folding, and the step kernel's tiles.
struct Plan {
    /// Samples per group (the last group may hold fewer).
    group_len: usize,
    check_every: u32,
    fold_max: u32,
    /// `step_forward`'s cells per tile, and the step kernels' threads per workgroup.
    tile: u32,
    threads: u32,
    tiles_per_row: u32,
    tiles_per_sample: u32,
    /// With short rows packed (`step_packed`): its cells per tile.
    packed_tile: Option<u32>,
    /// The override constants of the step pipelines (with `tile`).
    consts: Vec<(&'static str, f64)>,
}

impl Plan {
    /// Splits the batch into groups that fit the binding limit, caps the window so its
    /// statistics fit one binding, and picks the tile layout.
    fn new(ctx: &GpuContext, spec: &Spec, grid: &Grid, opts: &SessionOptions) -> Result<Plan> {
        let batch = grid.batch;
        let cells = grid.cells_per_sample();
        let limits = *ctx.limits();
        let max_group = opts
            .max_group_bytes
            .unwrap_or(limits.max_binding)
            .min(limits.max_binding);
        let per_sample = (2 * cells * spec.c_h * 4).max(cells * spec.c_in * 4) as u64;
        if per_sample > max_group {
            return Err(GpuError::TooLarge(format!(
                "one sample of {} x {} cells needs {} of GPU state in one buffer, over this \
                 GPU's binding limit of {}: use fewer cells or the CPU backend",
                grid.height,
                grid.width,
                sead_core::format_bytes(per_sample as f64),
                sead_core::format_bytes(max_group as f64)
            )));
        }
        let group_len = ((max_group / per_sample) as usize).clamp(1, batch);
        // The per-sample state is one binding for the whole batch, and so is a window's
        // per-step statistics: a large batch takes fewer steps per window.
        let states = SAMPLE_BYTES * batch as u64;
        if states > max_group {
            return Err(GpuError::TooLarge(format!(
                "a batch of {batch} samples needs {} of per-sample state in one buffer, over \
                 this GPU's binding limit of {}: use at most {} samples per session",
                sead_core::format_bytes(states as f64),
                sead_core::format_bytes(max_group as f64),
                max_group / SAMPLE_BYTES
            )));
        }
        let per_step = STAT_BYTES * batch as u64;
        let check_every = opts.check_every.min((max_group / per_step) as u32);
        let fold_max = opts
            .max_workgroups_per_dim
            .unwrap_or(limits.max_workgroups_per_dim)
            .clamp(1, limits.max_workgroups_per_dim);

        let layout = |cells: usize, packed: bool| {
            kernels::step_layout(
                ctx,
                spec,
                cells,
                packed,
                opts.tile_cells,
                opts.workgroup_threads,
            )
        };
        let (tile, threads) = layout(grid.width, false)?;
        let tiles_per_row = grid.width.div_ceil(tile as usize) as u32;
        let tiles_per_sample = tiles_per_row * grid.height as u32;
        // Pack short rows when that takes at least 10% fewer workgroups.
        let packed_tile = if spec.dims == 1 && opts.pack_short_rows {
            let (ptc, _) = layout(grid.cells(), true)?;
            let packed = grid.cells().div_ceil(ptc as usize);
            let per_row = batch * tiles_per_sample as usize;
            (packed * 10 <= per_row * 9).then_some(ptc)
        } else {
            None
        };
        Ok(Plan {
            group_len,
            check_every,
            fold_max,
            tile,
            threads,
            tiles_per_row,
            tiles_per_sample,
            packed_tile,
            consts: kernels::step_constants(spec, tile, threads),
        })
    }
}

/// The pipelines a session starts with (`queue_tiles` and the skipping step come with
/// `set_freeze`).
struct Pipelines {
    /// `step_forward`, or `step_packed` when short rows are packed.
    plain: Arc<wgpu::ComputePipeline>,
    update: Arc<wgpu::ComputePipeline>,
    readout: Arc<wgpu::ComputePipeline>,
}

fn build_pipelines(ctx: &GpuContext, spec: &Spec, plan: &Plan) -> Result<Pipelines> {
    let plain = match plan.packed_tile {
        Some(ptc) => {
            let mut c = kernels::step_constants(spec, ptc, plan.threads);
            c.push(("PACKED", 1.0));
            ctx.pipeline(kernels::STEP_MODULE, "step_packed", &STEP_KINDS, &c)?
        }
        None => ctx.pipeline(
            kernels::STEP_MODULE,
            "step_forward",
            &STEP_KINDS,
            &plan.consts,
        )?,
    };
    let update = ctx.pipeline(
        kernels::STEP_MODULE,
        "sample_update",
        &UPDATE_KINDS,
        &plan.consts,
    )?;
    let readout = ctx.pipeline(
        kernels::STEP_MODULE,
        "readout_outputs",
        &READOUT_KINDS,
        &plan.consts,
    )?;
    Ok(Pipelines {
        plain,
        update,
        readout,
    })
}

/// The buffers every group binds (parameters, per-sample state, stats, the uniforms
/// `Slot` and `ConvInfo`), and `sample_update`'s bind group, which binds only these.
struct Shared {
    params: wgpu::Buffer,
    wpack: wgpu::Buffer,
    samples: wgpu::Buffer,
    samples_staging: wgpu::Buffer,
    stats: wgpu::Buffer,
    stats_staging: wgpu::Buffer,
    /// One `Slot` per step of a window, `align` bytes apart (a dynamic offset).
    slots: wgpu::Buffer,
    align: u32,
    conv: wgpu::Buffer,
    bg_update: wgpu::BindGroup,
}

fn create_shared_buffers(
    ctx: &GpuContext,
    spec: &Spec,
    grid: &Grid,
    plan: &Plan,
) -> Result<Shared> {
    let batch = grid.batch as u64;
    let align = kernels::stride(bytes_of::<Slot>(), ctx.limits().uniform_align);
    let params = ctx.buffer("params", 4 * spec.param_count() as u64, STORAGE)?;
    let wpack = ctx.buffer(
        "packed weights",
        4 * kernels::step_weights_len(spec) as u64,
        STORAGE,
    )?;
    let samples = ctx.buffer("sample states", SAMPLE_BYTES * batch, STORAGE)?;
    let samples_staging = ctx.buffer("sample states (readback)", SAMPLE_BYTES * batch, STAGING)?;
    let stats_bytes = STAT_BYTES * plan.check_every as u64 * batch;
    let stats = ctx.buffer("step stats", stats_bytes, STORAGE)?;
    let stats_staging = ctx.buffer("step stats (readback)", stats_bytes, STAGING)?;
    let slot_recs: Vec<Slot> = (0..plan.check_every)
        .map(|slot| Slot {
            slot,
            ..Slot::default()
        })
        .collect();
    let slots = ctx.buffer_init("step slots", &kernels::records(&slot_recs, align), UNIFORM)?;
    let conv = ctx.buffer("converge info", bytes_of::<ConvInfo>(), UNIFORM)?;
    let bg_update = bind_group(
        ctx,
        "sample_update",
        &UPDATE_KINDS,
        &[
            None,
            None,
            None,
            None,
            Some(Res::Whole(&samples)),
            Some(Res::Whole(&stats)),
            None,
            None,
            Some(Res::Window(&slots, bytes_of::<Slot>())),
            Some(Res::Whole(&conv)),
        ],
    )?;
    Ok(Shared {
        params,
        wpack,
        samples,
        samples_staging,
        stats,
        stats_staging,
        slots,
        align,
        conv,
        bg_update,
    })
}

/// Splits the batch into groups of `plan.group_len` samples and creates each one's buffers
/// (x uploaded, h and the outputs zero) and bind groups.
fn create_groups(
    ctx: &GpuContext,
    spec: &Spec,
    grid: &Grid,
    x: &[f32],
    plan: &Plan,
    shared: &Shared,
) -> Result<Vec<Group>> {
    let (batch, cells) = (grid.batch, grid.cells_per_sample());
    let mut groups = Vec::new();
    let mut start = 0;
    while start < batch {
        let len = plan.group_len.min(batch - start);
        let xg = &x[start * cells * spec.c_in..(start + len) * cells * spec.c_in];
        groups.push(create_group(ctx, spec, grid, xg, start, len, plan, shared)?);
        start += len;
    }
    Ok(groups)
}

/// The buffers and bind groups of the `len` samples from `start`, whose inputs are `xg`.
#[allow(clippy::too_many_arguments)]
fn create_group(
    ctx: &GpuContext,
    spec: &Spec,
    grid: &Grid,
    xg: &[f32],
    start: usize,
    len: usize,
    plan: &Plan,
    shared: &Shared,
) -> Result<Group> {
    let cells = grid.cells_per_sample();
    let gcells = len * cells;
    let tiles = len as u64 * plan.tiles_per_sample as u64;
    let xb = ctx.buffer_init("inputs x", bytemuck::cast_slice(xg), STORAGE)?;
    let hs = ctx.buffer("hidden states", (2 * gcells * spec.c_h * 4) as u64, STORAGE)?;
    let outs = ctx.buffer("outputs", (gcells * 4) as u64, STORAGE)?;
    let active = ctx.buffer("active samples", (len * 4) as u64, STORAGE)?;
    let still = ctx.buffer("still tiles", 2 * 4 * tiles, STORAGE)?;
    let queue = ctx.buffer("tile queue", word_offset(QUEUE_AT) + 4 * tiles, STORAGE)?;
    // Per step parity: x (counted by queue_tiles), the rows y that keep x within the
    // per-dimension cap for every tile of the group, z.
    let rows = (len as u32 * plan.tiles_per_sample)
        .div_ceil(plan.fold_max)
        .max(1);
    let size = TileDispatch {
        x: 0,
        y: rows,
        z: 1,
        _pad: 0,
    };
    let dispatch = ctx.buffer_init(
        "tile dispatch size",
        bytemuck::cast_slice(&[size, size]),
        STORAGE | wgpu::BufferUsages::INDIRECT,
    )?;
    let info_host = GroupInfo {
        width: grid.width as u32,
        height: grid.height as u32,
        cells: cells as u32,
        tiles_per_row: plan.tiles_per_row,
        tiles_per_sample: plan.tiles_per_sample,
        n_active: 0,
        group_start: start as u32,
        group_len: len as u32,
        half: (gcells * spec.c_h) as u32,
        ..GroupInfo::default()
    };
    let info = ctx.buffer_init("group info", bytemuck::bytes_of(&info_host), UNIFORM)?;
    let table = [
        Some(Res::Whole(&shared.params)),
        Some(Res::Whole(&xb)),
        Some(Res::Whole(&hs)),
        Some(Res::Whole(&outs)),
        Some(Res::Whole(&shared.samples)),
        Some(Res::Whole(&shared.stats)),
        Some(Res::Whole(&active)),
        Some(Res::Whole(&info)),
        Some(Res::Window(&shared.slots, bytes_of::<Slot>())),
        Some(Res::Whole(&shared.conv)),
        Some(Res::Whole(&shared.wpack)),
        Some(Res::Whole(&still)),
        Some(Res::Whole(&queue)),
        Some(Res::Whole(&dispatch)),
    ];
    let bg_step = bind_group(ctx, "step_forward", &STEP_KINDS, &table)?;
    let bg_readout = bind_group(ctx, "readout_outputs", &READOUT_KINDS, &table)?;
    let bg_queue = bind_group(ctx, "queue_tiles", &QUEUE_KINDS, &table)?;
    Ok(Group {
        start,
        len,
        hs,
        outs,
        active,
        info,
        still,
        queue,
        dispatch,
        bg_step,
        bg_queue,
        bg_readout,
        n_active: 0,
        info_host,
        _x: xb,
    })
}

fn fold(n: u32, max: u32) -> (u32, u32) {
    crate::context::fold(n, max)
}
