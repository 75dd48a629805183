/**
 * The device side of the TypeScript host, as crates/sead-gpu/src/context.rs has it: the
 * adapter's limits asked for in full (`GpuContext::new`), bind group layouts from a table of
 * binding kinds (`Bind`, `GpuContext::layout`), the step module and its pipelines, cached by
 * entry point and override constants (`GpuContext::pipeline`), buffers checked against the
 * limits (`GpuContext::buffer`), and errors the device reports out of band collected and
 * raised at the next check (`on_uncaptured_error`, `GpuContext::check`). Reads are awaited
 * (mapAsync) where the Rust host blocks on device.poll.
 */
import { ResourceLimitError, SeadError } from "../../errors.js";
import {
  BufferUsage,
  type GPUAdapter,
  type GPUAdapterInfo,
  type GPUBindGroupLayout,
  type GPUBindGroupLayoutEntry,
  type GPUBuffer,
  type GPUComputePipeline,
  type GPUDevice,
  type GPUShaderModule,
  MAP_MODE_READ,
  SHADER_STAGE_COMPUTE,
} from "./gpu-types.js";
import { STEP_SOURCE } from "./kernels.js";

/** Kinds of bindings in a bind group layout, binding i = position i (`context::Bind`). */
export type Bind = "read" | "write" | "uniform" | "dynamic" | "unused";

/** A device failed or reported an error: what was being done and what it said. */
export class WebGpuError extends SeadError {}

/** The limits the host works with (`GpuLimits`). */
export interface WebGpuLimits {
  maxBinding: number;
  maxBuffer: number;
  maxWorkgroupsPerDim: number;
  maxWorkgroupStorage: number;
  uniformAlign: number;
}

/** Storage buffers step_forward binds (params .. tile_queue, STEP_KINDS in session.rs). */
const STORAGE_BUFFERS_NEEDED = 10;

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC;
export const UNIFORM_USAGE = BufferUsage.UNIFORM | BufferUsage.COPY_DST;
export const STAGING_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST;

/** "vendor architecture description" of an adapter, the empty fields left out. */
export function describeAdapter(info: GPUAdapterInfo | undefined): string {
  if (!info) return "unknown adapter";
  const parts = [info.vendor, info.architecture, info.description || info.device].filter((s) => s !== "");
  return parts.length > 0 ? parts.join(" / ") : "unnamed adapter";
}

export class WebGpuContext {
  readonly limits: WebGpuLimits;
  private readonly errors: string[] = [];
  private lostReason: string | undefined;
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private destroyed = false;

  private constructor(
    readonly device: GPUDevice,
    readonly adapterName: string,
    private readonly module: GPUShaderModule,
  ) {
    const dl = device.limits;
    const cap = 2 ** 31 - 2 ** 16; // the kernels index floats with u32 below 2^31
    const maxBuffer = Math.min(dl.maxBufferSize, cap);
    this.limits = {
      maxBinding: Math.min(dl.maxStorageBufferBindingSize, cap, maxBuffer),
      maxBuffer,
      maxWorkgroupsPerDim: dl.maxComputeWorkgroupsPerDimension,
      maxWorkgroupStorage: dl.maxComputeWorkgroupStorageSize,
      uniformAlign: Math.max(dl.minUniformBufferOffsetAlignment, 16),
    };
    device.addEventListener("uncapturederror", (e) => {
      if (this.errors.length < 16) this.errors.push(e.error.message);
    });
    void device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Opens a device on `adapter` with the adapter's own limits, and compiles the step module. */
  static async open(adapter: GPUAdapter): Promise<WebGpuContext> {
    const name = describeAdapter(adapter.info);
    const al = adapter.limits;
    if (al.maxStorageBuffersPerShaderStage < STORAGE_BUFFERS_NEEDED) {
      throw new WebGpuError(
        `the WebGPU adapter ${name} allows only ${al.maxStorageBuffersPerShaderStage} storage buffers per shader ` +
          `stage; sead's kernels need ${STORAGE_BUFFERS_NEEDED}`,
      );
    }
    // The WebGPU defaults (128 MiB bindings, 256 MiB buffers) are far below what large grids need.
    const requiredLimits: Record<string, number> = {
      maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
      maxBufferSize: al.maxBufferSize,
      maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: al.maxComputeWorkgroupsPerDimension,
      maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
    };
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ label: "sead", requiredLimits });
    } catch (e) {
      throw new WebGpuError(`the WebGPU adapter ${name} refused to open a device: ${(e as Error).message}`, { cause: e });
    }
    const module = device.createShaderModule({ label: "step.wgsl", code: STEP_SOURCE });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length > 0) {
      device.destroy();
      const list = errors.map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}`).join("; ");
      throw new WebGpuError(`the WebGPU adapter ${name} did not compile step.wgsl: ${list}`);
    }
    return new WebGpuContext(device, name, module);
  }

  /** Throws what the device reported since the last check, naming `what` was being done (`check`). */
  check(what: string): void {
    if (this.lostReason !== undefined) throw new WebGpuError(`${what}: the WebGPU device was lost (${this.lostReason})`);
    if (this.errors.length > 0) {
      const list = this.errors.splice(0).join("; ");
      throw new WebGpuError(`${what}: the WebGPU device reported: ${list}`);
    }
  }

  /** A bind group layout for a table of binding kinds, "unused" entries left out (`layout`). */
  layout(kinds: readonly Bind[]): GPUBindGroupLayout {
    const key = kinds.join(",");
    let l = this.layouts.get(key);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [];
      kinds.forEach((k, binding) => {
        if (k === "unused") return;
        const type = k === "read" ? "read-only-storage" : k === "write" ? "storage" : "uniform";
        entries.push({ binding, visibility: SHADER_STAGE_COMPUTE, buffer: { type, hasDynamicOffset: k === "dynamic" } });
      });
      l = this.device.createBindGroupLayout({ label: "sead", entries });
      this.layouts.set(key, l);
    }
    return l;
  }

  /** A compute pipeline of the step module for `entry` with these constants, cached (`pipeline`). */
  pipeline(entry: string, kinds: readonly Bind[], constants: Record<string, number>): GPUComputePipeline {
    const key = `${entry}:${JSON.stringify(constants)}:${kinds.join(",")}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const layout = this.device.createPipelineLayout({ label: entry, bindGroupLayouts: [this.layout(kinds)] });
      p = this.device.createComputePipeline({ label: entry, layout, compute: { module: this.module, entryPoint: entry, constants } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** A buffer of `bytes` (at least 16, a multiple of 4), refused over the buffer limit (`buffer`). */
  buffer(label: string, bytes: number, usage: number): GPUBuffer {
    if (bytes > this.limits.maxBuffer) {
      throw new ResourceLimitError(`${label} needs ${bytes} bytes in one GPU buffer, over this GPU's limit of ${this.limits.maxBuffer}`);
    }
    const size = Math.max(16, Math.ceil(bytes / 4) * 4);
    return this.device.createBuffer({ label, size, usage });
  }

  /** A buffer holding `data` (`buffer_init`). */
  bufferInit(label: string, data: Uint32Array | Float32Array, usage: number): GPUBuffer {
    const b = this.buffer(label, data.byteLength, usage | BufferUsage.COPY_DST);
    if (data.byteLength > 0) this.device.queue.writeBuffer(b, 0, data);
    return b;
  }

  /** Maps staging buffers (already copied into by submitted work) and returns copies of their first bytes (`read_mapped`). */
  async readMapped(what: string, staging: readonly { buffer: GPUBuffer; bytes: number }[]): Promise<ArrayBuffer[]> {
    try {
      await Promise.all(staging.map((s) => s.buffer.mapAsync(MAP_MODE_READ, 0, Math.max(4, Math.ceil(s.bytes / 4) * 4))));
    } catch (e) {
      this.check(what);
      throw new WebGpuError(`${what}: reading back from the GPU failed: ${(e as Error).message}`, { cause: e });
    }
    const out = staging.map((s) => s.buffer.getMappedRange(0, Math.max(4, Math.ceil(s.bytes / 4) * 4)).slice(0, s.bytes));
    for (const s of staging) s.buffer.unmap();
    this.check(what);
    return out;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.device.destroy();
  }
}
