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
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createBackend } from "../src/backend/index.js";
import { saveCheckpoint } from "../src/model/checkpoint.js";
import { loadModel } from "../src/models.js";
import { taskFromInfo } from "../src/tasks/index.js";
import { Trainer, type TrainConfigInput } from "../src/train/trainer.js";
import { verifyModel } from "../src/verify/index.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      model: { type: "string" },
      out: { type: "string" },
      rounds: { type: "string", default: "20" },
      steps: { type: "string", default: "500" },
      threads: { type: "string", default: "1" },
      final: { type: "string" },
    },
  });
  if (!values.config || !values.model || !values.out) throw new Error("usage: --config FILE --model FILE --out DIR [--rounds N] [--steps N]");
  const base = JSON.parse(readFileSync(values.config, "utf8")) as TrainConfigInput;
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const threads = Number(values.threads);
  const backend = createBackend({ backend: "cpu", threads });
  const starts: { input: unknown; h0: number[] }[] = [...(base.starts ?? [])];
  let modelPath = resolve(values.model);
  for (let round = 0; round <= Number(values.rounds); round++) {
    const model = loadModel(modelPath).model;
    if (!model.task) throw new Error(`${modelPath} names no task`);
    const task = taskFromInfo(model.task);
    const t0 = Date.now();
    const v = await verifyModel(model, task, { threads: 2 });
    const verdict = { round, model: modelPath, starts: starts.length, correct: v.correct.holds, unique: v.unique.holds, exists: v.exists.holds, seconds: (Date.now() - t0) / 1000 };
    console.log(JSON.stringify(verdict));
    writeFileSync(join(out, `round-${round}.verify.json`), JSON.stringify({ ...verdict, report: v }, null, 2));
    if (v.correct.holds) {
      console.log(`round ${round}: correct is proven for every length (${modelPath})`);
      if (values.final) copyFileSync(modelPath, values.final);
      return;
    }
    if (round === Number(values.rounds)) break;
    const c = v.correct.counterexample!;
    starts.push({ input: c.input, h0: c.hidden.flat() });
    const config: TrainConfigInput = { ...base, init: modelPath, starts, steps: Number(values.steps), seed: (base.seed ?? 0) + round };
    writeFileSync(join(out, `round-${round + 1}.config.json`), JSON.stringify(config, null, 2));
    const trained = await new Trainer(config, backend).run();
    modelPath = join(out, `round-${round + 1}.json`);
    saveCheckpoint(modelPath, trained.model, { config });
  }
  console.log(`not proven after ${values.rounds} rounds`);
  process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(2);
});
