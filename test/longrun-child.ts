/**
 * One long-running scenario of test/longrun.test.ts, run in its own process so that its RSS
 * is its own:
 *
 *   node --expose-gc --import=tsx test/longrun-child.ts <scenario> <iterations>
 *
 * Runs the scenario's body `iterations` times, samples RSS after full garbage collections
 * at SAMPLES evenly spaced points, and prints one JSON line (a `LongrunReport`) on stdout.
 */
import { createBackend, type Session } from "../src/backend/index.js";
import { Model } from "../src/model/model.js";
import type { ModelSpec } from "../src/model/spec.js";
import { Trainer } from "../src/train/trainer.js";
import { randomTargets, randomX, tinyConfig } from "./helpers.js";

export interface LongrunReport {
  scenario: string;
  iterations: number;
  /** Iteration count after which each RSS sample was taken. */
  at: number[];
  /** RSS in bytes after full GCs, one per entry of `at`. */
  rss: number[];
  /** Values that must not change from the first iteration to the last (e.g. the loss of a
   * fixed batch): a long run must not drift either. */
  checks: number[];
  /** "-nogc" scenarios: sessions dropped but not yet collected, at each sample. */
  uncollected: number[];
  /** True when the run stopped early because RSS had grown far past any margin (a leak:
   * going on would only eat the machine's memory). */
  stoppedEarly: boolean;
  ms: number;
}

export const SAMPLES = 20;
/** Stop a leaking run once it has grown by this much (well past any test's margin). */
const STOP_GROWTH = 512 * 2 ** 20;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

/** Full GCs with turns of the event loop between them: napi finalizers may be deferred to
 * one, and a finalized object can hold others that only the next GC sees. */
async function settle(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().rss;
}

const spec: ModelSpec = { dims: 1, cIn: 2, cH: 4, features: 8, cOut: 2, update: "replace", boundary: "zero", quantize: "none" };
const model = Model.init(spec, 1);
// Inputs of a few KB (x 2 KB, targets 1 KB; the gradient is 0.8 KB, the session state
// 13 KB), so that leaking any per-call copy of them shows within some thousands of calls.
const grid = { batch: 4, height: 1, width: 64 };
const cells = grid.batch * grid.width;
const x = randomX(cells * spec.cIn);
const batch = { grid, x, target: randomTargets(cells, spec.cOut), stepWeights: Float32Array.from([0.5, 0.5]) };
const converge = { patience: 2, tol: 1e-3, maxSteps: 12 };
// Dropped sessions are bigger (200 KB of state each): a session that is never freed shows
// at once.
const bigGrid = { batch: 4, height: 1, width: 1024 };
const bigX = randomX(bigGrid.batch * bigGrid.width * spec.cIn);
// Sessions dropped with no gc() from us are bigger still (6 MB each): only V8's own
// collections free them, and V8 must know what they hold to collect in time.
const hugeGrid = { batch: 4, height: 1, width: 32768 };
const hugeX = randomX(hugeGrid.batch * hugeGrid.width * spec.cIn);

/** One iteration of each scenario; returns a value that must stay the same every time. */
const scenarios: Record<string, (i: number) => Promise<number>> = {
  // The training kernel through the public Backend, with an AbortSignal (never aborted) so
  // each call also makes and drops a CancelToken and adds and removes an abort listener.
  async train() {
    const r = await cpu.trainStep(spec, model.params, batch, never);
    return r.loss;
  },
  // Create, use and dispose everything a caller creates: model, backend, session.
  async cycle(i) {
    const m = Model.init(spec, i);
    const b = createBackend({ backend: "cpu", threads: 1 });
    const s = b.createSession(m.spec, grid, x);
    await s.step(m.params, 3, { signal: never });
    const c = await s.converge(m.params, converge);
    const out = s.outputs().length + s.hidden().length + s.logits(m.params).length;
    s.dispose();
    b.dispose();
    return out + c.steps.length;
  },
  // Sessions stepped and then dropped without dispose(): the GC must free them. Collected
  // every 50 (10 MB), so that V8 never collects by itself at a varying point: the malloc
  // high-water mark, and with it RSS, would then vary by tens of MB (measured) from sample
  // to sample.
  async dropped(i) {
    const s = cpu.createSession(spec, bigGrid, bigX);
    await s.step(model.params, 1);
    if (i % 50 === 49) await settle();
    return s.outputs().length;
  },
  // A GPU device per iteration: open it, run a session and a training step, dispose both.
  async "gpu-device"() {
    const b = createBackend({ backend: "gpu" });
    const s = b.createSession(spec, grid, x);
    await s.step(model.params, 3);
    const r = await b.trainStep(spec, model.params, batch);
    s.dispose();
    b.dispose();
    return r.grad.length;
  },
  // GPU sessions on one device: create, step, converge, read, dispose.
  async "gpu-session"() {
    const s = gpu().createSession(spec, grid, x);
    await s.step(model.params, 3);
    await s.converge(model.params, converge);
    const out = s.outputs().length + s.hidden().length;
    s.dispose();
    return out;
  },
  // GPU sessions dropped without dispose(), and every 20th iteration a whole GPU backend
  // (device) dropped too, still holding a session. The collection before each new device
  // keeps at most one dropped device alive at a time, as in "gpu-device": lavapipe's
  // memory grows with the number of devices alive at once (to a plateau of ~760 MB with 20
  // at once, measured), whether they are disposed or dropped.
  async "gpu-dropped"(i) {
    if (i % 20 === 0) await settle();
    const b = i % 20 === 0 ? createBackend({ backend: "gpu" }) : gpu();
    const s = b.createSession(spec, bigGrid, bigX);
    await s.step(model.params, 1);
    return s.outputs().length;
  },
  // Bigger sessions dropped, with only V8's own collections to free them.
  async "dropped-nogc"() {
    const s = track(cpu.createSession(spec, hugeGrid, hugeX));
    await s.step(model.params, 1);
    return s.outputs().length;
  },
  // Not stepped (lavapipe takes a tenth of a second per step of these): a step of a small
  // session makes the device's next submission, at which wgpu frees dropped buffers.
  async "gpu-dropped-nogc"() {
    const s = track(gpu().createSession(spec, hugeGrid, hugeX));
    smallGpu ??= gpu().createSession(spec, grid, x);
    await smallGpu.step(model.params, 1);
    return s.grid.width;
  },
};

/** Counts dropped sessions that V8 has not collected yet. */
let uncollected = 0;
const registry = new FinalizationRegistry(() => uncollected--);
function track(s: Session): Session {
  uncollected++;
  registry.register(s, undefined);
  return s;
}

const cpu = createBackend({ backend: "cpu", threads: 1 });
const never = new AbortController().signal;
let gpuBackend: ReturnType<typeof createBackend> | undefined;
let smallGpu: Session | undefined;
function gpu() {
  gpuBackend ??= createBackend({ backend: "gpu" });
  return gpuBackend;
}

/** The Trainer for `steps` steps (evaluating, so also running sessions, every 500 steps),
 * sampling RSS from its step hook. Its check: it ran every step. */
async function trainer(steps: number): Promise<Omit<LongrunReport, "scenario" | "iterations" | "ms">> {
  const at: number[] = [];
  const rss: number[] = [];
  const every = steps / SAMPLES;
  const t = new Trainer(
    tinyConfig({ name: "addition", base: 2 }, {
      model: { cH: 8, features: 16 },
      seed: 3,
      steps,
      unroll: { min: 8, max: 12 },
      stabilitySteps: 2,
      warmup: 10,
      evalEvery: 500,
      evalLengths: [8],
      evalSamples: 8,
    }),
    cpu,
    {
      onStep: (r) => {
        if (r.step % every !== 0) return;
        // The hook is synchronous: one full GC (sessions here are disposed, not dropped,
        // so no finalizer needs the event loop).
        gc!();
        at.push(r.step);
        rss.push(process.memoryUsage().rss);
        if (!Number.isFinite(r.loss)) throw new Error(`loss ${r.loss} at step ${r.step}`);
      },
    },
  );
  const s = await t.run(never);
  return { at, rss, checks: [s.steps], uncollected: [], stoppedEarly: false };
}

async function main(): Promise<void> {
  const [scenario = "", n = ""] = process.argv.slice(2);
  const iterations = Number(n);
  if (!Number.isInteger(iterations) || iterations % SAMPLES !== 0) throw new Error(`iterations must be a multiple of ${SAMPLES}`);
  const t0 = performance.now();
  let result: Omit<LongrunReport, "scenario" | "iterations" | "ms">;
  if (scenario === "trainer") {
    result = await trainer(iterations);
  } else {
    const body = scenarios[scenario];
    if (!body) throw new Error(`unknown scenario ${scenario}`);
    result = { at: [], rss: [], checks: [], uncollected: [], stoppedEarly: false };
    const every = iterations / SAMPLES;
    for (let i = 0; i < iterations; i++) {
      const v = await body(i);
      if (i === 0 || (i + 1) % every === 0) result.checks.push(v);
      if ((i + 1) % every !== 0) continue;
      result.at.push(i + 1);
      if (scenario.endsWith("-nogc")) {
        // A turn of the event loop, so that finalization callbacks due have run.
        await new Promise((r) => setImmediate(r));
        result.uncollected.push(uncollected);
        result.rss.push(process.memoryUsage().rss);
      } else {
        result.rss.push(await settle());
      }
      if (result.rss.at(-1)! - result.rss[0]! > STOP_GROWTH) {
        result.stoppedEarly = true;
        break;
      }
    }
  }
  smallGpu?.dispose();
  gpuBackend?.dispose();
  const report: LongrunReport = { scenario, iterations, ...result, ms: Math.round(performance.now() - t0) };
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
