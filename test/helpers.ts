/** Shared test fixtures: small specs and random data. */
import { Model } from "../src/model/model.js";
import type { ModelSpec } from "../src/model/spec.js";
import { Rng } from "../src/rng.js";

export const smallSpec: ModelSpec = {
  dims: 1,
  cIn: 2,
  cH: 4,
  features: 8,
  cOut: 2,
  update: "replace",
  boundary: "zero",
  quantize: "none",
};

export function randomModel(spec: ModelSpec = smallSpec, seed = 1): Model {
  return Model.init(spec, seed);
}

export function randomX(n: number, seed = 2): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.float() * 2 - 1);
}

export function randomTargets(n: number, classes: number, seed = 3): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(classes));
}
