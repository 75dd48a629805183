/**
 * The CPU backend: the Backend interface over the native sead-core kernels (portable or
 * AVX2, on a thread pool).
 */
import type { z } from "zod";
import type * as Native from "../../index.js";
import { ResourceLimitError } from "../errors.js";
import type { ModelSpec } from "../model/spec.js";
import { parseWith } from "../schema.js";
import { callSync, native, nativeBuild, threadsArg, withCancel } from "./native.js";
import { checkSessionArgs, NativeSession } from "./native-session.js";
import {
  type Backend,
  type BackendInfo,
  type BackendOptions,
  backendOptionsSchema,
  DEFAULT_MAX_SESSION_BYTES,
  type GridShape,
  type Session,
  type SessionOptions,
  type TrainBatch,
  type TrainStepResult,
} from "./types.js";

/** The WebAssembly (WASI) build's default cap on a session's memory (sead-core's on 32-bit targets). */
const WASM_MAX_SESSION_BYTES = 3 * 2 ** 30;

function nativeSpec(spec: ModelSpec): Native.SpecInput {
  return { ...spec };
}

export class CpuBackend implements Backend {
  readonly name = "cpu" as const;
  private readonly opts: z.output<typeof backendOptionsSchema>;

  readonly maxSessionBytes: number;

  constructor(options: BackendOptions = {}) {
    this.opts = parseWith(backendOptionsSchema, options, "backend options");
    this.maxSessionBytes = this.opts.maxSessionBytes ?? (nativeBuild() === "wasm" ? WASM_MAX_SESSION_BYTES : DEFAULT_MAX_SESSION_BYTES);
  }

  info(): BackendInfo {
    const n = native().nativeInfo();
    const simd = this.opts.simd === "auto" ? n.simd : this.opts.simd;
    const threads = threadsArg(this.opts.threads) || n.defaultThreads;
    // The WebAssembly (WASI) build: the portable kernels compiled with WebAssembly SIMD, its
    // threads worker threads (threadsArg: every core is Node's count there).
    const wasm = nativeBuild() === "wasm" ? ", WebAssembly (WASI) build" : "";
    return { name: "cpu", device: `cpu: ${simd}, ${threads} thread${threads === 1 ? "" : "s"}${wasm}`, threads };
  }

  trainStep(spec: ModelSpec, params: Float32Array, batch: TrainBatch, signal?: AbortSignal): Promise<TrainStepResult> {
    return withCancel(signal, "trainStep", (token) =>
      native().trainStepAsync(nativeSpec(spec), params, batch, threadsArg(this.opts.threads), token ?? null),
    );
  }

  createSession(spec: ModelSpec, grid: GridShape, x: Float32Array, options: SessionOptions = {}): Session {
    checkSessionArgs(grid, x, options);
    const inner = callSync(
      "createSession",
      () =>
        new (native().InferenceSession)(nativeSpec(spec), grid, x, {
          threads: threadsArg(this.opts.threads),
          simd: this.opts.simd,
          ...(this.opts.maxSessionBytes ? { maxBytes: this.opts.maxSessionBytes } : {}),
          ...(options.freeze !== undefined ? { freeze: options.freeze } : {}),
        }),
    );
    return new NativeSession(inner, { ...grid });
  }

  sessionBytes(spec: ModelSpec, grid: GridShape): number {
    if (nativeBuild() === "wasm") {
      // 32-bit: a grid whose cells or bytes do not fit the build's usize (the native count
      // saturates at 2^32 - 1, or refuses the cell count) cannot be held at all.
      const cells = grid.batch * grid.height * grid.width;
      const need = cells < 2 ** 32 ? callSync("sessionBytes", () => native().InferenceSession.bytesNeeded(nativeSpec(spec), grid)) : Infinity;
      if (need >= 2 ** 32 - 1) {
        throw new ResourceLimitError(
          `sessionBytes: a ${grid.batch} x ${grid.height} x ${grid.width} grid needs more than 4 GiB, the whole memory of sead's WebAssembly (WASI) build`,
        );
      }
      return need;
    }
    return callSync("sessionBytes", () => native().InferenceSession.bytesNeeded(nativeSpec(spec), grid));
  }

  dispose(): void {
    /* the CPU backend holds nothing beyond its sessions */
  }
}
