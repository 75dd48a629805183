/**
 * The CPU backend: the Backend interface over the native sead-core kernels (portable or
 * AVX2, on a thread pool).
 */
import type { z } from "zod";
import type * as Native from "../../index.js";
import type { ModelSpec } from "../model/spec.js";
import { parseWith } from "../schema.js";
import { callSync, native, nativeBuild, withCancel } from "./native.js";
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

function nativeSpec(spec: ModelSpec): Native.SpecInput {
  return { ...spec };
}

export class CpuBackend implements Backend {
  readonly name = "cpu" as const;
  private readonly opts: z.output<typeof backendOptionsSchema>;

  readonly maxSessionBytes: number;

  constructor(options: BackendOptions = {}) {
    this.opts = parseWith(backendOptionsSchema, options, "backend options");
    this.maxSessionBytes = this.opts.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
  }

  info(): BackendInfo {
    const n = native().nativeInfo();
    const simd = this.opts.simd === "auto" ? n.simd : this.opts.simd;
    const threads = this.opts.threads || n.defaultThreads;
    // The WebAssembly (WASI) build: the portable kernels compiled with WebAssembly SIMD; WASI
    // cannot tell the core count, so its default is 1 thread (more, asked for, are workers).
    const wasm = nativeBuild() === "wasm" ? ", WebAssembly (WASI) build" : "";
    return { name: "cpu", device: `cpu: ${simd}, ${threads} thread${threads === 1 ? "" : "s"}${wasm}`, threads };
  }

  trainStep(spec: ModelSpec, params: Float32Array, batch: TrainBatch, signal?: AbortSignal): Promise<TrainStepResult> {
    return withCancel(signal, "trainStep", (token) =>
      native().trainStepAsync(nativeSpec(spec), params, batch, this.opts.threads, token ?? null),
    );
  }

  createSession(spec: ModelSpec, grid: GridShape, x: Float32Array, options: SessionOptions = {}): Session {
    checkSessionArgs(grid, x, options);
    const inner = callSync(
      "createSession",
      () =>
        new (native().InferenceSession)(nativeSpec(spec), grid, x, {
          threads: this.opts.threads,
          simd: this.opts.simd,
          ...(this.opts.maxSessionBytes ? { maxBytes: this.opts.maxSessionBytes } : {}),
          ...(options.freeze !== undefined ? { freeze: options.freeze } : {}),
        }),
    );
    return new NativeSession(inner, { ...grid });
  }

  sessionBytes(spec: ModelSpec, grid: GridShape): number {
    return callSync("sessionBytes", () => native().InferenceSession.bytesNeeded(nativeSpec(spec), grid));
  }

  dispose(): void {
    /* the CPU backend holds nothing beyond its sessions */
  }
}
