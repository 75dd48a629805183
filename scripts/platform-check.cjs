// The same fixed work through an installed sead on whatever platform runs this file, printed as
// one JSON line: scripts/pack-test.sh runs it with the linux-x64 Node and with a linux-arm64 Node
// under qemu, then compares the two lines with `node platform-check.cjs --compare X Y`. It is
// plain JavaScript (no tsx, whose esbuild binary is per platform) and uses only the public API.
//
// Each shipped model solves random inputs (answers checked against the task's exact reference),
// a few training steps run from a fixed seed, and bad input must throw the package's
// InvalidInputError, not crash the process. The CPU backend runs its portable kernel (the one
// every platform has), so inference must match bit for bit: the same answers in the same steps.
// Training may differ in the last bit of a few parameters, because it calls the platform's libm
// (f64 exp and ln in the loss), which glibc implements per architecture; those must agree within
// PARAM_TOLERANCE, relative.
"use strict";
const { createHash } = require("node:crypto");
const sead = require("sead");

const PARAM_TOLERANCE = 1e-5;

const CASES = [
  { model: "addition-base2", size: 1000, count: 2 },
  { model: "addition-base10", size: 1000, count: 2 },
  { model: "parity", size: 200, count: 2 },
  { model: "rule110", size: 1000, count: 2 },
];

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

async function main() {
  const backend = sead.createBackend({ backend: "cpu", threads: 2, simd: "portable" });
  const rng = new sead.Rng(7);
  const solved = [];
  for (const c of CASES) {
    const { model } = sead.loadModel(c.model);
    const task = sead.taskFromInfo(model.task);
    const inputs = Array.from({ length: c.count }, () => task.sample(rng, c.size));
    const r = await sead.solve(backend, model, task, inputs);
    if (!r.correct.every(Boolean)) throw new Error(`${c.model}: a wrong answer at size ${c.size}`);
    solved.push({ model: c.model, size: c.size, steps: Array.from(r.steps), answers: sha256(r.answers.join(",")) });
  }

  const trainer = new sead.Trainer({ task: { name: "parity" }, steps: 3, batch: 8, seed: 1, evalEvery: 0 }, backend);
  const trained = (await trainer.run()).model;

  let refused = "";
  try {
    await sead.solve(backend, sead.loadModel("addition-base2").model, sead.additionTask({ base: 2 }), [{ a: "1021", b: "1" }]);
  } catch (e) {
    if (!(e instanceof sead.InvalidInputError)) throw e;
    refused = e.message;
  }
  if (!refused) throw new Error("a digit outside base 2 was not refused");

  console.log(JSON.stringify({ solved, refused, trainedParams: Array.from(trained.params) }));
  backend.dispose();
}

/** Compares two printed lines; throws naming the first difference beyond what is allowed. */
function compare(xPath, yPath) {
  const fs = require("node:fs");
  const [x, y] = [xPath, yPath].map((p) => JSON.parse(fs.readFileSync(p, "utf8")));
  for (const key of ["solved", "refused"]) {
    if (JSON.stringify(x[key]) !== JSON.stringify(y[key])) {
      throw new Error(`${key} differ:\n  ${JSON.stringify(x[key])}\n  ${JSON.stringify(y[key])}`);
    }
  }
  const [px, py] = [x.trainedParams, y.trainedParams];
  if (px.length !== py.length) throw new Error(`trained parameter counts differ: ${px.length} and ${py.length}`);
  let differing = 0;
  let worst = 0;
  px.forEach((v, i) => {
    const rel = Math.abs(v - py[i]) / Math.max(Math.abs(v), 1e-3);
    if (rel > 0) differing++;
    worst = Math.max(worst, rel);
    if (!(rel <= PARAM_TOLERANCE)) throw new Error(`trained parameter ${i} differs: ${v} and ${py[i]} (relative ${rel})`);
  });
  const cases = x.solved.map((c) => `${c.model} L=${c.size} steps ${c.steps.join("/")}`).join(", ");
  return `the same answers in the same steps (${cases}); trained parameters: ${differing} of ${px.length} differ, at most ${worst.toExponential(1)} relative`;
}

const run = process.argv[2] === "--compare" ? async () => console.log(compare(process.argv[3], process.argv[4])) : main;
run().catch((e) => {
  console.error(`platform-check (${process.arch}): ${e.stack ?? e}`);
  process.exit(1);
});
