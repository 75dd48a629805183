/**
 * A seeded, serializable pseudo-random generator: xoshiro128** (Blackman & Vigna), with its
 * 128-bit state expanded from the seed by splitmix64.
 *
 * Why this one: 32-bit integer math only on the hot path (Math.imul, shifts), so it is fast in
 * JavaScript without BigInt; the whole state is four 32-bit words, so `getState()` /
 * `Rng.fromState()` can save and resume a stream exactly (a trainer resuming mid-run draws the
 * same numbers it would have drawn). BigInt is used only to expand seeds and derive forks.
 */
import { InvalidInputError } from "./errors.js";

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;
const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;
const STATE_PREFIX = "xoshiro128**:";
const STATE_PATTERN = /^xoshiro128\*\*:([0-9a-f]{8})([0-9a-f]{8})([0-9a-f]{8})([0-9a-f]{8})$/;

/** The splitmix64 finalizer: a bijective mix of 64 bits, so distinct inputs give distinct outputs. */
function mix64(value: bigint): bigint {
  let z = value & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function checkSeed(seed: unknown): bigint {
  if (typeof seed === "bigint" && seed >= 0n && seed <= MASK64) return seed;
  if (typeof seed === "number" && Number.isInteger(seed) && seed >= 0 && seed < 2 ** 64) {
    return BigInt(seed);
  }
  throw new InvalidInputError(
    `seed must be a finite integer from 0 to 2^64 - 1, got ${typeof seed === "bigint" ? `${seed}n` : String(seed)}`,
  );
}

export class Rng {
  // The four state words, kept as signed 32-bit values so Math.imul and shifts need no conversion.
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number | bigint) {
    // Two consecutive splitmix64 outputs fill the 128-bit state; they are never both zero.
    let sm = checkSeed(seed);
    sm = (sm + GOLDEN_GAMMA) & MASK64;
    const first = mix64(sm);
    sm = (sm + GOLDEN_GAMMA) & MASK64;
    const second = mix64(sm);
    this.s0 = Number(first >> 32n) | 0;
    this.s1 = Number(first & 0xffffffffn) | 0;
    this.s2 = Number(second >> 32n) | 0;
    this.s3 = Number(second & 0xffffffffn) | 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const s2 = this.s2 ^ s0;
    const s3 = this.s3 ^ s1;
    this.s1 = s1 ^ s2;
    this.s0 = s0 ^ s3;
    this.s2 = s2 ^ t;
    this.s3 = rotl(s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 random bits (every representable multiple of 2^-53). */
  float(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / TWO_53;
  }

  /**
   * A uniform integer in [0, n), for integer n from 1 to 2^32. Unbiased: draws that fall in the
   * incomplete last block of 2^32 are rejected (at most half of all draws, usually almost none).
   */
  int(n: number): number {
    if (!(Number.isInteger(n) && n >= 1 && n <= TWO_32)) {
      throw new InvalidInputError(`n must be an integer from 1 to 2^32, got ${String(n)}`);
    }
    const limit = TWO_32 - (TWO_32 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % n;
    }
  }

  /**
   * A standard normal sample (Box-Muller). The second value of each pair is discarded so that
   * the whole generator state stays in the four words `getState()` saves.
   */
  normal(): number {
    const u1 = 1 - this.float(); // in (0, 1], so the log is finite
    const u2 = this.float();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A uniform bit (the top bit of a draw, the best-mixed one). */
  bit(): 0 | 1 {
    return (this.nextU32() >>> 31) as 0 | 1;
  }

  /** The exact state as a string; `Rng.fromState` resumes the stream from this point. */
  getState(): string {
    const hex = (w: number) => (w >>> 0).toString(16).padStart(8, "0");
    return STATE_PREFIX + hex(this.s0) + hex(this.s1) + hex(this.s2) + hex(this.s3);
  }

  static fromState(state: string): Rng {
    const match = typeof state === "string" ? STATE_PATTERN.exec(state) : null;
    if (match === null) {
      throw new InvalidInputError(
        `state must be a string from Rng.getState() ("${STATE_PREFIX}" and 32 lowercase hex digits), got ${JSON.stringify(state)}`,
      );
    }
    const words = match.slice(1, 5).map((h) => Number.parseInt(h, 16) | 0);
    if (words.every((w) => w === 0)) {
      throw new InvalidInputError("state must not be all zeros: xoshiro128** never leaves that state");
    }
    const rng = new Rng(0);
    [rng.s0, rng.s1, rng.s2, rng.s3] = words as [number, number, number, number];
    return rng;
  }

  /**
   * An independent stream derived from this generator's current state and `label` (an integer
   * >= 0), e.g. one per worker or per purpose. It does not advance this generator: the same
   * state and label always give the same stream, and different labels give unrelated streams.
   */
  fork(label: number): Rng {
    if (!(Number.isSafeInteger(label) && label >= 0)) {
      throw new InvalidInputError(`label must be an integer from 0 to 2^53 - 1, got ${String(label)}`);
    }
    const word = (w: number) => BigInt(w >>> 0);
    const hi = (word(this.s0) << 32n) | word(this.s1);
    const lo = (word(this.s2) << 32n) | word(this.s3);
    return new Rng(mix64(hi ^ mix64(lo ^ mix64(BigInt(label) + GOLDEN_GAMMA))));
  }
}
