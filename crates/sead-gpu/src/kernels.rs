//! The WGSL sources (plain files under `wgsl/`, so a browser build can load the same text),
//! the override constants a spec sets, the tile size, and small helpers to build bind
//! groups from a binding table.

use crate::context::{Bind, GpuContext};
use crate::error::{GpuError, Result};
use crate::records::consts;
use sead_core::real::TERNARY_HALF;
use sead_core::{Boundary, Quantize, Spec, Update};

/// Shared definitions: override constants, tanh, the tile loader, perceive, mix, readout.
pub const COMMON_WGSL: &str = include_str!("../wgsl/common.wgsl");
/// Inference: `step_forward`, `step_packed`, `sample_update`, `readout_outputs`, and for settled-tile
/// skipping `queue_tiles`.
pub const STEP_WGSL: &str = include_str!("../wgsl/step.wgsl");
/// Training: `train_noise`, `train_forward`, `train_loss`, `train_dz`, `train_dh`,
/// `grad_outer`, `grad_sum`.
pub const TRAIN_WGSL: &str = include_str!("../wgsl/train.wgsl");

/// The inference module's full source (common.wgsl, then step.wgsl).
pub fn step_source() -> String {
    format!("{COMMON_WGSL}\n{STEP_WGSL}")
}

/// The training module's full source (common.wgsl, then train.wgsl).
pub fn train_source() -> String {
    format!("{COMMON_WGSL}\n{TRAIN_WGSL}")
}

pub(crate) const STEP_MODULE: (&str, fn() -> String) = ("step.wgsl", step_source);
pub(crate) const TRAIN_MODULE: (&str, fn() -> String) = ("train.wgsl", train_source);

/// Threads per workgroup of the tiled kernels unless a pipeline sets them (the default of
/// `override WG` in common.wgsl).
pub(crate) const WG: u32 = consts::common::overrides::WG;
/// Threads per workgroup of the per-element kernels (`WG_FLAT` in common.wgsl).
pub(crate) const WG_FLAT: u32 = consts::common::WG_FLAT;

/// The override constants of the inference kernels: a spec's, the tile size and the
/// threads per workgroup.
pub(crate) fn step_constants(spec: &Spec, tc: u32, wg: u32) -> Vec<(&'static str, f64)> {
    let mut c = constants(spec, tc);
    c.push(("WG", wg as f64));
    c
}

/// The override constants for a spec and a tile size.
pub(crate) fn constants(spec: &Spec, tc: u32) -> Vec<(&'static str, f64)> {
    vec![
        ("C_IN", spec.c_in as f64),
        ("C_H", spec.c_h as f64),
        ("F", spec.features as f64),
        ("C_OUT", spec.c_out as f64),
        ("DIMS", spec.dims as f64),
        (
            "PERIODIC",
            (spec.boundary == Boundary::Periodic) as u32 as f64,
        ),
        ("RESIDUAL", (spec.update == Update::Residual) as u32 as f64),
        (
            "QUANTIZE",
            (spec.quantize == Quantize::Ternary) as u32 as f64,
        ),
        // The threshold's one definition is sead-core's; the WGSL has no default for it.
        ("TERNARY_HALF", TERNARY_HALF as f64),
        ("TC", tc as f64),
    ]
}

/// Workgroup memory (bytes) the tiled training kernels need with `tc` cells per tile: the
/// neighbourhood tile, features, hidden tile, readout-gradient tile and reductions (an
/// upper bound for any of them), or train_dh's tile of dz over the neighbourhood, if larger.
pub(crate) fn tile_bytes(spec: &Spec, tc: u32) -> u64 {
    let tc = tc as u64;
    let nrows = if spec.dims == 2 { 3 } else { 1 };
    let floats = nrows * (tc + 2) * spec.c() as u64
        + tc * spec.features as u64
        + tc * spec.c_h as u64
        + tc * spec.c_out as u64
        + 2 * WG as u64
        + 4;
    let dz_floats = nrows * (tc + 2) * spec.features as u64;
    4 * floats.max(dz_floats)
}

/// Cells per tile: the largest of 64, 32, 16, 8, 4 whose workgroup memory fits the device,
/// and no larger than the row needs.
pub(crate) fn tile_cells(ctx: &GpuContext, spec: &Spec, width: usize) -> Result<u32> {
    let limit = ctx.limits.max_workgroup_storage as u64;
    largest_tile_under(width, limit, |tc| tile_bytes(spec, tc))
        .ok_or_else(|| too_large(spec, tile_bytes(spec, 4), limit))
}

fn too_large(spec: &Spec, bytes: u64, limit: u64) -> GpuError {
    GpuError::TooLarge(format!(
        "this model (C = {}, F = {}) needs {bytes} bytes of workgroup memory per tile of 4 \
         cells, over this GPU's {limit} bytes: use the CPU backend",
        spec.c(),
        spec.features,
    ))
}

/// The largest of 64, 32, 16, 8, 4 cells, no larger than the cells need (4 at least), whose
/// workgroup memory is at most `limit` bytes.
fn largest_tile_under(cells: usize, limit: u64, tile_bytes: impl Fn(u32) -> u64) -> Option<u32> {
    let want = (cells.next_power_of_two().max(4)) as u32;
    TILE_CHOICES
        .into_iter()
        .rev()
        .find(|&tc| tc <= want && tile_bytes(tc) <= limit)
}

/// Workgroup memory (bytes) `step_forward` needs with `tc` cells per tile and `wg` threads:
/// the unrolled neighbourhood (K C values per cell), the features, the new hidden states,
/// the reductions (per thread, or per cell when there are more cells).
pub(crate) fn step_tile_bytes(spec: &Spec, tc: u32, wg: u32) -> u64 {
    let tc = tc as u64;
    let floats = (spec.k() * spec.c()) as u64 * tc
        + tc * spec.features as u64
        + tc * spec.c_h as u64
        + 2 * (wg as u64).max(tc)
        + 4;
    4 * floats
}

/// Workgroup memory `step_packed` needs: `step_forward`'s, and five words per cell saying
/// where it lives.
fn packed_tile_bytes(spec: &Spec, tc: u32, wg: u32) -> u64 {
    step_tile_bytes(spec, tc, wg) + 5 * 4 * tc as u64
}

/// Workgroup memory `step_forward` aims at per tile. Small tiles leave room for many
/// workgroups per multiprocessor, which hides the latency of each phase: on an H100
/// (crates/sead-gpu/PERF.md) the fastest tile was the largest under about 10 KiB for each
/// model measured (16 cells for the binary adder, 8 for the decimal adder and the 2D bench
/// model), and 64-cell tiles were 10-30% slower.
const STEP_TILE_TARGET_BYTES: u64 = 12 * 1024;

/// Tile sizes (cells) the inference kernels take, and their workgroup sizes (threads).
pub const TILE_CHOICES: [u32; 5] = [4, 8, 16, 32, 64];
pub const WORKGROUP_CHOICES: [u32; 4] = [32, 64, 128, 256];

/// The layout of `step_forward` or (`packed`) `step_packed` over `cells` cells (a row, or
/// the rows end to end): `(cells per tile, threads per workgroup)`. By default the
/// workgroup has WG threads and the tile is the largest of 64 .. 4 cells, no larger than
/// the cells need, under STEP_TILE_TARGET_BYTES (else the largest that fits the device).
/// `tile` and `threads` override either (tuning for another GPU); they are checked.
pub(crate) fn step_layout(
    ctx: &GpuContext,
    spec: &Spec,
    cells: usize,
    packed: bool,
    tile: Option<u32>,
    threads: Option<u32>,
) -> Result<(u32, u32)> {
    let wg = threads.unwrap_or(WG);
    if !WORKGROUP_CHOICES.contains(&wg) {
        return Err(GpuError::invalid(format!(
            "workgroupThreads must be one of {WORKGROUP_CHOICES:?}, got {wg}"
        )));
    }
    let bytes = |tc: u32| {
        if packed {
            packed_tile_bytes(spec, tc, wg)
        } else {
            step_tile_bytes(spec, tc, wg)
        }
    };
    let limit = ctx.limits.max_workgroup_storage as u64;
    if let Some(tc) = tile {
        if !TILE_CHOICES.contains(&tc) {
            return Err(GpuError::invalid(format!(
                "tileCells must be one of {TILE_CHOICES:?}, got {tc}"
            )));
        }
        if bytes(tc) > limit {
            return Err(GpuError::TooLarge(format!(
                "a tile of {tc} cells of this model needs {} bytes of workgroup memory, over \
                 this GPU's {limit} bytes",
                bytes(tc)
            )));
        }
        return Ok((tc, wg));
    }
    let target = limit.min(STEP_TILE_TARGET_BYTES);
    let tc = largest_tile_under(cells, target, bytes)
        .or_else(|| largest_tile_under(cells, limit, bytes))
        .ok_or_else(|| too_large(spec, bytes(4), limit))?;
    Ok((tc, wg))
}

/// Floats of the weights packed for `step_forward` (`pack_step_weights`).
pub(crate) fn step_weights_len(spec: &Spec) -> usize {
    let f8 = spec.features.div_ceil(8) * 8;
    let ch4 = spec.c_h.div_ceil(4) * 4;
    spec.k() * spec.c() * f8 + spec.features * ch4
}

/// The weights as `step_forward` reads them (`wpack` in step.wgsl): W1 `[K C][F8]` with each
/// row padded with zeros to a multiple of 8 features, then W2 `[F][CH4]` with each row
/// padded to a multiple of 4 channels, so every vec4 load is aligned and whole.
pub(crate) fn pack_step_weights(spec: &Spec, params: &[f32]) -> Vec<f32> {
    let l = spec.layout();
    let (f, ch) = (spec.features, spec.c_h);
    let f8 = f.div_ceil(8) * 8;
    let ch4 = ch.div_ceil(4) * 4;
    let rows = spec.k() * spec.c();
    let mut out = vec![0.0f32; step_weights_len(spec)];
    for (dst, src) in out.chunks_exact_mut(f8).zip(params[l.w1].chunks_exact(f)) {
        dst[..f].copy_from_slice(src);
    }
    let w2 = &mut out[rows * f8..];
    for (dst, src) in w2.chunks_exact_mut(ch4).zip(params[l.w2].chunks_exact(ch)) {
        dst[..ch].copy_from_slice(src);
    }
    out
}

/// One entry of a binding table: a whole buffer, or a window of `size` bytes for a
/// dynamic-offset uniform.
#[derive(Clone, Copy)]
pub(crate) enum Res<'a> {
    Whole(&'a wgpu::Buffer),
    Window(&'a wgpu::Buffer, u64),
}

/// A bind group for a pipeline whose layout is `kinds`, taking binding i from `table[i]`.
pub(crate) fn bind_group(
    ctx: &GpuContext,
    label: &str,
    kinds: &[Bind],
    table: &[Option<Res>],
) -> Result<wgpu::BindGroup> {
    let layout = ctx.layout(kinds);
    let mut entries = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        if *k == Bind::Unused {
            continue;
        }
        let res = table.get(i).copied().flatten().ok_or_else(|| {
            GpuError::Device(format!(
                "{label}: binding {i} has no buffer (a bug in sead-gpu)"
            ))
        })?;
        let resource = match res {
            Res::Whole(b) => b.as_entire_binding(),
            Res::Window(b, size) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: b,
                offset: 0,
                size: std::num::NonZeroU64::new(size),
            }),
        };
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32,
            resource,
        });
    }
    ctx.scoped(&format!("binding {label}"), || {
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        })
    })
}

/// u32 words as bytes.
pub(crate) fn words(v: &[u32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Bytes between records of `bytes` bytes addressed by dynamic offsets: a multiple of the
/// device's offset alignment.
pub(crate) fn stride(bytes: u64, align: u32) -> u32 {
    (bytes.div_ceil(align as u64) * align as u64) as u32
}

/// Uniform records laid out `stride` bytes apart.
pub(crate) fn records<T: bytemuck::Pod>(recs: &[T], stride: u32) -> Vec<u8> {
    let stride = stride as usize;
    let mut out = vec![0u8; recs.len().max(1) * stride];
    for (i, r) in recs.iter().enumerate() {
        let b = bytemuck::bytes_of(r);
        out[i * stride..i * stride + b.len()].copy_from_slice(b);
    }
    out
}

pub(crate) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);
pub(crate) const UNIFORM: wgpu::BufferUsages =
    wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);
pub(crate) const STAGING: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
