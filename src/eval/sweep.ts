/**
 * Evaluation: exact-match accuracy and steps per length, on random inputs from a seed,
 * plus the adversarial addition cases. Every answer is compared with the exact reference.
 */
import type { Backend } from "../backend.js";
import type { Model } from "../model/model.js";
import { Rng } from "../rng.js";
import { solve, type RunOptions } from "../run.js";
import { type AnyTask, type AdditionInput, allMax, allZeros, carryChain } from "../tasks/index.js";

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

/** Largest batch for a length, keeping a batch's grid around a million cells. */
export function batchFor(width: number, samples: number): number {
  return Math.max(1, Math.min(samples, Math.floor(1_000_000 / Math.max(1, width))));
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
  const per = batchFor(task.width(length), inputs.length);
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
  const cellsPerSample = task.width(length); // every task is one row
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
    const inputs = Array.from({ length: n }, () => task.sample(rng, L));
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
 * The adversarial addition cases: carry chains (99...9 + 1), runs of maximal digits with no
 * carry (99...9 + 0), all zeros, all maximal digits.
 */
export function adversarialAdditionCases(base: number, chainLengths: readonly number[]): { name: string; input: AdditionInput }[] {
  const cases: { name: string; input: AdditionInput }[] = [];
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

export async function adversarialAddition(
  backend: Backend,
  model: Model,
  task: AnyTask,
  base: number,
  chainLengths: readonly number[],
  opts: RunOptions = {},
): Promise<AdversarialResult[]> {
  const out: AdversarialResult[] = [];
  for (const c of adversarialAdditionCases(base, chainLengths)) {
    const L = c.input.a.length;
    // A chain of L digits needs about L steps: allow them.
    const r = await evaluateInputs(backend, model, task, [c.input], L, { maxSteps: 2 * L + 64, ...opts });
    out.push({ name: c.name, ...r });
  }
  return out;
}
