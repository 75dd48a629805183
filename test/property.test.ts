/**
 * Property-based tests (fast-check) at the public API and the native binding: random specs,
 * shapes, typed-array kinds and values, hostile numbers (NaN, Infinity, denormals, huge and
 * zero sizes), detached and shared buffers, wrong types. Every case must either work (and then
 * give the same answer as a clean copy of its input) or throw a JavaScript Error with a
 * message; a native abort would take the whole test process down and fail the run.
 *
 * Cases: the per-property counts below (over 10,000 in all); SEAD_FULL=1 runs ten times as
 * many. The seed is fixed (SEAD_FC_SEED overrides it) and printed, so a failure replays.
 */
import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import assert from "node:assert/strict";
import { createBackend } from "../src/backend/index.js";
import { SeadError } from "../src/errors.js";
import { parseCheckpoint, checkpointToJson } from "../src/model/checkpoint.js";
import { Model } from "../src/model/model.js";
import { paramLayout, parseSpec, type ModelSpec } from "../src/model/spec.js";
import { native } from "../src/backend/native.js";
import { Rng } from "../src/rng.js";
import { parseTaskName, taskFromInfo } from "../src/tasks/index.js";
import { parseTrainConfig } from "../src/train/trainer.js";

const SEED = Number(process.env["SEAD_FC_SEED"] ?? 20261122);
const SCALE = process.env["SEAD_FULL"] === "1" ? 10 : 1;
const backend = createBackend({ backend: "cpu", threads: 1 });

let totalCases = 0;
/** Cases that worked and that threw, per property: the arbitraries must reach both. */
const outcome = { worked: 0, threw: 0 };
/** Runs a property with the shared seed, counting its cases. */
async function check<T>(
  t: ExecutionContext,
  runs: number,
  arb: fc.Arbitrary<T>,
  body: (v: T) => Promise<void> | void,
  minShare = 0.05,
) {
  const numRuns = runs * SCALE;
  outcome.worked = outcome.threw = 0;
  const details = await fc.check(
    fc.asyncProperty(arb, async (v) => {
      await body(v);
    }),
    { seed: SEED, numRuns },
  );
  if (details.failed) {
    const err = details.errorInstance as Error | undefined;
    t.fail(
      `failed after ${details.numRuns} cases (seed ${SEED}, path ${details.counterexamplePath}):\n` +
        `${fc.stringify(details.counterexample)}\n${err?.stack ?? String(err)}`,
    );
    return;
  }
  totalCases += numRuns;
  t.log(`${numRuns} cases (${outcome.worked} calls worked, ${outcome.threw} threw), seed ${SEED}`);
  // Both paths must be exercised, or the property proves little.
  t.true(outcome.worked >= numRuns * minShare && outcome.threw >= numRuns * minShare);
}

/** A thrown value must be an Error with a message; through the TS API, one of sead's. */
function assertError(e: unknown, seadOnly: boolean): void {
  if (!(e instanceof Error) || typeof e.message !== "string" || e.message.length === 0) {
    throw new Error(`threw a non-Error or an empty message: ${String(e)}`);
  }
  if (seadOnly && !(e instanceof SeadError)) throw new Error(`threw ${e.name} instead of a sead error: ${e.message}`);
}

async function worksOrThrows<T>(f: () => T | Promise<T>, seadOnly = true): Promise<T | undefined> {
  try {
    const r = await f();
    outcome.worked++;
    return r;
  } catch (e) {
    assertError(e, seadOnly);
    outcome.threw++;
    if (process.env["SEAD_FC_DEBUG"]) console.log((e as Error).message.slice(0, 100));
    return undefined;
  }
}

// --- Arbitraries -----------------------------------------------------------------------

/** Numbers a careless caller might pass where a count or size is expected. */
const hostileNumber = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, -1, 0.5, 1.5, 5e-324, 1e-310, 2 ** 31, 2 ** 32, 2 ** 53, 1e300, -1e300),
  fc.double(),
  fc.integer({ min: -5, max: 5 }),
);
/** Anything at all. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileNumber,
  fc.string({ maxLength: 8 }),
  fc.constantFrom(null, undefined, true, false, {}, [], [1, 2], "1", 10n, Symbol.iterator),
);
/** A valid value most of the time (so the deeper code runs), hostile otherwise. */
const mostly = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 15, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: hostileValue });

const specArb = fc.record({
  dims: mostly(fc.constantFrom(1, 2)),
  cIn: mostly(fc.integer({ min: 0, max: 4 })),
  cH: mostly(fc.integer({ min: 1, max: 6 })),
  features: mostly(fc.integer({ min: 1, max: 12 })),
  cOut: mostly(fc.integer({ min: 1, max: 4 })),
  update: mostly(fc.constantFrom("replace", "residual")),
  boundary: mostly(fc.constantFrom("zero", "periodic")),
});
const gridArb = fc.record({
  batch: mostly(fc.integer({ min: 1, max: 3 })),
  height: mostly(fc.integer({ min: 1, max: 3 })),
  width: mostly(fc.integer({ min: 1, max: 9 })),
  /** Mostly give a 1D model the height 1 it needs (else most cases stop at that check). */
  fit: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});
type GridCase = typeof gridArb extends fc.Arbitrary<infer G> ? G : never;

function gridFor(rawSpec: Record<string, unknown>, grid: GridCase): { batch: number; height: number; width: number } {
  const { fit, ...g } = grid;
  return (fit && rawSpec["dims"] === 1 ? { ...g, height: 1 } : g) as { batch: number; height: number; width: number };
}

/** How to build an array argument: its kind, a length off by `delta`, and what fills it. */
const bufferArb = fc.record({
  kind: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom("f32", "f32-offset", "f32-shared") },
    { weight: 1, arbitrary: fc.constantFrom("f32-detached", "f64", "i32", "u8", "array", "null") },
  ),
  delta: fc.oneof({ weight: 15, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
  fill: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom("normal", "denormal", "huge", "zero") },
    { weight: 1, arbitrary: fc.constantFrom("nan", "inf") },
  ),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});
type BufferRecipe = typeof bufferArb extends fc.Arbitrary<infer R> ? R : never;

function fillValue(fill: BufferRecipe["fill"], rng: Rng, i: number): number {
  const r = rng.float() * 2 - 1;
  switch (fill) {
    case "nan":
      return i === 0 ? NaN : r;
    case "inf":
      return i === 0 ? -Infinity : r;
    case "denormal":
      return r * 1e-40;
    case "huge":
      return r * 3e38;
    case "zero":
      return 0;
    default:
      return r;
  }
}

/** Builds the array a recipe describes, for an argument that needs `n` values. */
function makeBuffer(recipe: BufferRecipe, n: number, opts: { classes?: number; nonNegative?: boolean } = {}): unknown {
  const classes = opts.classes ?? 0;
  const integer = classes > 0;
  const len = Math.max(0, (Number.isFinite(n) ? Math.floor(Math.min(Math.abs(n), 1 << 16)) : 0) + recipe.delta);
  const rng = new Rng(recipe.seed);
  const values = Array.from({ length: len }, (_, i) => (integer
      ? Math.floor(rng.float() * (classes + 1)) - 1
      : opts.nonNegative && recipe.fill !== "nan"
        ? Math.abs(fillValue(recipe.fill, rng, i))
        : fillValue(recipe.fill, rng, i)),);
  switch (recipe.kind) {
    case "f32":
      return integer ? Int32Array.from(values) : Float32Array.from(values);
    case "f32-offset": {
      // A view into the middle of a larger buffer: the binding must honour the offset.
      const Ctor = integer ? Int32Array : Float32Array;
      const big = new Ctor(len + 7).fill(integer ? 3 : 9.5);
      big.set(values, 3);
      return big.subarray(3, 3 + len);
    }
    case "f32-shared": {
      // A view over a SharedArrayBuffer, on purpose. Each constructor is called on its own: a call
      // through the union `integer ? Int32Array : Float32Array` matches no overload for a SharedArrayBuffer.
      const shared = new SharedArrayBuffer(len * 4);
      const a = integer ? new Int32Array(shared) : new Float32Array(shared);
      a.set(values);
      return a;
    }
    case "f32-detached": {
      const a = integer ? Int32Array.from(values) : Float32Array.from(values);
      structuredClone(a.buffer, { transfer: [a.buffer] });
      return a;
    }
    case "f64":
      return Float64Array.from(values);
    case "i32":
      return integer ? Float32Array.from(values) : Int32Array.from(values.map(Math.round));
    case "u8":
      return Uint8Array.from(values.map((v) => Math.abs(Math.round(v)) & 255));
    case "array":
      return values;
    default:
      return null;
  }
}

/** A plain copy of a (valid) typed array: what a result must match. */
const copyOf = <T extends Float32Array | Int32Array>(a: T): T => {
  // (slice() throws on a detached buffer, which holds no values anyway)
  const out = new (a.constructor as new (n: number) => T)(a.length);
  if (a.length > 0) out.set(a);
  return out;
};

function specOf(raw: Record<string, unknown>): ModelSpec | undefined {
  try {
    return parseSpec(raw);
  } catch {
    return undefined;
  }
}

/** A number argument as given, NaN for anything else (Number(Symbol) would throw here). */
const num = (v: unknown): number => (typeof v === "number" ? v : NaN);

const paramsFor = (spec: ModelSpec | undefined) => (spec ? Model.init(spec, 7).params : new Float32Array(3));

// --- Properties -------------------------------------------------------------------------

test.serial("sessions: random specs, grids and inputs either work (matching a clean copy) or throw", async (t) => {
  await check(t, 3000, fc.tuple(specArb, gridArb, bufferArb), async ([rawSpec, grid, recipe]) => {
    const spec = specOf(rawSpec);
    const g = gridFor(rawSpec, grid);
    const cells = num(g.batch) * num(g.height) * num(g.width);
    const x = makeBuffer(recipe, cells * num(spec?.cIn ?? rawSpec.cIn));
    const s = await worksOrThrows(() => backend.createSession(rawSpec as ModelSpec, g, x as Float32Array));
    if (!s || !spec) return;
    // It worked: the same run from a clean copy of x must give the same state, bit for bit.
    const params = paramsFor(spec);
    const clean = backend.createSession(spec, g, copyOf(x as Float32Array));
    await s.step(params, 3);
    await clean.step(params, 3);
    assert.deepStrictEqual(s.hidden(), clean.hidden());
    assert.deepStrictEqual(s.outputs(), clean.outputs());
    s.dispose();
    clean.dispose();
  });
});

test.serial("session calls: hostile steps, active masks, params and converge options", async (t) => {
  const spec: ModelSpec = { dims: 1, cIn: 2, cH: 3, features: 5, cOut: 2, update: "replace", boundary: "zero", quantize: "none" };
  const params = Model.init(spec, 3).params;
  const grid = { batch: 2, height: 1, width: 6 };
  // Valid step counts stay small; the hostile ones are invalid or refused as too large
  // (1e9 steps would otherwise be a legal, hours-long request).
  const stepsArb = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(NaN, -1, 1.5, Infinity, 1e9, 2 ** 40, "3", null));
  const convergeArb = fc.record({
    patience: mostly(fc.integer({ min: 1, max: 4 })),
    tol: mostly(fc.constantFrom(1e-3, 0.5, 10)),
    maxSteps: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constantFrom(0, -5, NaN, 1e13, 2.5, "9")),
  });
  const arb = fc.record({
    op: fc.constantFrom("step", "converge", "logits", "refresh"),
    steps: stepsArb,
    active: fc.oneof(fc.constant(undefined), fc.uint8Array({ minLength: 0, maxLength: 4 }), hostileValue),
    params: bufferArb,
    converge: convergeArb,
  });
  // Valid parameters for "refresh" differ from those the session stepped with, so a refresh
  // that did nothing would leave outputs that do not match its parameters' logits.
  const refreshParams = Model.init(spec, 4).params;
  let refreshesThatChanged = 0;
  await check(t, 2500, arb, async (c) => {
    const x = new Float32Array(24).fill(0.5);
    x[1] = x[8] = -1; // cells that differ, so outputs differ across the row
    const valid = c.params.kind === "f32" && c.params.delta === 0 && c.params.fill === "normal";
    const p = valid ? (c.op === "refresh" ? refreshParams : params) : makeBuffer(c.params, params.length);
    if (c.op === "refresh") {
      // refreshOutputs is the native session's (the TS Session does not offer it), so it is
      // called on a native session, stepped first so that its state is not all zeros. Its
      // errors come straight from the binding: any Error with a message will do.
      const n = new (native().InferenceSession)(spec, grid, x, { threads: 1 });
      try {
        n.stepSync(params, 3);
        const [before, hidden] = [n.outputs(), n.hidden()];
        const done = await worksOrThrows(() => (n.refreshOutputs(p as Float32Array), true), false);
        // It recomputes the outputs from the hidden state, which it leaves as it was.
        assert.deepStrictEqual(n.hidden(), hidden);
        if (done) {
          assert.deepStrictEqual(n.outputs(), argmaxes(n.logits(p as Float32Array), spec.cOut));
          if (p === refreshParams && !Buffer.from(n.outputs()).equals(Buffer.from(before))) refreshesThatChanged++;
        } else {
          assert.deepStrictEqual(n.outputs(), before, "a refused refresh leaves the outputs");
        }
        assert.equal(n.outputs().length, 12);
      } finally {
        n.dispose();
      }
      return;
    }
    const s = backend.createSession(spec, grid, x);
    try {
      await worksOrThrows(async () => {
        if (c.op === "step") await s.step(p as Float32Array, c.steps as number, { active: c.active as Uint8Array });
        else if (c.op === "converge") await s.converge(p as Float32Array, c.converge as never);
        else s.logits(p as Float32Array);
      });
      // Whatever happened, the session still answers (a failed call leaves it usable).
      assert.equal(s.outputs().length, 12);
    } finally {
      s.dispose();
    }
  });
  t.log(`${refreshesThatChanged} refreshes with new parameters changed the outputs`);
  t.true(refreshesThatChanged > 0, "no refresh changed the outputs: the check above proves little");
});

/** The class of each cell from its logits: the first largest, as the native argmax picks. */
function argmaxes(logits: Float32Array, cOut: number): Uint8Array {
  const out = new Uint8Array(logits.length / cOut);
  for (let i = 0; i < out.length; i++) {
    let best = 0;
    for (let k = 1; k < cOut; k++) if (logits[i * cOut + k]! > logits[i * cOut + best]!) best = k;
    out[i] = best;
  }
  return out;
}

test.serial("training steps: hostile batches either work (matching a clean copy) or throw, async and sync", async (t) => {
  const arb = fc.record({
    spec: specArb,
    grid: gridArb,
    x: bufferArb,
    target: bufferArb,
    weights: bufferArb,
    steps: fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }),
    noiseStd: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(undefined, 0, 0.1) },
      { weight: 1, arbitrary: hostileNumber },
    ),
    noiseSeed: fc.oneof(
      { weight: 8, arbitrary: fc.option(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { nil: undefined }) },
      { weight: 1, arbitrary: hostileNumber },
    ),
    sync: fc.boolean(),
  });
  await check(t, 2500, arb, async (c) => {
    const spec = specOf(c.spec);
    const g = gridFor(c.spec, c.grid);
    const cells = num(g.batch) * num(g.height) * num(g.width);
    const batch = {
      grid: g,
      x: makeBuffer(c.x, cells * num(spec?.cIn ?? 1)),
      // class -1 (unsupervised) to cOut - 1; a hostile fill pushes one past the end
      target: makeBuffer(c.target, cells, { classes: num(spec?.cOut ?? 2) + (c.target.fill === "nan" ? 1 : 0) }),
      stepWeights: makeBuffer(c.weights, c.steps, { nonNegative: true }),
      ...(c.noiseStd === undefined ? {} : { noiseStd: c.noiseStd }),
      ...(c.noiseSeed === undefined ? {} : { noiseSeed: c.noiseSeed }),
    };
    const params = paramsFor(spec);
    const run = (b: typeof batch) =>
      c.sync
        ? native().trainStepSync(c.spec as never, params, b as never, 1)
        : backend.trainStep(c.spec as ModelSpec, params, b as never);
    const r = await worksOrThrows(() => run(batch), !c.sync);
    if (!r || !spec) return;
    assert.equal(r.grad.length, paramLayout(spec).total);
    // Same batch from clean copies: the same loss and gradient, bit for bit.
    const clean = {
      ...batch,
      x: copyOf(batch.x as Float32Array),
      target: copyOf(batch.target as Int32Array),
      stepWeights: copyOf(batch.stepWeights as Float32Array),
    };
    const again = await run(clean);
    assert.ok(Object.is(r.loss, again.loss), `loss ${r.loss} then ${again.loss}`);
    assert.deepStrictEqual(r.grad, again.grad);
  });
});

test.serial("models, specs, tasks and configs: hostile values are refused with a sead error", async (t) => {
  const arb = fc.record({
    which: fc.constantFrom("model", "paramCount", "task", "taskName", "encode", "config"),
    spec: specArb,
    seed: mostly(fc.integer({ min: 0, max: 1000 })),
    value: hostileValue,
    name: fc.oneof(fc.constantFrom("parity", "addition", "addition-base2", "rule110", "rule30-periodic", "addition-base99", "rule-1"), fc.string({ maxLength: 12 })),
    operand: fc.oneof(fc.stringMatching(/^[0-9a-f]{0,6}$/), fc.string({ maxLength: 6 })),
    config: fc.record({ steps: mostly(fc.integer({ min: 1, max: 5 })), batch: mostly(fc.integer({ min: 1, max: 8 })), lr: mostly(fc.constantFrom(1e-3, 0.01)), task: mostly(fc.constantFrom({ name: "parity" }, { name: "addition", base: 2 })) }),
  });
  await check(t, 2000, arb, async (c) => {
    await worksOrThrows(() => {
      switch (c.which) {
        case "model":
          return Model.init(c.spec as never, c.seed as number);
        case "paramCount":
          return native().paramCount(c.spec as never);
        case "task":
          return taskFromInfo(c.value);
        case "taskName":
          return taskFromInfo(parseTaskName(c.name));
        case "encode": {
          const task = taskFromInfo({ name: "addition", base: 10 });
          const enc = task.encode([{ a: c.operand, b: c.operand }]);
          // It encoded: the reference must agree with BigInt.
          const sum = (BigInt(c.operand) * 2n).toString();
          assert.equal(task.reference({ a: c.operand, b: c.operand }).replace(/^0+(?=.)/, ""), sum);
          return enc;
        }
        default:
          return parseTrainConfig(c.config);
      }
    }, c.which !== "paramCount");
  });
});

test.serial("checkpoint text: random edits of a valid checkpoint load the same model or are refused", async (t) => {
  const model = Model.init({ dims: 1, cIn: 2, cH: 3, features: 4, cOut: 2 }, 5, { name: "parity" });
  const text = checkpointToJson(model, { seed: 5 });
  const arb = fc.record({
    at: fc.nat({ max: text.length - 1 }),
    op: fc.constantFrom("flip", "cut", "insert", "delete"),
    byte: fc.integer({ min: 32, max: 126 }),
  });
  await check(t, 1000, arb, ({ at, op, byte }) => {
    const ch = String.fromCharCode(byte);
    const edited =
      op === "cut"
        ? text.slice(0, at)
        : op === "delete"
          ? text.slice(0, at) + text.slice(at + 1)
          : op === "insert"
            ? text.slice(0, at) + ch + text.slice(at)
            : text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ (1 << (byte % 7))) + text.slice(at + 1);
    try {
      const loaded = parseCheckpoint(edited, "edited.json");
      outcome.worked++;
      // An edit that still loads (whitespace, say) must not have changed the model.
      assert.deepStrictEqual(loaded.model.params, model.params);
      assert.deepStrictEqual(loaded.model.spec, model.spec);
    } catch (e) {
      assertError(e, true);
      assert.match((e as Error).message, /edited\.json/);
      outcome.threw++;
    }
  }, 0.01);
});

test.serial.after("over 10,000 cases ran", (t) => {
  t.log(`${totalCases} property cases in all, seed ${SEED}`);
  t.true(totalCases >= 10_000 * SCALE);
});
