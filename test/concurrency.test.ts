/**
 * Concurrent use gives the same results as sequential use, bit for bit: trainers running at
 * once in one process, sessions converging at once, jobs in worker threads, and cancelling
 * one job while others run. The reference for everything is each job run alone, one after
 * another (test.before). The GPU backend (lavapipe in CI) takes part in each case.
 * Last, native work leaves the event loop turning (CPU session steps and training steps),
 * counted in turns of the loop rather than measured against a time threshold.
 */
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { type Backend, type ConvergeResult, createBackend } from "../src/backend/index.js";
import { AbortError } from "../src/errors.js";
import { gpuAdapters } from "../src/backend/gpu.js";
import { nativeBuild } from "../src/backend/native.js";
import { Model } from "../src/model/model.js";
import type { ModelSpec } from "../src/model/spec.js";
import { backendFor, disposeGpu, GPU_JOB, type Job, JOBS, type JobResult, runJob } from "./concurrency-shared.js";
import { randomTargets, randomX } from "./helpers.js";

// As in test/gpu.test.ts: no adapter fails the GPU cases unless SEAD_SKIP_GPU_TESTS=1; the
// WebAssembly (WASI) build has no GPU backend, so there the GPU cases are left out.
const withGpu = nativeBuild() !== "wasm" && !(process.env["SEAD_SKIP_GPU_TESTS"] === "1" && gpuAdapters().length === 0);
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

const spec: ModelSpec = { dims: 1, cIn: 2, cH: 8, features: 16, cOut: 3, update: "residual", boundary: "periodic", quantize: "none" };
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

/*
 * Native work leaves the event loop free. Asserted on turns of the event loop alone, with no
 * wall-clock threshold (such thresholds hold on one machine and fail on a faster or busier
 * one): a 1 ms interval must tick TICKS times while the native call is still pending, and is
 * then what aborts it, so the test lasts as long as TICKS turns take, on any machine. The
 * calls run on one thread and are sized to take seconds here (4000 session steps of about
 * 1.7 ms; a training step of about 2 s), some 40 times what TICKS turns take (about 50 ms).
 *
 * - A call that runs on this thread gives no turn while it is pending: no ticks, and it
 *   finishes rather than being aborted.
 * - A session call that runs part of its steps on this thread (then the rest off it) is
 *   caught by its progress: when the loop has turned TICKS times, an asynchronous call has
 *   done a few of its steps (10 to 35 here), one that blocked first has done at least the
 *   blocked part. The bound is a quarter of them: a machine's native work would have to be
 *   some 30 times faster, relative to its event loop, than here to reach it.
 * - A training step has no progress to read, so only the first case is caught there: a
 *   training step that blocked for part of its work and ran the rest off the thread passes.
 */
const TICKS = 20;

/**
 * Starts a call and counts the interval's ticks while it is pending; the TICKS-th aborts it
 * (a few more may come while the abort reaches the native work).
 */
async function ticksWhilePending(start: (signal: AbortSignal) => Promise<unknown>): Promise<{ ticks: number; aborted: boolean }> {
  const ac = new AbortController();
  let ticks = 0;
  let pending = true;
  const timer = setInterval(() => {
    if (pending && ++ticks === TICKS) ac.abort();
  }, 1);
  try {
    await start(ac.signal);
    return { ticks, aborted: false };
  } catch (e) {
    if (e instanceof AbortError) return { ticks, aborted: true };
    throw e;
  } finally {
    pending = false;
    clearInterval(timer);
  }
}

test.serial("the event loop turns while a session steps natively, from the call's start", async (t) => {
  const steps = 4000;
  const model = sessionCases[0]!.model;
  const s = createBackend({ backend: "cpu", threads: 1 }).createSession(spec, { batch: 1, height: 1, width: 20_000 }, randomX(40_000, 7));
  try {
    const r = await ticksWhilePending((signal) => s.step(model.params, steps, { signal }));
    const stepped = s.steps()[0]!;
    t.log(`${r.ticks} ticks while the step call was pending; aborted after ${stepped} of ${steps} steps`);
    t.true(r.ticks >= TICKS, `the event loop turned ${r.ticks} times while the call was pending`);
    t.true(r.aborted, "the call finished before the event loop had turned TICKS times");
    t.true(stepped < steps / 4, `${stepped} of ${steps} steps were done before the event loop turned ${TICKS} times`);
  } finally {
    s.dispose();
  }
});

test.serial("the event loop turns while a training step runs natively", async (t) => {
  const tSpec: ModelSpec = { dims: 1, cIn: 2, cH: 16, features: 64, cOut: 2, update: "residual", boundary: "zero", quantize: "none" };
  const model = Model.init(tSpec, 1);
  const cells = 512 * 64;
  const batch = {
    grid: { batch: 512, height: 1, width: 64 },
    x: randomX(cells * tSpec.cIn),
    target: randomTargets(cells, 2),
    stepWeights: Float32Array.from({ length: 60 }, (_, i) => (i === 59 ? 1 : 0)),
  };
  const backend = createBackend({ backend: "cpu", threads: 1 });
  const r = await ticksWhilePending((signal) => backend.trainStep(tSpec, model.params, batch, signal));
  t.log(`${r.ticks} ticks while the training step was pending`);
  t.true(r.ticks >= TICKS, `the event loop turned ${r.ticks} times while the call was pending`);
  t.true(r.aborted, "the call finished before the event loop had turned TICKS times");
});
