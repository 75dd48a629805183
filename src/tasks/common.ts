/**
 * Validation and encoding shared by the tasks: length and batch checks with messages that name
 * the argument at fault, and the base class of tasks that map a row of bits to a row of bits.
 */
import { InvalidInputError } from "../errors.js";
import type { Rng } from "../rng.js";
import type { BatchShape, Boundary, Dfa, Encoded, GridSize, RegularRelation, Task, TaskInfo } from "./types.js";
import { BOUNDARIES } from "./types.js";

/** An integer >= min (an input length, a generation count, ...). */
export function checkCount(value: unknown, name: string, min = 1): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidInputError(`${name} must be an integer >= ${min}, got ${describeValue(value)}`);
  }
  return value;
}

export function checkBoundary(value: unknown, name = "boundary"): Boundary {
  if (!BOUNDARIES.includes(value as Boundary)) {
    throw new InvalidInputError(`${name} must be "zero" or "periodic", got ${describeValue(value)}`);
  }
  return value as Boundary;
}

/** A row of bits: a Uint8Array holding only 0 and 1, non-empty. */
export function checkBits(row: unknown, name: string): Uint8Array {
  if (!(row instanceof Uint8Array)) {
    throw new InvalidInputError(`${name} must be a Uint8Array of bits, got ${describeValue(row)}`);
  }
  if (row.length === 0) throw new InvalidInputError(`${name} is empty; it needs at least one bit`);
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > 1) throw new InvalidInputError(`${name}: value ${v} at position ${i} is not a bit (0 or 1)`);
  }
  return row;
}

/** A non-empty array of inputs whose lengths all match; returns that common length. */
export function checkBatch<I>(inputs: readonly I[], lengthOf: (input: I, name: string) => number): number {
  if (!Array.isArray(inputs)) throw new InvalidInputError(`inputs must be an array, got ${describeValue(inputs)}`);
  if (inputs.length === 0) throw new InvalidInputError("inputs is empty; a batch needs at least one input");
  let length = -1;
  inputs.forEach((input, n) => {
    const l = lengthOf(input, `inputs[${n}]`);
    if (length < 0) length = l;
    else if (l !== length) {
      throw new InvalidInputError(
        `inputs[${n}] has length ${l} but inputs[0] has length ${length}; all inputs in one batch must have the same length`,
      );
    }
  });
  return length;
}

/** Checks the arguments of `Task.decode`: outputs is [batch][height][width], width >= minWidth. */
export function checkDecodeArgs(outputs: unknown, shape: unknown, minWidth: number): BatchShape {
  if (!(outputs instanceof Uint8Array)) {
    throw new InvalidInputError(`outputs must be a Uint8Array of class indices, got ${describeValue(outputs)}`);
  }
  if (typeof shape !== "object" || shape === null) {
    throw new InvalidInputError(`shape must be an object { batch, height, width }, got ${describeValue(shape)}`);
  }
  const s = shape as Partial<BatchShape>;
  const b = checkCount(s.batch, "batch");
  const h = checkCount(s.height ?? 1, "height");
  const w = checkCount(s.width, "width", minWidth);
  if (outputs.length !== b * h * w) {
    throw new InvalidInputError(
      h === 1
        ? `outputs has ${outputs.length} values but batch * width = ${b} * ${w} = ${b * w}`
        : `outputs has ${outputs.length} values but batch * height * width = ${b} * ${h} * ${w} = ${b * h * w}`,
    );
  }
  return { batch: b, height: h, width: w };
}

/** A short rendering of a bad value for an error message. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `a ${value.constructor?.name ?? "object"}`;
}

/** ASCII bytes to a string in one call: O(L), fine for millions of characters. */
const asciiDecoder = new TextDecoder("latin1");
export function asciiString(bytes: Uint8Array): string {
  return asciiDecoder.decode(bytes);
}

/**
 * A DFA from its transition function: `step(state, symbol)` gives the next state or -1 (dead).
 */
export function buildDfa(
  states: number,
  symbols: number,
  start: number,
  accept: (state: number) => boolean,
  step: (state: number, symbol: number) => number,
): Dfa {
  const next = new Int32Array(states * symbols);
  for (let q = 0; q < states; q++) for (let a = 0; a < symbols; a++) next[q * symbols + a] = step(q, a);
  return { symbols, start, accept: Array.from({ length: states }, (_, q) => accept(q)), next };
}

/**
 * A task from a row of bits to a row of bits of the same length (parity, elementary automata).
 * Inputs are one-hot (cIn = 2) so that a 0 bit differs from the zero padding outside the grid.
 */
export abstract class BitRowTask implements Task<Uint8Array, Uint8Array> {
  abstract readonly name: string;
  abstract readonly title: string;
  abstract readonly boundary: Boundary;
  readonly dims = 1;
  readonly cIn = 2;
  readonly cOut = 2;

  abstract describe(): TaskInfo;

  /** The exact output for a row already checked to be bits. */
  protected abstract compute(row: Uint8Array): Uint8Array;

  grid(length: number): GridSize {
    return { height: 1, width: checkCount(length, "length") };
  }

  sizeOf(input: Uint8Array): number {
    return checkBits(input, "input").length;
  }

  parseInput(text: string): Uint8Array {
    const s = text.trim();
    if (s.length === 0) throw new InvalidInputError("the input is empty; it is a string of 0 and 1");
    const bad = /[^01]/.exec(s);
    if (bad) throw new InvalidInputError(`character ${JSON.stringify(bad[0])} at position ${bad.index} is not a bit (the input is a string of 0 and 1)`);
    return Uint8Array.from(s, (c) => (c === "1" ? 1 : 0));
  }

  formatInput(input: Uint8Array): string {
    return asciiString(Uint8Array.from(input, (b) => 48 + b));
  }

  formatAnswer(answer: Uint8Array): string {
    return this.formatInput(answer);
  }

  reference(input: Uint8Array): Uint8Array {
    return this.compute(checkBits(input, "input"));
  }

  encode(inputs: readonly Uint8Array[]): Encoded {
    const width = checkBatch(inputs, (input, name) => checkBits(input, name).length);
    const batch = inputs.length;
    const x = new Float32Array(batch * width * 2);
    const target = new Int32Array(batch * width);
    inputs.forEach((row, n) => {
      const out = this.compute(row);
      const offset = n * width;
      for (let i = 0; i < width; i++) {
        x[2 * (offset + i) + row[i]!] = 1;
        target[offset + i] = out[i]!;
      }
    });
    return { batch, height: 1, width, cIn: 2, cOut: 2, x, target };
  }

  decode(outputs: Uint8Array, shape: BatchShape): Uint8Array[] {
    const { batch, width } = checkDecodeArgs(outputs, shape, 1);
    const rows: Uint8Array[] = [];
    for (let n = 0; n < batch; n++) {
      const row = outputs.slice(n * width, (n + 1) * width);
      checkBits(row, `outputs[${n}]`);
      rows.push(row);
    }
    return rows;
  }

  sample(rng: Rng, length: number): Uint8Array {
    const row = new Uint8Array(checkCount(length, "length"));
    for (let i = 0; i < row.length; i++) row[i] = rng.bit();
    return row;
  }

  equal(a: Uint8Array, b: Uint8Array): boolean {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /**
   * A bit task's automata: symbols 0 and 1 are the bits (their cells as `encode` writes them),
   * every non-empty row is valid, and the relation, over `bit * 2 + output`, is the DFA with
   * `states`, `start`, `accept` and `step(state, bit, output)` (-1 when the output is wrong).
   */
  protected bitRelation(
    states: number,
    start: number,
    accept: (state: number) => boolean,
    step: (state: number, bit: number, output: number) => number,
  ): RegularRelation<Uint8Array> {
    const alphabet = [0, 1].map((b) => this.encode([Uint8Array.of(b)]).x);
    return {
      alphabet,
      names: ["0", "1"],
      // 0: nothing read yet, 1: one bit or more
      domain: buildDfa(2, 2, 0, (q) => q === 1, () => 1),
      relation: buildDfa(states, 4, start, accept, (q, a) => step(q, a >> 1, a & 1)),
      input: (symbols) => Uint8Array.from(symbols),
    };
  }
}
