/** The trainer: learning rate, step weights, determinism, resume, and refusal of bad configs. */
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Backend, createBackend } from "../src/backend/index.js";
import { CheckpointError, InvalidInputError } from "../src/errors.js";
import { loadCheckpoint, saveCheckpoint } from "../src/model/checkpoint.js";
import { learningRate, parseTrainConfig, stepWeights, Trainer } from "../src/train/trainer.js";
import { tinyConfig } from "./helpers.js";

const backend = createBackend({ backend: "cpu" });
const dir = mkdtempSync(join(tmpdir(), "sead-train-"));

const tiny = tinyConfig({ name: "addition", base: 2 }, { seed: 5, steps: 8, lengths: { min: 3, max: 6 }, unroll: { min: 6, max: 9 }, stabilitySteps: 2, noiseStd: 0.05 });

test("step weights put equal loss on step T and the stability steps", (t) => {
  t.deepEqual(Array.from(stepWeights(3, 1)), [0, 0, 0.5, 0.5]);
  t.deepEqual(Array.from(stepWeights(2, 0)), [0, 1]);
});

test("the learning rate warms up, then decays along a cosine to lrMin", (t) => {
  const c = parseTrainConfig({ ...tiny, steps: 1000, warmup: 100, lr: 1e-2, lrMin: 1e-4 });
  t.true(learningRate(c, 0) < learningRate(c, 50));
  t.is(learningRate(c, 99), 1e-2);
  t.true(Math.abs(learningRate(c, 1000) - 1e-4) < 1e-12);
  t.true(learningRate(c, 500) < 1e-2 && learningRate(c, 500) > 1e-4);
});

// Adam itself (moments, bias correction, clipping) is tested against a float64 reference in adam.test.ts.

test("training is deterministic: the same config gives the same parameters", async (t) => {
  const a = await new Trainer(tiny, backend).run();
  const b = await new Trainer(tiny, backend).run();
  const c = await new Trainer({ ...tiny, seed: 6 }, backend).run();
  t.deepEqual(a.model.params, b.model.params);
  t.notDeepEqual(a.model.params, c.model.params);
  t.is(a.steps, 8);
});

test("a run interrupted and resumed from its checkpoint ends with the same parameters", async (t) => {
  const config = { ...tiny, evalEvery: 2, evalLengths: [6], evalSamples: 4 };
  const whole = await new Trainer(config, backend).run();
  const path = join(dir, "resume.json");
  const ac = new AbortController();
  const first = await new Trainer(config, backend, {
    checkpointPath: path,
    onStep: (r) => {
      if (r.step === 3) ac.abort();
    },
  }).run(ac.signal);
  t.true(first.aborted);
  t.is(first.steps, 3);
  const ckpt = loadCheckpoint(path);
  t.is(ckpt.training["step"], 3);
  const resumed = await new Trainer(config, backend, {}, ckpt).run();
  t.is(resumed.steps, 8);
  t.deepEqual(resumed.model.params, whole.model.params);
  // The evaluation history carries over: the same reports as the uninterrupted run.
  t.deepEqual(resumed.evals, whole.evals);
  t.is(whole.evals.length, 4);
  // Resuming with another config is refused.
  t.throws(() => new Trainer({ ...config, lr: 0.01 }, backend, {}, ckpt), { instanceOf: CheckpointError, message: /different training config/ });
});

test("a short run learns binary addition at its training length", async (t) => {
  const s = await new Trainer(
    { ...tiny, model: { cH: 12, features: 32 }, steps: 300, batch: 32, lr: 0.01, warmup: 20, evalEvery: 300, evalLengths: [6], evalSamples: 32 },
    backend,
  ).run();
  t.true(s.lastLoss < 0.2, `loss ${s.lastLoss}`);
  t.true(s.evals[0]!.accuracy["6"]! >= 0.5, JSON.stringify(s.evals[0]));
});

test("a quantized model trains through the CPU backend, and the settling penalty reaches the loss", async (t) => {
  const quantized = { ...tiny, model: { cH: 6, features: 12, quantize: "ternary" as const } };
  const plain = await new Trainer(quantized, backend).run();
  const settled = await new Trainer({ ...quantized, settleWeight: 5 }, backend).run();
  t.is(plain.model.spec.quantize, "ternary");
  // The penalty changes the gradient from the first step, so the parameters part.
  t.notDeepEqual(plain.model.params, settled.model.params);
  const batch = {
    grid: { batch: 1, height: 1, width: 3 },
    x: new Float32Array(3 * 4),
    target: new Int32Array(3),
    stepWeights: new Float32Array([0, 1]),
  };
  const spec = plain.model.spec;
  const off = await backend.trainStep(spec, plain.model.params, batch);
  const on = await backend.trainStep(spec, plain.model.params, { ...batch, settleWeight: 3 });
  t.true(on.loss >= off.loss);
  await t.throwsAsync(backend.trainStep(spec, plain.model.params, { ...batch, settleWeight: -1 }), { message: /settleWeight/ });
});

test("randomStart: that fraction of each batch starts from random ternary states, the rest from zero; runs repeat", async (t) => {
  const seen: Float32Array[] = [];
  const spy: Backend = Object.create(backend) as Backend;
  spy.trainStep = (spec, params, batch, signal) => {
    if (batch.h0) seen.push(batch.h0);
    return backend.trainStep(spec, params, batch, signal);
  };
  const config = { ...tiny, steps: 3, batch: 8, model: { cH: 6, features: 12, quantize: "ternary" as const }, randomStart: 0.5 };
  const a = await new Trainer(config, spy).run();
  t.is(seen.length, 3);
  for (const h0 of seen) {
    const half = h0.length / 2;
    t.true(h0.subarray(0, half).every((v) => v === -1 || v === 0 || v === 1));
    t.true(h0.subarray(0, half).some((v) => v !== 0), "the first half is random");
    t.true(h0.subarray(half).every((v) => v === 0), "the second half starts from zero");
  }
  const b = await new Trainer(config, backend).run();
  t.deepEqual(a.model.params, b.model.params);
  const zero = await new Trainer({ ...config, randomStart: 0 }, backend).run();
  t.notDeepEqual(a.model.params, zero.model.params);
  t.throws(() => parseTrainConfig({ ...tiny, randomStart: 2 }), { message: /config.randomStart/ });
});

test("starts: a given input with a given hidden state is mixed into each batch of its shape", async (t) => {
  const batches: { width: number; x: Float32Array; h0?: Float32Array }[] = [];
  const spy: Backend = Object.create(backend) as Backend;
  spy.trainStep = (spec, params, batch, signal) => {
    batches.push({ width: batch.grid.width, x: batch.x, ...(batch.h0 ? { h0: batch.h0 } : {}) });
    return backend.trainStep(spec, params, batch, signal);
  };
  // One 3-digit sum: 4 cells (3 digit pairs and the carry-out cell) x cH 6.
  const h0 = Array.from({ length: 4 * 6 }, (_, i) => (i % 3) - 1);
  const config = { ...tiny, steps: 8, lengths: { min: 2, max: 4 }, starts: [{ input: { a: "101", b: "011" }, h0 }] };
  await new Trainer(config, spy).run();
  const fits = batches.filter((b) => b.width === 4);
  t.true(fits.length > 0 && fits.length < batches.length, "some batches have the start's shape, some do not");
  for (const b of batches) {
    const last = b.h0?.subarray(b.h0.length - h0.length);
    if (b.width === 4) t.deepEqual(Array.from(last!), h0, "the last sample starts from the given state");
    else t.is(b.h0, undefined);
  }
  t.throws(() => new Trainer({ ...config, starts: [{ input: { a: "101", b: "011" }, h0: [1, 2] }] }, backend), {
    message: /config.starts\[0\].h0 has 2 values but the input's grid has 1 x 4 cells x cH 6 = 24/,
  });
});

test("keepBest ends with the best evaluation's parameters, and keeps it across a resume", async (t) => {
  const config = { ...tiny, steps: 12, evalEvery: 4, evalLengths: [5], evalSamples: 8, keepBest: true };
  const atEval = new Map<number, Float32Array>();
  const trainer: Trainer = new Trainer(config, backend, { onEval: (e) => atEval.set(e.step, new Float32Array(trainer.currentModel.params)) });
  const whole = await trainer.run();
  t.is(whole.evals.length, 3);
  const scores = whole.evals.map((e) => e.accuracy["5"]!);
  const best = Math.max(...scores);
  // The latest evaluation with the best score.
  const kept = whole.evals[scores.lastIndexOf(best)]!.step;
  t.is(whole.keptStep, kept);
  t.deepEqual(whole.model.params, atEval.get(kept));
  if (kept !== 12) t.notDeepEqual(whole.model.params, trainer.currentModel.params);
  // Interrupted after the first evaluation and resumed: the same kept parameters.
  const path = join(dir, "keep-best.json");
  const ac = new AbortController();
  await new Trainer(config, backend, { checkpointPath: path, onStep: (r) => r.step === 6 && ac.abort() }).run(ac.signal);
  const resumed = await new Trainer(config, backend, { checkpointPath: path }, loadCheckpoint(path)).run();
  t.deepEqual(resumed.model.params, whole.model.params);
  t.is(resumed.keptStep, kept);
  t.throws(() => new Trainer({ ...config, evalEvery: 0 }, backend), { message: /keepBest needs evaluations/ });
});

test("bad configs are refused with the field's path", (t) => {
  t.throws(() => parseTrainConfig({ ...tiny, lr: -1 }), { instanceOf: InvalidInputError, message: /config.lr/ });
  t.throws(() => parseTrainConfig({ ...tiny, lengths: { min: 5, max: 2 } }), { message: /config.lengths/ });
  t.throws(() => parseTrainConfig({ ...tiny, bogus: 1 }), { message: /bogus/ });
  t.throws(() => parseTrainConfig({ ...tiny, task: { name: "addition", base: 99 } }), { message: /config.task/ });
  t.throws(() => parseTrainConfig({ ...tiny, model: { cH: 0 } }), { message: /config.model.cH/ });
});

test("aborting inside a training step or an evaluation still resumes to the same parameters", async (t) => {
  const config = { ...tiny, evalEvery: 2, evalLengths: [5], evalSamples: 4 };
  const whole = await new Trainer(config, backend).run();
  for (const when of ["step", "eval"] as const) {
    const path = join(dir, `abort-${when}.json`);
    const ac = new AbortController();
    // Abort while the native call of step 4 runs, or while the evaluation after step 4 runs.
    const first = new Trainer(config, backend, {
      checkpointPath: path,
      onStep: (r) => {
        if (r.step === (when === "step" ? 3 : 4)) queueMicrotask(() => ac.abort());
      },
    });
    const s = await first.run(ac.signal);
    t.true(s.aborted, when);
    const resumed = await new Trainer(config, backend, {}, loadCheckpoint(path)).run();
    t.deepEqual(resumed.model.params, whole.model.params, when);
  }
});

test("config.init fine-tunes from a checkpoint: the run starts from its parameters; a mismatched model is refused", async (t) => {
  const first = await new Trainer(tiny, backend).run();
  const path = join(dir, "init.json");
  saveCheckpoint(path, first.model, {});
  // Before its first step, the fine-tuning run holds exactly the parameters it was given.
  const tuned = new Trainer({ ...tiny, init: path, seed: 9 }, backend);
  t.deepEqual(tuned.currentModel.params, first.model.params);
  const done = await tuned.run();
  t.notDeepEqual(done.model.params, first.model.params);
  t.throws(() => new Trainer({ ...tiny, init: path, model: { cH: 7, features: 12 } }, backend), {
    instanceOf: CheckpointError,
    message: /config\.init: .*init\.json holds a model of spec/,
  });
  t.throws(() => new Trainer({ ...tiny, init: path, task: { name: "addition", base: 3 } }, backend), {
    instanceOf: CheckpointError,
    message: /config\.init: .*init\.json (holds a model of spec|was trained for)/,
  });
  t.throws(() => new Trainer({ ...tiny, init: join(dir, "missing.json") }, backend), { instanceOf: CheckpointError, message: /does not exist/ });
});
