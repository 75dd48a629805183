//! `train_step` on the GPU: the loss and the gradient of every parameter for one batch,
//! matching `sead_core::train_step` (see train.wgsl for the kernel sequence).
//!
//! The noise is the CPU's: `sead_core::noise::NoiseStream` per sample, generated on the host
//! and uploaded, so with the same seed both backends add the same values. As on the CPU,
//! step t reads the noisy input I_t = S_{t-1} + noise, kept apart from the clean states
//! (which the loss and the tanh derivative use), so the gradient is exactly that of the
//! reported loss. The gradient is
//! summed in a fixed order (fixed row chunks, then the chunks in order; no float atomics),
//! so it is the same bit for bit on every run on a given device. A batch whose activations
//! exceed the device's buffer limits (or the memory cap) is processed in chunks of samples,
//! the gradient accumulated across them in order.

use crate::context::{Bind, GpuContext};
use crate::error::{GpuError, Result};
use crate::kernels::{self, bind_group, Res, STAGING, STORAGE, UNIFORM, WG_FLAT};
use crate::records::consts::train::GB;
use crate::records::{bytes_of, Rec, TrainInfo};
use rayon::prelude::*;
use sead_core::noise::NoiseStream;
use sead_core::{Batch, Grid, Quantize, Simd, Spec, TrainOutput};
use std::sync::atomic::{AtomicBool, Ordering};

/// Default cap on the GPU memory one training call may hold.
pub const DEFAULT_MAX_BYTES: usize = sead_core::train::DEFAULT_MAX_BYTES;

use Bind::{Dynamic as D, Read as R, Uniform as U, Unused as N, Write as W};
// Bindings: 0 params, 1 xs, 2 hs, 3 acts, 4 dz, 5 dpre, 6 dlog, 7 gh, 8 targets, 9 noise,
// 10 ce, 11 correct, 12 partial, 13 grad, 14 ti, 15 rec.
const K_NOISE: [Bind; 16] = [N, N, W, N, N, N, N, N, N, R, N, N, N, N, U, D];
const K_FORWARD: [Bind; 16] = [R, R, W, W, N, N, N, N, N, N, N, N, N, N, U, D];
const K_LOSS: [Bind; 16] = [R, N, W, N, N, N, N, N, R, N, W, W, N, N, U, D];
const K_DZ: [Bind; 16] = [R, N, W, W, W, W, W, W, R, N, N, N, N, N, U, D];
const K_DH: [Bind; 16] = [R, N, N, N, W, W, N, W, N, N, N, N, N, N, U, D];
const K_OUTER: [Bind; 16] = [N, R, W, W, W, W, W, N, N, N, N, N, W, N, U, D];
const K_SUM: [Bind; 16] = [N, N, N, N, N, N, N, N, N, N, N, N, W, W, U, N];

/// The shape a workspace was built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    spec: Spec,
    height: usize,
    width: usize,
    /// Samples per chunk.
    nb: usize,
    /// Unroll length the buffers hold (a call with fewer steps reuses them).
    steps_cap: usize,
    chunks_cap: usize,
}

/// GPU buffers, pipelines and bind groups for training, kept in the context between calls
/// with the same shapes (a training loop allocates once).
pub(crate) struct Workspace {
    shape: Shape,
    /// Cells per tile the pipelines were built with.
    tc: u32,
    tiles_per_sample: u32,
    bufs: Vec<wgpu::Buffer>,
    ti: wgpu::Buffer,
    recs: wgpu::Buffer,
    staging: wgpu::Buffer,
    grad_staging: wgpu::Buffer,
    pipes: Vec<std::sync::Arc<wgpu::ComputePipeline>>,
    groups: Vec<wgpu::BindGroup>,
}

// Indices into Workspace::bufs (binding numbers 0..=13).
const B_PARAMS: usize = 0;
const B_X: usize = 1;
const B_HS: usize = 2;
const B_GH: usize = 7;
const B_TARGET: usize = 8;
const B_NOISE: usize = 9;
const B_CE: usize = 10;
const B_CORRECT: usize = 11;
const B_GRAD: usize = 13;

const PIPES: [(&str, &[Bind; 16]); 6] = [
    ("train_noise", &K_NOISE),
    ("train_forward", &K_FORWARD),
    ("train_loss", &K_LOSS),
    ("train_dz", &K_DZ),
    ("train_dh", &K_DH),
    ("grad_sum", &K_SUM),
];
const P_NOISE: usize = 0;
const P_FORWARD: usize = 1;
const P_LOSS: usize = 2;
const P_DZ: usize = 3;
const P_DH: usize = 4;
const P_SUM: usize = 5;
/// `grad_outer`, one pipeline per layer (its output tile is shaped to the layer): P_OUTER + mode.
const P_OUTER: usize = 6;
/// What the profiler calls each pipeline.
const KERNELS: [&str; 9] = [
    "train_noise",
    "train_forward",
    "train_loss",
    "train_dz",
    "train_dh",
    "grad_sum",
    "grad_outer (W1, b1)",
    "grad_outer (W2, b2)",
    "grad_outer (Wo, bo)",
];

/// The three layers' gradients as grad_outer computes them: (rows of the augmented input,
/// columns, offset of the block in the flat gradient), for mode 0 (W1, b1), 1 (W2, b2) and
/// 2 (Wo, bo).
fn layers(spec: &Spec) -> [(usize, usize, usize); 3] {
    let layout = spec.layout();
    [
        (spec.k() * spec.c() + 1, spec.features, 0),
        (spec.features + 1, spec.c_h, layout.w2.start),
        (spec.c_h + 1, spec.c_out, layout.wo.start),
    ]
}

/// grad_outer's output tile (rows, columns) for a `rows` x `cols` layer: multiples of 4
/// (4 x 4 values per thread), at most 256 threads and 128 rows, split evenly so that
/// little of it is padding. W2 of the adders (65 x 16) takes one 68 x 16 tile where a
/// 64 x 64 tile padded it to 128 x 64, 8x the work.
fn outer_tile(rows: usize, cols: usize) -> (u32, u32) {
    // n split into tiles of at most `max` (a multiple of 4), as evenly as they go.
    let even = |n: usize, max: usize| n.div_ceil(n.div_ceil(max)).div_ceil(4) * 4;
    let gc = even(cols, 64);
    let gr = even(rows, (4096 / gc).min(128) / 4 * 4);
    (gr as u32, gc as u32)
}

/// States of one cell hs holds for T steps: S_0..S_T, the noisy inputs I_1..I_T, and for a
/// quantized model each step's unrounded tanh U_1..U_T (the backward's tanh').
fn hs_slots(spec: &Spec, t: u64) -> u64 {
    match spec.quantize {
        Quantize::None => 2 * t + 1,
        Quantize::Ternary => 3 * t + 1,
    }
}

/// Bytes of each buffer for a chunk of `nb` samples, T steps, `chunks` reduction chunks.
fn buffer_sizes(spec: &Spec, cells: usize, nb: usize, t: usize, chunks: usize) -> [u64; 14] {
    let nbc = (nb * cells) as u64;
    let (ci, ch, f, co) = (
        spec.c_in as u64,
        spec.c_h as u64,
        spec.features as u64,
        spec.c_out as u64,
    );
    let t = t as u64;
    let p = spec.param_count() as u64;
    let slots = hs_slots(spec, t);
    [
        4 * p,                 // params
        4 * nbc * ci,          // xs
        4 * slots * nbc * ch,  // hs (hs_slots)
        4 * t * nbc * f,       // acts
        4 * t * nbc * f,       // dz
        4 * t * nbc * ch,      // dpre
        4 * t * nbc * co,      // dlog
        4 * nbc * ch,          // gh
        4 * nbc,               // targets
        4 * t * nbc * ch,      // noise
        4 * t * nbc,           // ce
        4 * nbc,               // correct
        4 * chunks as u64 * p, // partial
        4 * p,                 // grad
    ]
}

/// Rows per reduction chunk for `n` rows, and the chunk count: chunks of at least 512
/// rows, at most `max_chunks` of them (512, or fewer when the partial sums of a large
/// model would not fit one buffer). A chunk is whole blocks of GB rows, grad_outer's step.
fn chunking(n: usize, max_chunks: usize) -> (usize, usize) {
    let max_chunks = max_chunks.clamp(1, 512);
    let gb = GB as usize;
    let nchunk = n.div_ceil(max_chunks).max(512).div_ceil(gb) * gb;
    (nchunk, n.div_ceil(nchunk).max(1))
}

impl Workspace {
    fn new(ctx: &GpuContext, shape: Shape) -> Result<Self> {
        let spec = shape.spec;
        let cells = shape.height * shape.width;
        let tc = kernels::tile_cells(ctx, &spec, shape.width)?;
        let consts = kernels::constants(&spec, tc);
        let sizes = buffer_sizes(&spec, cells, shape.nb, shape.steps_cap, shape.chunks_cap);
        let names = [
            "params",
            "inputs x",
            "states",
            "features",
            "dz",
            "dpre",
            "dlogits",
            "gh",
            "targets",
            "noise",
            "cross-entropy",
            "correct",
            "gradient partials",
            "gradient",
        ];
        let mut bufs = Vec::with_capacity(14);
        for (name, size) in names.iter().zip(sizes) {
            bufs.push(ctx.buffer(name, size, STORAGE)?);
        }
        let ti = ctx.buffer("train info", bytes_of::<TrainInfo>(), UNIFORM)?;
        let stride = kernels::stride(bytes_of::<Rec>(), ctx.limits.uniform_align) as u64;
        let recs = ctx.buffer(
            "step records",
            (shape.steps_cap as u64 + 4) * stride,
            UNIFORM,
        )?;
        let staging = ctx.buffer("loss (readback)", sizes[B_CE] + sizes[B_CORRECT], STAGING)?;
        let grad_staging = ctx.buffer("gradient (readback)", sizes[B_GRAD], STAGING)?;
        let mut table: Vec<Option<Res>> = bufs.iter().map(|b| Some(Res::Whole(b))).collect();
        table.push(Some(Res::Whole(&ti)));
        table.push(Some(Res::Window(&recs, bytes_of::<Rec>())));
        let mut pipes = Vec::new();
        let mut groups = Vec::new();
        let mut add = |entry: &str, kinds: &[Bind; 16], consts: &[(&str, f64)]| -> Result<()> {
            pipes.push(ctx.pipeline(kernels::TRAIN_MODULE, entry, kinds, consts)?);
            groups.push(bind_group(ctx, entry, kinds, &table)?);
            Ok(())
        };
        for (entry, kinds) in PIPES {
            add(entry, kinds, &consts)?;
        }
        for (rows, cols, _) in layers(&spec) {
            let (gr, gc) = outer_tile(rows, cols);
            let mut consts = consts.clone();
            consts.extend([("GR", gr as f64), ("GC", gc as f64)]);
            add("grad_outer", &K_OUTER, &consts)?;
        }
        let tiles_per_row = shape.width.div_ceil(tc as usize) as u32;
        Ok(Workspace {
            shape,
            tc,
            tiles_per_sample: tiles_per_row * shape.height as u32,
            bufs,
            ti,
            recs,
            staging,
            grad_staging,
            pipes,
            groups,
        })
    }
}

/// Forward + back-propagation through time over one batch on the GPU: the same result as
/// `sead_core::train_step` within float rounding (the tests state the tolerances).
pub fn train_step(
    ctx: &GpuContext,
    spec: &Spec,
    params: &[f32],
    batch: &Batch,
    cancel: &AtomicBool,
) -> Result<TrainOutput<f32>> {
    train_step_with_limit(ctx, spec, params, batch, cancel, DEFAULT_MAX_BYTES)
}

/// `train_step` with a cap on the GPU memory it may hold; a batch that needs more is run in
/// chunks of samples (and refused when one sample alone does not fit).
pub fn train_step_with_limit(
    ctx: &GpuContext,
    spec: &Spec,
    params: &[f32],
    batch: &Batch,
    cancel: &AtomicBool,
    max_bytes: usize,
) -> Result<TrainOutput<f32>> {
    validate(spec, params, batch)?;
    let plan = ChunkPlan::new(ctx, spec, batch, max_bytes)?;
    let mut cache = ctx.train_cache.lock().unwrap_or_else(|p| p.into_inner());
    let ws = workspace(ctx, &mut cache, spec, batch, &plan)?;
    let run = Run::new(ctx, spec, batch, ws, &plan);
    run.upload_records(params);

    let mut totals = Totals::default();
    let mut noise = if run.noise_on {
        vec![0.0f32; run.t_steps * plan.nb * run.cells * spec.c_h]
    } else {
        Vec::new()
    };
    let mut b0 = 0;
    while b0 < batch.grid.batch {
        if cancel.load(Ordering::Relaxed) {
            return Err(GpuError::Cancelled);
        }
        let chunk = run.chunk(b0, plan.nb.min(batch.grid.batch - b0));
        run.upload_chunk(&chunk);
        if run.noise_on {
            run.upload_noise(&chunk, &mut noise)?;
        }
        run.forward(&chunk);
        if cancel.load(Ordering::Relaxed) {
            ctx.wait_idle()?;
            return Err(GpuError::Cancelled);
        }
        run.backward_and_reduce(&chunk);
        run.read_loss(&chunk, &mut totals)?;
        b0 += chunk.nbk;
    }
    Ok(TrainOutput {
        loss: totals.loss,
        grad: run.read_gradient()?,
        exact: totals.exact,
        cells_correct: totals.cells_correct,
        cells_supervised: run.n_sup,
    })
}

// ---- train_step_with_limit's phases.

/// Checks the spec, the parameters and the batch.
fn validate(spec: &Spec, params: &[f32], batch: &Batch) -> Result<()> {
    spec.validate()?;
    if batch.settle_weight > 0.0 {
        return Err(GpuError::invalid(
            "settleWeight is not implemented on the GPU backend yet; train with the CPU backend",
        ));
    }
    if batch.h0.is_some() {
        return Err(GpuError::invalid(
            "h0 (a start other than zero, config.randomStart) is not implemented on the GPU backend; train with the CPU backend",
        ));
    }
    sead_core::spec::check_len("params", params, spec.param_count(), "this spec needs")?;
    batch.validate(spec)?;
    Ok(())
}

/// How a batch is split: samples per chunk (every buffer within the binding limit, all
/// within the memory cap) and the reduction chunks the workspace must hold.
struct ChunkPlan {
    nb: usize,
    max_chunks: usize,
    chunks_cap: usize,
}

impl ChunkPlan {
    fn new(ctx: &GpuContext, spec: &Spec, batch: &Batch, max_bytes: usize) -> Result<Self> {
        let grid = batch.grid;
        let cells = grid.cells_per_sample();
        let t_steps = batch.step_weights.len();
        let limits = *ctx.limits();
        let one = buffer_sizes(spec, cells, 1, t_steps, 0);
        let per_sample_total: u64 = one.iter().sum();
        let per_sample_max = *one.iter().max().unwrap_or(&1);
        if per_sample_max > limits.max_binding || per_sample_total > max_bytes as u64 {
            return Err(GpuError::TooLarge(format!(
                "one training sample of {} x {} cells unrolled {t_steps} steps needs {} of GPU \
                 memory ({} in one buffer; limits: {} per buffer, {} in all): use a smaller \
                 grid or unroll",
                grid.height,
                grid.width,
                sead_core::format_bytes(per_sample_total as f64),
                sead_core::format_bytes(per_sample_max as f64),
                sead_core::format_bytes(limits.max_binding as f64),
                sead_core::format_bytes(max_bytes as f64)
            )));
        }
        let nb = (limits.max_binding / per_sample_max)
            .min(max_bytes as u64 / per_sample_total)
            .clamp(1, grid.batch as u64) as usize;
        // Keep the row count of the reductions within u32 and the partials small.
        let nb = nb.min(((1usize << 31) / (cells * t_steps).max(1)).max(1));
        let max_chunks = (limits.max_binding / (4 * spec.param_count() as u64)) as usize;
        let (_, chunks_cap) = chunking(t_steps * nb * cells, max_chunks);
        Ok(ChunkPlan {
            nb,
            max_chunks,
            chunks_cap,
        })
    }
}

/// The cached workspace if it fits this batch, else a new one (the old one freed first).
fn workspace<'a>(
    ctx: &GpuContext,
    cache: &'a mut Option<Workspace>,
    spec: &Spec,
    batch: &Batch,
    plan: &ChunkPlan,
) -> Result<&'a Workspace> {
    let grid = batch.grid;
    let t_steps = batch.step_weights.len();
    let fits = cache.as_ref().is_some_and(|w| {
        w.shape.spec == *spec
            && w.shape.height == grid.height
            && w.shape.width == grid.width
            && w.shape.nb == plan.nb
            && w.shape.steps_cap >= t_steps
            && w.shape.chunks_cap >= plan.chunks_cap
    });
    if !fits {
        *cache = None; // free the old buffers first
        let shape = Shape {
            spec: *spec,
            height: grid.height,
            width: grid.width,
            nb: plan.nb,
            steps_cap: t_steps,
            chunks_cap: plan.chunks_cap,
        };
        *cache = Some(Workspace::new(ctx, shape)?);
    }
    Ok(cache.as_ref().expect("workspace was just built"))
}

/// One call's fixed inputs and derived sizes, over the workspace it runs in.
struct Run<'a> {
    ctx: &'a GpuContext,
    spec: &'a Spec,
    batch: &'a Batch<'a>,
    ws: &'a Workspace,
    cells: usize,
    t_steps: usize,
    /// Supervised cells, and the loss's scale 1 / n_sup (0 when none).
    n_sup: u64,
    inv_nsup: f64,
    noise_on: bool,
    max_chunks: usize,
    /// Bytes between `Rec` records (the dynamic offset alignment).
    align: u32,
    /// grad_outer's output tiles per layer, down and across.
    outer_tiles: [(u32, u32); 3],
}

/// One chunk of samples: from `b0`, `nbk` of them, `nbc` cells, and its reduction chunks.
struct Chunk {
    b0: usize,
    nbk: usize,
    nbc: usize,
    nchunk: usize,
    n_chunks: usize,
}

/// Loss and accuracy summed over the chunks.
#[derive(Default)]
struct Totals {
    loss: f64,
    exact: u32,
    cells_correct: u64,
}

impl<'a> Run<'a> {
    fn new(
        ctx: &'a GpuContext,
        spec: &'a Spec,
        batch: &'a Batch<'a>,
        ws: &'a Workspace,
        plan: &ChunkPlan,
    ) -> Self {
        let n_sup = batch.target.iter().filter(|&&t| t >= 0).count() as u64;
        let outer_tiles = layers(spec).map(|(rows, cols, _)| {
            let (gr, gc) = outer_tile(rows, cols);
            (
                rows.div_ceil(gr as usize) as u32,
                cols.div_ceil(gc as usize) as u32,
            )
        });
        Run {
            ctx,
            spec,
            batch,
            ws,
            cells: batch.grid.cells_per_sample(),
            t_steps: batch.step_weights.len(),
            n_sup,
            inv_nsup: if n_sup == 0 { 0.0 } else { 1.0 / n_sup as f64 },
            noise_on: batch.noise_std > 0.0,
            max_chunks: plan.max_chunks,
            align: kernels::stride(bytes_of::<Rec>(), ctx.limits().uniform_align),
            outer_tiles,
        }
    }

    /// Writes the step records (t = 1..T), then grad_outer's three layer records, and the
    /// parameters.
    fn upload_records(&self, params: &[f32]) {
        let t_steps = self.t_steps;
        let mut recs: Vec<Rec> = Vec::with_capacity(t_steps + 3);
        for t in 1..=t_steps {
            let weight = self.batch.step_weights[t - 1];
            recs.push(Rec {
                t: t as u32,
                weight,
                scale: (weight as f64 * self.inv_nsup) as f32,
                last: (t == t_steps) as u32,
                ..Rec::default()
            });
        }
        for (mode, &(rows, cols, off)) in layers(self.spec).iter().enumerate() {
            recs.push(Rec {
                mode: mode as u32,
                rows: rows as u32,
                cols: cols as u32,
                off: off as u32,
                tiles_r: self.outer_tiles[mode].0,
                tiles_c: self.outer_tiles[mode].1,
                ..Rec::default()
            });
        }
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.ws.recs, 0, &kernels::records(&recs, self.align));
        queue.write_buffer(&self.ws.bufs[B_PARAMS], 0, bytemuck::cast_slice(params));
    }

    fn chunk(&self, b0: usize, nbk: usize) -> Chunk {
        let nbc = nbk * self.cells;
        let (nchunk, n_chunks) = chunking(self.t_steps * nbc, self.max_chunks);
        Chunk {
            b0,
            nbk,
            nbc,
            nchunk,
            n_chunks,
        }
    }

    /// Writes the chunk's `TrainInfo`, inputs and targets.
    fn upload_chunk(&self, c: &Chunk) {
        let (grid, ws, cells, ci) = (self.batch.grid, self.ws, self.cells, self.spec.c_in);
        let ti = TrainInfo {
            width: grid.width as u32,
            height: grid.height as u32,
            cells: cells as u32,
            nb: c.nbk as u32,
            nbc: c.nbc as u32,
            tiles_per_row: ws.tiles_per_sample / grid.height as u32,
            tiles_per_sample: ws.tiles_per_sample,
            steps: self.t_steps as u32,
            noise_std: self.batch.noise_std,
            n_total: (self.t_steps * c.nbc) as u32,
            nchunk: c.nchunk as u32,
            n_chunks: c.n_chunks as u32,
            p: self.spec.param_count() as u32,
            accumulate: (c.b0 > 0) as u32,
            noisy: self.noise_on as u32,
            ..TrainInfo::default()
        };
        let queue = &self.ctx.queue;
        queue.write_buffer(&ws.ti, 0, bytemuck::bytes_of(&ti));
        let (s0, s1) = (c.b0 * cells, (c.b0 + c.nbk) * cells);
        let x = &self.batch.x[s0 * ci..s1 * ci];
        queue.write_buffer(&ws.bufs[B_X], 0, bytemuck::cast_slice(x));
        let target = &self.batch.target[s0..s1];
        queue.write_buffer(&ws.bufs[B_TARGET], 0, bytemuck::cast_slice(target));
    }

    /// The CPU's noise: per sample, stream (seed, sample), values in step, cell, channel
    /// order (NoiseStream::fill_normal as sead_core::train_step calls it), laid out
    /// [sample][step][cell][channel] so the samples' streams fill their blocks in parallel:
    /// on the host this is the step's largest cost (8 ms on one core for 128 samples of 17
    /// cells, T = 40).
    fn upload_noise(&self, c: &Chunk, noise: &mut [f32]) -> Result<()> {
        let t_steps = self.t_steps;
        let per = self.cells * self.spec.c_h;
        let (seed, b0) = (self.batch.noise_seed, c.b0);
        let simd = Simd::detect();
        let fill = || {
            noise[..c.nbk * t_steps * per]
                .par_chunks_mut(t_steps * per)
                .enumerate()
                .for_each(|(s, block)| {
                    let mut stream = NoiseStream::new(seed, (b0 + s) as u64);
                    for step in block.chunks_exact_mut(per) {
                        stream.fill_normal(step, simd);
                    }
                })
        };
        sead_core::pool::with_threads(0, fill)?;
        self.ctx.queue.write_buffer(
            &self.ws.bufs[B_NOISE],
            0,
            bytemuck::cast_slice(&noise[..t_steps * c.nbc * self.spec.c_h]),
        );
        Ok(())
    }

    /// Workgroups of a per-element kernel over `n` elements.
    fn flat(&self, n: usize) -> (u32, u32) {
        self.ctx.fold(n.div_ceil(WG_FLAT as usize) as u32)
    }

    /// train_forward and train_dh take a workgroup per tile of a row.
    fn row_tiles(&self, c: &Chunk) -> (u32, u32) {
        self.ctx.fold(c.nbk as u32 * self.ws.tiles_per_sample)
    }

    /// Records and submits the forward pass, t = 1..T: noise, step, loss.
    fn forward(&self, c: &Chunk) {
        let (ctx, ws) = (self.ctx, self.ws);
        let row_tiles = self.row_tiles(c);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        let h0 = (4 * c.nbc * self.spec.c_h) as u64;
        enc.clear_buffer(&ws.bufs[B_HS], 0, Some(h0));
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for t in 1..=self.t_steps {
                let off = [(t as u32 - 1) * self.align];
                if self.noise_on {
                    let n = self.flat(c.nbc * self.spec.c_h);
                    dispatch(ctx, &mut pass, ws, P_NOISE, &off, n);
                }
                dispatch(ctx, &mut pass, ws, P_FORWARD, &off, row_tiles);
                if self.batch.step_weights[t - 1] > 0.0 || t == self.t_steps {
                    dispatch(ctx, &mut pass, ws, P_LOSS, &off, self.flat(c.nbc));
                }
            }
        }
        ctx.submit(enc);
    }

    /// Records and submits the backward pass, the parameter gradients' reductions, and the
    /// copy of the loss and accuracy to the staging buffer.
    fn backward_and_reduce(&self, c: &Chunk) {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        let gh = (4 * c.nbc * self.spec.c_h) as u64;
        enc.clear_buffer(&self.ws.bufs[B_GH], 0, Some(gh));
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            self.record_backward(&mut pass, c);
            self.record_reduction(&mut pass, c);
        }
        self.copy_loss(&mut enc, c);
        self.ctx.submit(enc);
    }

    /// t = T..1: train_dz, then train_dh (but at t = 1: the gradient at S_0 is not needed,
    /// h_0 = 0 is no parameter).
    fn record_backward(&self, pass: &mut wgpu::ComputePass, c: &Chunk) {
        let (ctx, ws) = (self.ctx, self.ws);
        let row_tiles = self.row_tiles(c);
        let tc_tiles = c.nbc.div_ceil(ws.tc as usize) as u32; // train_dz: TC cells per workgroup
        for t in (1..=self.t_steps).rev() {
            let off = [(t as u32 - 1) * self.align];
            dispatch(ctx, pass, ws, P_DZ, &off, ctx.fold(tc_tiles));
            if t > 1 {
                dispatch(ctx, pass, ws, P_DH, &off, row_tiles);
            }
        }
    }

    /// grad_outer per layer (its record after the T step records), then grad_sum.
    fn record_reduction(&self, pass: &mut wgpu::ComputePass, c: &Chunk) {
        let (ctx, ws) = (self.ctx, self.ws);
        for (mode, &(down, across)) in self.outer_tiles.iter().enumerate() {
            let off = [(self.t_steps + mode) as u32 * self.align];
            let n = ctx.fold(down * across * c.n_chunks as u32);
            dispatch(ctx, pass, ws, P_OUTER + mode, &off, n);
        }
        let p = self.spec.param_count();
        dispatch(ctx, pass, ws, P_SUM, &[], self.flat(p));
    }

    /// Bytes of the chunk's cross-entropy, then of its per-cell correctness.
    fn loss_bytes(&self, c: &Chunk) -> (u64, u64) {
        ((4 * self.t_steps * c.nbc) as u64, (4 * c.nbc) as u64)
    }

    fn copy_loss(&self, enc: &mut wgpu::CommandEncoder, c: &Chunk) {
        let ws = self.ws;
        let (ce_bytes, ok_bytes) = self.loss_bytes(c);
        enc.copy_buffer_to_buffer(&ws.bufs[B_CE], 0, &ws.staging, 0, ce_bytes);
        enc.copy_buffer_to_buffer(&ws.bufs[B_CORRECT], 0, &ws.staging, ce_bytes, ok_bytes);
    }

    /// Reads the chunk's per-cell cross-entropy and correctness back and adds them up: the
    /// loss over the supervised cells of weighted steps, cells right, samples all right.
    fn read_loss(&self, c: &Chunk, totals: &mut Totals) -> Result<()> {
        let (ce_bytes, ok_bytes) = self.loss_bytes(c);
        let raw = self
            .ctx
            .read_mapped(&self.ws.staging, ce_bytes + ok_bytes)?;
        let ce: &[f32] = bytemuck::cast_slice(&raw[..ce_bytes as usize]);
        let ok: &[u32] = bytemuck::cast_slice(&raw[ce_bytes as usize..]);
        let cells = self.cells;
        let targets = &self.batch.target[c.b0 * cells..(c.b0 + c.nbk) * cells];
        for t in 0..self.t_steps {
            let w = self.batch.step_weights[t] as f64;
            if w <= 0.0 {
                continue;
            }
            let row = &ce[t * c.nbc..(t + 1) * c.nbc];
            let s: f64 = row
                .iter()
                .zip(targets)
                .filter(|(_, &tg)| tg >= 0)
                .map(|(&v, _)| v as f64)
                .sum();
            totals.loss += w * self.inv_nsup * s;
        }
        for o in ok.chunks_exact(cells).take(c.nbk) {
            totals.cells_correct += o.iter().filter(|&&v| v == 1).count() as u64;
            totals.exact += o.iter().all(|&v| v != 0) as u32;
        }
        Ok(())
    }

    /// The gradient, summed over every chunk.
    fn read_gradient(&self) -> Result<Vec<f32>> {
        let (ctx, ws) = (self.ctx, self.ws);
        let bytes = (4 * self.spec.param_count()) as u64;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&ws.bufs[B_GRAD], 0, &ws.grad_staging, 0, bytes);
        ctx.submit(enc);
        let raw = ctx.read_mapped(&ws.grad_staging, bytes)?;
        Ok(bytemuck::cast_slice(&raw).to_vec())
    }
}

fn dispatch(
    ctx: &GpuContext,
    pass: &mut wgpu::ComputePass,
    ws: &Workspace,
    p: usize,
    off: &[u32],
    size: (u32, u32),
) {
    pass.set_pipeline(&ws.pipes[p]);
    pass.set_bind_group(0, &ws.groups[p], off);
    ctx.dispatch(pass, KERNELS[p], size);
}

/// Bytes a training batch of this shape holds on the GPU (all samples at once).
pub fn bytes_needed(spec: &Spec, grid: &Grid, steps: usize) -> u64 {
    buffer_sizes(spec, grid.cells_per_sample(), grid.batch, steps, 512)
        .iter()
        .sum()
}

#[cfg(test)]
mod tests {
    use super::outer_tile;

    #[test]
    fn outer_tiles_fit_a_workgroup_and_pad_little() {
        for rows in 1..=400 {
            for cols in 1..=150 {
                let (gr, gc) = outer_tile(rows, cols);
                let (gr, gc) = (gr as usize, gc as usize);
                assert!(gr % 4 == 0 && gc % 4 == 0, "{rows} x {cols}: {gr} x {gc}");
                assert!((gr / 4) * (gc / 4) <= 256 && gr <= 128 && gc <= 64);
                // Tiles split the layer evenly: the last one is at most 3 rows (columns)
                // short of full, plus the padding to a multiple of 4.
                let (tr, tc) = (rows.div_ceil(gr), cols.div_ceil(gc));
                assert!(
                    tr * gr - rows < tr * 4 && tc * gc - cols < tc * 4,
                    "{rows} x {cols}"
                );
            }
        }
        assert_eq!(outer_tile(65, 16), (68, 16)); // the adders' W2
        assert_eq!(outer_tile(61, 64), (64, 64)); // the binary adder's W1
    }
}
