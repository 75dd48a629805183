/**
 * The shipped models reproduce the committed results at the smaller lengths: the same
 * accuracy and steps as recorded (the kernels are deterministic), so the README table is
 * what the code computes; and the models that meet their targets are exact on every case.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { evaluateShipped, type Row } from "../scripts/results.js";

test("shipped models: quick results match results/results-quick.json", async (t) => {
  const recorded = JSON.parse(readFileSync(join(__dirname, "..", "results", "results-quick.json"), "utf8")) as { rows: Row[] };
  const { rows } = await evaluateShipped(true);
  t.is(rows.length, recorded.rows.length);
  for (const r of rows) {
    const want = recorded.rows.find((x) => x.model === r.model && x.kind === r.kind && x.name === r.name);
    t.truthy(want, `${r.model} ${r.name} is in the recorded results`);
    t.is(r.accuracy, 1, `${r.model} ${r.kind} ${r.name}: every answer exact`);
    t.is(r.accuracy, want!.accuracy, `${r.model} ${r.name} accuracy`);
    t.is(r.meanSteps, want!.meanSteps, `${r.model} ${r.name} mean steps`);
    t.is(r.maxSteps, want!.maxSteps, `${r.model} ${r.name} max steps`);
    if (r.kind === "trajectory") t.is(r.wrongCells, 0, "the learned trajectory never leaves the true automaton");
  }
});
