/**
 * The contract between a task (what to compute, exactly) and the model (a grid of cells).
 * A task turns inputs into clamped input channels and per-cell targets, turns per-cell argmax
 * outputs back into answers, and knows the exact answer so every result can be checked.
 */
import type { Rng } from "../rng.js";

/** What lies outside the grid: zeros, or the grid wrapped around. */
export type Boundary = "zero" | "periodic";

export const BOUNDARIES: readonly Boundary[] = ["zero", "periodic"];

/**
 * A task's identity and options, JSON-able, stored in checkpoints; `taskFromInfo` rebuilds the
 * task from it. `name` is the task family; the options say which member.
 */
export type TaskInfo = ParityInfo | AdditionInfo | ElementaryInfo;

export interface ParityInfo {
  readonly name: "parity";
}

export interface AdditionInfo {
  readonly name: "addition";
  readonly base: number;
}

export interface ElementaryInfo {
  readonly name: "elementary";
  readonly rule: number;
  readonly boundary: Boundary;
}

/** A batch ready for the model. */
export interface Encoded {
  batch: number;
  height: number; // 1D tasks: height = 1
  width: number;
  cIn: number;
  cOut: number;
  /** [batch][height][width][cIn], channel-last: the clamped input channels. */
  x: Float32Array;
  /** [batch][height][width]: class index per cell, -1 = not supervised. */
  target: Int32Array;
}

export interface Task<I, O> {
  /** A display name that `parseTaskName` accepts, e.g. "parity", "addition-base10", "elementary-rule110". */
  readonly name: string;
  readonly cIn: number;
  readonly cOut: number;
  /** The boundary the model's grid must use for this task (periodic rules need a periodic grid). */
  readonly boundary: Boundary;
  /** Grid width for an input of this length. */
  width(length: number): number;
  /** Encode a batch; all inputs in one batch must have the same length. */
  encode(inputs: readonly I[]): Encoded;
  /** `outputs` holds the argmax class per cell, [batch][width]. */
  decode(outputs: Uint8Array, batch: number, width: number): O[];
  /** The exact answer. */
  reference(input: I): O;
  /** A uniformly random input of this length. */
  sample(rng: Rng, length: number): I;
  equal(a: O, b: O): boolean;
  describe(): TaskInfo;
}
