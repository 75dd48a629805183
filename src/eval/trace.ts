/**
 * Step-by-step runs, for watching a model settle: one sample stepped one step at a time with
 * the same convergence rule as `Session.converge` (outputs unchanged for `patience` steps and
 * max |h' - h| below `tol`, or `maxSteps`), recording per-step statistics and, on request,
 * the outputs and the hidden state of every step. Also learned trajectories of an elementary
 * automaton that keep every row, for drawing them beside the exact ones.
 */
import type { Backend, ConvergeOptions } from "../backend/index.js";
import { InvalidInputError } from "../errors.js";
import type { Model } from "../model/model.js";
import { checkModelFitsTask, convergeDefaults, runEncoded, type RunOptions } from "../run.js";
import { type ElementaryTask, elementaryStep } from "../tasks/index.js";
import type { Encoded } from "../tasks/types.js";

export interface TraceStep {
  /** Steps taken so far (1 = after the first step). */
  step: number;
  /** Cells whose argmax output changed in this step. */
  changed: number;
  /** max |h' - h| over the grid in this step. */
  maxDelta: number;
  /** Supervised cells whose output differs from the exact answer after this step. */
  wrong: number;
}

export interface Trace {
  width: number;
  height: number;
  cH: number;
  /** Steps taken. */
  steps: number;
  /** True when the run settled before maxSteps. */
  converged: boolean;
  /** One entry per step taken. */
  stats: TraceStep[];
  /** Supervised cells wrong at step 0 (h = 0, before any step). */
  wrongAtStart: number;
  /** Outputs after each step, index 0 = before any step ([height][width] each); when recorded. */
  outputs: Uint8Array[];
  /** Hidden state after each step, index 0 = zeros ([height][width][cH] each); when recorded. */
  hidden: Float32Array[];
  /** The final outputs, [height][width]. */
  finalOutputs: Uint8Array;
}

export interface TraceOptions extends Partial<ConvergeOptions> {
  /** Keep the outputs of every step (default false). */
  recordOutputs?: boolean;
  /** Keep the hidden state of every step (default false). */
  recordHidden?: boolean;
  /** Called after each step. */
  onStep?: (s: TraceStep) => void;
  signal?: AbortSignal;
}

function argmaxRows(logits: Float32Array, cOut: number): Uint8Array {
  const n = logits.length / cOut;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestV = logits[i * cOut]!;
    for (let o = 1; o < cOut; o++) {
      const v = logits[i * cOut + o]!;
      if (v > bestV) {
        bestV = v;
        best = o;
      }
    }
    out[i] = best;
  }
  return out;
}

function countWrong(outputs: Uint8Array, target: Int32Array): number {
  let wrong = 0;
  for (let i = 0; i < outputs.length; i++) {
    const t = target[i]!;
    if (t >= 0 && outputs[i] !== t) wrong++;
  }
  return wrong;
}

/**
 * Runs one encoded sample (batch 1) step by step to its fixed point. Uses the same rule as
 * `runEncoded`, so the step count equals the one `solve` reports for the same input.
 */
export async function traceRun(backend: Backend, model: Model, enc: Encoded, opts: TraceOptions = {}): Promise<Trace> {
  if (enc.batch !== 1) throw new InvalidInputError(`traceRun runs one sample at a time, got a batch of ${enc.batch}`);
  const defaults = convergeDefaults(enc.width, enc.height);
  const conv: ConvergeOptions = {
    patience: opts.patience ?? defaults.patience,
    tol: opts.tol ?? defaults.tol,
    maxSteps: opts.maxSteps ?? defaults.maxSteps,
  };
  const grid = { batch: 1, height: enc.height, width: enc.width };
  const session = backend.createSession(model.spec, grid, enc.x);
  try {
    let prev = argmaxRows(session.logits(model.params), model.spec.cOut);
    const outputs: Uint8Array[] = opts.recordOutputs ? [prev.slice()] : [];
    const hidden: Float32Array[] = opts.recordHidden ? [session.hidden()] : [];
    const stats: TraceStep[] = [];
    const wrongAtStart = countWrong(prev, enc.target);
    let quiet = 0;
    let converged = false;
    let steps = 0;
    while (steps < conv.maxSteps) {
      const r = await session.step(model.params, 1, { signal: opts.signal });
      steps++;
      const now = session.outputs();
      let changed = 0;
      for (let i = 0; i < now.length; i++) if (now[i] !== prev[i]) changed++;
      const s: TraceStep = { step: steps, changed, maxDelta: r.maxDelta[0]!, wrong: countWrong(now, enc.target) };
      stats.push(s);
      if (opts.recordOutputs) outputs.push(now);
      if (opts.recordHidden) hidden.push(session.hidden());
      opts.onStep?.(s);
      prev = now;
      quiet = changed === 0 ? quiet + 1 : 0;
      if (quiet >= conv.patience && s.maxDelta < conv.tol) {
        converged = true;
        break;
      }
    }
    return {
      width: enc.width,
      height: enc.height,
      cH: model.spec.cH,
      steps,
      converged,
      stats,
      wrongAtStart,
      outputs,
      hidden,
      finalOutputs: prev,
    };
  } finally {
    session.dispose();
  }
}

export interface LearnedTrajectory {
  /** generations + 1 rows each: row g is generation g (row 0 is the start). */
  learned: Uint8Array[];
  exact: Uint8Array[];
  /** Steps the model took to settle at each generation (index 0 = generation 1). */
  steps: number[];
  /** 1 where that generation's run settled. */
  converged: boolean[];
  /** Cells differing between learned and exact, summed over every generation. */
  wrongCells: number;
  firstWrongGeneration: number | null;
}

/**
 * One learned trajectory of an elementary automaton from `start`: each generation the model
 * runs to a fixed point, its argmax output becomes the next row; every row is kept, beside
 * the exact automaton's.
 */
export async function learnedTrajectory(
  backend: Backend,
  model: Model,
  task: ElementaryTask,
  start: Uint8Array,
  generations: number,
  opts: RunOptions & { onGeneration?: (g: number) => void } = {},
): Promise<LearnedTrajectory> {
  checkModelFitsTask(model, task);
  const learned: Uint8Array[] = [start.slice()];
  const exact: Uint8Array[] = [start.slice()];
  const steps: number[] = [];
  const converged: boolean[] = [];
  let wrongCells = 0;
  let firstWrong: number | null = null;
  const { onGeneration, ...runOpts } = opts;
  for (let g = 1; g <= generations; g++) {
    const enc = task.encode([learned[g - 1]!]);
    const r = await runEncoded(backend, model, enc, runOpts);
    const row = task.decode(r.outputs, { batch: 1, height: 1, width: enc.width })[0]!;
    const truth = elementaryStep(task.rule, exact[g - 1]!, task.boundary);
    learned.push(row);
    exact.push(truth);
    steps.push(r.steps[0]!);
    converged.push(r.converged[0] === 1);
    let wrong = 0;
    for (let i = 0; i < row.length; i++) if (row[i] !== truth[i]) wrong++;
    wrongCells += wrong;
    if (wrong > 0 && firstWrong === null) firstWrong = g;
    onGeneration?.(g);
  }
  return { learned, exact, steps, converged, wrongCells, firstWrongGeneration: firstWrong };
}
