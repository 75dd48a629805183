/**
 * Addition of two L-digit numbers in base 2..16.
 *
 * Grid layout: width L + 1. Cell 0 holds the least significant digits, cell L-1 the most
 * significant, cell L the final carry (its inputs are all zero). Input channels per cell: one-hot
 * digit of a (channels 0..base-1), then one-hot digit of b (channels base..2*base-1). Target at
 * every cell: the digit of the sum at that position (cell L: the final carry, 0 or 1).
 *
 * Operands and answers are digit strings, most significant digit first, as people write them.
 * The answer always has L + 1 digits, its leading digit (the final carry) kept even when it is 0,
 * so answers line up with the grid and with each other.
 *
 * Everything here is digit-wise and O(L): a million-digit addition is encoded, added and decoded
 * in well under a second, with no BigInt (whose string conversion is slow in base 10).
 */
import { InvalidInputError } from "../errors.js";
import type { Rng } from "../rng.js";
import { z } from "zod";
import { asciiString, buildDfa, checkBatch, checkCount, checkDecodeArgs, describeValue } from "./common.js";
import type { TaskDefinition } from "./registry.js";
import type { AdditionInfo, BatchShape, Encoded, GridSize, NamedInput, RegularRelation, Task } from "./types.js";

export interface AdditionInput {
  /** Digit string, most significant digit first. */
  readonly a: string;
  /** Same length as `a`. */
  readonly b: string;
}

export interface AdditionOptions {
  base: number;
}

const DIGIT_CHARS = "0123456789abcdef";
/** Character code of each digit value, for building strings byte by byte. */
const DIGIT_CODES = Uint8Array.from(DIGIT_CHARS, (c) => c.charCodeAt(0));
/** Digit value of each ASCII character code, -1 for a non-digit (0-9, a-f, A-F are digits). */
const DIGIT_VALUES = (() => {
  const values = new Int8Array(128).fill(-1);
  for (let v = 0; v < 16; v++) {
    values[DIGIT_CHARS.charCodeAt(v)] = v;
    values[DIGIT_CHARS.toUpperCase().charCodeAt(v)] = v;
  }
  return values;
})();

export function checkBase(base: unknown): number {
  if (typeof base !== "number" || !Number.isInteger(base) || base < 2 || base > 16) {
    throw new InvalidInputError(`base must be an integer from 2 to 16, got ${describeValue(base)}`);
  }
  return base;
}

/**
 * Digit values of `s` (most significant first), checked: non-empty, every character a digit
 * below `base`. `name` names the operand in error messages ("a" gives "operand a: ...").
 * Positions in messages count from 0 at the left.
 */
export function parseOperand(s: unknown, base: number, name: string): Uint8Array {
  checkBase(base);
  if (typeof s !== "string") {
    throw new InvalidInputError(`operand ${name} must be a string of digits, got ${describeValue(s)}`);
  }
  if (s.length === 0) throw new InvalidInputError(`operand ${name} is empty; it needs at least one digit`);
  const digits = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    const v = code < 128 ? DIGIT_VALUES[code]! : -1;
    if (v < 0 || v >= base) {
      const ch = s.charAt(i);
      const shown = code >= 0x20 && code < 0x7f ? `'${ch}'` : JSON.stringify(ch);
      const [subject, problem] =
        v < 0
          ? [`character ${shown}`, "is not a digit (digits are 0-9 and a-f)"]
          : [`digit ${shown}`, `is not valid in base ${base}`];
      throw new InvalidInputError(`operand ${name}: ${subject} at position ${i} (counting from 0 at the left) ${problem}`);
    }
    digits[i] = v;
  }
  return digits;
}

/** Left-pads the shorter operand with zeros so both have the same length (the value is unchanged). */
export function padOperands(a: string, b: string): AdditionInput {
  const length = Math.max(a.length, b.length);
  return { a: a.padStart(length, "0"), b: b.padStart(length, "0") };
}

/** Both operands parsed and of the same length; `where` prefixes messages for batch inputs. */
function parseInput(input: unknown, base: number, where = ""): [Uint8Array, Uint8Array] {
  if (typeof input !== "object" || input === null) {
    throw new InvalidInputError(`${where || "input"} must be an object {a, b} of digit strings, got ${describeValue(input)}`);
  }
  const { a, b } = input as Partial<AdditionInput>;
  const suffix = where ? ` of ${where}` : "";
  const da = parseOperand(a, base, `a${suffix}`);
  const db = parseOperand(b, base, `b${suffix}`);
  if (da.length !== db.length) {
    throw new InvalidInputError(
      `operands a and b${suffix} must have the same length (a has ${da.length} digits, b has ${db.length}); left-pad the shorter with zeros, e.g. with padOperands()`,
    );
  }
  return [da, db];
}

/** The exact sum by schoolbook addition with carry: L + 1 digits, most significant first. */
export function addDigitStrings(a: string, b: string, base: number): string {
  const [da, db] = parseInput({ a, b }, base);
  return addParsed(da, db, base);
}

function addParsed(da: Uint8Array, db: Uint8Array, base: number): string {
  const length = da.length;
  const out = new Uint8Array(length + 1);
  let carry = 0;
  for (let i = length - 1; i >= 0; i--) {
    let s = da[i]! + db[i]! + carry;
    carry = s >= base ? 1 : 0;
    if (carry) s -= base;
    out[i + 1] = DIGIT_CODES[s]!;
  }
  out[0] = DIGIT_CODES[carry]!;
  return asciiString(out);
}

/** Digit values (index 0 = least significant) to a digit string, most significant first. */
function digitString(lsbFirst: Uint8Array): string {
  const n = lsbFirst.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[n - 1 - i] = DIGIT_CODES[lsbFirst[i]!]!;
  return asciiString(out);
}

/**
 * The training curriculum (`config.curriculum`): the fraction of samples that are adversarial,
 * and how those split between the kinds of hard case. Every kind's draw is skipped when its
 * fraction is 0, so adding a kind leaves older configs' random streams as they were.
 */
export const additionCurriculumSchema = z.strictObject({
  /** Fraction of samples built around a long carry chain (or the kinds below). */
  adversarial: z.number().min(0).max(1).default(0.25),
  /** Of the adversarial samples, the fraction that are runs of one repeated digit pair
   * (9...9 + 9...9, 9...9 + 0...0, 0...0 + 0...0, ...); drawn first. */
  uniformRuns: z.number().min(0).max(1).default(0),
  /** Of the adversarial samples, the fraction that are runs with no carry coming in
   * (99...9 + 0), the mirror of carry chains (99...9 + 1). */
  noCarry: z.number().min(0).max(1).default(0),
  /** Of the adversarial samples, the fraction that are `carryRun`s (a carry from any generating
   * pair across propagating cells of any split, in random context); drawn after `noCarry`. */
  carryRuns: z.number().min(0).max(1).default(0),
});
export type AdditionCurriculum = z.output<typeof additionCurriculumSchema>;

export class AdditionTask implements Task<AdditionInput, string> {
  readonly name: string;
  readonly title: string;
  readonly base: number;
  readonly dims = 1;
  readonly cIn: number;
  readonly cOut: number;
  readonly boundary = "zero";

  constructor(options: AdditionOptions) {
    this.base = checkBase(options.base);
    this.name = `addition-base${this.base}`;
    this.title = this.base === 2 ? "binary addition" : this.base === 10 ? "decimal addition" : `addition in base ${this.base}`;
    this.cIn = 2 * this.base;
    this.cOut = this.base;
  }

  describe(): AdditionInfo {
    return { name: "addition", base: this.base };
  }

  grid(length: number): GridSize {
    return { height: 1, width: checkCount(length, "length") + 1 };
  }

  sizeOf(input: AdditionInput): number {
    return parseInput(input, this.base)[0].length;
  }

  /** "a+b", digits most significant first; the shorter operand is left-padded with zeros. */
  parseInput(text: string): AdditionInput {
    const m = /^\s*([^+\s]+)\s*\+\s*([^+\s]+)\s*$/.exec(text);
    if (!m) throw new InvalidInputError(`an addition is two numbers joined by +, most significant digit first (e.g. 1011+110), got ${describeValue(text)}`);
    for (const [which, digits] of [["first", m[1]!], ["second", m[2]!]] as const) {
      try {
        parseOperand(digits, this.base, "x");
      } catch (e) {
        if (e instanceof InvalidInputError) throw new InvalidInputError(`the ${which} number: ${e.message.replace(/^operand x: /, "")}`);
        throw e;
      }
    }
    return padOperands(m[1]!, m[2]!);
  }

  formatInput(input: AdditionInput): string {
    return `${input.a} + ${input.b}`;
  }

  formatAnswer(sum: string): string {
    return sum;
  }

  /** A uniform sample, or with probability `adversarial` one of the hard kinds. */
  trainingSample(rng: Rng, length: number, curriculum: Readonly<Record<string, unknown>>): AdditionInput {
    const c = curriculum as AdditionCurriculum;
    if (!(rng.float() < c.adversarial)) return this.sample(rng, length);
    // (no draw for a kind left at 0, so older configs give the same stream)
    const uniform = c.uniformRuns > 0 && rng.float() < c.uniformRuns;
    const mirror = !uniform && c.noCarry > 0 && rng.float() < c.noCarry;
    const mixed = !uniform && !mirror && c.carryRuns > 0 && rng.float() < c.carryRuns;
    const run = 1 + rng.int(length);
    const base = this.base;
    if (uniform) return uniformRun(base, length, run, rng);
    if (mirror) return noCarryRun(base, length, run, rng);
    if (mixed) return carryRun(base, length, run, rng);
    return carryChain(base, length, run, rng);
  }

  /** Carry chains (99...9 + 1), runs of maximal digits with no carry (99...9 + 0), all zeros, all maximal digits. */
  hardCases(length: number): NamedInput<AdditionInput>[] {
    return adversarialAdditionCases(this.base, [length]);
  }

  encode(inputs: readonly AdditionInput[]): Encoded {
    const base = this.base;
    const cIn = this.cIn;
    const parsed: [Uint8Array, Uint8Array][] = [];
    const length = checkBatch(inputs, (input, where) => {
      const operands = parseInput(input, base, where);
      parsed.push(operands);
      return operands[0].length;
    });
    const batch = inputs.length;
    const width = length + 1;
    const x = new Float32Array(batch * width * cIn);
    const target = new Int32Array(batch * width);
    parsed.forEach(([da, db], n) => {
      let carry = 0;
      for (let cell = 0; cell < length; cell++) {
        const i = length - 1 - cell; // string position of this cell's digit
        const va = da[i]!;
        const vb = db[i]!;
        const index = n * width + cell;
        x[index * cIn + va] = 1;
        x[index * cIn + base + vb] = 1;
        let s = va + vb + carry;
        carry = s >= base ? 1 : 0;
        if (carry) s -= base;
        target[index] = s;
      }
      target[n * width + length] = carry;
    });
    return { batch, height: 1, width, cIn, cOut: this.cOut, x, target };
  }

  decode(outputs: Uint8Array, shape: BatchShape): string[] {
    const { batch, width } = checkDecodeArgs(outputs, shape, 2);
    const sums: string[] = [];
    for (let n = 0; n < batch; n++) {
      const row = outputs.subarray(n * width, (n + 1) * width);
      for (let cell = 0; cell < width; cell++) {
        if (row[cell]! >= this.base) {
          throw new InvalidInputError(
            `outputs[${n}]: class ${row[cell]} at cell ${cell} is not a digit in base ${this.base}`,
          );
        }
      }
      sums.push(digitString(row));
    }
    return sums;
  }

  reference(input: AdditionInput): string {
    const [da, db] = parseInput(input, this.base);
    return addParsed(da, db, this.base);
  }

  sample(rng: Rng, length: number): AdditionInput {
    checkCount(length, "length");
    return { a: randomDigits(rng, this.base, length), b: randomDigits(rng, this.base, length) };
  }

  /**
   * Symbols: `a * base + b` is the cell of digit pair (a, b), base² the carry-out cell (all
   * zero), each as `encode` writes it. Valid: one digit pair or more, then the carry-out cell.
   * Relation states: 0 and 1 the carry into the cell, 2 after the carry-out cell; the output
   * at a pair is (a + b + carry) mod base, at the carry-out cell the carry.
   */
  regularRelation(): RegularRelation<AdditionInput> {
    const base = this.base;
    const end = base * base;
    const digit = (v: number) => DIGIT_CHARS[v]!;
    const alphabet: Float32Array[] = [];
    const names: string[] = [];
    for (let a = 0; a < base; a++) {
      for (let b = 0; b < base; b++) {
        const x = this.encode([{ a: digit(a), b: digit(b) }]).x;
        alphabet.push(x.slice(0, this.cIn));
        names.push(`${digit(a)}+${digit(b)}`);
      }
    }
    alphabet.push(this.encode([{ a: "0", b: "0" }]).x.slice(this.cIn, 2 * this.cIn));
    names.push("end");
    const cOut = this.cOut;
    return {
      alphabet,
      names,
      // 0: start, 1: after a digit pair, 2: after the carry-out cell
      domain: buildDfa(3, end + 1, 0, (q) => q === 2, (q, x) => (q === 2 ? -1 : x < end ? 1 : q === 1 ? 2 : -1)),
      relation: buildDfa(3, (end + 1) * cOut, 0, (q) => q === 2, (q, sym) => {
        const x = Math.floor(sym / cOut);
        const out = sym % cOut;
        if (q === 2) return -1;
        if (x === end) return out === q ? 2 : -1;
        const t = Math.floor(x / base) + (x % base) + q;
        return out === t % base ? Math.floor(t / base) : -1;
      }),
      input: (symbols) => {
        const pairs = symbols.slice(0, -1).reverse();
        return { a: pairs.map((x) => digit(Math.floor(x / base))).join(""), b: pairs.map((x) => digit(x % base)).join("") };
      },
    };
  }

  /** Digit strings compare case-insensitively ("ff" = "FF"). */
  equal(a: string, b: string): boolean {
    return a === b || a.toLowerCase() === b.toLowerCase();
  }
}

export function additionTask(options: AdditionOptions): AdditionTask {
  return new AdditionTask(options);
}

function randomDigits(rng: Rng, base: number, length: number): string {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = DIGIT_CODES[rng.int(base)]!;
  return asciiString(out);
}

/**
 * An adversarial input whose carry travels `chainLength` cells: the carry generated at some cell
 * s reaches cells s+1 .. s+chainLength (cell L is the final carry), like 99...9 + 1.
 *
 * Without `rng`: s = 0, a = chainLength maximal digits (base-1) in the low cells, b = 1, all
 * other digits 0; this is exactly 99...9 + 1 when chainLength = L, and its longest carry chain is
 * exactly chainLength. With `rng`: s is random, the propagating cells are random digit pairs
 * summing to base-1, and the other cells are random, except that the cells just before s and just
 * after the chain stop any carry, so the chain from s is exactly chainLength long (other, shorter
 * or longer chains may occur elsewhere by chance).
 */
export function carryChain(base: number, length: number, chainLength: number, rng?: Rng): AdditionInput {
  const { a, b } = digitsForRun(base, length, chainLength, "chainLength");
  const max = base - 1;
  const start = rng ? rng.int(length - chainLength + 1) : 0;
  /** Digits whose sum plus any carry stays below base, so no carry leaves the cell. */
  const kill = (cell: number) => {
    if (cell < 0 || cell >= length) return;
    a[cell] = rng ? rng.int(base - 1) : 0;
    b[cell] = rng ? rng.int(base - 1 - a[cell]!) : 0;
  };
  if (rng) fillRandom(a, b, base, rng);
  // Generate at the start: a + b >= base, whatever the carry in.
  a[start] = max;
  b[start] = rng ? 1 + rng.int(max) : 1;
  // Propagate: a + b = base - 1, so the carry passes through.
  for (let cell = start + 1; cell < start + chainLength; cell++) {
    a[cell] = rng ? rng.int(base) : max;
    b[cell] = max - a[cell]!;
  }
  kill(start - 1);
  kill(start + chainLength);
  return { a: digitString(a), b: digitString(b) };
}

/**
 * Checks the arguments of an input with a run of `runLength` cells (`name` in errors): the
 * digit values of both operands, all 0, index = cell (least significant first).
 */
function digitsForRun(base: number, length: number, runLength: number, name: string): { a: Uint8Array; b: Uint8Array } {
  checkBase(base);
  checkCount(length, "length");
  checkCount(runLength, name);
  if (runLength > length) {
    throw new InvalidInputError(`${name} must be at most length (${length}), got ${runLength}`);
  }
  return { a: new Uint8Array(length), b: new Uint8Array(length) };
}

/** Random digits in every cell of both operands, cell by cell (a, then b). */
function fillRandom(a: Uint8Array, b: Uint8Array, base: number, rng: Rng): void {
  for (let cell = 0; cell < a.length; cell++) {
    a[cell] = rng.int(base);
    b[cell] = rng.int(base);
  }
}

/** Checks a run's arguments; random digits (cell 0 least significant) for the run to overwrite. */
function randomDigitsForRun(base: number, length: number, runLength: number, rng: Rng): { a: Uint8Array; b: Uint8Array } {
  const digits = digitsForRun(base, length, runLength, "runLength");
  fillRandom(digits.a, digits.b, base, rng);
  return digits;
}

/**
 * The mirror of `carryChain`: a run of `runLength` cells whose digits sum to base-1 (so a carry
 * would pass straight through, like 99...9 + 0) with NO carry coming in, the cell below the run
 * stopping any carry. Every digit of the run's sum is base-1, and a model that guesses "a carry
 * arrives" is wrong until the news that none does has crossed the run. Other digits random.
 */
export function noCarryRun(base: number, length: number, runLength: number, rng: Rng): AdditionInput {
  const { a, b } = randomDigitsForRun(base, length, runLength, rng);
  const start = rng.int(length - runLength + 1);
  for (let cell = start; cell < start + runLength; cell++) {
    a[cell] = rng.int(base);
    b[cell] = base - 1 - a[cell]!;
  }
  if (start > 0) {
    // a + b <= base - 2: no carry leaves this cell, whatever comes into it.
    a[start - 1] = rng.int(base - 1);
    b[start - 1] = rng.int(base - 1 - a[start - 1]!);
  }
  return { a: digitString(a), b: digitString(b) };
}

/**
 * A run of `runLength` cells all holding the same digit pair (a_d, b_d), drawn at random: 9...9 +
 * 9...9 (every cell generates), 9...9 + 0...0 (every cell propagates), 0...0 + 0...0 (every cell
 * kills), or any other pair. Random digits have such runs almost never, and a model that has
 * not seen them may read a long uniform stretch as a pattern of its own. Other digits random.
 */
export function uniformRun(base: number, length: number, runLength: number, rng: Rng): AdditionInput {
  const { a, b } = randomDigitsForRun(base, length, runLength, rng);
  // Half the runs use the extreme digits (0 and base-1), which hold the three carry kinds.
  const pick = () => (rng.float() < 0.5 ? (rng.int(2) === 0 ? 0 : base - 1) : rng.int(base));
  const da = pick();
  const db = pick();
  const start = rng.int(length - runLength + 1);
  a.fill(da, start, start + runLength);
  b.fill(db, start, start + runLength);
  return { a: digitString(a), b: digitString(b) };
}

/**
 * A carry made by any generating digit pair (a + b >= base: 7 + 3 as well as 9 + 1) that must
 * cross a run of `runLength` - 1 propagating cells of any split (a + b = base - 1: 1 + 8 as well
 * as 9 + 0), in random context on both sides (a carry may come in below; the cell above the run
 * is random). `carryChain` always generates with a 9 and stops carries at both ends; random
 * digits hold such runs with probability 10^-k. The decimal adder's rare misses were carries
 * lost in exactly these (7 + 3 then 1 + 8; 7 + 3 then 2 + 7).
 */
export function carryRun(base: number, length: number, runLength: number, rng: Rng): AdditionInput {
  const { a, b } = randomDigitsForRun(base, length, runLength, rng);
  const start = rng.int(length - runLength + 1);
  // Generate: a + b from base to 2 base - 2, every split equally likely for its sum.
  const sum = base + rng.int(base - 1);
  a[start] = sum - (base - 1) + rng.int(2 * (base - 1) - sum + 1);
  b[start] = sum - a[start]!;
  for (let cell = start + 1; cell < start + runLength; cell++) {
    a[cell] = rng.int(base);
    b[cell] = base - 1 - a[cell]!;
  }
  return { a: digitString(a), b: digitString(b) };
}

/** 00...0 + 00...0: no carries at all. */
export function allZeros(base: number, length: number): AdditionInput {
  checkBase(base);
  const zeros = "0".repeat(checkCount(length, "length"));
  return { a: zeros, b: zeros };
}

/** (base-1)...(base-1) twice: every cell generates a carry. */
export function allMax(base: number, length: number): AdditionInput {
  const max = DIGIT_CHARS[checkBase(base) - 1]!.repeat(checkCount(length, "length"));
  return { a: max, b: max };
}

/**
 * The adversarial addition cases at each length: carry chains (99...9 + 1), runs of maximal
 * digits with no carry (99...9 + 0), all zeros, all maximal digits.
 */
export function adversarialAdditionCases(base: number, chainLengths: readonly number[]): NamedInput<AdditionInput>[] {
  const cases: NamedInput<AdditionInput>[] = [];
  for (const L of chainLengths) {
    cases.push({ name: `carry chain ${L}`, input: carryChain(base, L, L) });
    // The same run of maximal digits with no carry coming in: a model that guesses
    // "a carry arrives" must wait for the news that none does to cross all L cells.
    const max = allMax(base, L).a;
    cases.push({ name: `no-carry chain ${L}`, input: { a: max, b: "0".repeat(L) } });
    cases.push({ name: `all zeros ${L}`, input: allZeros(base, L) });
    cases.push({ name: `all max ${L}`, input: allMax(base, L) });
  }
  return cases;
}

/** Addition in base 2..16: "addition" (base 10), "addition-base2". */
export const additionDefinition: TaskDefinition<AdditionOptions> = {
  name: "addition",
  summary: "the sum of two L-digit numbers in base 2..16, least significant digit at cell 0 (1D)",
  options: z.strictObject({ base: z.number().int().min(2).max(16) }),
  create: (o) => additionTask(o),
  parseName(text) {
    const m = /^addition(?:-base(\d+))?$/.exec(text);
    if (!m) return undefined;
    const base = m[1] === undefined ? 10 : Number(m[1]);
    if (base < 2 || base > 16) throw new InvalidInputError(`task name ${JSON.stringify(text)}: base must be from 2 to 16, got ${base}`);
    return { base };
  },
  examples: ["addition-base2", "addition-base10", "addition-baseN"],
  curriculum: additionCurriculumSchema,
};
