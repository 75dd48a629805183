/**
 * Checks an addition model at long lengths and on the adversarial cases (carry chains, no-carry
 * runs, all zeros, all maximal digits, and runs of one random digit pair):
 *   node --import=tsx scripts/check-addition.ts <model.json> [lengths=16,1000,10000] [chains=16,100,1000] [samples=100]
 */
import { createBackend } from "../src/backend/index.js";
import { hardCaseSweep, lengthSweep } from "../src/eval/sweep.js";
import { loadModel } from "../src/models.js";
import { Rng } from "../src/rng.js";
import { solve } from "../src/run.js";
import { AdditionTask, taskFromInfo, uniformRun } from "../src/tasks/index.js";

async function main() {
  const [path, lengthsArg, chainsArg, samplesArg] = process.argv.slice(2);
  if (!path) throw new Error("usage: check-addition.ts <model.json> [lengths] [chains] [samples]");
  const { model } = loadModel(path);
  const task = taskFromInfo(model.task);
  if (!(task instanceof AdditionTask)) throw new Error(`${path} is not an addition model`);
  const backend = createBackend({ backend: "cpu" });
  const lengths = (lengthsArg ?? "16,1000,10000").split(",").map(Number);
  const chains = (chainsArg ?? "16,100,1000").split(",").map(Number);
  const samples = Number(samplesArg ?? 100);
  let wrong = 0;
  // Random additions settle in tens of steps (about log L): 2,000 is the same budget as scripts/results.ts.
  for (const r of await lengthSweep(backend, model, task, lengths, samples, 7, { maxSteps: 2000 })) {
    console.log(`random L=${r.length}: ${(r.accuracy * 100).toFixed(1)}% of ${r.samples}, steps mean ${r.meanSteps.toFixed(1)} max ${r.maxSteps}, ${r.seconds.toFixed(1)} s`);
    wrong += Math.round((1 - r.accuracy) * r.samples);
  }
  for (const r of await hardCaseSweep(backend, model, task, chains)) {
    console.log(`${r.name}: ${r.accuracy === 1 ? "ok" : "WRONG"}, ${r.maxSteps} steps`);
    if (r.accuracy !== 1) wrong++;
  }
  // Runs of one random digit pair (the uniformRun generator), 20 per chain length.
  const rng = new Rng(11);
  for (const L of chains) {
    const inputs = Array.from({ length: 20 }, () => uniformRun(task.base, L, L, rng));
    const r = await solve(backend, model, task, inputs, { maxSteps: 2 * L + 64 });
    const bad = r.correct.filter((c) => !c).length;
    console.log(`uniform runs ${L}: ${20 - bad}/20 exact, steps max ${Math.max(...r.steps)}`);
    wrong += bad;
  }
  console.log(wrong === 0 ? "all exact" : `${wrong} wrong`);
  process.exitCode = wrong === 0 ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
