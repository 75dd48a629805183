/**
 * Inference on WebGPU in the browser: a TypeScript host over the same WGSL files as the Rust
 * GPU backend (crates/sead-gpu/wgsl/common.wgsl + step.wgsl), so the model's math, the settle
 * test and the per-sample convergence are written once, in WGSL (step_forward, step_packed,
 * sample_update, readout_outputs); the host only allocates, uploads, dispatches and reads back.
 *
 * Why a TypeScript host rather than wgpu compiled to wasm32: the Rust host blocks on buffer
 * maps (pollster, device.poll), which a browser's main thread cannot do, and wgpu on wasm would
 * add a second wasm toolchain (wasm-bindgen) beside the napi WASI build of the CPU kernels.
 *
 * What mirrors what in crates/sead-gpu/src:
 * - createWebGpuBackend / WebGpuContext (webgpu/context.ts): `GpuContext::new`, `layout`,
 *   `pipeline`, `buffer`, `check`, `read_mapped`;
 * - webgpu/kernels.ts: kernels.rs (`step_source`, `step_constants`, `step_layout`,
 *   `pack_step_weights`, `fold`, `records`);
 * - WebGpuSession (webgpu/session.ts): session.rs `GpuSession` (`new`, `step`, `converge`,
 *   `upload_samples`, `compact`, `write_conv`, `record_steps`, `refresh_outputs`, `outputs`,
 *   `hidden`, and for settled-tile skipping `set_freeze`, `forget_still_tiles`).
 * Left out: training (train.wgsl), the layout tuning options (tileCells, workgroupThreads),
 * logits (no WGSL entry point writes them) and the timestamp profiler. See docs/webgpu.md.
 */
import { DEFAULT_MAX_SESSION_BYTES } from "../backend/types.js";
import type { Backend, BackendInfo, GridShape, Session, SessionOptions, TrainStepResult } from "../backend/types.js";
import { InvalidInputError, SeadError } from "../errors.js";
import { type ModelSpec, parseSpec } from "../model/spec.js";
import { WebGpuContext } from "./webgpu/context.js";
import type { GPU } from "./webgpu/gpu-types.js";
import { WebGpuSession } from "./webgpu/session.js";

export type { GPU } from "./webgpu/gpu-types.js";
export { WebGpuError } from "./webgpu/context.js";
export { WebGpuSession } from "./webgpu/session.js";

export interface WebGpuBackendOptions {
  /** The WebGPU entry point; default `navigator.gpu`. */
  gpu?: GPU;
  /** Refuse a session needing more bytes than this (default 16 GiB, as the native backends). */
  maxSessionBytes?: number;
  /**
   * Cap on any one buffer binding (default: the device's limit), as the Rust host's
   * `SessionOptions::max_group_bytes`: lower it to split a small batch into several groups of
   * samples in tests. Results do not depend on it.
   */
  maxGroupBytes?: number;
}

/**
 * Opens a WebGPU device (the high-performance adapter) for inference. Fails with a SeadError
 * naming what is missing when the browser has no WebGPU, no adapter, or the adapter falls
 * short of what the kernels need.
 */
export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const maxSessionBytes = options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
  if (!Number.isInteger(maxSessionBytes) || maxSessionBytes <= 0) {
    throw new InvalidInputError(`createWebGpuBackend: maxSessionBytes must be a positive integer, got ${String(maxSessionBytes)}`);
  }
  const gpu = options.gpu ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new SeadError(
      "WebGPU is not available here (navigator.gpu is missing): use a browser with WebGPU enabled, " +
        "served over https or from localhost, or the CPU (WebAssembly) backend",
    );
  }
  let adapter;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw new SeadError(`WebGPU could not be asked for an adapter: ${(e as Error).message}`, { cause: e });
  }
  if (!adapter) {
    throw new SeadError("WebGPU is present but offers no adapter (no usable GPU, or WebGPU is disabled for it): use the CPU backend");
  }
  const maxGroupBytes = options.maxGroupBytes;
  if (maxGroupBytes !== undefined && (!Number.isInteger(maxGroupBytes) || maxGroupBytes < 16)) {
    throw new InvalidInputError(`createWebGpuBackend: maxGroupBytes must be an integer of at least 16, got ${String(maxGroupBytes)}`);
  }
  const ctx = await WebGpuContext.open(adapter);
  return new WebGpuBackend(ctx, maxSessionBytes, maxGroupBytes);
}

/** The Backend interface over WebGPU: inference sessions only. */
export class WebGpuBackend implements Backend {
  readonly name = "gpu" as const;
  private disposed = false;

  /** Use createWebGpuBackend, which opens the device. */
  constructor(
    private readonly ctx: WebGpuContext,
    readonly maxSessionBytes: number,
    private readonly maxGroupBytes?: number,
  ) {}

  info(): BackendInfo {
    return { name: "gpu", device: `webgpu: ${this.ctx.adapterName}`, threads: 1 };
  }

  trainStep(): Promise<TrainStepResult> {
    return Promise.reject(
      new InvalidInputError("trainStep: training is not available on WebGPU in the browser (inference only): train with the native backends"),
    );
  }

  /** GPU memory a session of this shape holds, in bytes (`GpuSession::bytes_needed`). */
  sessionBytes(spec: ModelSpec, grid: GridShape): number {
    const s = parseSpec(spec, "sessionBytes.spec");
    return grid.batch * grid.height * grid.width * 4 * (s.cIn + 2 * s.cH + 1);
  }

  createSession(spec: ModelSpec, grid: GridShape, x: Float32Array, options: SessionOptions = {}): Session {
    if (this.disposed) throw new InvalidInputError("createSession: this backend was disposed");
    const s = parseSpec(spec, "createSession.spec");
    return new WebGpuSession(this.ctx, s, grid, x, {
      maxBytes: this.maxSessionBytes,
      needBytes: this.sessionBytes(s, grid),
      freeze: options.freeze,
      maxGroupBytes: this.maxGroupBytes,
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ctx.destroy();
  }
}

