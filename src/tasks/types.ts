/**
 * The contract between a task (what to compute, exactly) and the model (a grid of cells).
 * A task turns inputs into clamped input channels and per-cell targets on a 1D row or a 2D
 * grid, turns per-cell argmax outputs back into answers, and knows the exact answer so every
 * result can be checked. Tasks are registered by name (registry.ts): the built-in ones and a
 * user's own are found the same way, from a checkpoint, a config or the command line.
 */
import type { Rng } from "../rng.js";

/** What lies outside the grid: zeros, or the grid wrapped around. */
export type Boundary = "zero" | "periodic";

export const BOUNDARIES: readonly Boundary[] = ["zero", "periodic"];

/**
 * A task's identity and options, JSON-able, stored in checkpoints and configs; `taskFromInfo`
 * rebuilds the task from it through the registry. `name` is the task family (a registered
 * definition's name); the other keys are that definition's options.
 */
export interface TaskInfo {
  readonly name: string;
  readonly [option: string]: unknown;
}

export interface ParityInfo extends TaskInfo {
  readonly name: "parity";
}

export interface AdditionInfo extends TaskInfo {
  readonly name: "addition";
  readonly base: number;
}

export interface ElementaryInfo extends TaskInfo {
  readonly name: "elementary";
  readonly rule: number;
  readonly boundary: Boundary;
}

export interface MultiplicationInfo extends TaskInfo {
  readonly name: "multiplication";
  readonly supervise: "edges" | "all";
}

/** A grid's shape: 1D tasks have height 1. */
export interface GridSize {
  height: number;
  width: number;
}

/** A batch's shape: `batch` grids of one size. */
export interface BatchShape extends GridSize {
  batch: number;
}

/** A batch ready for the model. */
export interface Encoded extends BatchShape {
  cIn: number;
  cOut: number;
  /** [batch][height][width][cIn], channel-last: the clamped input channels. */
  x: Float32Array;
  /** [batch][height][width]: class index per cell, -1 = not supervised. */
  target: Int32Array;
}

/** A named input, e.g. an adversarial case ("carry chain 1000"). */
export interface NamedInput<I> {
  name: string;
  input: I;
}

export interface Task<I, O> {
  /** A display name that `parseTaskName` accepts, e.g. "parity", "addition-base10", "elementary-rule110". */
  readonly name: string;
  /** A human title for tables and pictures: "binary addition", "rule 110". */
  readonly title: string;
  /** 1: a row of cells, 3-wide neighbourhoods. 2: a grid, 3x3 neighbourhoods. */
  readonly dims: 1 | 2;
  readonly cIn: number;
  readonly cOut: number;
  /** The boundary the model's grid must use for this task (periodic rules need a periodic grid). */
  readonly boundary: Boundary;
  /** The grid for an input of this size (digits, bits, cells: what `sample` takes). */
  grid(size: number): GridSize;
  /** The size of an input, as `grid` and `sample` take it. */
  sizeOf(input: I): number;
  /** Encode a batch; all inputs in one batch must have the same size. */
  encode(inputs: readonly I[]): Encoded;
  /** `outputs` holds the argmax class per cell, [batch][height][width]. */
  decode(outputs: Uint8Array, shape: BatchShape): O[];
  /** The exact answer. */
  reference(input: I): O;
  /** A uniformly random input of this size. */
  sample(rng: Rng, size: number): I;
  equal(a: O, b: O): boolean;
  describe(): TaskInfo;
  /**
   * A training input: the task's curriculum (hard cases mixed into uniform ones), with
   * `curriculum` the config's options for it, checked by the definition's `curriculum`
   * schema. Without it the trainer uses `sample`.
   */
  trainingSample?(rng: Rng, size: number, curriculum: Readonly<Record<string, unknown>>): I;
  /** Adversarial inputs of a size for evaluation (e.g. carry chains, all ones times all ones). */
  hardCases?(size: number): NamedInput<I>[];
  /** Parses an input typed on the command line (`sead run --input ...`). */
  parseInput?(text: string): I;
  /** An input as text for people (the CLI's output). */
  formatInput?(input: I): string;
  /** An answer as text for people. */
  formatAnswer?(answer: O): string;
}
