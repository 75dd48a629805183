#!/usr/bin/env node
/**
 * The `sead` command: a thin layer over the typed API.
 *   sead add <a> <b> | sead add --digits N   add with a shipped (or given) model, checked exactly
 *   sead train <task> ...                    train a model, with checkpoints and resume
 *   sead eval <model> ...                    length sweep, as a table or JSON
 * Exit codes: 0 success, 1 the run failed (e.g. a wrong answer), 2 bad usage or bad input.
 */
import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { z } from "zod";
import { createBackend, type Backend } from "../backend.js";
import { AbortError, CheckpointError, InvalidInputError, ResourceLimitError, SeadError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.js";
import { loadModel } from "../models.js";
import { Rng } from "../rng.js";
import { solve } from "../run.js";
import { parseWith } from "../schema.js";
import { additionTask, padOperands, parseTaskName, taskFromInfo } from "../tasks/index.js";
import { parseTrainConfig, Trainer } from "../train/trainer.js";
import { lengthSweep } from "../eval/sweep.js";

const COMMON = {
  backend: { type: "string" },
  threads: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const HELP: Record<string, string> = {
  main: `sead: SEAD neural cellular automata

usage: sead <command> [options]

commands:
  add     add two numbers with a shipped model (or --digits N random ones), checked exactly
  train   train a model on a task, with checkpoints and resume
  eval    accuracy and steps against length for a model

common options: --backend cpu|gpu|auto  --threads N  --json  --quiet  --help
run 'sead <command> --help' for a command's options`,
  add: `usage: sead add <a> <b> [--base B] [--model M]
       sead add --digits N [--base B] [--seed S] [--model M]

Adds two numbers (digit strings, most significant first) with the shipped addition model for
the base (or --model, a shipped name or a checkpoint path), and checks the sum exactly.
  --digits N   random operands of N digits each (seeded by --seed, default 1)
  --base B     2 to 16 (default 2; shipped models: 2 and 10)
  --max-steps  stop a run that has not settled after this many steps`,
  train: `usage: sead train <task> [--config file.json] [--steps N] [--seed S] [--out model.json] [--resume ckpt.json]

Trains a model. <task>: parity, addition-base2, addition-base10, rule110, elementary-ruleN, ...
The config file holds any trainer option (see TrainConfig); flags override it.
A checkpoint is written to <out>.ckpt every checkpointEvery steps and on Ctrl-C; --resume continues it.`,
  eval: `usage: sead eval <model> [--lengths 16,100,1000] [--samples N] [--seed S] [--out results.json]

Exact-match accuracy and steps at each length on random inputs. <model>: a shipped name
(addition-base2, addition-base10, parity, rule110) or a checkpoint path.`,
};

class UsageError extends SeadError {}

type Values = Record<string, string | boolean | undefined>;

function parse(argv: string[], options: ParseArgsConfig["options"]) {
  try {
    const r = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const intFlag = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, { message: `--${name} must be a whole number` })
    .transform(Number)
    .pipe(z.number().min(min, { message: `--${name} must be at least ${min}` }).max(max, { message: `--${name} must be at most ${max}` }));

function flag<T>(values: Values, name: string, schema: z.ZodType<T>): T | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const r = schema.safeParse(v);
  if (!r.success) throw new UsageError(r.error.issues[0]?.message ?? `--${name} is not valid`);
  return r.data;
}

function backendFrom(values: Values): Backend {
  const backend = flag(values, "backend", z.enum(["cpu", "gpu", "auto"], { message: "--backend must be cpu, gpu or auto" }));
  const threads = flag(values, "threads", intFlag("threads", 0, 1024));
  return createBackend({ backend: backend ?? "auto", threads: threads ?? 0 });
}

function out(values: Values, text: string) {
  if (!values["quiet"]) process.stdout.write(text + "\n");
}

const fmt = (n: number) => n.toLocaleString("en-US");

async function cmdAdd(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    digits: { type: "string" },
    base: { type: "string" },
    seed: { type: "string" },
    model: { type: "string" },
    "max-steps": { type: "string" },
  });
  if (values["help"]) return help("add");
  const base = flag(values, "base", intFlag("base", 2, 16)) ?? 2;
  const digits = flag(values, "digits", intFlag("digits", 1, 100_000_000));
  const seed = flag(values, "seed", intFlag("seed", 0, 2 ** 32 - 1)) ?? 1;
  const maxSteps = flag(values, "max-steps", intFlag("max-steps", 1));
  if (digits === undefined && positionals.length !== 2) {
    throw new UsageError("sead add needs two numbers (sead add 123 456) or --digits N");
  }
  if (digits !== undefined && positionals.length > 0) throw new UsageError("give either two numbers or --digits N, not both");

  const task = additionTask({ base });
  const modelName = (values["model"] as string | undefined) ?? `addition-base${base}`;
  const { model } = loadModel(modelName);
  const backend = backendFrom(values);

  let input;
  if (digits !== undefined) {
    input = task.sample(new Rng(seed), digits);
  } else {
    input = padOperands(positionals[0]!, positionals[1]!);
    task.encode([input]); // validates the digits against the base, naming the bad one
  }
  const L = input.a.length;
  const started = performance.now();
  const r = await solve<unknown, string>(backend, model, task, [input], {
    maxSteps: maxSteps ?? 4 * L + 256,
  });
  const seconds = (performance.now() - started) / 1000;
  const sum = r.answers[0]!;
  const exact = r.correct[0]!;
  const steps = r.steps[0]!;
  const settled = r.converged[0] === 1;
  const shown = sum.length <= 80 ? sum : `${sum.slice(0, 30)}...${sum.slice(-30)}`;
  if (values["json"]) {
    out(values, JSON.stringify({ base, digits: L, seed: digits !== undefined ? seed : null, model: modelName, sum: sum.length <= 1000 ? sum : undefined, sumDigits: sum.length, exact, steps, settled, seconds, backend: backend.info().device }));
  } else {
    if (digits !== undefined) out(values, `operands: two random ${fmt(L)}-digit numbers in base ${base} (seed ${seed})`);
    out(values, `sum:      ${shown}${sum.length > 80 ? ` (${fmt(sum.length)} digits)` : ""}`);
    out(values, `steps:    ${fmt(steps)}${settled ? " (settled)" : " (did not settle: reached --max-steps)"}`);
    out(values, `time:     ${seconds.toFixed(2)} s on ${backend.info().device}, model ${modelName}`);
    out(values, `exact:    ${exact ? "yes, equal to the exact sum" : `NO: the exact sum is ${r.expected[0]!.slice(0, 80)}`}`);
  }
  return exact ? 0 : 1;
}

async function cmdTrain(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    config: { type: "string" },
    steps: { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
    resume: { type: "string" },
  });
  if (values["help"]) return help("train");
  if (positionals.length !== 1) throw new UsageError("sead train needs one task name, e.g. sead train addition-base2");
  const info = parseTaskName(positionals[0]!);
  let config: Record<string, unknown> = {};
  if (values["config"]) {
    const path = values["config"] as string;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new InvalidInputError(`cannot read config ${path}: ${(e as Error).message}`);
    }
    try {
      config = parseWith(z.record(z.string(), z.unknown()), JSON.parse(text), "config");
    } catch (e) {
      throw new InvalidInputError(`config ${path} is not a JSON object: ${(e as Error).message}`);
    }
  }
  config = { ...config, task: info };
  const steps = flag(values, "steps", intFlag("steps", 1));
  const seed = flag(values, "seed", intFlag("seed", 0, 2 ** 32 - 1));
  if (steps !== undefined) config["steps"] = steps;
  if (seed !== undefined) config["seed"] = seed;
  const resume = values["resume"] ? loadCheckpoint(values["resume"] as string) : undefined;
  const parsed = resume ? parseTrainConfig(resume.training["config"]) : parseTrainConfig(config);
  const outPath = (values["out"] as string | undefined) ?? `${taskFromInfo(parsed.task).name}.json`;
  const backend = backendFrom(values);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const trainer = new Trainer(parsed, backend, {
    checkpointPath: `${outPath}.ckpt`,
    onStep: (r) => {
      if (r.step % 100 === 0 && !values["json"]) {
        out(values, `step ${r.step}/${parsed.steps} loss ${r.loss.toFixed(5)} exact ${(r.exact * 100).toFixed(1)}% lr ${r.lr.toExponential(2)}`);
      }
    },
    onEval: (e) => out(values, values["json"] ? JSON.stringify({ eval: e }) : `eval at step ${e.step}: ${JSON.stringify(e.accuracy)}`),
  }, resume);
  const s = await trainer.run(ac.signal);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  if (s.aborted) {
    out(values, `interrupted at step ${s.steps}: checkpoint saved to ${outPath}.ckpt (resume with --resume ${outPath}.ckpt)`);
    return 1;
  }
  saveCheckpoint(outPath, s.model, { config: trainer.config, steps: s.steps, seconds: s.seconds, evals: s.evals });
  out(values, values["json"] ? JSON.stringify({ model: outPath, steps: s.steps, seconds: s.seconds, lastLoss: s.lastLoss }) : `trained ${s.steps} steps in ${s.seconds.toFixed(1)} s: model saved to ${outPath}`);
  return 0;
}

async function cmdEval(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    lengths: { type: "string" },
    samples: { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
  });
  if (values["help"]) return help("eval");
  if (positionals.length !== 1) throw new UsageError("sead eval needs one model (a shipped name or a checkpoint path)");
  const { model } = loadModel(positionals[0]!);
  if (!model.task) throw new InvalidInputError(`${positionals[0]} records no task, so it cannot be evaluated`);
  const task = taskFromInfo(model.task);
  const lengths = flag(values, "lengths", z.string().regex(/^\d+(,\d+)*$/, { message: "--lengths must be a comma-separated list of whole numbers" }).transform((s) => s.split(",").map(Number))) ?? [16, 100, 1000];
  const samples = flag(values, "samples", intFlag("samples", 1, 1_000_000)) ?? 100;
  const seed = flag(values, "seed", intFlag("seed", 0, 2 ** 32 - 1)) ?? 1;
  const backend = backendFrom(values);
  if (!values["json"]) out(values, "length  samples  accuracy  mean steps  max steps  seconds");
  const results = await lengthSweep(backend, model, task, lengths, samples, seed, {}, (r) => {
    if (!values["json"]) {
      out(values, `${String(r.length).padStart(6)}  ${String(r.samples).padStart(7)}  ${(r.accuracy * 100).toFixed(1).padStart(7)}%  ${r.meanSteps.toFixed(1).padStart(10)}  ${String(r.maxSteps).padStart(9)}  ${r.seconds.toFixed(2).padStart(7)}`);
    }
  });
  const doc = { model: positionals[0], task: model.task, seed, results };
  if (values["out"]) writeFileAtomic(values["out"] as string, JSON.stringify(doc, null, 2) + "\n");
  if (values["json"]) out(values, JSON.stringify(doc));
  return results.every((r) => r.accuracy === 1) ? 0 : 1;
}

function help(cmd: string): number {
  process.stdout.write(HELP[cmd] + "\n");
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "add":
        return await cmdAdd(rest);
      case "train":
        return await cmdTrain(rest);
      case "eval":
        return await cmdEval(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        return help("main");
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}; commands: add, train, eval (sead --help)`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof InvalidInputError || e instanceof CheckpointError || e instanceof ResourceLimitError) {
      process.stderr.write(`sead ${cmd}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof AbortError) {
      process.stderr.write(`sead ${cmd}: aborted\n`);
      return 1;
    }
    process.stderr.write(`sead ${cmd}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
