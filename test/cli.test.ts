/**
 * The `sead` command, run as a child process the way a user runs it: every subcommand's
 * success and failure paths, exit codes (0 success, 1 run failure, 2 bad usage or input,
 * 130/143 interrupted), --json output parsed and checked against the typed API, and the
 * images it writes.
 *
 * Uses the shipped addition-base2 model and tiny models trained here in seconds.
 */
import test from "ava";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackend } from "../src/backend/index.js";
import { nativeBuild } from "../src/backend/native.js";
import { type LengthResult, lengthSweep } from "../src/eval/sweep.js";
import type { TraceStep } from "../src/eval/trace.js";
import type { TrajectoryResult } from "../src/eval/trajectory.js";
import { loadCheckpoint } from "../src/model/checkpoint.js";
import { loadModel } from "../src/models.js";
import { Rng } from "../src/rng.js";
import { type TaskInfo, addDigitStrings, additionTask, taskFromInfo } from "../src/tasks/index.js";
import type { EvalReport } from "../src/train/trainer.js";
import { pngSize } from "../src/viz/raster.js";
import { tinyConfig } from "./helpers.js";

const ROOT = join(__dirname, "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const dir = mkdtempSync(join(tmpdir(), "sead-cli-"));

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `sead ...args`; `onStdout` sees output as it comes (to send a signal mid-run). */
function sead(args: string[], onStdout?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import=tsx", MAIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, child);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A bad-input run: exit 2 and exactly one line on stderr, which matches `re`. */
async function refused(t: import("ava").ExecutionContext, args: string[], re: RegExp): Promise<void> {
  const r = await sead(args);
  t.is(r.code, 2, `sead ${args.join(" ")}: stderr ${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l.length > 0);
  t.is(lines.length, 1, `one line on stderr: ${r.stderr}`);
  t.regex(r.stderr, re);
  t.is(r.stdout, "", "nothing on stdout");
}

// The --json document of each command (src/cli/*.ts), as the tests read it.

/** `sead add --json` (src/cli/arithmetic.ts). */
interface AddDoc {
  base: number;
  digits: number;
  seed: number | null;
  model: string;
  sum: string;
  sumDigits: number;
  /** Only for sums too long to show whole. */
  sumSha256?: string;
  /** Only when the sum is wrong. */
  expectedSha256?: string;
  wrongDigits?: number;
  exact: boolean;
  steps: number;
  settled: boolean;
  cellsComputed: number;
  cellsDense: number;
  freeze?: number;
  out?: string;
  seconds: number;
  backend: string;
}

/** `sead train --json`, when training finished. */
interface TrainDoc {
  model: string;
  task: TaskInfo;
  steps: number;
  seconds: number;
  lastLoss: number;
  evals: EvalReport[];
  aborted: false;
}

/** `sead eval --json`: a length sweep. */
interface EvalDoc {
  model: string;
  task: TaskInfo;
  seed: number;
  samples: number;
  results: LengthResult[];
}

/** `sead eval --generations --json`: learned trajectories of an elementary automaton. */
interface EvalTrajectoryDoc {
  model: string;
  task: TaskInfo;
  seed: number;
  trajectory: TrajectoryResult;
}

/** `sead run --json`. */
interface RunDoc {
  model: string;
  task: TaskInfo;
  input: string;
  cells: number;
  steps: number;
  settled: boolean;
  answer: string;
  expected: string;
  correct: boolean;
  exactFromStep: number | null;
  patience: number;
  tol: number;
  maxSteps: number;
  trace: TraceStep[];
  backend: string;
}

/** `sead viz --json` of a run. */
interface VizDoc {
  out: string;
  model: string;
  task: TaskInfo;
  cells: number;
  steps: number;
  settled: boolean;
  correct: boolean;
}

/** `sead viz --generations --json`: a learned trajectory beside the exact one. */
interface VizTrajectoryDoc {
  out: string;
  model: string;
  task: TaskInfo;
  cells: number;
  generations: number;
  wrongCells: number;
  firstWrongGeneration: number | null;
  /** Steps to settle at each generation. */
  steps: number[];
}

/** `sead plot --json`. */
interface PlotDoc {
  out: string;
  kind: "lengths" | "training";
  series: string[];
}

/** The --json document a run printed, read as the command's document type `T`. */
function json<T>(r: Result): T {
  return JSON.parse(r.stdout) as T;
}

const tinyParity = tinyConfig({ name: "parity" }, {
  model: { cH: 8, features: 16 }, steps: 60, batch: 16, lengths: { min: 2, max: 8 }, unroll: { min: 10, max: 16 }, evalEvery: 30, evalLengths: [8], evalSamples: 8, warmup: 5, lr: 0.01,
});
const tinyRule = tinyConfig({ name: "elementary", rule: 110, boundary: "periodic" }, {
  model: { cH: 8, features: 16 }, steps: 40, batch: 16, lengths: { min: 8, max: 16 }, unroll: { min: 4, max: 10 }, warmup: 5, lr: 0.01,
});

const paths = {
  parityConfig: join(dir, "tiny-parity.config.json"),
  parity: join(dir, "tiny-parity.json"),
  ruleConfig: join(dir, "tiny-rule.config.json"),
  rule: join(dir, "tiny-rule.json"),
  sweep: join(dir, "sweep.json"),
};

let trainResult: Result;

test.before(async () => {
  writeFileSync(paths.parityConfig, JSON.stringify(tinyParity));
  writeFileSync(paths.ruleConfig, JSON.stringify(tinyRule));
  const [a, b] = await Promise.all([
    sead(["train", "--config", paths.parityConfig, "--out", paths.parity, "--json"]),
    sead(["train", "rule110-periodic", "--config", paths.ruleConfig, "--out", paths.rule, "--quiet"]),
  ]);
  trainResult = a;
  if (a.code !== 0 || b.code !== 0) throw new Error(`training the test models failed: ${a.stderr} ${b.stderr}`);
});

// --- help and dispatch -------------------------------------------------------------------

test("sead --help lists every command; each command has its own --help", async (t) => {
  const main = await sead(["--help"]);
  t.is(main.code, 0);
  for (const cmd of ["add", "train", "eval", "run", "viz", "plot"]) t.regex(main.stdout, new RegExp(`^  ${cmd} `, "m"));
  const helps = await Promise.all(["add", "train", "eval", "run", "viz", "plot"].map((c) => sead([c, "--help"])));
  helps.forEach((r, i) => {
    t.is(r.code, 0);
    t.regex(r.stdout, new RegExp(`^usage: sead ${["add", "train", "eval", "run", "viz", "plot"][i]}`));
    t.regex(r.stdout, /exit codes:/);
    t.regex(r.stdout, /--backend cpu\|gpu\|auto/);
  });
});

test("no command, an unknown command or an unknown option is bad usage (exit 2)", async (t) => {
  const none = await sead([]);
  t.is(none.code, 2);
  t.regex(none.stderr, /usage: sead <command>/);
  await refused(t, ["frobnicate"], /unknown command "frobnicate"/);
  await refused(t, ["add", "1", "1", "--bogus"], /unknown option --bogus/);
  await refused(t, ["add", "1", "1", "--threads"], /--threads needs a value/);
  await refused(t, ["add", "1", "1", "--threads", "x"], /--threads must be a whole number, got "x"/);
  await refused(t, ["add", "1", "1", "--backend", "tpu"], /--backend must be cpu, gpu or auto/);
});

// --- add ----------------------------------------------------------------------------------

test("add: two numbers, the exact sum, text and JSON", async (t) => {
  const text = await sead(["add", "1011", "110"]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^sum: +10001$/m);
  t.regex(text.stdout, /^exact: +yes/m);
  const r = await sead(["add", "1011", "110", "--json", "--threads", "1", "--backend", "cpu"]);
  t.is(r.code, 0);
  const d = json<AddDoc>(r);
  t.is(d.sum, "10001");
  t.true(d.exact);
  t.true(d.settled);
  t.true(d.steps > 0);
  t.is(d.model, "addition-base2");
  t.regex(d.backend, /1 thread/);
  const quiet = await sead(["add", "1011", "110", "--quiet"]);
  t.is(quiet.code, 0);
  t.is(quiet.stdout, "");
});

test("add --digits N: the whole sum and its digest in JSON, its ends in text, and the sum alone in --out, equal to the exact one", async (t) => {
  const seed = 5;
  const L = 3000;
  const input = additionTask({ base: 2 }).sample(new Rng(seed), L);
  const exact = addDigitStrings(input.a, input.b, 2);
  const sha = createHash("sha256").update(exact).digest("hex");
  const r = await sead(["add", "--digits", String(L), "--seed", String(seed), "--json"]);
  t.is(r.code, 0, r.stderr);
  const d = json<AddDoc>(r);
  t.is(d.sumDigits, L + 1);
  t.is(d.sumSha256, sha);
  t.is(d.sum, exact, "--json holds the whole sum");
  t.true(d.exact);
  const outFile = join(dir, "sum.txt");
  const text = await sead(["add", "--digits", String(L), "--seed", String(seed), "--out", outFile]);
  t.is(text.code, 0);
  t.is(readFileSync(outFile, "utf8"), exact + "\n");
  t.true(text.stdout.includes(`sum written to ${outFile}`));
  t.true(text.stdout.includes(`sha256:   ${sha}`));
  t.true(text.stdout.includes(`${exact.slice(0, 20)}...${exact.slice(-20)} (3,001 digits`));
});

test("add --freeze: a decimal carry chain exact in the same steps, computing a small share of the cells", async (t) => {
  const a = "9".repeat(2000);
  const plain = json<AddDoc>(await sead(["add", a, "1", "--base", "10", "--json"]));
  const r = await sead(["add", a, "1", "--base", "10", "--freeze", "1e-5", "--json"]);
  t.is(r.code, 0, r.stderr);
  const d = json<AddDoc>(r);
  t.true(d.exact && plain.exact);
  t.is(d.steps, plain.steps);
  t.is(d.freeze, 1e-5);
  t.is(plain.cellsComputed, plain.steps * 2001, "without --freeze every cell is computed");
  t.true(d.cellsComputed < 0.05 * plain.cellsComputed, `${d.cellsComputed} of ${plain.cellsComputed}`);
  const text = await sead(["add", a, "1", "--base", "10", "--freeze", "1e-5"]);
  t.regex(text.stdout, /cells: +[\d,]+ cell updates computed, [\d.]+% of steps x cells \(--freeze 1e-5\)/);
  const g = await sead(["add", a, "1", "--base", "10", "--freeze", "1e-5", "--backend", "gpu", "--json"]);
  if (nativeBuild() === "wasm") {
    // The WebAssembly (WASI) build (npm run test:wasi) has no GPU backend, and says so.
    t.not(g.code, 0);
    t.regex(g.stderr, /the GPU backend is not available in the WebAssembly \(WASI\) build/);
    await refused(t, ["add", "1", "1", "--freeze", "x"], /--freeze must be a number, got "x"/);
    return;
  }
  t.is(g.code, 0, g.stderr);
  const dg = json<AddDoc>(g);
  t.true(dg.exact);
  t.is(dg.steps, plain.steps, "the GPU backend skips settled tiles in the same steps");
  t.true(dg.cellsComputed < 0.1 * plain.cellsComputed, `${dg.cellsComputed} of ${plain.cellsComputed}`);
  await refused(t, ["add", "1", "1", "--freeze", "x"], /--freeze must be a number, got "x"/);
});

test("add: bad numbers and models are refused with one line and exit 2", async (t) => {
  await refused(t, ["add", "1021", "110"], /the first number "1021": digit '2' at position 2 .*not valid in base 2/);
  await refused(t, ["add", "12", "9z", "--base", "10"], /the second number "9z": character 'z'/);
  await refused(t, ["add", "--digits", "12x"], /--digits must be a whole number, got "12x"/);
  await refused(t, ["add", "--digits", "0"], /--digits must be at least 1/);
  await refused(t, ["add", "1", "2", "3"], /needs two numbers, got 3/);
  await refused(t, ["add", "1", "1", "--base", "17"], /--base must be at most 16/);
  await refused(t, ["add", "1", "1", "--model", paths.parity], /was trained for parity, not for addition-base2/);
  await refused(t, ["add", "1", "1", "--model", join(dir, "missing.json")], /neither a shipped model .* nor a checkpoint file that exists/);
});

// --- train --------------------------------------------------------------------------------

test("train: writes the model with its config, evaluations and training curve; JSON summary", async (t) => {
  const d = json<TrainDoc>(trainResult);
  t.is(d.model, paths.parity);
  t.is(d.steps, 60);
  t.false(d.aborted);
  t.is(d.evals.length, 2);
  const ckpt = loadCheckpoint(paths.parity);
  t.deepEqual(ckpt.model.task, { name: "parity" });
  const curve = ckpt.training["curve"] as { step: number[]; loss: number[] };
  t.is(curve.step.length, 60);
  t.is(curve.loss.length, 60);
  t.is((ckpt.training["config"] as { steps: number }).steps, 60);
  t.false(existsSync(`${paths.parity}.ckpt`), "the resume checkpoint is removed once the model is saved");
});

test("train: bad configs are refused with the path of each problem, before any work", async (t) => {
  const bad = join(dir, "bad-config.json");
  writeFileSync(bad, JSON.stringify({ ...tinyParity, lr: -1, bogus: 1, model: { cH: "x" }, lengths: { min: 5, max: 2 } }));
  const r = await sead(["train", "--config", bad, "--out", join(dir, "never.json")]);
  t.is(r.code, 2);
  t.is(r.stderr.trim().split("\n").length, 1);
  for (const re of [/lr: Too small/, /model\.cH: Invalid input: expected number/, /lengths: min must be <= max/, /unknown key "bogus"/]) t.regex(r.stderr, re);
  t.false(existsSync(join(dir, "never.json")));
  const broken = join(dir, "broken.json");
  writeFileSync(broken, "{");
  await refused(t, ["train", "parity", "--config", broken], /is not valid JSON/);
  await refused(t, ["train", "parity", "--config", join(dir, "nope.json")], /config .*nope\.json does not exist/);
  await refused(t, ["train", "rule110", "--config", paths.parityConfig], /trains parity, but the command names elementary-rule110/);
  await refused(t, ["train", "parity", "--steps", "1.5"], /--steps must be a whole number/);
  await refused(t, ["train", "parity", "--lr", "0"], /--lr must be > 0/);
  await refused(t, ["train"], /needs a task/);
  await refused(t, ["train", "addition-base99"], /base must be from 2 to 16/);
  await refused(t, ["train", "parity", "--out", join(dir, "model.txt")], /--out .*must end in \.json/);
  await refused(t, ["train", "parity", "--out", join(dir, "no-such-folder", "m.json")], /the folder .* does not exist/);
  await refused(t, ["train", "parity", "--resume", paths.parity], /final model without trainer state/);
  await refused(t, ["train", "parity", "--resume", join(dir, "missing.ckpt")], /--resume: checkpoint .* does not exist/);
});

/**
 * Trains tinyParity with `changes` (batch 64, lengths 8..16, unroll 16..24) twice side by side,
 * from the config file `files.config`: undisturbed to `files.whole`, and to `files.out` with
 * `signal` sent `delayMs` after the run says it is training. Paths are in `dir`.
 */
async function trainTwiceStopOne(
  changes: Record<string, unknown>,
  files: { config: string; whole: string; out: string },
  signal: NodeJS.Signals,
  delayMs: number,
): Promise<{ whole: string; out: string; a: Result; b: Result }> {
  const config = join(dir, files.config);
  writeFileSync(config, JSON.stringify({ ...tinyParity, batch: 64, lengths: { min: 8, max: 16 }, unroll: { min: 16, max: 24 }, ...changes }));
  const whole = join(dir, files.whole);
  const out = join(dir, files.out);
  let sent = false;
  const [a, b] = await Promise.all([
    sead(["train", "--config", config, "--out", whole, "--quiet"]),
    sead(["train", "--config", config, "--out", out], (text, child) => {
      if (text.includes("training parity") && !sent) {
        sent = true;
        setTimeout(() => child.kill(signal), delayMs);
      }
    }),
  ]);
  return { whole, out, a, b };
}

test("train: SIGINT saves a checkpoint and exits 130; --resume finishes with the same parameters as an uninterrupted run", async (t) => {
  const { whole, out: parts, a, b } = await trainTwiceStopOne(
    { steps: 200, evalEvery: 0, seed: 3 },
    { config: "resume-config.json", whole: "whole.json", out: "parts.json" },
    "SIGINT",
    300,
  );
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 130, `interrupted run: ${b.stderr}`);
  t.regex(b.stderr, /interrupted at step \d+ of 200: checkpoint saved to .*parts\.json\.ckpt; continue with: sead train --resume/);
  t.true(existsSync(`${parts}.ckpt`));
  const saved = loadCheckpoint(`${parts}.ckpt`);
  const step = saved.training["step"] as number;
  t.true(step >= 1 && step < 200, `stopped at step ${step}: the end of the step in progress`);
  // Resuming refuses another task or a changed config.
  await refused(t, ["train", "rule110", "--resume", `${parts}.ckpt`], /was trained for parity, not elementary-rule110/);
  await refused(t, ["train", "--resume", `${parts}.ckpt`, "--steps", "10"], /--resume continues with the checkpoint's own config; drop --steps/);
  const c = await sead(["train", "--resume", `${parts}.ckpt`, "--json"]);
  t.is(c.code, 0, c.stderr);
  t.is(json<TrainDoc>(c).model, parts, "the default --out of a resumed run is the interrupted run's");
  t.deepEqual(loadCheckpoint(parts).model.params, loadCheckpoint(whole).model.params);
});

test("train: SIGTERM also saves and exits 143; --resume finishes with the same parameters as an uninterrupted run", async (t) => {
  // Evaluations every other step, so the stop also lands on the path where an evaluation is cut short.
  const { whole, out, a, b: r } = await trainTwiceStopOne(
    { steps: 400, evalEvery: 2, evalSamples: 4, seed: 5 },
    { config: "term-config.json", whole: "term-whole.json", out: "term.json" },
    "SIGTERM",
    200,
  );
  t.is(a.code, 0, a.stderr);
  t.is(r.code, 143, r.stderr);
  t.regex(r.stderr, /interrupted at step \d+ of 400: checkpoint saved to .*term\.json\.ckpt/);
  t.true(existsSync(`${out}.ckpt`));
  t.false(existsSync(out));
  const step = loadCheckpoint(`${out}.ckpt`).training["step"] as number;
  t.true(step < 400, `stopped at step ${step}`);
  const c = await sead(["train", "--resume", `${out}.ckpt`, "--quiet"]);
  t.is(c.code, 0, c.stderr);
  t.false(existsSync(`${out}.ckpt`));
  t.deepEqual(loadCheckpoint(out).model.params, loadCheckpoint(whole).model.params);
});

// --- eval ---------------------------------------------------------------------------------

test("eval: table, JSON and --out agree with the typed API's length sweep", async (t) => {
  const r = await sead(["eval", "addition-base2", "--lengths", "8,40", "--samples", "6", "--seed", "4", "--json", "--out", paths.sweep]);
  t.is(r.code, 0, r.stderr);
  const d = json<EvalDoc>(r);
  t.deepEqual(JSON.parse(readFileSync(paths.sweep, "utf8")), d);
  t.deepEqual(d.task, { name: "addition", base: 2 });
  const { model } = loadModel("addition-base2");
  const api = await lengthSweep(createBackend({ backend: "cpu" }), model, taskFromInfo(model.task), [8, 40], 6, 4);
  t.is(d.results.length, 2);
  d.results.forEach((x, i) => {
    t.is(x.length, api[i]!.length);
    t.is(x.correct, api[i]!.correct);
    t.is(x.meanSteps, api[i]!.meanSteps);
    t.is(x.maxSteps, api[i]!.maxSteps);
    t.is(x.accuracy, 1);
  });
  const text = await sead(["eval", "addition-base2", "--lengths", "8", "--samples", "4"]);
  t.is(text.code, 0);
  t.regex(text.stdout, /length +samples +exact +accuracy +mean steps/);
  t.regex(text.stdout, /^ +8 +4 +4 +100\.0%/m);
  t.notRegex(text.stdout, /computed/, "the share of cells computed is shown only with --freeze");
  const frozen = await sead(["eval", "addition-base2", "--lengths", "8", "--samples", "4", "--freeze", "1e-5"]);
  t.is(frozen.code, 0, frozen.stderr);
  t.regex(frozen.stdout, /seconds +computed$/m);
  t.regex(frozen.stdout, /^ +8 +4 +4 +100\.0% .* +\d+(\.\d+)?%$/m);
});

test("eval: a model that gets answers wrong exits 1; bad arguments exit 2 before any work", async (t) => {
  const r = await sead(["eval", paths.rule, "--lengths", "64", "--samples", "20", "--json"]);
  const d = json<EvalDoc>(r);
  t.is(d.results.length, 1);
  t.is(r.code, d.results[0]!.accuracy === 1 ? 0 : 1);
  await refused(t, ["eval", "addition-base2", "--lengths", "1,x"], /--lengths must be a comma-separated list/);
  await refused(t, ["eval", "addition-base2", "--samples", "-3"], /--samples needs a value/);
  await refused(t, ["eval", "addition-base2", "--out", join(dir, "r.txt")], /must end in \.json, not \.txt/);
  await refused(t, ["eval", "addition-base2", "--out", join(dir, "missing", "r.json")], /does not exist/);
  await refused(t, ["eval", "addition-base2", "--generations", "5"], /--generations runs trajectories of an elementary automaton/);
  await refused(t, ["eval"], /needs one model/);
  const notCkpt = join(dir, "not-a-checkpoint.json");
  writeFileSync(notCkpt, JSON.stringify({ hello: 1 }));
  await refused(t, ["eval", notCkpt], /is not a sead checkpoint/);
});

test("eval --generations: learned trajectories of an elementary automaton, as JSON", async (t) => {
  const r = await sead(["eval", paths.rule, "--generations", "12", "--width", "32", "--starts", "2", "--json"]);
  const d = json<EvalTrajectoryDoc>(r);
  t.is(d.trajectory.generations, 12);
  t.is(d.trajectory.width, 32);
  t.is(typeof d.trajectory.wrongCells, "number");
  t.is(r.code, d.trajectory.wrongCells === 0 ? 0 : 1);
});

// --- run ----------------------------------------------------------------------------------

test("run: per-step statistics, the same steps as add, the answer checked", async (t) => {
  const [r, add] = await Promise.all([sead(["run", "addition-base2", "--input", "1011011101+110111", "--json"]), sead(["add", "1011011101", "110111", "--json"])]);
  t.is(r.code, 0, r.stderr);
  const d = json<RunDoc>(r);
  const sum = json<AddDoc>(add);
  t.is(d.steps, sum.steps, "the step-by-step run stops where converge stops");
  t.is(d.trace.length, d.steps);
  t.is(d.answer, sum.sum);
  t.true(d.correct);
  t.true(d.settled);
  const last = d.trace.slice(-d.patience);
  t.true(last.every((s) => s.changed === 0 && s.wrong === 0), "settled: no output changes in the last patience steps");
  t.true(d.trace.at(-1)!.maxDelta < d.tol);
  t.true(d.exactFromStep !== null && d.exactFromStep <= d.steps, `exact from step ${d.exactFromStep} of ${d.steps}`);
  const text = await sead(["run", "addition-base2", "--input", "1011+110", "--every", "5"]);
  t.is(text.code, 0);
  t.regex(text.stdout, /step +changed cells +max \|h' - h\| +wrong cells/);
  t.regex(text.stdout, /^settled after \d+ steps$/m);
  t.regex(text.stdout, /^exact: +yes/m);
});

test("run: random inputs and bit tasks; bad inputs exit 2", async (t) => {
  const r = await sead(["run", paths.parity, "--random", "12", "--seed", "2", "--json", "--max-steps", "500"]);
  t.true(r.code === 0 || r.code === 1, r.stderr);
  const d = json<RunDoc>(r);
  t.is(d.cells, 12);
  t.is(d.trace.length, d.steps);
  await refused(t, ["run", "addition-base2", "--input", "12+1"], /--input: the first number: digit '2'/);
  await refused(t, ["run", "addition-base2", "--input", "1011"], /two numbers joined by \+/);
  await refused(t, ["run", "addition-base2", "--input", "1+1", "--random", "4"], /not both/);
  await refused(t, ["run", "addition-base2"], /needs an input/);
  await refused(t, ["run", paths.parity, "--input", "01x1"], /character "x" at position 2 is not a bit/);
  await refused(t, ["run", paths.parity, "--input", "0101", "--tol", "abc"], /--tol must be a number/);
});

// --- viz ----------------------------------------------------------------------------------

test("viz: a spacetime diagram as PNG and SVG, written atomically", async (t) => {
  const png = join(dir, "viz", "addition.png");
  mkdirSync(join(dir, "viz"));
  const r = await sead(["viz", "addition-base2", "--input", "1011011101+110111", "-o", png, "--json"]);
  t.is(r.code, 0, r.stderr);
  const d = json<VizDoc>(r);
  const run = json<RunDoc>(await sead(["run", "addition-base2", "--input", "1011011101+110111", "--json"]));
  t.is(d.steps, run.steps);
  t.true(d.correct);
  const size = pngSize(readFileSync(png));
  t.true(size.width > 800 && size.height > 600, `${size.width} x ${size.height}`);
  const svgPath = join(dir, "viz", "addition.svg");
  const s = await sead(["viz", "addition-base2", "--input", "1011011101+110111", "-o", svgPath, "--show", "output", "--quiet"]);
  t.is(s.code, 0, s.stderr);
  t.is(s.stdout, "");
  const svg = readFileSync(svgPath, "utf8");
  t.true(svg.startsWith("<svg"));
  for (const label of ["binary addition", "output (argmax) at each step", "digit position", ">step<", "exact a + b"]) t.true(svg.includes(label), label);
  t.false(svg.includes("hidden state"), "--show output draws only the outputs");
  const one = await sead(["viz", "addition-base2", "--random", "20", "-o", join(dir, "viz", "channel.png"), "--channel", "3", "--scale", "1"]);
  t.is(one.code, 0, one.stderr);
  t.deepEqual(readdirSync(join(dir, "viz")).sort(), ["addition.png", "addition.svg", "channel.png"], "no temporary files left behind");
});

test("viz: parity with its light cone; a rule's learned trajectory beside the exact one", async (t) => {
  const p = await sead(["viz", paths.parity, "--random", "16", "-o", join(dir, "parity.svg"), "--max-steps", "200"]);
  t.is(p.code, 0, p.stderr);
  t.true(readFileSync(join(dir, "parity.svg"), "utf8").includes("light cone"));
  const out = join(dir, "rule.png");
  const r = await sead(["viz", paths.rule, "--random", "40", "--generations", "30", "-o", out, "--json"]);
  t.is(r.code, 0, r.stderr);
  const d = json<VizTrajectoryDoc>(r);
  t.is(d.generations, 30);
  t.is(d.steps.length, 30);
  t.is(typeof d.wrongCells, "number");
  t.true(pngSize(readFileSync(out)).width > 800);
});

test("viz: bad paths and options exit 2 and write nothing", async (t) => {
  await refused(t, ["viz", "addition-base2", "--input", "1+1", "-o", join(dir, "x.jpg")], /the file must end in \.png, \.svg or \.gif, not \.jpg/);
  await refused(t, ["viz", "addition-base2", "--input", "1+1", "-o", join(dir, "missing", "x.png")], /the folder .* does not exist/);
  await refused(t, ["viz", "addition-base2", "--input", "1+1", "-o", join(paths.parity, "x.png")], /is not a folder/);
  await refused(t, ["viz", "addition-base2", "--input", "1+1", "-o", dir], /the file must end in/);
  await refused(t, ["viz", "addition-base2", "--input", "1+1"], /needs -o FILE\.png/);
  await refused(t, ["viz", "addition-base2", "--input", "1+1", "-o", join(dir, "c.png"), "--channel", "99"], /hidden channel 99 does not exist/);
  await refused(t, ["viz", "addition-base2", "--input", "1+1", "-o", join(dir, "c.png"), "--show", "all"], /--show must be both, hidden or output/);
  await refused(t, ["viz", "addition-base2", "--input", "1+1", "-o", join(dir, "c.png"), "--generations", "3"], /--generations draws trajectories/);
  await refused(t, ["viz", "addition-base2", "--random", "5000", "-o", join(dir, "c.png")], /draws at most 1,024/);
  t.false(existsSync(join(dir, "c.png")));
  t.false(existsSync(join(dir, "x.jpg")));
});

// --- plot ---------------------------------------------------------------------------------

test("plot: length sweeps and training curves, as SVG and PNG", async (t) => {
  // paths.sweep is written by the eval test; make our own so the tests stay independent.
  const sweep = join(dir, "plot-sweep.json");
  const e = await sead(["eval", "addition-base2", "--lengths", "4,16,64", "--samples", "3", "--out", sweep, "--quiet"]);
  t.is(e.code, 0, e.stderr);
  const svgPath = join(dir, "lengths.svg");
  const r = await sead(["plot", sweep, "-o", svgPath, "--json"]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(json<PlotDoc>(r).series, ["addition-base2", "addition-base2: mean", "addition-base2: max"]);
  const svg = readFileSync(svgPath, "utf8");
  for (const label of ["exact-match accuracy", "steps to settle", "input length", "100%"]) t.true(svg.includes(label), label);
  const png = join(dir, "training.png");
  const tr = await sead(["plot", paths.parity, "-o", png]);
  t.is(tr.code, 0, tr.stderr);
  t.true(pngSize(readFileSync(png)).width > 1000);
  const trSvg = join(dir, "training.svg");
  t.is((await sead(["plot", paths.parity, "-o", trSvg, "--title", "tiny parity"])).code, 0);
  const text = readFileSync(trSvg, "utf8");
  for (const label of ["tiny parity", "training loss", "evaluation while training", "length 8"]) t.true(text.includes(label), label);
});

test("plot: files with nothing to plot and bad outputs exit 2", async (t) => {
  await refused(t, ["plot", join(dir, "none.json"), "-o", join(dir, "p.svg")], /does not exist/);
  const broken = join(dir, "broken-results.json");
  writeFileSync(broken, "[1,");
  await refused(t, ["plot", broken, "-o", join(dir, "p.svg")], /is not valid JSON/);
  const other = join(dir, "other.json");
  writeFileSync(other, JSON.stringify({ hello: "world" }));
  await refused(t, ["plot", other, "-o", join(dir, "p.svg")], /neither a length sweep/);
  const badSweep = join(dir, "bad-sweep.json");
  writeFileSync(badSweep, JSON.stringify({ model: "m", results: [{ length: 10, samples: 1, accuracy: 2, meanSteps: 1, maxSteps: 1 }] }));
  await refused(t, ["plot", badSweep, "-o", join(dir, "p.svg")], /results\[0\]\.accuracy: Too big/);
  await refused(t, ["plot", paths.parity, "-o", join(dir, "p.pdf")], /must end in \.svg or \.png, not \.pdf/);
  await refused(t, ["plot", "-o", join(dir, "p.svg")], /needs at least one JSON file/);
  const sweep = join(dir, "mix-sweep.json");
  writeFileSync(sweep, JSON.stringify({ model: "m", results: [{ length: 10, samples: 1, accuracy: 1, meanSteps: 1, maxSteps: 1 }] }));
  await refused(t, ["plot", sweep, paths.parity, "-o", join(dir, "p.svg")], /not a mix/);
  t.false(existsSync(join(dir, "p.svg")));
});
