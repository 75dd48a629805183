/**
 * The WGSL and its host layout, as crates/sead-gpu/src/kernels.rs has them: the inference
 * module's source (`step_source`: common.wgsl, then step.wgsl, the same files), its override
 * constants (`step_constants`), the tile size (`step_layout`), the weights re-laid for
 * step_forward (`pack_step_weights`), dispatch folding (`context::fold`) and uniform records
 * (`records`). Layout only: the model's math is in the WGSL.
 */
import commonWgsl from "../../../crates/sead-gpu/wgsl/common.wgsl";
import stepWgsl from "../../../crates/sead-gpu/wgsl/step.wgsl";
import { InvalidInputError, ResourceLimitError } from "../../errors.js";
import { type ModelSpec, neighbours, paramLayout } from "../../model/spec.js";

/** The inference module's full source (`step_source`): common.wgsl, then step.wgsl. */
export const STEP_SOURCE = `${commonWgsl}\n${stepWgsl}`;

/** Threads per workgroup of the tiled kernels (`WG`), and of the per-element ones (`WG_FLAT`). */
export const WG = 128;
export const WG_FLAT = 64;

/**
 * sead_core::real::TERNARY_HALF: the WGSL has no default for it, the host sets it. The Rust
 * host passes sead-core's constant; the browser has no sead-core, so it is restated here.
 */
export const TERNARY_HALF = 0.5;

/** Tile sizes (cells) the inference kernels take (`TILE_CHOICES`). */
export const TILE_CHOICES = [4, 8, 16, 32, 64] as const;

/** Workgroup memory `step_forward` aims at per tile (`STEP_TILE_TARGET_BYTES`, see kernels.rs). */
const STEP_TILE_TARGET_BYTES = 12 * 1024;

/** The override constants of the inference kernels (`step_constants`). */
export function stepConstants(spec: ModelSpec, tc: number, wg: number): Record<string, number> {
  return {
    C_IN: spec.cIn,
    C_H: spec.cH,
    F: spec.features,
    C_OUT: spec.cOut,
    DIMS: spec.dims,
    PERIODIC: spec.boundary === "periodic" ? 1 : 0,
    RESIDUAL: spec.update === "residual" ? 1 : 0,
    QUANTIZE: spec.quantize === "ternary" ? 1 : 0,
    TERNARY_HALF,
    TC: tc,
    WG: wg,
  };
}

/** Workgroup memory (bytes) of `step_forward` with `tc` cells per tile (`step_tile_bytes`). */
export function stepTileBytes(spec: ModelSpec, tc: number, wg: number): number {
  const c = spec.cIn + spec.cH;
  const floats = neighbours(spec) * c * tc + tc * spec.features + tc * spec.cH + 2 * Math.max(wg, tc) + 4;
  return 4 * floats;
}

/** `step_packed`'s: step_forward's and five words per cell (`packed_tile_bytes`). */
function packedTileBytes(spec: ModelSpec, tc: number, wg: number): number {
  return stepTileBytes(spec, tc, wg) + 5 * 4 * tc;
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** The largest tile no larger than the cells need whose memory is at most `limit` (`largest_tile_under`). */
function largestTileUnder(cells: number, limit: number, bytes: (tc: number) => number): number | undefined {
  const want = Math.max(nextPowerOfTwo(cells), 4);
  return [...TILE_CHOICES].reverse().find((tc) => tc <= want && bytes(tc) <= limit);
}

/**
 * Cells per tile of `step_forward` or (`packed`) `step_packed` over `cells` cells, with WG
 * threads (`step_layout` without the tuning overrides).
 */
export function stepTile(spec: ModelSpec, cells: number, packed: boolean, maxWorkgroupStorage: number): number {
  const bytes = (tc: number) => (packed ? packedTileBytes(spec, tc, WG) : stepTileBytes(spec, tc, WG));
  const target = Math.min(maxWorkgroupStorage, STEP_TILE_TARGET_BYTES);
  const tc = largestTileUnder(cells, target, bytes) ?? largestTileUnder(cells, maxWorkgroupStorage, bytes);
  if (tc === undefined) {
    throw new ResourceLimitError(
      `this model (C = ${spec.cIn + spec.cH}, F = ${spec.features}) needs ${bytes(4)} bytes of workgroup memory ` +
        `per tile of 4 cells, over this GPU's ${maxWorkgroupStorage} bytes: use the CPU backend`,
    );
  }
  return tc;
}

/** Floats of the weights packed for step_forward (`step_weights_len`). */
export function stepWeightsLen(spec: ModelSpec): number {
  const f8 = Math.ceil(spec.features / 8) * 8;
  const ch4 = Math.ceil(spec.cH / 4) * 4;
  return neighbours(spec) * (spec.cIn + spec.cH) * f8 + spec.features * ch4;
}

/**
 * The weights as step_forward reads them (`wpack` in step.wgsl; `pack_step_weights`): W1
 * [K C][F8], each row padded with zeros to a multiple of 8 features, then W2 [F][CH4], each
 * row padded to a multiple of 4 channels, so every vec4 load is aligned and whole.
 */
export function packStepWeights(spec: ModelSpec, params: Float32Array): Float32Array {
  const l = paramLayout(spec);
  const f = spec.features;
  const ch = spec.cH;
  const f8 = Math.ceil(f / 8) * 8;
  const ch4 = Math.ceil(ch / 4) * 4;
  const rows = neighbours(spec) * (spec.cIn + spec.cH);
  const out = new Float32Array(stepWeightsLen(spec));
  for (let r = 0; r < rows; r++) out.set(params.subarray(l.w1[0] + r * f, l.w1[0] + (r + 1) * f), r * f8);
  const w2 = rows * f8;
  for (let r = 0; r < f; r++) out.set(params.subarray(l.w2[0] + r * ch, l.w2[0] + (r + 1) * ch), w2 + r * ch4);
  return out;
}

/** Checks a parameter array against the spec (`Spec::check_params`). */
export function checkParams(spec: ModelSpec, params: Float32Array, where: string): void {
  if (!(params instanceof Float32Array)) throw new InvalidInputError(`${where}: params must be a Float32Array`);
  const want = paramLayout(spec).total;
  if (params.length !== want) throw new InvalidInputError(`${where}: params has ${params.length} values but this spec needs ${want}`);
  const bad = params.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new InvalidInputError(`${where}: params[${bad}] is ${params[bad]} (must be finite)`);
}

/**
 * `n` workgroups as (x, y) with x <= max: x * y >= n; kernels recover the linear index as
 * `id.x + id.y * num_workgroups.x` and workgroups past n exit early (`context::fold`).
 */
export function fold(n: number, max: number): [number, number] {
  if (n <= max) return [Math.max(n, 1), 1];
  const y = Math.ceil(n / max);
  return [Math.ceil(n / y), y];
}

/** Bytes between records of `bytes` addressed by dynamic offsets (`stride`). */
export function stride(bytes: number, align: number): number {
  return Math.ceil(bytes / align) * align;
}

/** Uniform records of u32 words laid out `stride` bytes apart (`records`). */
export function records(recs: readonly (readonly number[])[], strideBytes: number): Uint32Array {
  const out = new Uint32Array((Math.max(recs.length, 1) * strideBytes) / 4);
  recs.forEach((r, i) => out.set(r, (i * strideBytes) / 4));
  return out;
}
