/**
 * The model's shape and its flat parameter layout (docs/DESIGN.md, "The model"): W1 [K][C][F],
 * b1 [F], W2 [F][C_h], b2 [C_h], Wo [C_h][C_out], bo [C_out], K = 3 (1D) or 9 (2D).
 */
import { z } from "zod";
import { parseWith } from "../schema.js";

const channels = (min: number, max: number) => z.number().int().min(min).max(max);

export const modelSpecSchema = z.strictObject({
  /** 1 (a row; 3 neighbours) or 2 (a plane; 3x3 neighbours). */
  dims: z.union([z.literal(1), z.literal(2)]),
  /** Clamped input channels. */
  cIn: channels(0, 4096),
  /** Hidden channels. */
  cH: channels(1, 4096),
  /** Features of the perceive layer. */
  features: channels(1, 4096),
  /** Output classes. */
  cOut: channels(1, 256),
  /** h' = tanh(u) ("replace") or tanh(h + u) ("residual"). */
  update: z.enum(["replace", "residual"]).default("replace"),
  /** Outside the grid: zeros, or wrap around. */
  boundary: z.enum(["zero", "periodic"]).default("zero"),
  /**
   * After every step: keep h' as computed ("none"), or round each hidden channel to -1, 0 or +1
   * ("ternary": |h'| > 1/2 rounds to ±1), so every cell has finitely many states and a fixed point
   * is exact. Trained straight through the rounding.
   */
  quantize: z.enum(["none", "ternary"]).default("none"),
});

export type ModelSpec = z.output<typeof modelSpecSchema>;
export type ModelSpecInput = z.input<typeof modelSpecSchema>;

export function parseSpec(value: unknown, where = "spec"): ModelSpec {
  return parseWith(modelSpecSchema, value, where);
}

export interface ParamLayout {
  w1: [number, number];
  b1: [number, number];
  w2: [number, number];
  b2: [number, number];
  wo: [number, number];
  bo: [number, number];
  total: number;
}

/** Neighbours per cell. */
export const neighbours = (spec: ModelSpec): number => (spec.dims === 1 ? 3 : 9);

/** Where each tensor lives in the flat array: [start, end). */
export function paramLayout(spec: ModelSpec): ParamLayout {
  let at = 0;
  const take = (n: number): [number, number] => [at, (at += n)];
  const c = spec.cIn + spec.cH;
  return {
    w1: take(neighbours(spec) * c * spec.features),
    b1: take(spec.features),
    w2: take(spec.features * spec.cH),
    b2: take(spec.cH),
    wo: take(spec.cH * spec.cOut),
    bo: take(spec.cOut),
    total: at,
  };
}

/** Multiply-adds of one cell-step (perceive, mix, readout); FLOPs are twice this. */
export function macsPerCellStep(spec: ModelSpec): number {
  const c = spec.cIn + spec.cH;
  return neighbours(spec) * c * spec.features + spec.features * spec.cH + spec.cH * spec.cOut;
}
