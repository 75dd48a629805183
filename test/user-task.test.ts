/**
 * A task of the user's own, from outside the package (examples/life-task.mjs, Conway's Game of
 * Life on a 2D periodic grid): registered through the API and through the CLI's --tasks, then
 * trained, evaluated, run and checkpointed like a built-in task. And the registry's refusals:
 * bad definitions, unregistered tasks, and a task that throws or returns wrong shapes, each
 * named with the task, the method and the problem.
 */
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { createBackend } from "../src/backend/index.js";
import { InvalidInputError } from "../src/errors.js";
import { lengthSweep } from "../src/eval/sweep.js";
import { loadCheckpoint, saveCheckpoint } from "../src/model/checkpoint.js";
import { Model } from "../src/model/model.js";
import { Rng } from "../src/rng.js";
import { solve } from "../src/run.js";
import { loadTaskModules } from "../src/tasks/modules.js";
import { type AnyTask, parityTask, registerTask, taskDefinition, taskFromInfo, taskFromName, type TaskDefinition, unregisterTask } from "../src/tasks/index.js";
import { Trainer } from "../src/train/trainer.js";
import { type ProcessResult, runNode } from "./helpers.js";

const ROOT = join(__dirname, "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const EXAMPLE = join(ROOT, "examples", "life-task.mjs");
const CONFIG = join(ROOT, "examples", "life-config.json");
const dir = mkdtempSync(join(tmpdir(), "sead-user-task-"));

function sead(args: string[]): Promise<ProcessResult> {
  return runNode(["--import=tsx", MAIN, ...args], ROOT);
}

const backend = createBackend({ backend: "cpu" });

test.serial("a user's 2D task from examples/ registers, trains, evaluates, solves and checkpoints through the API", async (t) => {
  t.deepEqual(await loadTaskModules([EXAMPLE]), ["life"]);
  t.deepEqual(await loadTaskModules([EXAMPLE]), ["life"], "loading the same module again is a no-op");
  const task = taskFromName("life");
  t.is(task.dims, 2);
  const trainer = new Trainer(
    { task: { name: "life" }, model: { cH: 8, features: 32 }, seed: 1, steps: 150, batch: 32, lengths: { min: 5, max: 8 }, unroll: { min: 2, max: 6 }, stabilitySteps: 2, lr: 0.01, warmup: 20, evalEvery: 0 },
    backend,
  );
  const losses: number[] = [];
  const { model } = await trainer.run();
  t.is(model.spec.dims, 2);
  t.is(model.spec.boundary, "periodic");
  const trainer2 = new Trainer({ ...trainer.config, steps: 40 }, backend, { onStep: (s) => losses.push(s.loss) });
  await trainer2.run();
  t.true(losses.at(-1)! < losses[0]!, `the loss falls (${losses[0]} -> ${losses.at(-1)})`);

  // The trained rule, evaluated against the exact automaton on grids larger than it saw.
  const [r8, r16] = await lengthSweep(backend, model, task, [8, 16], 8, 7);
  t.is(r8!.samples, 8);
  t.true(r8!.accuracy >= 0.5, `most 8 x 8 grids exact after 150 steps (${r8!.accuracy})`);
  t.is(r16!.cellsDense, r16!.meanSteps * 8 * 256);
  const glider = ["00100", "00010", "01110", "00000", "00000"];
  const solved = await solve(backend, model, task, [glider]);
  t.deepEqual(solved.expected[0], ["00000", "01010", "00110", "00100", "00000"]);

  // The checkpoint names its task and rebuilds it through the registry.
  const path = join(dir, "life.json");
  saveCheckpoint(path, model, { note: "test" });
  const loaded = loadCheckpoint(path);
  t.deepEqual(loaded.model.task, { name: "life" });
  t.is(taskFromInfo(loaded.model.task).name, "life");
});

test.serial("the CLI trains, evaluates and runs the user's task with --tasks, and names the task and the fix without it", async (t) => {
  const out = join(dir, "life-cli.json");
  const trained = await sead(["train", "life", "--tasks", "examples/life-task.mjs", "--config", CONFIG, "--steps", "60", "--out", out, "--backend", "cpu", "--quiet"]);
  t.is(trained.code, 0, trained.stderr);
  const evaluated = await sead(["eval", out, "--tasks", "examples/life-task.mjs", "--lengths", "6,12", "--samples", "4", "--json", "--backend", "cpu"]);
  t.true(evaluated.code === 0 || evaluated.code === 1, evaluated.stderr);
  const doc = JSON.parse(evaluated.stdout) as { task: unknown; results: { length: number; samples: number }[] };
  t.deepEqual(doc.task, { name: "life" });
  t.deepEqual(doc.results.map((r) => [r.length, r.samples]), [[6, 4], [12, 4]]);
  const ran = await sead(["run", out, "--tasks", "examples/life-task.mjs", "--input", "00100/00010/01110/00000/00000", "--json", "--backend", "cpu"]);
  t.true(ran.code === 0 || ran.code === 1, ran.stderr);
  t.is((JSON.parse(ran.stdout) as { expected: string }).expected, "00000/01010/00110/00100/00000");

  const without = await sead(["run", out, "--input", "00100/00010/01110/00000/00000"]);
  t.is(without.code, 2);
  t.regex(without.stderr, /task "life" is not registered .*--tasks <module>/);
  const missing = await sead(["run", out, "--tasks", "examples/nope.mjs", "--input", "0"]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /task module examples\/nope.mjs does not exist/);
  const notTasks = await sead(["run", out, "--tasks", "package.json", "--input", "0"]);
  t.is(notTasks.code, 2);
  t.regex(notTasks.stderr, /task module package.json (exports no task definition|failed to load)/);
  const badInput = await sead(["run", out, "--tasks", "examples/life-task.mjs", "--input", "0010/01"]);
  t.is(badInput.code, 2);
  t.regex(badInput.stderr, /task life: parseInput threw|--input: .*rows/);
});

/** A definition wrapping `task`, with some of its methods replaced. */
function broken(name: string, patch: Partial<AnyTask>): TaskDefinition<Record<string, never>> {
  return {
    name,
    summary: "a broken parity",
    options: z.strictObject({}),
    create: () => Object.assign(Object.create(parityTask()) as AnyTask, { name, describe: () => ({ name }) }, patch),
  };
}

test.serial("a user task that throws or returns wrong shapes gets one error naming the task, the method and the problem", async (t) => {
  const parity = (await import("../src/tasks/index.js")).parityTask();
  const model = Model.init({ dims: 1, cIn: 2, cH: 4, features: 8, cOut: 2, update: "replace", boundary: "zero" }, 1, { name: "broken-encode" });
  const cases: [string, Partial<AnyTask>, RegExp][] = [
    ["broken-encode", { encode: () => { throw new TypeError("boom"); } }, /task broken-encode: encode threw: boom/],
    ["broken-x", { encode: (inputs: readonly Uint8Array[]) => ({ ...parity.encode(inputs), x: new Float32Array(3) }) }, /task broken-x: encode returned x of 3 values; expected a Float32Array of batch x height x width x cIn = 8/],
    ["broken-target", { encode: (inputs: readonly Uint8Array[]) => ({ ...parity.encode(inputs), target: Int32Array.from([0, 1, 5, 0]) }) }, /task broken-target: encode returned target 5 at cell 2; targets are -1 \(unsupervised\) or a class below cOut = 2/],
    ["broken-height", { encode: (inputs: readonly Uint8Array[]) => ({ ...parity.encode(inputs), height: 2 }) }, /task broken-height: encode returned height = 2 for a 1D task/],
    ["broken-decode", { decode: () => [] }, /task broken-decode: decode returned 0 answers for a batch of 1/],
    ["broken-reference", { reference: () => { throw new Error("no reference"); } }, /task broken-reference: reference threw: no reference/],
  ];
  for (const [name, patch, message] of cases) {
    registerTask(broken(name, patch));
    const task = taskFromName(name);
    const m = new Model(model.spec, model.params, { name });
    const error = await t.throwsAsync(solve(backend, m, task, [Uint8Array.from([1, 0, 1, 1])]), { instanceOf: InvalidInputError });
    t.regex(error?.message ?? "", message);
    unregisterTask(name);
  }
  registerTask(broken("broken-sample", { sample: () => { throw new Error("no samples"); } }));
  const trainer = new Trainer({ task: { name: "broken-sample" }, steps: 1, evalEvery: 0 }, backend);
  const error = await t.throwsAsync(trainer.run(), { instanceOf: InvalidInputError });
  t.regex(error?.message ?? "", /task broken-sample: sample threw: no samples/);
  unregisterTask("broken-sample");
});

test("registerTask refuses bad definitions and taken names, and taskFromInfo checks what create returns", (t) => {
  const bad = (d: unknown, message: RegExp) => {
    const e = t.throws(() => registerTask(d as TaskDefinition), { instanceOf: InvalidInputError });
    t.regex(e?.message ?? "", message);
  };
  bad(null, /expected a task definition object/);
  bad({ name: "Bad Name", summary: "", options: z.strictObject({}), create: () => parityTask() }, /name must be lower-case letters and digits/);
  bad({ name: "no-create", summary: "", options: z.strictObject({}) }, /task "no-create": create must be a function/);
  bad({ name: "no-options", summary: "", create: () => parityTask() }, /task "no-options": options must be a zod schema/);
  bad({ name: "parity", summary: "another", options: z.strictObject({}), create: () => parityTask() }, /a task named "parity" is already registered/);
  t.truthy(taskDefinition("parity"));

  registerTask({ name: "not-a-task", summary: "", options: z.strictObject({}), create: () => ({ name: "x" }) as unknown as AnyTask });
  const e = t.throws(() => taskFromInfo({ name: "not-a-task" }), { instanceOf: InvalidInputError });
  t.regex(e?.message ?? "", /task not-a-task: create returned a task without the method grid\(\)/);
  unregisterTask("not-a-task");
  const opts = t.throws(() => taskFromInfo({ name: "parity", bogus: 1 }), { instanceOf: InvalidInputError });
  t.regex(opts?.message ?? "", /task: unknown key "bogus"/);
  t.notThrows(() => new Rng(1));
});
