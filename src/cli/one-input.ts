/**
 * What `sead run` and `sead viz` share: the one input they run (--input or --random), its
 * settling rule (--max-steps, --patience, --tol), and the run itself, traced step by step, with
 * its answer checked against the exact one.
 */
import type { Backend, ConvergeOptions } from "../backend/index.js";
import { type Trace, type TraceOptions, traceRun } from "../eval/trace.js";
import { InvalidInputError } from "../errors.js";
import type { Model } from "../model/model.js";
import { Rng } from "../rng.js";
import { convergeDefaults } from "../run.js";
import { type AnyTask, callTask, decodeChecked, encodeChecked, equalChecked, referenceChecked } from "../tasks/index.js";
import type { Encoded } from "../tasks/types.js";
import { intFlag, interruptible, numberFlag, seedFlag, showInput, stringFlag, UsageError, valueOptions, type Values } from "./common.js";

/** The flags inputFrom reads. */
export const INPUT_OPTIONS = { input: { type: "string", short: "i" }, ...valueOptions("random", "seed") } as const;

/** The help of those flags: the "input:" section of `run` and `viz`. */
export const INPUT_HELP = `input:
  --input X        addition: two numbers joined by +, most significant digit first (1011+110);
                   parity and elementary rules: a row of bits (0110100)
  --random L       a random input of length L instead (seeded by --seed, default 1)`;

/**
 * The one input of `run` and `viz`: --input (the task's own text form: "a+b" for addition,
 * "a*b" for multiplication, a string of 0 and 1 for bit tasks) or --random N (with --seed),
 * checked and encoded.
 */
export function inputFrom(task: AnyTask, values: Values): { input: unknown; enc: Encoded; shown: string } {
  const text = stringFlag(values, "input");
  const random = intFlag(values, "random", 1, 10_000_000);
  if (text !== undefined && random !== undefined) throw new UsageError("give --input or --random N, not both");
  if (text === undefined && random === undefined) {
    throw new UsageError(`needs an input: --input TEXT (${task.parseInput ? `task ${task.name}'s text form` : "not available for this task"}), or --random N for a random one of size N`);
  }
  let input: unknown;
  if (random !== undefined) {
    // The same numbers as `sead add --digits N --seed S` for the same seed.
    input = task.sample(new Rng(seedFlag(values)), random);
  } else {
    if (!task.parseInput) throw new UsageError(`task ${task.name} does not parse text inputs (Task.parseInput); use --random N`);
    try {
      input = callTask(task, "parseInput", () => task.parseInput!(text!));
    } catch (e) {
      if (e instanceof InvalidInputError) throw new UsageError(`--input: ${e.message}`);
      throw e;
    }
  }
  let enc: Encoded;
  try {
    enc = encodeChecked(task, [input]);
  } catch (e) {
    if (e instanceof InvalidInputError) throw new UsageError(`--input: ${e.message}`);
    throw e;
  }
  return { input, enc, shown: showInput(task, input) };
}

/** The flags of the settling rule that `run` and `viz` take. */
export const SETTLE_OPTIONS = valueOptions("max-steps", "patience", "tol");

export interface SettleFlags {
  maxSteps: number | undefined;
  patience: number | undefined;
  tol: number | undefined;
}

/** --max-steps (at most `maxStepsLimit`), --patience and --tol, checked; undefined where not given. */
export function settleFlags(values: Values, maxStepsLimit = 1e9): SettleFlags {
  return {
    maxSteps: intFlag(values, "max-steps", 1, maxStepsLimit),
    patience: intFlag(values, "patience", 1, 1e6),
    tol: numberFlag(values, "tol", { positive: true }),
  };
}

/** The settling rule of a run on `enc`: the defaults, with what the flags give in their place. */
export function settleRule(enc: Encoded, { maxSteps, patience, tol }: SettleFlags): ConvergeOptions {
  return { ...convergeDefaults(enc.width, enc.height), ...(maxSteps ? { maxSteps } : {}), ...(patience ? { patience } : {}), ...(tol ? { tol } : {}) };
}

/** A traced run and its answer, checked. */
export interface TracedAnswer {
  trace: Trace;
  answer: unknown;
  expected: unknown;
  correct: boolean;
}

/**
 * Runs `enc` (the encoding of `input`) step by step with traceRun (Ctrl-C stops it between
 * steps), then decodes its answer and checks it against the task's exact one.
 */
export async function tracedAnswer(backend: Backend, model: Model, task: AnyTask, input: unknown, enc: Encoded, options: Omit<TraceOptions, "signal">): Promise<TracedAnswer> {
  const trace = await interruptible((signal) => traceRun(backend, model, enc, { ...options, signal }));
  const answer = decodeChecked(task, trace.finalOutputs, { batch: 1, height: enc.height, width: enc.width })[0];
  const expected = referenceChecked(task, input);
  return { trace, answer, expected, correct: equalChecked(task, answer, expected) };
}
