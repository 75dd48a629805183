// Saves checkpoints of a real Model to argv[2] in a tight loop until killed, for
// test/durability.test.ts. Save k holds params paramsFor(k) and training.counter = k; after
// each save completes it prints "saved k", so the parent knows which saves had finished.
// Plain CommonJS against the built dist/ so that the many spawns start fast.
"use strict";
const { writeSync } = require("node:fs");
const { Model } = require("../../dist/src/model/model.js");
const { saveCheckpoint } = require("../../dist/src/model/checkpoint.js");

const path = process.argv[2];
const spec = { dims: 1, cIn: 2, cH: 32, features: 64, cOut: 2, update: "replace", boundary: "zero" };
const base = Model.init(spec, 1, { name: "parity" });
// Straight to fd 1 (left blocking by the spawn), not process.stdout: this loop never yields,
// and process.stdout queues a write in memory when the pipe is full, to be lost at the kill.
const report = (line) => writeSync(1, `${line}\n`);
report("ready");
for (let k = 1; ; k++) {
  const params = new Float32Array(base.paramCount);
  // Small integers: exact in float32, different for every k and every index.
  for (let i = 0; i < params.length; i++) params[i] = ((k * 7919 + i) % 2001) - 1000;
  saveCheckpoint(path, base.withParams(params), { counter: k });
  report(`saved ${k}`);
}
