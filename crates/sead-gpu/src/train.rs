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
use rayon::prelude::*;
use sead_core::noise::NoiseStream;
use sead_core::{Batch, Grid, Quantize, Simd, Spec, TrainOutput};
use std::sync::atomic::{AtomicBool, Ordering};

/// Default cap on the GPU memory one training call may hold.
pub const DEFAULT_MAX_BYTES: usize = sead_core::train::DEFAULT_MAX_BYTES;

const REC_BYTES: u64 = 48;
const TI_WORDS: usize = 16;

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
/// model would not fit one buffer).
fn chunking(n: usize, max_chunks: usize) -> (usize, usize) {
    let max_chunks = max_chunks.clamp(1, 512);
    let nchunk = n.div_ceil(max_chunks).max(512).div_ceil(16) * 16;
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
        let ti = ctx.buffer("train info", (4 * TI_WORDS) as u64, UNIFORM)?;
        let stride = kernels::stride(REC_BYTES, ctx.limits.uniform_align) as u64;
        let recs = ctx.buffer(
            "step records",
            (shape.steps_cap as u64 + 4) * stride,
            UNIFORM,
        )?;
        let staging = ctx.buffer("loss (readback)", sizes[B_CE] + sizes[B_CORRECT], STAGING)?;
        let grad_staging = ctx.buffer("gradient (readback)", sizes[B_GRAD], STAGING)?;
        let mut table: Vec<Option<Res>> = bufs.iter().map(|b| Some(Res::Whole(b))).collect();
        table.push(Some(Res::Whole(&ti)));
        table.push(Some(Res::Window(&recs, REC_BYTES)));
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
    spec.validate()?;
    if batch.settle_weight > 0.0 {
        return Err(GpuError::invalid(
            "settleWeight is not implemented on the GPU backend yet; train with the CPU backend",
        ));
    }
    if params.len() != spec.param_count() {
        return Err(GpuError::invalid(format!(
            "params has {} values but this spec needs {}",
            params.len(),
            spec.param_count()
        )));
    }
    batch.validate(spec)?;
    let grid = batch.grid;
    let cells = grid.cells_per_sample();
    let t_steps = batch.step_weights.len();
    let n_sup = batch.target.iter().filter(|&&t| t >= 0).count() as u64;
    let inv_nsup = if n_sup == 0 { 0.0 } else { 1.0 / n_sup as f64 };
    let p_count = spec.param_count();

    // Samples per chunk: every buffer within the binding limit, all within max_bytes.
    let limits = *ctx.limits();
    let one = buffer_sizes(spec, cells, 1, t_steps, 0);
    let per_sample_total: u64 = one.iter().sum();
    let per_sample_max = *one.iter().max().unwrap_or(&1);
    if per_sample_max > limits.max_binding || per_sample_total > max_bytes as u64 {
        return Err(GpuError::TooLarge(format!(
            "one training sample of {} x {} cells unrolled {t_steps} steps needs {} of GPU memory \
             ({} in one buffer; limits: {} per buffer, {} in all): use a smaller grid or unroll",
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
    let max_chunks = (limits.max_binding / (4 * p_count as u64)) as usize;
    let (_, chunks_cap) = chunking(t_steps * nb * cells, max_chunks);

    let mut cache = ctx.train_cache.lock().unwrap_or_else(|p| p.into_inner());
    let fits = cache.as_ref().is_some_and(|w| {
        w.shape.spec == *spec
            && w.shape.height == grid.height
            && w.shape.width == grid.width
            && w.shape.nb == nb
            && w.shape.steps_cap >= t_steps
            && w.shape.chunks_cap >= chunks_cap
    });
    if !fits {
        *cache = None; // free the old buffers first
        let shape = Shape {
            spec: *spec,
            height: grid.height,
            width: grid.width,
            nb,
            steps_cap: t_steps,
            chunks_cap,
        };
        *cache = Some(Workspace::new(ctx, shape)?);
    }
    let ws = cache.as_ref().expect("workspace was just built");
    let align = kernels::stride(REC_BYTES, limits.uniform_align);

    // Step records (t = 1..T) then the three layer records of grad_outer.
    let mut recs: Vec<Vec<u32>> = Vec::with_capacity(t_steps + 3);
    for t in 1..=t_steps {
        let w = batch.step_weights[t - 1];
        let scale = (w as f64 * inv_nsup) as f32;
        recs.push(vec![
            t as u32,
            w.to_bits(),
            scale.to_bits(),
            (t == t_steps) as u32,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
    }
    let (ci, ch) = (spec.c_in, spec.c_h);
    let layers = layers(spec);
    // grad_outer's output tiles per layer, down and across.
    let outer_tiles = layers.map(|(rows, cols, _)| {
        let (gr, gc) = outer_tile(rows, cols);
        (
            rows.div_ceil(gr as usize) as u32,
            cols.div_ceil(gc as usize) as u32,
        )
    });
    for (mode, &(rows, cols, off)) in layers.iter().enumerate() {
        recs.push(vec![
            0,
            0,
            0,
            0,
            mode as u32,
            rows as u32,
            cols as u32,
            off as u32,
            outer_tiles[mode].0,
            outer_tiles[mode].1,
            0,
            0,
        ]);
    }
    ctx.queue
        .write_buffer(&ws.recs, 0, &kernels::records(&recs, align));
    ctx.queue
        .write_buffer(&ws.bufs[B_PARAMS], 0, bytemuck::cast_slice(params));

    let mut loss = 0.0f64;
    let mut exact = 0u32;
    let mut cells_correct = 0u64;
    let noise_on = batch.noise_std > 0.0;
    let mut noise = if noise_on {
        vec![0.0f32; t_steps * nb * cells * ch]
    } else {
        Vec::new()
    };
    let simd = Simd::detect();
    let mut b0 = 0;
    while b0 < grid.batch {
        if cancel.load(Ordering::Relaxed) {
            return Err(GpuError::Cancelled);
        }
        let nbk = nb.min(grid.batch - b0);
        let nbc = nbk * cells;
        let n_total = t_steps * nbc;
        let (nchunk, n_chunks) = chunking(n_total, max_chunks);
        let ti = [
            grid.width as u32,
            grid.height as u32,
            cells as u32,
            nbk as u32,
            nbc as u32,
            ws.tiles_per_sample / grid.height as u32,
            ws.tiles_per_sample,
            t_steps as u32,
            batch.noise_std.to_bits(),
            n_total as u32,
            nchunk as u32,
            n_chunks as u32,
            p_count as u32,
            (b0 > 0) as u32,
            noise_on as u32,
            0,
        ];
        ctx.queue.write_buffer(&ws.ti, 0, kernels::words(&ti));
        ctx.queue.write_buffer(
            &ws.bufs[B_X],
            0,
            bytemuck::cast_slice(&batch.x[b0 * cells * ci..(b0 + nbk) * cells * ci]),
        );
        ctx.queue.write_buffer(
            &ws.bufs[B_TARGET],
            0,
            bytemuck::cast_slice(&batch.target[b0 * cells..(b0 + nbk) * cells]),
        );
        if noise_on {
            // The CPU's noise: per sample, stream (seed, sample), values in step, cell,
            // channel order (NoiseStream::fill_normal as sead_core::train_step calls it),
            // laid out [sample][step][cell][channel] so the samples' streams fill their
            // blocks in parallel: on the host this is the step's largest cost (8 ms on one
            // core for 128 samples of 17 cells, T = 40).
            let per = cells * ch;
            let fill = || {
                noise[..nbk * t_steps * per]
                    .par_chunks_mut(t_steps * per)
                    .enumerate()
                    .for_each(|(s, block)| {
                        let mut stream = NoiseStream::new(batch.noise_seed, (b0 + s) as u64);
                        for step in block.chunks_exact_mut(per) {
                            stream.fill_normal(step, simd);
                        }
                    })
            };
            sead_core::pool::with_threads(0, fill)?;
            ctx.queue.write_buffer(
                &ws.bufs[B_NOISE],
                0,
                bytemuck::cast_slice(&noise[..t_steps * nbc * ch]),
            );
        }

        // Forward. train_forward and train_dh take a workgroup per tile of a row.
        let row_tiles = ctx.fold(nbk as u32 * ws.tiles_per_sample);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&ws.bufs[B_HS], 0, Some((4 * nbc * ch) as u64));
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            let flat = |n: usize| ctx.fold(n.div_ceil(WG_FLAT as usize) as u32);
            for t in 1..=t_steps {
                let off = [(t as u32 - 1) * align];
                if noise_on {
                    dispatch(ctx, &mut pass, ws, P_NOISE, &off, flat(nbc * ch));
                }
                dispatch(ctx, &mut pass, ws, P_FORWARD, &off, row_tiles);
                if batch.step_weights[t - 1] > 0.0 || t == t_steps {
                    dispatch(ctx, &mut pass, ws, P_LOSS, &off, flat(nbc));
                }
            }
        }
        ctx.submit(enc);
        if cancel.load(Ordering::Relaxed) {
            ctx.wait_idle()?;
            return Err(GpuError::Cancelled);
        }

        // Backward and the parameter gradients.
        let tc_tiles = nbc.div_ceil(ws.tc as usize) as u32; // train_dz: TC cells per workgroup
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&ws.bufs[B_GH], 0, Some((4 * nbc * ch) as u64));
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            let flat = |n: usize| ctx.fold(n.div_ceil(WG_FLAT as usize) as u32);
            for t in (1..=t_steps).rev() {
                let off = [(t as u32 - 1) * align];
                dispatch(ctx, &mut pass, ws, P_DZ, &off, ctx.fold(tc_tiles));
                if t > 1 {
                    // The gradient at S_0 is not needed (h_0 = 0 is no parameter).
                    dispatch(ctx, &mut pass, ws, P_DH, &off, row_tiles);
                }
            }
            for (mode, &(down, across)) in outer_tiles.iter().enumerate() {
                let off = [(t_steps + mode) as u32 * align];
                dispatch(
                    ctx,
                    &mut pass,
                    ws,
                    P_OUTER + mode,
                    &off,
                    ctx.fold(down * across * n_chunks as u32),
                );
            }
            dispatch(ctx, &mut pass, ws, P_SUM, &[], flat(p_count));
        }
        let ce_bytes = (4 * t_steps * nbc) as u64;
        enc.copy_buffer_to_buffer(&ws.bufs[B_CE], 0, &ws.staging, 0, ce_bytes);
        enc.copy_buffer_to_buffer(
            &ws.bufs[B_CORRECT],
            0,
            &ws.staging,
            ce_bytes,
            (4 * nbc) as u64,
        );
        ctx.submit(enc);
        let raw = ctx.read_mapped(&ws.staging, ce_bytes + (4 * nbc) as u64)?;
        let ce: &[f32] = bytemuck::cast_slice(&raw[..ce_bytes as usize]);
        let ok: &[u32] = bytemuck::cast_slice(&raw[ce_bytes as usize..]);
        let targets = &batch.target[b0 * cells..(b0 + nbk) * cells];
        for t in 0..t_steps {
            let w = batch.step_weights[t] as f64;
            if w <= 0.0 {
                continue;
            }
            let row = &ce[t * nbc..(t + 1) * nbc];
            let s: f64 = row
                .iter()
                .zip(targets)
                .filter(|(_, &tg)| tg >= 0)
                .map(|(&v, _)| v as f64)
                .sum();
            loss += w * inv_nsup * s;
        }
        for s in 0..nbk {
            let o = &ok[s * cells..(s + 1) * cells];
            cells_correct += o.iter().filter(|&&v| v == 1).count() as u64;
            exact += o.iter().all(|&v| v != 0) as u32;
        }
        b0 += nbk;
    }

    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(
        &ws.bufs[B_GRAD],
        0,
        &ws.grad_staging,
        0,
        (4 * p_count) as u64,
    );
    ctx.submit(enc);
    let raw = ctx.read_mapped(&ws.grad_staging, (4 * p_count) as u64)?;
    let grad: Vec<f32> = bytemuck::cast_slice(&raw).to_vec();
    Ok(TrainOutput {
        loss,
        grad,
        exact,
        cells_correct,
        cells_supervised: n_sup,
    })
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
