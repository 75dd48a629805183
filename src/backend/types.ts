/**
 * The Backend interface: the small kernel set the training and evaluation code talks to
 * (train step, inference session with stepping and convergence), and the options of
 * createBackend. The CPU backend (cpu.ts) and the GPU backend (gpu.ts) implement it over the
 * native module.
 */
import { z } from "zod";
import type { ModelSpec } from "../model/spec.js";

export interface GridShape {
  batch: number;
  height: number;
  width: number;
}

export interface TrainBatch {
  grid: GridShape;
  /** [batch][height][width][cIn] */
  x: Float32Array;
  /** [batch][height][width], class per cell, -1 = not supervised */
  target: Int32Array;
  /** Loss weight of the state after each step; its length is the unroll length T. */
  stepWeights: Float32Array;
  /** Std of Gaussian noise added to h before every step (0 = none). */
  noiseStd?: number;
  noiseSeed?: number;
  /**
   * Weight of the settling penalty: at each step with a loss weight w > 0, adds
   * settleWeight x w x the mean of (h_t - h_{t-1})^2 over every hidden value (h_t before rounding
   * for quantized models), so the hidden state, not only the outputs, must stop moving. 0 = off.
   * The GPU backend does not implement it yet and refuses a batch that sets it.
   */
  settleWeight?: number;
  /**
   * The hidden state each sample starts from, [batch][height][width][cH] (absent: zero, as
   * inference starts). The GPU backend does not implement it and refuses a batch that sets it.
   */
  h0?: Float32Array;
}

export interface TrainStepResult {
  /** Sum over steps of weight x mean cross-entropy over supervised cells. */
  loss: number;
  /** d loss / d params in the flat layout. */
  grad: Float32Array;
  /** Samples entirely right after the last step. */
  exact: number;
  cellsCorrect: number;
  cellsSupervised: number;
}

export interface ConvergeOptions {
  /** Steps in a row with no output change before a sample counts as settled. */
  patience: number;
  /** The last step's max |h' - h| must be below this. */
  tol: number;
  /** Stop a sample after this many steps (counted from the session's start). */
  maxSteps: number;
}

export interface ConvergeResult {
  /** Steps each sample took. */
  steps: Float64Array;
  /** 1 where the sample settled, 0 where it reached maxSteps. */
  converged: Uint8Array;
  lastMaxDelta: Float32Array;
}

export interface StepResult {
  /** [steps][batch] max |h' - h| */
  maxDelta: Float32Array;
  /** [steps][batch] cells whose output changed */
  changed: Float64Array;
}

export interface SessionOptions {
  /**
   * Skip settled cells (1D and 2D grids): each step computes only the cells next to the last
   * step's changes (the GPU backend: the tiles of cells next to them), and a cell whose
   * hidden channels would all move by at most `freeze` keeps its state bit for bit. 0 skips
   * only what would not change at all (the states of plain stepping); 1e-5 lets states that
   * flicker in their last bits settle, so a long carry costs a few cells a step. Absent:
   * every cell, every step.
   */
  freeze?: number;
}

/** A batch of grids held by a backend, stepped in place. Dispose it when done. */
export interface Session {
  readonly grid: GridShape;
  step(params: Float32Array, steps: number, options?: { active?: Uint8Array; signal?: AbortSignal }): Promise<StepResult>;
  converge(params: Float32Array, options: ConvergeOptions, signal?: AbortSignal): Promise<ConvergeResult>;
  /** Argmax output per cell, [batch][height][width]. */
  outputs(): Uint8Array;
  /** Hidden state, [batch][height][width][cH]. */
  hidden(): Float32Array;
  logits(params: Float32Array): Float32Array;
  steps(): Float64Array;
  /**
   * Cell updates each sample has computed: steps x cells, or fewer with `freeze`, and on the
   * CPU for a quantized spec (stepped event-driven: the neighbourhoods of the cells that changed).
   */
  cellsComputed(): Float64Array;
  dispose(): void;
}

export interface BackendInfo {
  name: "cpu" | "gpu";
  /** What runs the kernels, e.g. "cpu: avx2, 2 threads". */
  device: string;
  threads: number;
}

/** The native sessions' default cap on their memory (both backends'). */
export const DEFAULT_MAX_SESSION_BYTES = 16 * 2 ** 30;

export interface Backend {
  readonly name: "cpu" | "gpu";
  /** The most bytes a session may hold (the `maxSessionBytes` option, default 16 GiB). */
  readonly maxSessionBytes: number;
  info(): BackendInfo;
  trainStep(spec: ModelSpec, params: Float32Array, batch: TrainBatch, signal?: AbortSignal): Promise<TrainStepResult>;
  createSession(spec: ModelSpec, grid: GridShape, x: Float32Array, options?: SessionOptions): Session;
  /** Bytes a session of this shape would hold. */
  sessionBytes(spec: ModelSpec, grid: GridShape): number;
  dispose(): void;
}

/** The options of createBackend (and of CpuBackend, which ignores `backend`). */
export const backendOptionsSchema = z.strictObject({
  backend: z.enum(["cpu", "gpu", "auto"]).default("auto"),
  /** Threads for the CPU kernels; 0 = every core. */
  threads: z.number().int().min(0).max(1024).default(0),
  /** CPU kernel: "auto" picks AVX2 where the CPU has it. */
  simd: z.enum(["auto", "avx2", "portable"]).default("auto"),
  /** Refuse a session needing more bytes than this. */
  maxSessionBytes: z.number().int().positive().optional(),
});
export type BackendOptions = z.input<typeof backendOptionsSchema>;
