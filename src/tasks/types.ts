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

/**
 * A deterministic finite automaton over the symbols 0..symbols-1, read one cell at a time
 * from the left: `next[state * symbols + symbol]` is the next state, -1 a dead transition
 * (the word is rejected whatever follows). A word is accepted when it ends in a state whose
 * `accept` is true.
 */
export interface Dfa {
  readonly symbols: number;
  readonly start: number;
  readonly accept: readonly boolean[];
  readonly next: Int32Array;
}

/**
 * A 1D task's exact input/output relation as automata over cells (docs/verify.md): what
 * `sead verify` proves a quantized model against.
 */
export interface RegularRelation<I> {
  /** The input symbols: each is one cell's C_in input channels exactly as `encode` writes them. */
  readonly alphabet: readonly Float32Array[];
  /** A short name per symbol for people ("1+0", "end"). */
  readonly names: readonly string[];
  /** The valid inputs, as words over symbol indices, cell 0 first. */
  readonly domain: Dfa;
  /**
   * The right answers: words over `symbol * cOut + class`, one per cell, cell 0 first; it
   * accepts an input (valid for `domain`) with the classes of exactly the answers `encode`'s
   * targets give, any class on an unsupervised cell.
   */
  readonly relation: Dfa;
  /** The task's input for a word of symbol indices that `domain` accepts. */
  input(symbols: readonly number[]): I;
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
  /**
   * The task as automata over cells, for `sead verify` (1D, zero boundary). It throws an
   * `InvalidInputError` saying why when this instance has none (e.g. a periodic boundary).
   */
  regularRelation?(): RegularRelation<I>;
}
