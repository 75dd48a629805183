/** Model specs, initialisation and checkpoints. */
import test from "ava";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError, InvalidInputError } from "../src/errors.js";
import { loadCheckpoint, parseCheckpoint, saveCheckpoint } from "../src/model/checkpoint.js";
import { Model } from "../src/model/model.js";
import { macsPerCellStep, paramLayout, parseSpec } from "../src/model/spec.js";
import { smallSpec } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "sead-model-"));

test("the parameter layout follows docs/DESIGN.md's order and sizes (\"The parameter layout\")", (t) => {
  const l = paramLayout({ ...smallSpec, dims: 1 });
  const c = smallSpec.cIn + smallSpec.cH;
  t.deepEqual(l.w1, [0, 3 * c * 8]);
  t.deepEqual(l.b1, [3 * c * 8, 3 * c * 8 + 8]);
  t.is(l.total, 3 * c * 8 + 8 + 8 * 4 + 4 + 4 * 2 + 2);
  t.is(paramLayout({ ...smallSpec, dims: 2 }).w1[1], 9 * c * 8);
  t.is(macsPerCellStep({ dims: 1, cIn: 4, cH: 16, features: 64, cOut: 2, update: "replace", boundary: "zero", quantize: "none" }), 4896);
});

test("spec validation names the field", (t) => {
  t.throws(() => parseSpec({ ...smallSpec, cH: 0 }), { instanceOf: InvalidInputError, message: /spec.cH/ });
  t.throws(() => parseSpec({ ...smallSpec, dims: 3 }), { message: /spec.dims/ });
  t.throws(() => parseSpec({ ...smallSpec, update: "x" }), { message: /spec.update/ });
  t.throws(() => parseSpec({ ...smallSpec, extra: 1 }), { message: /extra/ });
  t.throws(() => parseSpec({ ...smallSpec, features: 2.5 }), { message: /spec.features/ });
});

test("Model.init is seeded and Model checks its parameters", (t) => {
  const a = Model.init(smallSpec, 7);
  const b = Model.init(smallSpec, 7);
  const c = Model.init(smallSpec, 8);
  t.deepEqual(a.params, b.params);
  t.notDeepEqual(a.params, c.params);
  t.throws(() => new Model(smallSpec, new Float32Array(3)), { message: /params has 3 values/ });
  t.throws(() => new Model(smallSpec, a.params.map((v, i) => (i === 2 ? Infinity : v))), { message: /params\[2\] is Infinity/ });
  t.throws(() => new Model(smallSpec, [1, 2] as unknown as Float32Array), { message: /Float32Array/ });
});

test("checkpoints round-trip bit-exactly, with task and provenance", (t) => {
  const m = Model.init(smallSpec, 3, { name: "parity" });
  // Values a decimal round trip could mangle: denormals, -0, extremes.
  m.params[0] = 1.401298464324817e-45;
  m.params[1] = -0;
  m.params[2] = 3.4028234663852886e38;
  const path = join(dir, "a.json");
  saveCheckpoint(path, m, { seed: 3, note: "test" });
  const back = loadCheckpoint(path);
  t.deepEqual(new Uint8Array(back.model.params.buffer), new Uint8Array(m.params.buffer));
  t.deepEqual(back.model.spec, m.spec);
  t.deepEqual(back.model.task, { name: "parity" });
  t.is(back.training["note"], "test");
  t.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".tmp")), [], "no temporary files left");
});

test("a truncated, edited, foreign or future checkpoint is refused with the reason", (t) => {
  const m = Model.init(smallSpec, 4);
  const path = join(dir, "b.json");
  saveCheckpoint(path, m);
  const text = readFileSync(path, "utf8");
  const f = JSON.parse(text);

  t.throws(() => parseCheckpoint(text.slice(0, text.length / 2), "cut.json"), {
    instanceOf: CheckpointError,
    message: /cut.json is not a valid checkpoint: not valid JSON.*truncated/,
  });
  const edited = { ...f, params: { ...f.params, data: "A" + f.params.data.slice(1) } };
  t.throws(() => parseCheckpoint(JSON.stringify(edited), "edited.json"), { message: /sha256.*altered/ });
  const short = { ...f, params: { ...f.params, count: f.params.count + 1 } };
  t.throws(() => parseCheckpoint(JSON.stringify(short), "count.json"), { message: /says \d+ float32 values/ });
  t.throws(() => parseCheckpoint(JSON.stringify({ ...f, version: 2 }), "v2.json"), { message: /version 2.*reads version 1/ });
  t.throws(() => parseCheckpoint(JSON.stringify({ hello: 1 }), "other.json"), { message: /not a sead checkpoint/ });
  t.throws(() => parseCheckpoint(JSON.stringify({ ...f, spec: { ...f.spec, cH: 5 } }), "spec.json"), {
    message: /params has \d+ values but this spec needs/,
  });
  t.throws(() => parseCheckpoint(JSON.stringify({ ...f, task: { name: "chess" } }), "task.json"), { message: /task/ });
  t.throws(() => loadCheckpoint(join(dir, "missing.json")), { instanceOf: CheckpointError, message: /cannot read checkpoint/ });
  writeFileSync(join(dir, "empty.json"), "");
  t.throws(() => loadCheckpoint(join(dir, "empty.json")), { message: /not valid JSON/ });
});
