/**
 * The GPU backend: the Backend interface over the native sead-gpu classes (WGSL compute
 * kernels run through wgpu on Vulkan, Metal or DirectX 12). Same math as the CPU backend,
 * held to it by the tests within stated tolerances (test/gpu.test.ts).
 *
 *   const backend = createBackend({ backend: "gpu" });   // or "auto"
 *   const tuned = new GpuBackend({ tileCells: 16, workgroupThreads: 64 });
 *
 * The adapter is the best one wgpu finds (discrete, integrated, virtual, other, then
 * software), or the first whose name contains `adapter` (or the SEAD_GPU_ADAPTER
 * environment variable, which createBackend passes on).
 */
import { z } from "zod";
import type * as Native from "../../index.js";
import type {
  Backend,
  BackendInfo,
  GridShape,
  Session,
  SessionOptions,
  TrainBatch,
  TrainStepResult,
} from "./types.js";
import { DEFAULT_MAX_SESSION_BYTES } from "./types.js";
import { SeadError } from "../errors.js";
import type { ModelSpec } from "../model/spec.js";
import { callSync, native, nativeError, withCancel } from "./native.js";
import { checkSessionArgs, NativeSession } from "./native-session.js";
import { parseWith } from "../schema.js";

export const gpuBackendOptionsSchema = z.strictObject({
  /** Use the first adapter whose name contains this (case-insensitive). */
  adapter: z.string().min(1).optional(),
  /** Steps recorded per GPU submission; convergence stats are read back this often. */
  checkEvery: z.number().int().min(1).max(4096).optional(),
  /** Refuse a session needing more GPU bytes than this. */
  maxSessionBytes: z.number().int().positive().optional(),
  /**
   * Tuning of the step kernel for this GPU (scripts/gpu-sweep.sh measures the choices):
   * cells per tile (default: chosen per model) and threads per workgroup (default 128).
   * Results do not depend on them.
   */
  tileCells: z.union([z.literal(4), z.literal(8), z.literal(16), z.literal(32), z.literal(64)], { message: "must be 4, 8, 16, 32 or 64" }).optional(),
  workgroupThreads: z.union([z.literal(32), z.literal(64), z.literal(128), z.literal(256)], { message: "must be 32, 64, 128 or 256" }).optional(),
});
export type GpuBackendOptions = z.input<typeof gpuBackendOptionsSchema>;

/** What wgpu reports about an adapter. */
export type GpuAdapterInfo = Native.GpuAdapterInfo;

/** A native module built without the GPU classes (an older prebuilt binary). */
function hasGpu(n: typeof Native): boolean {
  return typeof (n as { GpuDevice?: unknown }).GpuDevice === "function";
}

let adapterList: GpuAdapterInfo[] | undefined;

/**
 * Every GPU adapter wgpu finds on this machine, best first (empty without a driver, or in a
 * build of the native module without GPU support). Enumerated once per process.
 */
export function gpuAdapters(): GpuAdapterInfo[] {
  if (!adapterList) {
    const n = native();
    adapterList = hasGpu(n) ? callSync("gpuAdapters", () => n.gpuAdapters()) : [];
  }
  return adapterList.map((a) => ({ ...a }));
}

function describe(a: GpuAdapterInfo): string {
  return `${a.name} (${a.backend}, ${a.deviceType}${a.driver ? `, ${a.driver}` : ""})`;
}

/** The Backend on a GPU adapter. Dispose it when done (sessions keep the device alive). */
export class GpuBackend implements Backend {
  readonly name = "gpu" as const;
  private readonly opts: z.output<typeof gpuBackendOptionsSchema>;
  private readonly device: Native.GpuDevice;
  private readonly adapter: GpuAdapterInfo;
  private disposed = false;
  readonly maxSessionBytes: number;

  /**
   * Opens the adapter. Throws a SeadError that lists the adapters wgpu found and what to
   * install when there is none.
   */
  constructor(options: GpuBackendOptions = {}) {
    this.opts = parseWith(gpuBackendOptionsSchema, options, "gpu backend options");
    this.maxSessionBytes = this.opts.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
    const n = native();
    if (!hasGpu(n)) {
      throw new SeadError(
        "backend \"gpu\": this build of sead's native module has no GPU support; rebuild it with " +
          "`npm run build:native`, or use backend \"cpu\"",
      );
    }
    try {
      this.device = n.GpuDevice.create(this.opts.adapter ?? null);
      this.adapter = this.device.info();
    } catch (e) {
      throw nativeError(e, "backend \"gpu\"");
    }
  }

  /** The adapter the kernels run on. */
  get adapterInfo(): GpuAdapterInfo {
    return { ...this.adapter };
  }

  info(): BackendInfo {
    return { name: "gpu", device: `gpu: ${describe(this.adapter)}`, threads: 1 };
  }

  trainStep(spec: ModelSpec, params: Float32Array, batch: TrainBatch, signal?: AbortSignal): Promise<TrainStepResult> {
    return withCancel(signal, "trainStep", (token) => native().gpuTrainStep(this.device, { ...spec }, params, batch, token ?? null));
  }

  createSession(spec: ModelSpec, grid: GridShape, x: Float32Array, options: SessionOptions = {}): Session {
    checkSessionArgs(grid, x, options);
    const inner = callSync(
      "createSession",
      () =>
        new (native().GpuInferenceSession)(this.device, { ...spec }, grid, x, {
          ...(this.opts.checkEvery ? { checkEvery: this.opts.checkEvery } : {}),
          ...(this.opts.maxSessionBytes ? { maxBytes: this.opts.maxSessionBytes } : {}),
          ...(this.opts.tileCells ? { tileCells: this.opts.tileCells } : {}),
          ...(this.opts.workgroupThreads ? { workgroupThreads: this.opts.workgroupThreads } : {}),
          ...(options.freeze !== undefined ? { freeze: options.freeze } : {}),
        }),
    );
    return new NativeSession(inner, { ...grid });
  }

  sessionBytes(spec: ModelSpec, grid: GridShape): number {
    return callSync("sessionBytes", () => native().GpuInferenceSession.bytesNeeded({ ...spec }, grid));
  }

  /** Releases the device (sessions still open keep it until they are disposed). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    callSync("backend.dispose", () => this.device.dispose());
  }
}
