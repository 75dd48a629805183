/**
 * Running a model on task inputs: encode, step every sample until it settles (per-sample
 * convergence: the input-adaptive computation), decode, and compare with the exact answer.
 */
import type { Backend, ConvergeOptions, GridShape, SessionOptions } from "./backend/index.js";
import { InvalidInputError, ResourceLimitError } from "./errors.js";
import type { Model } from "./model/model.js";
import { type AnyTask, callTask, decodeChecked, encodeChecked, equalChecked, gridChecked, referenceChecked } from "./tasks/index.js";
import type { Encoded } from "./tasks/types.js";

export interface RunOptions extends Partial<ConvergeOptions>, SessionOptions {
  signal?: AbortSignal;
}

export interface RunResult {
  /** Argmax output per cell, [batch][height][width]. */
  outputs: Uint8Array;
  /** Steps each sample took to settle (or maxSteps). */
  steps: Float64Array;
  /** 1 where the sample settled before maxSteps. */
  converged: Uint8Array;
  /** Cell updates each sample computed (steps x cells, or fewer with `freeze`). */
  cellsComputed: Float64Array;
}

/** Default convergence rule: outputs unchanged for 4 steps and max |h' - h| below 1e-3. */
export function convergeDefaults(width: number, height = 1): ConvergeOptions {
  return { patience: 4, tol: 1e-3, maxSteps: 2 * (width + height) + 64 };
}

/** Refuses a model trained for another task (or for none). */
export function checkModelFitsTask(model: Model, task: AnyTask): void {
  const want = JSON.stringify(task.describe());
  const have = JSON.stringify(model.task ?? null);
  if (want !== have) {
    throw new InvalidInputError(
      `this model was trained for ${model.task ? JSON.stringify(model.task) : "no task"}, not for ${want}`,
    );
  }
  if (model.spec.cIn !== task.cIn || model.spec.cOut !== task.cOut) {
    throw new InvalidInputError(
      `the model has cIn=${model.spec.cIn}, cOut=${model.spec.cOut} but task ${task.name} needs ` +
        `cIn=${task.cIn}, cOut=${task.cOut}`,
    );
  }
  if (model.spec.dims !== task.dims) {
    throw new InvalidInputError(`the model is ${model.spec.dims}D but task ${task.name} is ${task.dims}D`);
  }
  if (model.spec.boundary !== task.boundary) {
    throw new InvalidInputError(`the model's boundary is ${model.spec.boundary} but task ${task.name} needs ${task.boundary}`);
  }
}

/** Steps an encoded batch until each sample settles; returns outputs and steps. */
export async function runEncoded(backend: Backend, model: Model, enc: Encoded, opts: RunOptions = {}): Promise<RunResult> {
  const grid = { batch: enc.batch, height: enc.height, width: enc.width };
  const { freeze, ...rest } = opts;
  const conv = { ...convergeDefaults(enc.width, enc.height), ...stripUndefined(rest) };
  const session = backend.createSession(model.spec, grid, enc.x, freeze === undefined ? {} : { freeze });
  try {
    const r = await session.converge(model.params, conv, opts.signal);
    return { outputs: session.outputs(), steps: r.steps, converged: r.converged, cellsComputed: session.cellsComputed() };
  } finally {
    session.dispose();
  }
}

export interface SolveResult<O> {
  answers: O[];
  expected: O[];
  correct: boolean[];
  steps: Float64Array;
  converged: Uint8Array;
  cellsComputed: Float64Array;
}

/**
 * Refuses a batch whose session would hold more than the backend allows, before anything is
 * encoded (the encoded input alone can take gigabytes): names the grid and the bytes.
 */
export function checkSessionFits(backend: Backend, model: Model, grid: GridShape): void {
  const need = backend.sessionBytes(model.spec, grid);
  if (need > backend.maxSessionBytes) {
    const fmt = (n: number) => n.toLocaleString("en-US");
    throw new ResourceLimitError(
      `${grid.batch === 1 ? "a" : `${fmt(grid.batch)} x a`} ${fmt(grid.height)} x ${fmt(grid.width)} grid needs ${fmt(need)} bytes; ` +
        `the backend's limit is ${fmt(backend.maxSessionBytes)} (option maxSessionBytes)`,
    );
  }
}

/** Runs a batch of same-length inputs and checks every answer against the exact one. */
export async function solve<I, O>(
  backend: Backend,
  model: Model,
  task: AnyTask,
  inputs: readonly I[],
  opts: RunOptions = {},
): Promise<SolveResult<O>> {
  checkModelFitsTask(model, task);
  if (Array.isArray(inputs) && inputs.length > 0) {
    const size = callTask(task, "sizeOf", () => task.sizeOf(inputs[0]));
    checkSessionFits(backend, model, { batch: inputs.length, ...gridChecked(task, size) });
  }
  const enc = encodeChecked(task, inputs);
  const r = await runEncoded(backend, model, enc, opts);
  const answers = decodeChecked(task, r.outputs, enc) as O[];
  const expected = inputs.map((i) => referenceChecked(task, i) as O);
  const correct = answers.map((a, i) => equalChecked(task, a, expected[i]));
  return { answers, expected, correct, steps: r.steps, converged: r.converged, cellsComputed: r.cellsComputed };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== "signal")) as Partial<T>;
}
