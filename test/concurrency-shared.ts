/**
 * What test/concurrency.test.ts runs, shared with its worker thread
 * (test/concurrency-worker.ts) so both run exactly the same code.
 */
import { type Backend, createBackend } from "../src/backend/index.js";
import { Rng } from "../src/rng.js";
import { solve } from "../src/run.js";
import { taskFromInfo } from "../src/tasks/index.js";
import { type EvalReport, Trainer, type TrainConfigInput } from "../src/train/trainer.js";
import { tinyConfig } from "./helpers.js";

/** One training job: a config and the backend it runs on. */
export interface Job {
  config: TrainConfigInput;
  backend: "cpu" | "gpu";
}

/** What a job produced: everything that must be bit-identical however it was scheduled. */
export interface JobResult {
  params: Float32Array;
  losses: number[];
  evals: EvalReport[];
  /** Steps each sample took to settle after training, on inputs of length 12. */
  settleSteps: number[];
  answers: unknown[];
  aborted: boolean;
}

const { task: _, ...base } = tinyConfig({ name: "parity" }, {
  steps: 24,
  lengths: { min: 3, max: 7 },
  unroll: { min: 6, max: 9 },
  stabilitySteps: 2,
  warmup: 4,
  evalEvery: 12,
  evalLengths: [10],
  evalSamples: 6,
});

/** Different tasks and seeds, so that concurrent jobs really do different work. */
export const JOBS: Job[] = [
  { backend: "cpu", config: { ...base, task: { name: "addition", base: 2 }, seed: 1 } },
  { backend: "cpu", config: { ...base, task: { name: "parity" }, seed: 2 } },
  { backend: "cpu", config: { ...base, task: { name: "elementary", rule: 110, boundary: "periodic" }, seed: 3 } },
];
export const GPU_JOB: Job = { backend: "gpu", config: { ...base, task: { name: "addition", base: 3 }, seed: 4, steps: 12, evalEvery: 6 } };

let gpu: Backend | undefined;
/** One GPU backend (device) per thread, shared by its jobs, as an application would. */
export function backendFor(kind: "cpu" | "gpu"): Backend {
  if (kind === "cpu") return createBackend({ backend: "cpu" });
  gpu ??= createBackend({ backend: "gpu" });
  return gpu;
}

export function disposeGpu(): void {
  gpu?.dispose();
  gpu = undefined;
}

/** Trains a job, then runs the trained model on fixed inputs to its fixed point. */
export async function runJob(job: Job, signal?: AbortSignal, onStep?: (step: number) => void): Promise<JobResult> {
  const backend = backendFor(job.backend);
  const losses: number[] = [];
  const trainer = new Trainer(job.config, backend, {
    onStep: (r) => {
      losses.push(r.loss);
      onStep?.(r.step);
    },
  });
  const summary = await trainer.run(signal);
  const model = summary.model;
  const rng = new Rng(99);
  const task = taskFromInfo(job.config.task);
  const inputs = Array.from({ length: 5 }, () => task.sample(rng, 12));
  const solved = await solve(backend, model, task, inputs);
  return {
    params: model.params,
    losses,
    evals: summary.evals,
    settleSteps: Array.from(solved.steps),
    answers: solved.answers,
    aborted: summary.aborted,
  };
}
