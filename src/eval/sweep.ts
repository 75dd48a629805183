/**
 * Evaluation: exact-match accuracy and steps per input size (a 1D row's length, a 2D grid's
 * n), on random inputs from a seed, plus each task's adversarial cases. Every answer is
 * compared with the exact reference.
 */
import type { Backend } from "../backend/index.js";
import { InvalidInputError } from "../errors.js";
import type { Model } from "../model/model.js";
import { Rng } from "../rng.js";
import { solve, type RunOptions } from "../run.js";
import { type AnyTask, callTask, gridChecked } from "../tasks/index.js";

export interface LengthResult {
  length: number;
  samples: number;
  correct: number;
  accuracy: number;
  meanSteps: number;
  maxSteps: number;
  /** Samples that hit maxSteps without settling. */
  unsettled: number;
  seconds: number;
  /** Cell updates computed, and what computing every cell at every step would be (they
   * differ when settled cells are skipped: RunOptions.freeze). */
  cellsComputed: number;
  cellsDense: number;
}

/** Largest batch for a grid of `cells` cells, keeping a batch around a million cells. */
export function batchFor(cells: number, samples: number): number {
  return Math.max(1, Math.min(samples, Math.floor(1_000_000 / Math.max(1, cells))));
}

/** Cells of the grid for an input of this size. */
export function cellsFor(task: AnyTask, size: number): number {
  const g = gridChecked(task, size);
  return g.height * g.width;
}

/** Runs `inputs` in batches and totals the result. */
export async function evaluateInputs(
  backend: Backend,
  model: Model,
  task: AnyTask,
  inputs: readonly unknown[],
  length: number,
  opts: RunOptions = {},
): Promise<LengthResult> {
  const started = performance.now();
  const cellsPerSample = cellsFor(task, length);
  const per = batchFor(cellsPerSample, inputs.length);
  let correct = 0;
  let unsettled = 0;
  let cellsComputed = 0;
  const steps: number[] = [];
  for (let i = 0; i < inputs.length; i += per) {
    const r = await solve(backend, model, task, inputs.slice(i, i + per), opts);
    correct += r.correct.filter(Boolean).length;
    unsettled += r.converged.filter((c) => c === 0).length;
    steps.push(...r.steps);
    cellsComputed += r.cellsComputed.reduce((a, b) => a + b, 0);
  }
  return {
    length,
    samples: inputs.length,
    correct,
    accuracy: correct / inputs.length,
    meanSteps: steps.reduce((a, b) => a + b, 0) / steps.length,
    maxSteps: Math.max(...steps),
    unsettled,
    seconds: (performance.now() - started) / 1000,
    cellsComputed,
    cellsDense: steps.reduce((a, b) => a + b, 0) * cellsPerSample,
  };
}

/** Accuracy and steps at each length on `samples` random inputs drawn from `seed`. */
export async function lengthSweep(
  backend: Backend,
  model: Model,
  task: AnyTask,
  lengths: readonly number[],
  samples: number | ((length: number) => number),
  seed: number,
  opts: RunOptions = {},
  onResult?: (r: LengthResult) => void,
): Promise<LengthResult[]> {
  const out: LengthResult[] = [];
  for (const L of lengths) {
    const rng = new Rng(seed).fork(L);
    const n = typeof samples === "number" ? samples : samples(L);
    const inputs = Array.from({ length: n }, () => callTask(task, "sample", () => task.sample(rng, L)));
    const r = await evaluateInputs(backend, model, task, inputs, L, opts);
    onResult?.(r);
    out.push(r);
  }
  return out;
}

export interface AdversarialResult extends LengthResult {
  name: string;
}

/**
 * The task's adversarial cases (`Task.hardCases`) at each size, each run alone: for addition
 * carry chains (99...9 + 1), runs with no carry, all zeros, all maximal digits; for
 * multiplication all ones times all ones, 2^k +- 1, zero, one, powers of two.
 */
export async function hardCaseSweep(
  backend: Backend,
  model: Model,
  task: AnyTask,
  sizes: readonly number[],
  opts: RunOptions = {},
): Promise<AdversarialResult[]> {
  if (!task.hardCases) throw new InvalidInputError(`task ${task.name} has no adversarial cases (Task.hardCases)`);
  const out: AdversarialResult[] = [];
  for (const size of sizes) {
    const cases = callTask(task, "hardCases", () => task.hardCases!(size)) as { name: string; input: unknown }[];
    for (const c of cases) {
      const r = await evaluateInputs(backend, model, task, [c.input], size, opts);
      out.push({ name: c.name, ...r });
    }
  }
  return out;
}
