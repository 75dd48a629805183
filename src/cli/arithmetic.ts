/**
 * What `sead add` and `sead mul` share: two operands typed or drawn at random, a shipped (or
 * given) model run to its fixed point, the answer checked against the exact one, and the
 * report: text (long answers cut to their ends, with their SHA-256), --json (the full answer,
 * and for long ones also its SHA-256) and --out FILE (the answer alone, written atomically).
 */
import { createHash } from "node:crypto";
import { writeFileAtomic } from "../io/atomic.js";
import { Rng } from "../rng.js";
import { ResourceLimitError } from "../errors.js";
import { checkSessionFits, solve } from "../run.js";
import type { AnyTask, TaskInfo } from "../tasks/index.js";
import {
  backendFrom,
  checkFits,
  COMMON_HELP,
  duration,
  fmt,
  FREEZE_HELP,
  freezeFlag,
  intFlag,
  interruptible,
  modelArg,
  OUT_OPTION,
  outFlag,
  Output,
  percent,
  seedFlag,
  stringFlag,
  UsageError,
  valueOptions,
  type Values,
} from "./common.js";

export const sha256 = (s: string) => createHash("sha256").update(s, "latin1").digest("hex");

/** The flags runArithmetic reads, besides the size flag (--digits, --bits). */
export const ARITHMETIC_OPTIONS = { ...valueOptions("seed", "model", "max-steps", "freeze"), ...OUT_OPTION } as const;

/**
 * The help of what runArithmetic reads besides the size flag (--seed on), the common options
 * and the exit codes. `model`: what follows the --model line ("" or " (default ...)").
 */
export function arithmeticHelp(h: { answer: string; digits: string; model: string; maxSteps: string }): string {
  return `  --seed S         seed of the random numbers (default 1)
  --model M        a shipped model name or a checkpoint file${h.model}
  --max-steps N    stop a run that has not settled after N steps (default ${h.maxSteps})
  --out FILE       write the ${h.answer} (its ${h.digits} and a newline) to FILE, atomically
${FREEZE_HELP}

${COMMON_HELP}

exit codes: 0 the ${h.answer} is exact, 1 it is not (or the run failed), 2 bad usage or input.`;
}

/** Above this many digits, text output shows an answer's ends and its SHA-256. */
const LONG = 80;

export interface ArithmeticJob {
  values: Values;
  positionals: string[];
  /** The task, given the task the model records (a model may pick among a family's members). */
  taskFor(recorded: TaskInfo | undefined): AnyTask;
  /** The flag that draws random operands: "digits" or "bits". */
  sizeFlag: string;
  /** "sum" or "product". */
  answerName: string;
  /** The model when --model is not given. */
  defaultModel: string;
  /** Checks and pairs up two typed operands (same length), or throws a UsageError. */
  operands(a: string, b: string): { a: string; b: string };
  /** The step budget for an input of this size when --max-steps is not given. */
  maxSteps(size: number): number;
  /** Fields of the --json document before the rest (e.g. the base). */
  header?: Record<string, unknown>;
  /** How the operands are described: "two random 1,000-digit numbers in base 2". */
  describeRandom(size: number, seed: number): string;
}

export async function runArithmetic(job: ArithmeticJob): Promise<number> {
  const { values, positionals } = job;
  const out = new Output(values);
  const size = intFlag(values, job.sizeFlag, 1, 100_000_000);
  const seed = seedFlag(values);
  const maxSteps = intFlag(values, "max-steps", 1, 1e9);
  const freeze = freezeFlag(values);
  const outPath = outFlag(values, "--out");
  if (size === undefined && positionals.length !== 2) {
    throw new UsageError(
      positionals.length === 0
        ? `needs two numbers (sead ${job.answerName === "sum" ? "add" : "mul"} 1011 110) or --${job.sizeFlag} N`
        : `needs two numbers, got ${positionals.length} (${positionals.map((p) => JSON.stringify(p)).join(" ")})`,
    );
  }
  if (size !== undefined && positionals.length > 0) throw new UsageError(`give either two numbers or --${job.sizeFlag} N, not both`);
  if (size === undefined && values["seed"] !== undefined) throw new UsageError(`--seed goes with --${job.sizeFlag} N (random numbers)`);

  const modelName = stringFlag(values, "model") ?? job.defaultModel;
  const { model } = modelArg(modelName);
  const task = job.taskFor(model.task);
  checkFits(modelName, model, task);
  const typed = size === undefined ? job.operands(positionals[0]!, positionals[1]!) : undefined;
  const backend = backendFrom(values);
  const n = typed ? typed.a.length : size!;
  const grid = task.grid(n);
  // Refuse a grid over the memory budget before drawing or encoding anything.
  try {
    checkSessionFits(backend, model, { batch: 1, ...grid });
  } catch (e) {
    if (e instanceof ResourceLimitError) throw new UsageError(`${fmt(n)}-digit operands: ${e.message}`);
    throw e;
  }
  const input = typed ?? (task.sample(new Rng(seed), n) as { a: string; b: string });

  const started = performance.now();
  const r = await interruptible((signal) =>
    solve<{ a: string; b: string }, string>(backend, model, task, [input], { maxSteps: maxSteps ?? job.maxSteps(n), signal, ...(freeze !== undefined ? { freeze } : {}) }),
  );
  const seconds = (performance.now() - started) / 1000;
  const answer = r.answers[0]!;
  const expected = r.expected[0]!;
  const exact = r.correct[0]!;
  const steps = r.steps[0]!;
  const settled = r.converged[0] === 1;
  const cells = r.cellsComputed[0]!;
  const cellShare = cells / (steps * grid.height * grid.width);
  const long = answer.length > LONG;
  const device = backend.info().device;
  const name = job.answerName;
  if (outPath) writeFileAtomic(outPath, answer + "\n");
  if (out.json) {
    out.doc({
      ...job.header,
      digits: n,
      seed: size !== undefined ? seed : null,
      model: modelName,
      [name]: answer,
      [`${name}Digits`]: answer.length,
      ...(long ? { [`${name}Sha256`]: sha256(answer) } : {}),
      ...(exact ? {} : { expectedSha256: sha256(expected), wrongDigits: countDiff(answer, expected) }),
      exact,
      steps,
      settled,
      cellsComputed: cells,
      cellsDense: steps * grid.height * grid.width,
      ...(freeze !== undefined ? { freeze } : {}),
      ...(outPath ? { out: outPath } : {}),
      seconds,
      backend: device,
    });
  } else {
    if (size !== undefined) out.line(`operands: ${job.describeRandom(n, seed)}`);
    const label = `${name}:`.padEnd(10);
    if (long) {
      out.line(`${label}${answer.slice(0, 20)}...${answer.slice(-20)} (${fmt(answer.length)} digits, first and last 20 shown)`);
      out.line(`sha256:   ${sha256(answer)}`);
    } else {
      out.line(`${label}${answer}`);
    }
    out.line(`steps:    ${fmt(steps)}${settled ? " (settled)" : " (did not settle: reached --max-steps)"}`);
    if (freeze !== undefined || grid.height > 1) {
      out.line(`cells:    ${fmt(cells)} cell updates computed, ${percent(cellShare)} of steps x cells${freeze !== undefined ? ` (--freeze ${String(values["freeze"]).trim()})` : ""}`);
    }
    out.line(`time:     ${duration(seconds)} on ${device}, model ${modelName}`);
    out.line(
      exact
        ? `exact:    yes, equal to the exact ${name}`
        : long
          ? `exact:    NO: ${fmt(countDiff(answer, expected))} digits differ; the exact ${name}'s sha256 is ${sha256(expected)}`
          : `exact:    NO: the exact ${name} is ${expected}`,
    );
    if (outPath) out.line(`${name} written to ${outPath}`);
  }
  return exact ? 0 : 1;
}

function countDiff(a: string, b: string): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) n++;
  return n + Math.abs(a.length - b.length);
}
