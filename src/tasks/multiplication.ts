/**
 * Binary multiplication on a 2D grid: long multiplication laid out so that every step of it is
 * a 3x3 local rule (the outer-product layout of "On the Mirage of Long-Range Dependency",
 * arXiv 2603.29069, in our reading).
 *
 * Two n-bit numbers a and b; the grid has n rows and n + 1 columns. Cell (i, j) sees bit j of a
 * (column n sees a 0: a has no bit n) and bit i of b, one-hot: channels [a=0, a=1, b=0, b=1].
 * Row i stands for the running sum S_i = a * (b mod 2^(i+1)) of the partial products of rows
 * 0..i, shifted so that cell (i, j) holds bit i + j of S_i. Then
 *
 *     bit i+j of S_i = bit i+j of S_(i-1)  +  a_j b_i  +  carry out of bit i+j-1 of S_i
 *                       (cell (i-1, j+1))               (cell (i, j-1))
 *
 * so each cell needs its up-right and left neighbours only, and outside the grid is 0. Bit i
 * of the product is settled in row i (cell (i, 0): later rows add multiples of 2^(i+1)), and
 * the product's high bits are the last row: the product is read along the left column (bits
 * 0..n-1, top to bottom) and the bottom row (bits n-1..2n-1, left to right).
 *
 * Supervision: "edges" (the default, as in the paper) trains on the product's cells only,
 * the other cells free; "all" also supervises every cell with its bit of S_i.
 *
 * Operands and answers are bit strings, most significant bit first; the product always has
 * 2n bits, leading zeros kept, so it lines up with the grid.
 */
import { z } from "zod";
import { InvalidInputError } from "../errors.js";
import type { Rng } from "../rng.js";
import { asciiString, checkBatch, checkCount, checkDecodeArgs, describeValue } from "./common.js";
import type { TaskDefinition } from "./registry.js";
import type { BatchShape, Encoded, GridSize, MultiplicationInfo, NamedInput, Task } from "./types.js";

export interface MultiplicationInput {
  /** Bit string, most significant bit first. */
  readonly a: string;
  /** Same length as `a`. */
  readonly b: string;
}

export interface MultiplicationOptions {
  supervise?: "edges" | "all";
}

/** Bits of a binary string, least significant first; `name` names it in errors. */
function parseBits(s: unknown, name: string): Uint8Array {
  if (typeof s !== "string") throw new InvalidInputError(`operand ${name} must be a string of bits, got ${describeValue(s)}`);
  if (s.length === 0) throw new InvalidInputError(`operand ${name} is empty; it needs at least one bit`);
  const n = s.length;
  const bits = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(k);
    if (c !== 48 && c !== 49) {
      const ch = s.charAt(k);
      throw new InvalidInputError(
        `operand ${name}: ${c >= 0x20 && c < 0x7f ? `'${ch}'` : JSON.stringify(ch)} at position ${k} (counting from 0 at the left) is not a binary digit (0 or 1)`,
      );
    }
    bits[n - 1 - k] = c - 48;
  }
  return bits;
}

/** Both operands, checked and of one length: bits least significant first. */
function parseInput(input: unknown, where = ""): [Uint8Array, Uint8Array] {
  if (typeof input !== "object" || input === null) {
    throw new InvalidInputError(`${where || "input"} must be an object {a, b} of bit strings, got ${describeValue(input)}`);
  }
  const { a, b } = input as Partial<MultiplicationInput>;
  const suffix = where ? ` of ${where}` : "";
  const ba = parseBits(a, `a${suffix}`);
  const bb = parseBits(b, `b${suffix}`);
  if (ba.length !== bb.length) {
    throw new InvalidInputError(
      `operands a and b${suffix} must have the same length (a has ${ba.length} bits, b has ${bb.length}); left-pad the shorter with zeros, e.g. with padOperands()`,
    );
  }
  return [ba, bb];
}

/** Least-significant-first bits to a string, most significant first. */
function bitString(lsbFirst: Uint8Array): string {
  const n = lsbFirst.length;
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[n - 1 - k] = 48 + lsbFirst[k]!;
  return asciiString(out);
}

/** The exact product of two bit strings (most significant first) as 2n bits, by BigInt. */
export function multiplyBitStrings(a: string, b: string): string {
  const [ba] = parseInput({ a, b });
  return productOf(a, b, ba.length);
}

function productOf(a: string, b: string, n: number): string {
  return (BigInt(`0b${a}`) * BigInt(`0b${b}`)).toString(2).padStart(2 * n, "0");
}

/** The training curriculum (`config.curriculum`). */
export const multiplicationCurriculumSchema = z.strictObject({
  /** Fraction of samples drawn from the hard kinds (dense or sparse operands, all ones, 2^k +- 1). */
  adversarial: z.number().min(0).max(1).default(0.25),
});
export type MultiplicationCurriculum = z.output<typeof multiplicationCurriculumSchema>;

export class MultiplicationTask implements Task<MultiplicationInput, string> {
  readonly name: string;
  readonly title = "binary multiplication";
  readonly dims = 2;
  readonly cIn = 4;
  readonly cOut = 2;
  readonly boundary = "zero";
  readonly supervise: "edges" | "all";

  constructor(options: MultiplicationOptions = {}) {
    const supervise = options.supervise ?? "edges";
    if (supervise !== "edges" && supervise !== "all") {
      throw new InvalidInputError(`supervise must be "edges" or "all", got ${describeValue(supervise)}`);
    }
    this.supervise = supervise;
    this.name = supervise === "edges" ? "multiplication" : "multiplication-all";
  }

  describe(): MultiplicationInfo {
    return { name: "multiplication", supervise: this.supervise };
  }

  /** n rows (one per bit of b) and n + 1 columns (the bits of a, then a's carry-out column). */
  grid(bits: number): GridSize {
    const n = checkCount(bits, "bits");
    return { height: n, width: n + 1 };
  }

  sizeOf(input: MultiplicationInput): number {
    return parseInput(input)[0].length;
  }

  encode(inputs: readonly MultiplicationInput[]): Encoded {
    const parsed: [Uint8Array, Uint8Array][] = [];
    const n = checkBatch(inputs, (input, where) => {
      const operands = parseInput(input, where);
      parsed.push(operands);
      return operands[0].length;
    });
    const batch = inputs.length;
    const height = n;
    const width = n + 1;
    const cells = height * width;
    const x = new Float32Array(batch * cells * 4);
    const target = new Int32Array(batch * cells).fill(-1);
    parsed.forEach(([ba, bb], s) => {
      const base = s * cells;
      for (let i = 0; i < height; i++) {
        for (let j = 0; j < width; j++) {
          const cell = base + i * width + j;
          x[cell * 4 + (j < n ? ba[j]! : 0)] = 1;
          x[cell * 4 + 2 + bb[i]!] = 1;
        }
      }
      // The running sums S_i, bit by bit (least significant first): O(n^2) in all.
      const sum = new Uint8Array(2 * n + 1);
      for (let i = 0; i < height; i++) {
        if (bb[i]) {
          let carry = 0;
          for (let k = 0; k <= n; k++) {
            const v = sum[i + k]! + (k < n ? ba[k]! : 0) + carry;
            sum[i + k] = v & 1;
            carry = v >> 1;
          }
        }
        if (this.supervise === "all") {
          for (let j = 0; j < width; j++) target[base + i * width + j] = sum[i + j]!;
        } else {
          target[base + i * width] = sum[i]!;
          if (i === height - 1) for (let j = 0; j < width; j++) target[base + i * width + j] = sum[i + j]!;
        }
      }
    });
    return { batch, height, width, cIn: 4, cOut: 2, x, target };
  }

  decode(outputs: Uint8Array, shape: BatchShape): string[] {
    const { batch, height, width } = checkDecodeArgs(outputs, shape, 2);
    if (width !== height + 1) {
      throw new InvalidInputError(`a multiplication grid has n rows and n + 1 columns, got ${height} x ${width}`);
    }
    const n = height;
    const products: string[] = [];
    for (let s = 0; s < batch; s++) {
      const grid = outputs.subarray(s * height * width, (s + 1) * height * width);
      const bits = new Uint8Array(2 * n);
      for (let i = 0; i < n; i++) bits[i] = grid[i * width]!;
      for (let j = 1; j <= n; j++) bits[n - 1 + j] = grid[(n - 1) * width + j]!;
      for (let k = 0; k < 2 * n; k++) {
        if (bits[k]! > 1) throw new InvalidInputError(`outputs[${s}]: class ${bits[k]} for product bit ${k} is not a bit`);
      }
      products.push(bitString(bits));
    }
    return products;
  }

  reference(input: MultiplicationInput): string {
    const [ba] = parseInput(input);
    return productOf(input.a, input.b, ba.length);
  }

  sample(rng: Rng, bits: number): MultiplicationInput {
    const n = checkCount(bits, "bits");
    return { a: randomBits(rng, n, 0.5), b: randomBits(rng, n, 0.5) };
  }

  /**
   * A uniform sample, or with probability `adversarial` a hard one: operands of random bit
   * density (dense ones make long carries; sparse ones, few partial products), all ones, or
   * 2^k +- 1.
   */
  trainingSample(rng: Rng, bits: number, curriculum: Readonly<Record<string, unknown>>): MultiplicationInput {
    const c = curriculum as MultiplicationCurriculum;
    const n = checkCount(bits, "bits");
    if (!(rng.float() < c.adversarial)) return this.sample(rng, n);
    const kind = rng.int(4);
    const operand = (): string => {
      switch (kind) {
        case 0:
          return randomBits(rng, n, rng.float());
        case 1:
          return rng.float() < 0.5 ? "1".repeat(n) : randomBits(rng, n, 0.5);
        case 2: {
          const k = rng.int(n);
          return twoToThePlusMinus(n, k, rng.int(3) - 1);
        }
        default:
          return randomBits(rng, n, 0.85);
      }
    };
    const a = operand();
    const b = operand();
    return rng.float() < 0.5 ? { a, b } : { a: b, b: a };
  }

  /** All ones times all ones, 2^k +- 1, zero, one, powers of two. */
  hardCases(bits: number): NamedInput<MultiplicationInput>[] {
    const n = checkCount(bits, "bits");
    const ones = "1".repeat(n);
    const zero = "0".repeat(n);
    const one = zero.slice(1) + "1";
    const top = n - 1;
    const alternating = Array.from({ length: n }, (_, k) => (k % 2 === 0 ? "1" : "0")).join("");
    const cases: NamedInput<MultiplicationInput>[] = [
      { name: "all ones x all ones", input: { a: ones, b: ones } },
      { name: "zero x all ones", input: { a: zero, b: ones } },
      { name: "all ones x zero", input: { a: ones, b: zero } },
      { name: "one x all ones", input: { a: one, b: ones } },
      { name: "all ones x one", input: { a: ones, b: one } },
      { name: `2^${top} x 2^${top}`, input: { a: twoToThePlusMinus(n, top, 0), b: twoToThePlusMinus(n, top, 0) } },
      { name: `(2^${top} + 1) x (2^${top} + 1)`, input: { a: twoToThePlusMinus(n, top, 1), b: twoToThePlusMinus(n, top, 1) } },
      { name: `(2^${top} - 1) x (2^${top} + 1)`, input: { a: twoToThePlusMinus(n, top, -1), b: twoToThePlusMinus(n, top, 1) } },
      { name: `all ones x (2^${top} + 1)`, input: { a: ones, b: twoToThePlusMinus(n, top, 1) } },
      { name: "alternating x all ones", input: { a: alternating, b: ones } },
    ];
    return n === 1 ? cases.slice(0, 5) : cases;
  }

  /** "a*b" (or "a x b"), bits most significant first; the shorter is left-padded with zeros. */
  parseInput(text: string): MultiplicationInput {
    const m = /^\s*([^*x\s]+)\s*[*x]\s*([^*x\s]+)\s*$/.exec(text);
    if (!m) throw new InvalidInputError(`a multiplication is two binary numbers joined by * (e.g. 1011*110), got ${describeValue(text)}`);
    for (const [which, bits] of [["first", m[1]!], ["second", m[2]!]] as const) {
      try {
        parseBits(bits, "x");
      } catch (e) {
        if (e instanceof InvalidInputError) throw new InvalidInputError(`the ${which} number: ${e.message.replace(/^operand x: /, "")}`);
        throw e;
      }
    }
    return padOperands(m[1]!, m[2]!);
  }

  formatInput(input: MultiplicationInput): string {
    return `${input.a} x ${input.b}`;
  }

  formatAnswer(product: string): string {
    return product;
  }

  equal(a: string, b: string): boolean {
    return a === b;
  }
}

/** Left-pads the shorter operand with zeros (the value is unchanged). */
function padOperands(a: string, b: string): MultiplicationInput {
  const n = Math.max(a.length, b.length);
  return { a: a.padStart(n, "0"), b: b.padStart(n, "0") };
}

function randomBits(rng: Rng, n: number, density: number): string {
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[k] = rng.float() < density ? 49 : 48;
  return asciiString(out);
}

/** 2^k + delta (delta -1, 0 or 1) as n bits; 2^0 - 1 is 0. */
function twoToThePlusMinus(n: number, k: number, delta: -1 | 0 | 1 | number): string {
  const v = (1n << BigInt(k)) + BigInt(delta);
  return v.toString(2).padStart(n, "0").slice(-n);
}

export function multiplicationTask(options: MultiplicationOptions = {}): MultiplicationTask {
  return new MultiplicationTask(options);
}

/** Binary multiplication on a 2D grid: "multiplication" (product cells supervised), "multiplication-all". */
export const multiplicationDefinition: TaskDefinition<MultiplicationOptions> = {
  name: "multiplication",
  summary: "the product of two n-bit numbers on an n x (n+1) grid, read along its left column and bottom row (2D)",
  options: z.strictObject({ supervise: z.enum(["edges", "all"]).default("edges") }),
  create: (o) => multiplicationTask(o),
  parseName(text) {
    if (text === "multiplication" || text === "multiplication-base2") return { supervise: "edges" };
    if (text === "multiplication-all") return { supervise: "all" };
    return undefined;
  },
  examples: ["multiplication", "multiplication-all"],
  curriculum: multiplicationCurriculumSchema,
};
