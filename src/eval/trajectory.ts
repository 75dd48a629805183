/**
 * Learned trajectories of an elementary automaton: each generation the model runs to a fixed
 * point on the current row, its argmax output (the thresholded answer) becomes the next row,
 * and every row is compared cell by cell with the exact automaton from the same start.
 */
import type { Backend } from "../backend/index.js";
import type { Model } from "../model/model.js";
import { Rng } from "../rng.js";
import { runEncoded, checkModelFitsTask, type RunOptions } from "../run.js";
import { ElementaryTask, elementaryStep } from "../tasks/index.js";

export interface TrajectoryResult {
  width: number;
  generations: number;
  starts: number;
  /** Cells that differ from the exact automaton, summed over every generation and start. */
  wrongCells: number;
  /** The first generation with a wrong cell, or null. */
  firstWrongGeneration: number | null;
  meanSteps: number;
  maxSteps: number;
  seconds: number;
}

export async function learnedTrajectories(
  backend: Backend,
  model: Model,
  task: ElementaryTask,
  width: number,
  generations: number,
  starts: number,
  seed: number,
  opts: RunOptions = {},
): Promise<TrajectoryResult> {
  checkModelFitsTask(model, task);
  const started = performance.now();
  const rng = new Rng(seed);
  let learned: Uint8Array[] = Array.from({ length: starts }, () => task.sample(rng, width));
  let exact: Uint8Array[] = learned.map((r) => r.slice());
  let wrongCells = 0;
  let firstWrong: number | null = null;
  let stepSum = 0;
  let maxSteps = 0;
  for (let g = 1; g <= generations; g++) {
    const enc = task.encode(learned);
    const r = await runEncoded(backend, model, enc, opts);
    learned = task.decode(r.outputs, { batch: starts, height: 1, width });
    exact = exact.map((row) => elementaryStep(task.rule, row, task.boundary));
    for (let s = 0; s < starts; s++) {
      const a = learned[s]!;
      const b = exact[s]!;
      for (let i = 0; i < width; i++) if (a[i] !== b[i]) wrongCells++;
    }
    if (wrongCells > 0 && firstWrong === null) firstWrong = g;
    for (const st of r.steps) {
      stepSum += st;
      maxSteps = Math.max(maxSteps, st);
    }
  }
  return {
    width,
    generations,
    starts,
    wrongCells,
    firstWrongGeneration: firstWrong,
    meanSteps: stepSum / (generations * starts),
    maxSteps,
    seconds: (performance.now() - started) / 1000,
  };
}
