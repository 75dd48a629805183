/**
 * The GPU backend against the CPU backend, end to end through the TypeScript API: the same
 * training step, the same inference, a model trained on one backend answering the same on
 * the other, and the shipped binary-addition model adding 1000-bit numbers on the GPU.
 *
 * Runs on whatever adapter wgpu finds; in CI that is Mesa's software Vulkan (lavapipe,
 * scripts/install-gpu-deps.sh). No adapter fails these tests unless SEAD_SKIP_GPU_TESTS=1.
 *
 * Tolerances (the Rust tests in crates/sead-gpu/tests/agreement.rs explain them in detail):
 * - loss: 1e-5 relative (the GPU's cross-entropy is f32, the CPU's f64);
 * - gradient: 2e-5 x max |g| per entry: each backend's f32 gradient lies within ~2e-6 x
 *   max |g| of the f64 one (measured), summed in different orders;
 * - hidden state after 8 steps: 5e-5 absolute (a few f32 ulps per step, fused multiply-adds
 *   and summation order, grown by at most a small factor per step);
 * - outputs: equal wherever the CPU's two largest logits differ by more than 1e-3;
 * - hidden state of the quantized spec: equal (its values are -1, 0 and +1);
 * - convergence steps: equal for trained models (their deltas are far from tol when they
 *   settle), and answers equal.
 */
import test, { type ExecutionContext } from "ava";
import { type Backend, CpuBackend, createBackend } from "../src/backend/index.js";
import { AbortError, SeadError } from "../src/errors.js";
import { GpuBackend, gpuAdapters } from "../src/backend/gpu.js";
import { nativeBuild } from "../src/backend/native.js";
import { Model } from "../src/model/model.js";
import type { ModelSpec } from "../src/model/spec.js";
import { loadModel } from "../src/models.js";
import { Rng } from "../src/rng.js";
import { solve } from "../src/run.js";
import { type AnyTask, additionTask, parityTask } from "../src/tasks/index.js";
import { Trainer } from "../src/train/trainer.js";
import { randomTargets, randomX, tinyConfig } from "./helpers.js";

// The WebAssembly (WASI) build (`npm run test:wasi`) has no GPU backend: there the tests
// below are skipped, saying so, and the one test after them asserts the error it gives.
const wasm = nativeBuild() === "wasm";
const skip = wasm || (process.env["SEAD_SKIP_GPU_TESTS"] === "1" && gpuAdapters().length === 0);
const gpuTest = skip ? test.skip : test;
if (wasm) console.log("the WebAssembly (WASI) build has no GPU backend: skipping the GPU tests, asserting its error instead");
else if (skip) console.log("SEAD_SKIP_GPU_TESTS=1 and no GPU adapter: skipping the GPU tests");

(wasm ? test : test.skip)("the WebAssembly build: backend gpu fails with an error naming the cause, auto picks the cpu", (t) => {
  const why = /the GPU backend is not available in the WebAssembly \(WASI\) build of sead/;
  t.throws(() => new GpuBackend(), { instanceOf: SeadError, message: why });
  t.throws(() => createBackend({ backend: "gpu" }), { instanceOf: SeadError, message: why });
  t.deepEqual(gpuAdapters(), []);
  t.is(createBackend({ backend: "auto" }).name, "cpu");
});

const cpu = new CpuBackend();
let gpuBackend: GpuBackend | undefined;
function gpu(): GpuBackend {
  // No adapter makes this throw, and so fails the test (unless skipped above).
  gpuBackend ??= new GpuBackend();
  return gpuBackend;
}
test.after.always(() => gpuBackend?.dispose());

const specs: ModelSpec[] = [
  { dims: 1, cIn: 2, cH: 5, features: 9, cOut: 3, update: "replace", boundary: "zero", quantize: "none" },
  { dims: 1, cIn: 3, cH: 7, features: 11, cOut: 2, update: "residual", boundary: "periodic", quantize: "none" },
  { dims: 2, cIn: 1, cH: 5, features: 7, cOut: 3, update: "replace", boundary: "periodic", quantize: "none" },
  { dims: 2, cIn: 2, cH: 3, features: 13, cOut: 2, update: "residual", boundary: "zero", quantize: "none" },
  { dims: 1, cIn: 2, cH: 6, features: 10, cOut: 3, update: "residual", boundary: "periodic", quantize: "ternary" },
];

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

gpuTest("info() names the adapter", (t) => {
  const info = gpu().info();
  t.is(info.name, "gpu");
  t.true(info.device.includes(gpu().adapterInfo.name), info.device);
  t.log(info.device);
});

gpuTest("the same training step gives the same loss and gradient on cpu and gpu", async (t) => {
  for (const [i, spec] of specs.entries()) {
    const model = Model.init(spec, 10 + i);
    const grid = spec.dims === 1 ? { batch: 6, height: 1, width: 19 } : { batch: 3, height: 6, width: 7 };
    const cells = grid.batch * grid.height * grid.width;
    const target = randomTargets(cells, spec.cOut, 20 + i);
    target[3] = -1;
    const batch = {
      grid,
      x: randomX(cells * spec.cIn, 30 + i),
      target,
      stepWeights: Float32Array.from([0, 0.1, 0, 0.3, 0.6]),
      noiseStd: 0.05,
      noiseSeed: 7 + i,
    };
    const a = await cpu.trainStep(spec, model.params, batch);
    const b = await gpu().trainStep(spec, model.params, batch);
    t.true(Math.abs(a.loss - b.loss) <= 1e-5 * a.loss, `${JSON.stringify(spec)}: loss ${a.loss} vs ${b.loss}`);
    const scale = maxAbs(a.grad);
    const d = maxDiff(a.grad, b.grad);
    t.true(d <= 2e-5 * scale, `${JSON.stringify(spec)}: gradient differs by ${d} (max |g| ${scale})`);
    t.is(a.cellsSupervised, b.cellsSupervised);
    t.is(a.cellsCorrect, b.cellsCorrect);
    t.is(a.exact, b.exact);
    t.log(`${spec.dims}D ${spec.update} ${spec.boundary} ${spec.quantize}: gradient differs by ${(d / scale).toExponential(1)} of max |g|`);
  }
});

gpuTest("the same inference gives the same hidden state and outputs on cpu and gpu", async (t) => {
  for (const [i, spec] of specs.entries()) {
    const model = Model.init(spec, 40 + i);
    const grid = spec.dims === 1 ? { batch: 4, height: 1, width: 33 } : { batch: 2, height: 9, width: 8 };
    const x = randomX(grid.batch * grid.height * grid.width * spec.cIn, 50 + i);
    const sc = cpu.createSession(spec, grid, x);
    const sg = gpu().createSession(spec, grid, x);
    try {
      const rc = await sc.step(model.params, 8);
      const rg = await sg.step(model.params, 8, { active: Uint8Array.from({ length: grid.batch }, () => 1) });
      t.true(maxDiff(sc.hidden(), sg.hidden()) <= 5e-5, `${JSON.stringify(spec)}: hidden differs by ${maxDiff(sc.hidden(), sg.hidden())}`);
      t.true(maxDiff(rc.maxDelta, rg.maxDelta) <= 5e-5);
      // Quantized states are whole numbers: equal, not merely close.
      if (spec.quantize === "ternary") t.deepEqual(Array.from(sg.hidden()), Array.from(sc.hidden()));
      const logits = sc.logits(model.params);
      t.true(maxDiff(logits, sg.logits(model.params)) <= 2e-4);
      const oc = sc.outputs();
      const og = sg.outputs();
      for (let c = 0; c < oc.length; c++) {
        const l = Array.from(logits.subarray(c * spec.cOut, (c + 1) * spec.cOut)).sort((p, q) => q - p);
        if (l[0]! - l[1]! > 1e-3) t.is(og[c], oc[c], `${JSON.stringify(spec)}: output of cell ${c}`);
      }
      t.deepEqual(Array.from(sg.steps()), Array.from(sc.steps()));
    } finally {
      sc.dispose();
      sg.dispose();
    }
  }
});

async function sameAnswers(t: ExecutionContext, model: Model, inputs: readonly unknown[], task: AnyTask, a: Backend, b: Backend) {
  const ra = await solve(a, model, task, inputs);
  const rb = await solve(b, model, task, inputs);
  t.deepEqual(rb.answers, ra.answers);
  t.deepEqual(Array.from(rb.steps), Array.from(ra.steps));
  t.deepEqual(Array.from(rb.converged), Array.from(ra.converged));
  return { ra, rb };
}

const tiny = tinyConfig({ name: "parity" }, { seed: 3, unroll: { min: 8, max: 12 }, stabilitySteps: 2, noiseStd: 0.05 });

gpuTest("a model trained on one backend gives the same answers on the other", async (t) => {
  const onGpu = await new Trainer(tiny, gpu()).run();
  const onCpu = await new Trainer(tiny, cpu).run();
  t.is(onGpu.steps, 6);
  // Adam normalises each gradient entry, so parameters trained on the two backends differ
  // by up to a few learning rates where a gradient entry is near zero; they stay close.
  t.true(maxDiff(onGpu.model.params, onCpu.model.params) < 0.05, `${maxDiff(onGpu.model.params, onCpu.model.params)}`);
  const task = parityTask();
  const rng = new Rng(9);
  const inputs = Array.from({ length: 16 }, () => task.sample(rng, 12));
  await sameAnswers(t, onGpu.model, inputs, task, gpu(), cpu);
  await sameAnswers(t, onCpu.model, inputs, task, cpu, gpu());
});

gpuTest("the shipped binary-addition model adds 1000-bit numbers on the gpu", async (t) => {
  const { model } = loadModel("addition-base2");
  const task = additionTask({ base: 2 });
  const rng = new Rng(2024);
  const inputs = Array.from({ length: 64 }, () => task.sample(rng, 1000));
  const t0 = Date.now();
  const { rb } = await sameAnswers(t, model, inputs, task, cpu, gpu());
  const wrong = rb.correct.filter((c) => !c).length;
  t.is(wrong, 0, `${wrong} of 64 sums wrong on the gpu`);
  const steps = Array.from(rb.steps);
  t.log(
    `64 x 1000-bit additions on ${gpu().adapterInfo.name}: all correct, steps ${Math.min(...steps)}..${Math.max(...steps)} ` +
      `(${Date.now() - t0} ms for both backends)`,
  );
});

gpuTest("skipping settled cells (freeze) on the gpu: the cpu's sums in the cpu's steps, computing few tiles on a carry chain", async (t) => {
  for (const base of [2, 10]) {
    const { model } = loadModel(base === 2 ? "addition-base2" : "addition-base10");
    const task = additionTask({ base });
    const max = (base - 1).toString();
    const rng = new Rng(3);
    const inputs = [{ a: max.repeat(1500), b: "1".padStart(1500, "0") }, ...Array.from({ length: 7 }, () => task.sample(rng, 1500))];
    const opts = { freeze: 1e-5, maxSteps: 4000 };
    const [rc, rg] = await Promise.all([solve(cpu, model, task, inputs, opts), solve(gpu(), model, task, inputs, opts)]);
    t.deepEqual(rg.correct, inputs.map(() => true), `base ${base}: every sum exact on the gpu`);
    t.deepEqual(Array.from(rg.steps), Array.from(rc.steps), `base ${base}: the same steps on both backends`);
    const dense = rg.steps[0]! * 1501;
    t.true(rg.cellsComputed[0]! < 0.1 * dense, `base ${base}: the chain computes ${rg.cellsComputed[0]} of ${dense} cell updates`);
    const plain = await solve(gpu(), model, task, [task.sample(rng, 200)]);
    t.is(plain.cellsComputed[0], plain.steps[0]! * 201, "without freeze a gpu session computes every cell at each step");
  }
  const { model } = loadModel("addition-base2");
  const task = additionTask({ base: 2 });
  await t.throwsAsync(solve(gpu(), model, task, [{ a: "1", b: "1" }], { freeze: -1 }), { message: /freeze must be finite and >= 0, got -1/ });
});

gpuTest("aborting a gpu call rejects with an AbortError", async (t) => {
  const spec = specs[0]!;
  const model = Model.init(spec, 1);
  const s = gpu().createSession(spec, { batch: 1, height: 1, width: 8 }, randomX(8 * spec.cIn));
  const ctl = new AbortController();
  ctl.abort();
  await t.throwsAsync(s.converge(model.params, { patience: 2, tol: 1e-4, maxSteps: 10 }, ctl.signal), { instanceOf: AbortError });
  s.dispose();
  t.throws(() => s.dispose(), { message: /already disposed/ });
});

gpuTest("asking for a missing adapter names the adapters and the fix", (t) => {
  const e = t.throws(() => new GpuBackend({ adapter: "no-such-adapter-xyz" }), { instanceOf: SeadError });
  t.regex(e!.message, /no-such-adapter-xyz/);
  t.regex(e!.message, /wgpu found/);
});

gpuTest('"auto" takes a hardware adapter and prefers the cpu over a software one', (t) => {
  const b = createBackend({ backend: "auto" });
  const hardware = gpuAdapters().filter((a) => !a.software);
  t.is(b.name, hardware.length > 0 ? "gpu" : "cpu", b.info().device);
  t.log(`auto picked ${b.info().device} (adapters: ${gpuAdapters().map((a) => a.name).join(", ")})`);
  b.dispose();
  const g = createBackend({ backend: "gpu" });
  t.is(g.name, "gpu");
  g.dispose();
});

gpuTest("tuning the step kernel's layout (tileCells, workgroupThreads) changes no bit of a session's results", async (t) => {
  const spec = specs[1]!;
  const model = Model.init(spec, 60);
  const grid = { batch: 5, height: 1, width: 13 };
  const x = randomX(grid.batch * grid.width * spec.cIn, 61);
  const tuned = new GpuBackend({ tileCells: 8, workgroupThreads: 32 });
  const a = gpu().createSession(spec, grid, x);
  const b = tuned.createSession(spec, grid, x);
  try {
    const ra = await a.step(model.params, 6);
    const rb = await b.step(model.params, 6);
    t.deepEqual(Array.from(rb.maxDelta), Array.from(ra.maxDelta));
    t.deepEqual(Array.from(b.hidden()), Array.from(a.hidden()));
    t.deepEqual(Array.from(b.outputs()), Array.from(a.outputs()));
  } finally {
    a.dispose();
    b.dispose();
    tuned.dispose();
  }
  const bad = t.throws(() => new GpuBackend({ tileCells: 12 as 8 }), { instanceOf: SeadError });
  t.regex(bad?.message ?? "", /tileCells/);
});
