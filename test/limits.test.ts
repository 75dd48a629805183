/**
 * Resource limits: every request whose size the caller controls is checked against a stated
 * budget before anything is allocated, and refused with a ResourceLimitError that gives the
 * size it would need. (Without these checks, a failed allocation in Rust aborts the process:
 * `step(1e9)` on a batch of 1000 did exactly that before the step-statistics limit.)
 */
import test from "ava";
import { createBackend } from "../src/backend/index.js";
import { ResourceLimitError } from "../src/errors.js";
import { gpuAdapters } from "../src/backend/gpu.js";
import { nativeBuild } from "../src/backend/native.js";
import { Model } from "../src/model/model.js";
import type { ModelSpec } from "../src/model/spec.js";
import { smallSpec } from "./helpers.js";

const cpu = createBackend({ backend: "cpu" });
const m = Model.init(smallSpec, 1);

/** Runs f, which must be refused at once with the needed size in its message. */
async function refused(t: import("ava").ExecutionContext, f: () => unknown, re: RegExp) {
  const t0 = performance.now();
  const e = await t.throwsAsync(async () => f());
  const ms = performance.now() - t0;
  t.true(e instanceof ResourceLimitError, `${e?.name}: ${e?.message}`);
  t.regex(e!.message, re);
  t.regex(e!.message, /\d+\.\d\d [KMGT]iB/);
  // "Up front": nothing was attempted (an attempt at these sizes would take minutes or abort).
  // The bound leaves room for a loaded machine: 1 s was exceeded with training running beside.
  // The WebAssembly (WASI) build starts its async workers and thread pool (each instantiating
  // the module) on first use, seconds on a loaded machine: 15 s there.
  t.true(ms < (nativeBuild() === "wasm" ? 15_000 : 5000), `took ${ms.toFixed(0)} ms`);
  t.log(e!.message);
}

// The WebAssembly (WASI) build is 32-bit: a grid side past 2^32 - 1 is refused as too large,
// sizes past 4 GiB saturate at 4 GiB in its messages, and its default budgets are 3 GiB per
// session and 2 GiB of training activations (crates/sead-core: DEFAULT_MAX_BYTES).
const wasm = nativeBuild() === "wasm";

(wasm ? test : test.skip)("the WebAssembly build: a grid side past 2^32 - 1 is refused, and sizes over its 3 GiB budget", async (t) => {
  await refused(t, () => cpu.createSession(m.spec, { batch: 1, height: 1, width: 1e10 }, new Float32Array(0)), /grid\.width 10000000000 does not fit a 32-bit build of sead \(the WebAssembly one, with at most 4\.00 GiB of memory\)/);
  await refused(t, () => cpu.createSession(m.spec, { batch: 1, height: 1, width: 2 ** 32 - 1 }, new Float32Array(0)), /needs [\d.]+ GiB, over the limit of 3\.00 GiB/);
  const small = createBackend({ backend: "cpu", maxSessionBytes: 1 << 20 });
  await refused(t, () => small.createSession(m.spec, { batch: 1, height: 1, width: 1e6 }, new Float32Array(2e6)), /needs [\d.]+ MiB, over the limit of 1\.00 MiB/);
});

(wasm ? test.skip : test)("a grid of 10^10 cells is refused with the memory it would need", async (t) => {
  await refused(t, () => cpu.createSession(m.spec, { batch: 1, height: 1, width: 1e10 }, new Float32Array(0)), /10000000000 cells.*needs [\d.]+ GiB, over the limit of 16\.00 GiB/);
  await refused(t, () => cpu.createSession({ ...m.spec, dims: 2 }, { batch: 10, height: 1e5, width: 1e4 }, new Float32Array(0)), /needs/);
  // A smaller budget chosen by the caller is honoured too.
  const small = createBackend({ backend: "cpu", maxSessionBytes: 1 << 20 });
  await refused(t, () => small.createSession(m.spec, { batch: 1, height: 1, width: 1e6 }, new Float32Array(2e6)), /needs [\d.]+ MiB, over the limit of 1\.00 MiB/);
  t.is(cpu.sessionBytes(m.spec, { batch: 1, height: 1, width: 1e10 }) > 16 * 2 ** 30, true);
});

test("a training batch whose stored activations exceed the budget is refused", async (t) => {
  const spec: ModelSpec = { ...smallSpec, cIn: 0 };
  const params = Model.init(spec, 1).params;
  const width = 100_000;
  const steps = 100_000;
  await refused(
    t,
    () =>
      cpu.trainStep(spec, params, {
        grid: { batch: 1, height: 1, width },
        x: new Float32Array(0),
        target: new Int32Array(width),
        stepWeights: new Float32Array(steps).fill(1),
      }),
    wasm ? /would hold [\d.]+ GiB of activations \(limit 2\.00 GiB\)/ : /would hold 1\.75 TiB of activations \(limit 4\.00 GiB\)/,
  );
});

test("step(n) whose per-step statistics would not fit is refused; converge is the way", async (t) => {
  const s = cpu.createSession(m.spec, { batch: 1000, height: 1, width: 1 }, new Float32Array(2000));
  try {
    await refused(t, () => s.step(m.params, 1e9), /1000000000 steps x 1000 samples would return 25\.47 TiB of per-step statistics.*use converge/);
    // The session is untouched and still works.
    await s.step(m.params, 2);
    t.deepEqual(Array.from(s.steps()).slice(0, 3), [2, 2, 2]);
  } finally {
    s.dispose();
  }
});

test("logits larger than the session's budget are refused (many classes, few channels)", async (t) => {
  const spec: ModelSpec = { dims: 1, cIn: 0, cH: 1, features: 2, cOut: 256, update: "replace", boundary: "zero", quantize: "none" };
  const model = Model.init(spec, 1);
  const b = createBackend({ backend: "cpu", maxSessionBytes: 64 << 20 });
  const s = b.createSession(spec, { batch: 1, height: 1, width: 1e6 }, new Float32Array(0));
  try {
    await refused(t, () => s.logits(model.params), /the logits of 1000000 cells x 256 classes need 976\.56 MiB, over the session's limit of 64\.00 MiB/);
    t.is(s.outputs().length, 1e6);
  } finally {
    s.dispose();
  }
});

// Skipped in the WebAssembly (WASI) build, which has no GPU backend (test/gpu.test.ts asserts its error).
const gpuTest = nativeBuild() === "wasm" || (process.env["SEAD_SKIP_GPU_TESTS"] === "1" && gpuAdapters().length === 0) ? test.skip : test;
gpuTest("the GPU backend refuses the same oversized requests up front", async (t) => {
  const gpu = createBackend({ backend: "gpu" });
  try {
    await refused(t, () => gpu.createSession(m.spec, { batch: 1, height: 1, width: 1e10 }, new Float32Array(0)), /needs [\d.]+ GiB/);
    const s = gpu.createSession(m.spec, { batch: 1000, height: 1, width: 1 }, new Float32Array(2000));
    try {
      await refused(t, () => s.step(m.params, 1e9), /per-step statistics/);
    } finally {
      s.dispose();
    }
  } finally {
    gpu.dispose();
  }
});
