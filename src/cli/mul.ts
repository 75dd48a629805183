/** `sead mul`: multiply two binary numbers with the shipped (or given) model on a 2D grid, checked exactly. */
import { InvalidInputError } from "../errors.js";
import { multiplicationTask, taskFromInfo } from "../tasks/index.js";
import { ARITHMETIC_OPTIONS, arithmeticHelp, runArithmetic } from "./arithmetic.js";
import { fmt, parse, printHelp, UsageError } from "./common.js";

export const MUL_HELP = `usage: sead mul <a> <b> [--model M]
       sead mul --bits N [--seed S] [--model M]

Multiplies two binary numbers with the shipped multiplication model (or --model: a shipped name
or a checkpoint path) on an n x (n+1) grid of cells, and checks the product against the exact
one (BigInt). Numbers are bit strings, most significant bit first; the shorter is left-padded
with zeros. The product always has 2n bits. For long products the text output shows the first
and last bits and the product's SHA-256 (of its bits as text, most significant first); --json
holds the whole product (and its SHA-256 when long).

options:
  --bits N         multiply two random N-bit numbers (seeded by --seed, default 1)
${arithmeticHelp({ answer: "product", digits: "bits", model: " (default multiplication-base2)", maxSteps: "8 n + 256" })}

examples:
  sead mul 1011 110
  sead mul --bits 1024 --seed 2 --freeze 1e-5
  sead mul --bits 4096 --json --out product.txt`;

export async function cmdMul(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { bits: { type: "string" }, ...ARITHMETIC_OPTIONS });
  if (values["help"]) return printHelp(MUL_HELP);
  const task = multiplicationTask();
  return runArithmetic({
    values,
    positionals,
    // Models trained with either supervision read the product from the same cells.
    taskFor: (recorded) => (recorded?.name === "multiplication" ? taskFromInfo(recorded) : task),
    sizeFlag: "bits",
    answerName: "product",
    defaultModel: "multiplication-base2",
    operands(a, b) {
      for (const [which, bits] of [["first", a], ["second", b]] as const) {
        if (bits.trim().length === 0) throw new UsageError(`the ${which} number is empty; it needs at least one bit`);
      }
      try {
        return task.parseInput(`${a}*${b}`);
      } catch (e) {
        if (e instanceof InvalidInputError) throw new UsageError(e.message);
        throw e;
      }
    },
    maxSteps: (n) => 8 * n + 256,
    describeRandom: (n, seed) => `two random ${fmt(n)}-bit numbers (seed ${seed})`,
  });
}
