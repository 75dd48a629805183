/**
 * Concurrent use gives the same results as sequential use, bit for bit: trainers running at
 * once in one process, sessions converging at once, jobs in worker threads, and cancelling
 * one job while others run. The reference for everything is each job run alone, one after
 * another (test.before). The GPU backend (lavapipe in CI) takes part in each case.
 */
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { type Backend, type ConvergeResult, createBackend } from "../src/backend.js";
import { AbortError } from "../src/errors.js";
import { gpuAdapters } from "../src/gpu-backend.js";
import { Model } from "../src/model/model.js";
import type { ModelSpec } from "../src/model/spec.js";
import { backendFor, disposeGpu, GPU_JOB, type Job, JOBS, type JobResult, runJob } from "./concurrency-shared.js";
import { randomX } from "./helpers.js";

// As in test/gpu.test.ts: no adapter fails the GPU cases unless SEAD_SKIP_GPU_TESTS=1.
const withGpu = !(process.env["SEAD_SKIP_GPU_TESTS"] === "1" && gpuAdapters().length === 0);
const ALL: Job[] = withGpu ? [...JOBS, GPU_JOB] : JOBS;

const reference: JobResult[] = [];
test.before(async (t) => {
  for (const job of ALL) {
    const started = Date.now();
    reference.push(await runJob(job));
    t.log(`reference ${job.backend} job: ${Date.now() - started} ms`);
  }
});
test.after.always(() => disposeGpu());

function bitEqual(a: Float32Array | Float64Array | Uint8Array, b: Float32Array | Float64Array | Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameResult(t: ExecutionContext, got: JobResult, want: JobResult, label: string): void {
  t.true(bitEqual(got.params, want.params), `${label}: parameters differ`);
  t.deepEqual(got.losses, want.losses, `${label}: losses`);
  t.deepEqual(got.evals, want.evals, `${label}: evaluations`);
  t.deepEqual(got.settleSteps, want.settleSteps, `${label}: settling steps`);
  t.deepEqual(got.answers, want.answers, `${label}: answers`);
}

test.serial("trainers running at once (CPU, and GPU beside them) match sequential runs bit for bit", async (t) => {
  const started = Date.now();
  const order: number[] = [];
  const results = await Promise.all(ALL.map((j, i) => runJob(j, undefined, () => order.push(i))));
  results.forEach((r, i) => sameResult(t, r, reference[i]!, `job ${i} (${ALL[i]!.backend})`));
  // They really did run at once: their steps interleave.
  const switches = order.filter((job, k) => k > 0 && job !== order[k - 1]).length;
  t.true(switches >= ALL.length * 2, `steps switched between jobs only ${switches} times`);
  t.log(`${ALL.length} trainers at once: ${Date.now() - started} ms, ${switches} switches between jobs in ${order.length} steps`);
});

const spec: ModelSpec = { dims: 1, cIn: 2, cH: 8, features: 16, cOut: 3, update: "residual", boundary: "periodic" };
/** Sessions big enough that their converge calls overlap in time. */
const sessionCases = Array.from({ length: 4 }, (_, i) => ({
  model: Model.init(spec, 10 + i),
  grid: { batch: 4, height: 1, width: 1024 + 64 * i },
}));

interface Converged {
  result: ConvergeResult;
  outputs: Uint8Array;
  hidden: Float32Array;
}

async function converge(backend: Backend, i: number): Promise<Converged> {
  const { model, grid } = sessionCases[i]!;
  const s = backend.createSession(model.spec, grid, randomX(grid.batch * grid.width * spec.cIn, 20 + i));
  try {
    const result = await s.converge(model.params, { patience: 3, tol: 1e-4, maxSteps: 60 });
    return { result, outputs: s.outputs(), hidden: s.hidden() };
  } finally {
    s.dispose();
  }
}

test.serial("sessions converging at once match sessions converged one by one", async (t) => {
  const backends: Backend[] = [createBackend({ backend: "cpu" }), createBackend({ backend: "cpu", threads: 1 })];
  if (withGpu) backends.push(backendFor("gpu"));
  // Every case on every backend: first alone, in turn; then all at once.
  const pairs = backends.flatMap((b) => sessionCases.map((_, i) => [b, i] as const));
  const alone: Converged[] = [];
  for (const [b, i] of pairs) alone.push(await converge(b, i));
  const started = Date.now();
  const together = await Promise.all(pairs.map(([b, i]) => converge(b, i)));
  together.forEach((c, k) => {
    const a = alone[k]!;
    const label = `${pairs[k]![0].info().device}, case ${pairs[k]![1]}`;
    t.true(bitEqual(c.result.steps, a.result.steps) && bitEqual(c.result.converged, a.result.converged), `${label}: steps`);
    t.true(bitEqual(c.result.lastMaxDelta, a.result.lastMaxDelta), `${label}: last deltas`);
    t.true(bitEqual(c.outputs, a.outputs) && bitEqual(c.hidden, a.hidden), `${label}: state`);
  });
  t.log(`${pairs.length} sessions at once on ${backends.length} backends: ${Date.now() - started} ms`);
});

function inWorker(jobs: Job[]): Promise<JobResult[]> {
  return new Promise((resolve, reject) => {
    // Node 20 does not carry tsx's --import hooks into workers: register tsx's require hook
    // in the worker itself, then load the TypeScript worker file.
    const code = `require("tsx/cjs"); require(${JSON.stringify(join(__dirname, "concurrency-worker.ts"))});`;
    const w = new Worker(code, { eval: true, workerData: jobs });
    w.once("message", resolve);
    w.once("error", reject);
    w.once("exit", (code) => reject(new Error(`worker exited with code ${code} before posting results`)));
  });
}

test.serial("jobs in worker threads match sequential runs in this thread", async (t) => {
  const started = Date.now();
  // One worker per CPU job; the first also runs the GPU job (its own device, in its thread).
  const perWorker = JOBS.map((j, i) => (i === 0 && withGpu ? [j, GPU_JOB] : [j]));
  const results = (await Promise.all(perWorker.map(inWorker))).flat();
  const order = perWorker.flat().map((j) => ALL.indexOf(j));
  results.forEach((r, k) => sameResult(t, r, reference[order[k]!]!, `worker job ${order[k]} (${ALL[order[k]!]!.backend})`));
  t.log(`${perWorker.length} workers, ${results.length} jobs: ${Date.now() - started} ms`);
});

test.serial("cancelling one job mid-run rejects it with AbortError and leaves the others unchanged", async (t) => {
  const abortSession = new AbortController();
  const abortTrainer = new AbortController();
  // A session with far more work than the test lasts; aborted once another job is under way.
  const big = createBackend({ backend: "cpu" }).createSession(spec, { batch: 1, height: 1, width: 200_000 }, randomX(400_000));
  const endless = big.step(sessionCases[0]!.model.params, 1_000_000, { signal: abortSession.signal });
  const onStep = (step: number) => {
    if (step === 5) abortTrainer.abort();
    if (step === 8) abortSession.abort();
  };
  const [cut, others] = await Promise.all([
    // A copy of job 0, stopped (perhaps within a step) when job 1 reaches its 5th step.
    runJob(JOBS[0]!, abortTrainer.signal),
    Promise.all(ALL.map((j, i) => runJob(j, undefined, i === 1 ? onStep : undefined))),
    t.throwsAsync(endless, { instanceOf: AbortError }),
  ]);
  const stepped = big.steps()[0]!;
  big.dispose();
  t.true(stepped < 1_000_000, `the session stopped part way (${stepped} steps)`);
  others.forEach((r, i) => sameResult(t, r, reference[i]!, `job ${i} (${ALL[i]!.backend})`));
  // The stopped trainer says so (it stops cleanly rather than rejecting: see Trainer.run),
  // and the steps it did finish are those of the uninterrupted run.
  const done = cut.losses.length;
  t.true(cut.aborted && done > 0 && done < reference[0]!.losses.length, `stopped after ${done} steps`);
  t.deepEqual(cut.losses, reference[0]!.losses.slice(0, done));
  t.log(`the session was cancelled after ${stepped} steps; the trainer stopped after ${cut.losses.length}`);
});
