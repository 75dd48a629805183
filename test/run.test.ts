/** Running to a fixed point: per-sample convergence and the model/task check. */
import test from "ava";
import { createBackend } from "../src/backend/index.js";
import { InvalidInputError } from "../src/errors.js";
import { Model } from "../src/model/model.js";
import { paramLayout } from "../src/model/spec.js";
import { runEncoded, solve } from "../src/run.js";
import { loadModel } from "../src/models.js";
import { additionTask, padOperands, parityTask } from "../src/tasks/index.js";

const backend = createBackend({ backend: "cpu" });

/**
 * A hand-built parity model whose hidden channel carries the running parity one cell per
 * step: h'(i) = [x(i) xor h(i-1)] encoded in a tanh-saturated channel. Exact by design, so
 * steps and outputs are known: sample i settles after about its length plus patience.
 */
function handParity(): Model {
  const spec = { dims: 1 as const, cIn: 2, cH: 1, features: 4, cOut: 2, update: "replace" as const, boundary: "zero" as const, quantize: "none" as const };
  const l = paramLayout(spec);
  const p = new Float32Array(l.total);
  const c = 3; // channels per cell: x0, x1, h
  const w1 = (k: number, ch: number, f: number, v: number) => (p[l.w1[0] + (k * c + ch) * spec.features + f] = v);
  // s = h(left) in {-1 (parity 0), +1 (parity 1)}, b = the centre bit; parity' = s xor b.
  // One ReLU per combination: f0 = [s=+1, b=0], f1 = [s=-1, b=1] give parity 1;
  // f2 = [s=+1, b=1], f3 = [s=-1, b=0] give parity 0.
  const combos: [number, number][] = [
    [1, 0],
    [-1, 1],
    [1, 1],
    [-1, 0],
  ];
  combos.forEach(([s, b], f) => {
    w1(0, 2, f, s); // left neighbour's h
    w1(1, 1, f, b === 1 ? 1 : -1); // centre x1 (bit is 1)
    w1(1, 0, f, b === 0 ? 1 : -1); // centre x0 (bit is 0)
    // h = 0 (the left edge, or a cell the wave has not reached) counts as parity 0.
    p[l.b1[0] + f] = s === 1 ? -1.5 : -0.5;
  });
  // h' = tanh(10 * (f0 + f1 - f2 - f3)): +1 for parity 1, -1 for parity 0.
  p[l.w2[0] + 0] = 10;
  p[l.w2[0] + 1] = 10;
  p[l.w2[0] + 2] = -10;
  p[l.w2[0] + 3] = -10;
  p[l.wo[0] + 1] = 1; // class 1 when h > 0
  p[l.wo[0] + 0] = -1;
  return new Model(spec, p, { name: "parity" });
}

test("solve settles each sample on its own and reports its steps", async (t) => {
  const model = handParity();
  const task = parityTask();
  const inputs = [Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0]), Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]), Uint8Array.from([1, 1, 0, 1, 0, 0, 1, 1])];
  const r = await solve(backend, model, task, inputs, { patience: 2, tol: 1e-3, maxSteps: 100 });
  t.deepEqual(r.correct, [true, true, true], JSON.stringify(r.answers.map((a) => Array.from(a as Uint8Array))));
  t.deepEqual(Array.from(r.converged), [1, 1, 1]);
  // The all-zero row never changes its outputs: it settles first.
  t.true(r.steps[0]! < r.steps[1]!, `steps ${Array.from(r.steps)}`);
  t.true(r.steps[1]! >= 8, "the parity wave crosses all 8 cells before sample 1 settles");
});

test("maxSteps stops an unsettled sample and says so", async (t) => {
  const model = handParity();
  const enc = parityTask().encode([Uint8Array.from({ length: 50 }, (_, i) => i % 2)]);
  const r = await runEncoded(backend, model, enc, { patience: 2, tol: 1e-3, maxSteps: 10 });
  t.deepEqual(Array.from(r.converged), [0]);
  t.deepEqual(Array.from(r.steps), [10]);
});

test("a model is refused for a task it was not trained for", async (t) => {
  const model = handParity();
  await t.throwsAsync(solve(backend, model, additionTask({ base: 2 }), [{ a: "1", b: "1" }]), {
    instanceOf: InvalidInputError,
    message: /trained for \{"name":"parity"\}, not for \{"name":"addition","base":2\}/,
  });
});

test("freeze skips settled cells: a 3,000-digit carry chain is exact in the same steps, computing a few cells a step", async (t) => {
  for (const base of [2, 10]) {
    const { model } = loadModel(`addition-base${base}`);
    const task = additionTask({ base });
    const L = 3000;
    const input = padOperands((base - 1).toString(base).repeat(L), "1");
    const dense = await solve(backend, model, task, [input], { maxSteps: 4 * L });
    const skip = await solve(backend, model, task, [input], { maxSteps: 4 * L, freeze: 1e-5 });
    t.true(dense.correct[0] && skip.correct[0], `base ${base}: both exact`);
    t.is(skip.steps[0], dense.steps[0], `base ${base}: the same steps`);
    t.is(dense.cellsComputed[0], dense.steps[0]! * (L + 1), "plain stepping computes every cell");
    const share = skip.cellsComputed[0]! / dense.cellsComputed[0]!;
    t.true(share < 0.05, `base ${base}: computed ${(share * 100).toFixed(2)}% of the cells`);
  }
});

test("freeze 0 computes exactly what plain stepping does; bad freezes are refused", async (t) => {
  const model = handParity();
  const inputs = [Uint8Array.from({ length: 40 }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0)];
  const plain = await solve(backend, model, parityTask(), inputs, { patience: 2, tol: 1e-3, maxSteps: 100 });
  const zero = await solve(backend, model, parityTask(), inputs, { patience: 2, tol: 1e-3, maxSteps: 100, freeze: 0 });
  t.deepEqual(zero.answers, plain.answers);
  t.deepEqual(Array.from(zero.steps), Array.from(plain.steps));
  // The hand-built model saturates: cells the parity wave has passed stop changing.
  t.true(zero.cellsComputed[0]! < 0.6 * plain.cellsComputed[0]!, `${zero.cellsComputed[0]} of ${plain.cellsComputed[0]}`);
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await t.throwsAsync(solve(backend, model, parityTask(), inputs, { freeze: bad }), { instanceOf: InvalidInputError, message: /freeze must be finite and >= 0/ });
  }
});
