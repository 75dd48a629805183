/** `sead add`: add two numbers with a shipped (or given) model, checked against the exact sum. */
import { createHash } from "node:crypto";
import { solve } from "../run.js";
import { Rng } from "../rng.js";
import { additionTask, padOperands, parseOperand, type AdditionInput } from "../tasks/index.js";
import { InvalidInputError } from "../errors.js";
import {
  backendFrom,
  checkFits,
  COMMON_HELP,
  duration,
  flag,
  fmt,
  FREEZE_HELP,
  freezeFlag,
  intFlag,
  interruptible,
  modelArg,
  Output,
  parse,
  percent,
  seedFlag,
  stringFlag,
  UsageError,
} from "./common.js";

export const ADD_HELP = `usage: sead add <a> <b> [--base B] [--model M]
       sead add --digits N [--base B] [--seed S] [--model M]

Adds two numbers with the shipped addition model for the base (or --model: a shipped name or a
checkpoint path) and checks the sum against the exact one. Numbers are digit strings, most
significant digit first (a-f for digits above 9). For long sums it prints the first and last
digits and the sum's SHA-256 (of its digits as text, most significant first).

options:
  --digits N       add two random N-digit numbers (seeded by --seed, default 1)
  --base B         2 to 16 (default 2; shipped models: 2 and 10)
  --seed S         seed of the random numbers (default 1)
  --model M        a shipped model name or a checkpoint file
  --max-steps N    stop a run that has not settled after N steps (default 4 L + 256)
${FREEZE_HELP}

${COMMON_HELP}

exit codes: 0 the sum is exact, 1 it is not (or the run failed), 2 bad usage or input.

examples:
  sead add 1011 110
  sead add 99999999 1 --base 10
  sead add --digits 1000000 --seed 1
  sead add --digits 100000 --freeze 1e-5`;

const sha256 = (s: string) => createHash("sha256").update(s, "latin1").digest("hex");

export async function cmdAdd(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    digits: { type: "string" },
    base: { type: "string" },
    seed: { type: "string" },
    model: { type: "string" },
    "max-steps": { type: "string" },
    freeze: { type: "string" },
  });
  if (values["help"]) return help();
  const out = new Output(values);
  const base = flag(values, "base", intFlag("base", 2, 16)) ?? 2;
  const digits = flag(values, "digits", intFlag("digits", 1, 100_000_000));
  const seed = seedFlag(values);
  const maxSteps = flag(values, "max-steps", intFlag("max-steps", 1, 1e9));
  const freeze = freezeFlag(values);
  if (digits === undefined && positionals.length !== 2) {
    throw new UsageError(
      positionals.length === 0
        ? "needs two numbers (sead add 1011 110) or --digits N"
        : `needs two numbers, got ${positionals.length} (${positionals.map((p) => JSON.stringify(p)).join(" ")})`,
    );
  }
  if (digits !== undefined && positionals.length > 0) throw new UsageError("give either two numbers or --digits N, not both");
  if (digits === undefined && values["seed"] !== undefined) throw new UsageError("--seed goes with --digits N (random numbers)");

  const task = additionTask({ base });
  let input: AdditionInput;
  if (digits !== undefined) {
    input = task.sample(new Rng(seed), digits);
  } else {
    operand(positionals[0]!, base, "first");
    operand(positionals[1]!, base, "second");
    input = padOperands(positionals[0]!, positionals[1]!);
  }
  const modelName = stringFlag(values, "model") ?? `addition-base${base}`;
  const { model } = modelArg(modelName);
  checkFits(modelName, model, task);
  const backend = backendFrom(values);
  const L = input.a.length;

  const started = performance.now();
  const r = await interruptible((signal) => solve<AdditionInput, string>(backend, model, task, [input], { maxSteps: maxSteps ?? 4 * L + 256, signal, ...(freeze !== undefined ? { freeze } : {}) }));
  const seconds = (performance.now() - started) / 1000;
  const sum = r.answers[0]!;
  const expected = r.expected[0]!;
  const exact = r.correct[0]!;
  const steps = r.steps[0]!;
  const settled = r.converged[0] === 1;
  const cells = r.cellsComputed[0]!;
  const cellShare = cells / (steps * (L + 1));
  const long = sum.length > 80;
  const device = backend.info().device;
  if (out.json) {
    out.doc({
      base,
      digits: L,
      seed: digits !== undefined ? seed : null,
      model: modelName,
      ...(sum.length <= 1000 ? { sum } : {}),
      sumDigits: sum.length,
      sumFirst: sum.slice(0, 20),
      sumLast: sum.slice(-20),
      sumSha256: sha256(sum),
      ...(exact ? {} : { expectedSha256: sha256(expected), wrongDigits: countDiff(sum, expected) }),
      exact,
      steps,
      settled,
      cellsComputed: cells,
      ...(freeze !== undefined ? { freeze } : {}),
      seconds,
      backend: device,
    });
  } else {
    if (digits !== undefined) out.line(`operands: two random ${fmt(L)}-digit numbers in base ${base} (seed ${seed})`);
    if (long) {
      out.line(`sum:      ${sum.slice(0, 20)}...${sum.slice(-20)} (${fmt(sum.length)} digits, first and last 20 shown)`);
      out.line(`sha256:   ${sha256(sum)}`);
    } else {
      out.line(`sum:      ${sum}`);
    }
    out.line(`steps:    ${fmt(steps)}${settled ? " (settled)" : " (did not settle: reached --max-steps)"}`);
    if (freeze !== undefined) {
      out.line(`cells:    ${fmt(cells)} cell updates computed, ${percent(cellShare)} of steps x cells (--freeze ${String(values["freeze"]).trim()})`);
    }
    out.line(`time:     ${duration(seconds)} on ${device}, model ${modelName}`);
    out.line(
      exact
        ? "exact:    yes, equal to the exact sum"
        : long
          ? `exact:    NO: ${fmt(countDiff(sum, expected))} digits differ; the exact sum's sha256 is ${sha256(expected)}`
          : `exact:    NO: the exact sum is ${expected}`,
    );
  }
  return exact ? 0 : 1;
}

/** Checks one number's digits: "the first number 1021: digit '2' at position 2 ... is not valid in base 2". */
export function operand(s: string, base: number, which: string): void {
  try {
    parseOperand(s, base, "x");
  } catch (e) {
    if (e instanceof InvalidInputError) throw new UsageError(`the ${which} number ${JSON.stringify(s.length > 40 ? s.slice(0, 40) + "..." : s)}: ${e.message.replace(/^operand x: /, "")}`);
    throw e;
  }
}

function countDiff(a: string, b: string): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) n++;
  return n + Math.abs(a.length - b.length);
}

function help(): number {
  process.stdout.write(ADD_HELP + "\n");
  return 0;
}
