/**
 * Verification-guided training of a quantized model: `sead verify` finds a wrong fixed point
 * (an input and a hidden state the rule keeps, reading out a wrong answer); it is added to the
 * training config's `starts`, so batches of its shape start some samples from it; training
 * goes on from the current model; and again, until every fixed point of every valid input is
 * proven to read out the exact answer, or the rounds run out.
 *
 *   node --import=tsx scripts/verify-train.ts --config <train config> --model <start model>
 *        --out <dir> [--rounds 20] [--steps 500] [--final model.json]
 *
 * The config is a normal training config (its `init` is replaced by the current model each
 * round, its seed is the config's plus the round); each round's model, config and verdict are
 * written to <dir>/round-N.*, and the proven model is copied to --final. Exit 0 when proven,
 * 1 when the rounds ran out. Deterministic, as training and verification are.
 */
import { copyFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadModel } from "../src/models.js";
import { taskFromInfo } from "../src/tasks/index.js";
import { verifyModel } from "../src/verify/index.js";
import { guidedRounds, ROUND_OPTIONS } from "./guided-rounds.js";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { ...ROUND_OPTIONS, rounds: { type: "string", default: "20" } } });
  const passed = await guidedRounds(values, {
    checkName: "verify",
    async check(modelPath, round, { base }) {
      const model = loadModel(modelPath).model;
      if (!model.task) throw new Error(`${modelPath} names no task`);
      const task = taskFromInfo(model.task);
      const t0 = Date.now();
      const v = await verifyModel(model, task, { threads: 2 });
      // Each round before this one added one start.
      const verdict = { round, model: modelPath, starts: (base.starts?.length ?? 0) + round, correct: v.correct.holds, unique: v.unique.holds, exists: v.exists.holds, seconds: (Date.now() - t0) / 1000 };
      const c = v.correct.counterexample;
      return { passed: v.correct.holds, verdict, report: v, starts: c ? [{ input: c.input, h0: c.hidden.flat() }] : [] };
    },
  });
  if (passed) {
    console.log(`round ${passed.round}: correct is proven for every length (${passed.modelPath})`);
    if (values.final) copyFileSync(passed.modelPath, values.final);
    return;
  }
  console.log(`not proven after ${values.rounds} rounds`);
  process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(2);
});
