/** A model: its spec, its flat Float32Array of parameters, and what it was trained for. */
import { InvalidInputError } from "../errors.js";
import { Rng } from "../rng.js";
import type { TaskInfo } from "../tasks/types.js";
import { type ModelSpec, type ModelSpecInput, neighbours, paramLayout, parseSpec } from "./spec.js";

export class Model {
  readonly spec: ModelSpec;
  readonly params: Float32Array;
  /** The task the model was trained for, if any; evaluation on another task is refused. */
  readonly task: TaskInfo | undefined;

  constructor(spec: ModelSpecInput, params: Float32Array, task?: TaskInfo) {
    this.spec = parseSpec(spec);
    const want = paramLayout(this.spec).total;
    if (!(params instanceof Float32Array)) {
      throw new InvalidInputError(`params must be a Float32Array, got ${describeValue(params)}`);
    }
    if (params.length !== want) {
      throw new InvalidInputError(`params has ${params.length} values but this spec needs ${want}`);
    }
    const bad = params.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new InvalidInputError(`params[${bad}] is ${params[bad]} (must be finite)`);
    this.params = params;
    this.task = task;
  }

  /**
   * A freshly initialised model: He-uniform perceive weights (ReLU follows), small mix
   * and readout weights, zero biases. The same seed gives the same parameters.
   */
  static init(spec: ModelSpecInput, seed: number, task?: TaskInfo): Model {
    const s = parseSpec(spec);
    const l = paramLayout(s);
    const rng = new Rng(seed);
    const p = new Float32Array(l.total);
    const uniform = ([a, b]: [number, number], bound: number) => {
      for (let i = a; i < b; i++) p[i] = (2 * rng.float() - 1) * bound;
    };
    uniform(l.w1, Math.sqrt(6 / (neighbours(s) * (s.cIn + s.cH))));
    uniform(l.w2, Math.sqrt(6 / (s.features + s.cH)) * 0.5);
    uniform(l.wo, Math.sqrt(6 / (s.cH + s.cOut)));
    return new Model(s, p, task);
  }

  get paramCount(): number {
    return this.params.length;
  }

  /** A copy with other parameters (same spec and task). */
  withParams(params: Float32Array): Model {
    return new Model(this.spec, params, this.task);
  }
}

export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return "an Array";
  return typeof v;
}
