/** `sead add`: add two numbers with a shipped (or given) model, checked against the exact sum. */
import { InvalidInputError } from "../errors.js";
import { additionTask, padOperands, parseOperand } from "../tasks/index.js";
import { ARITHMETIC_OPTIONS, arithmeticHelp, runArithmetic } from "./arithmetic.js";
import { fmt, intFlag, parse, printHelp, UsageError } from "./common.js";

export const ADD_HELP = `usage: sead add <a> <b> [--base B] [--model M]
       sead add --digits N [--base B] [--seed S] [--model M]

Adds two numbers with the shipped addition model for the base (or --model: a shipped name or a
checkpoint path) and checks the sum against the exact one. Numbers are digit strings, most
significant digit first (a-f for digits above 9). For long sums the text output shows the first
and last digits and the sum's SHA-256 (of its digits as text, most significant first); --json
holds the whole sum (and its SHA-256 when long).

options:
  --digits N       add two random N-digit numbers (seeded by --seed, default 1)
  --base B         2 to 16 (default 2; shipped models: 2 and 10)
${arithmeticHelp({ answer: "sum", digits: "digits", model: "", maxSteps: "4 L + 256" })}

examples:
  sead add 1011 110
  sead add 99999999 1 --base 10
  sead add --digits 1000000 --seed 1
  sead add --digits 100000 --freeze 1e-5`;

export async function cmdAdd(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { digits: { type: "string" }, base: { type: "string" }, ...ARITHMETIC_OPTIONS });
  if (values["help"]) return printHelp(ADD_HELP);
  const base = intFlag(values, "base", 2, 16) ?? 2;
  return runArithmetic({
    values,
    positionals,
    taskFor: () => additionTask({ base }),
    sizeFlag: "digits",
    answerName: "sum",
    defaultModel: `addition-base${base}`,
    operands(a, b) {
      operand(a, base, "first");
      operand(b, base, "second");
      return padOperands(a, b);
    },
    maxSteps: (L) => 4 * L + 256,
    header: { base },
    describeRandom: (L, seed) => `two random ${fmt(L)}-digit numbers in base ${base} (seed ${seed})`,
  });
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
