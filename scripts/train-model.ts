/**
 * Trains a model from a config file and writes the checkpoint:
 *   node --import=tsx scripts/train-model.ts configs/addition-base2.json models/addition-base2.json
 * Prints a line per 50 steps and each evaluation.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createBackend } from "../src/backend/index.js";
import { loadCheckpoint, saveCheckpoint } from "../src/model/checkpoint.js";
import { trainedRecord } from "../src/cli/train.js";
import { Trainer } from "../src/train/trainer.js";

async function main() {
  const [configPath, outPath, seedArg] = process.argv.slice(2);
  if (!configPath || !outPath) throw new Error("usage: train-model.ts <config.json> <out.json> [seed]");
  const config = JSON.parse(readFileSync(configPath, "utf8"));
  if (seedArg !== undefined) config.seed = Number(seedArg);
  const backend = createBackend({ backend: "cpu" });
  let acc = 0;
  let n = 0;
  const trainer = new Trainer(config, backend, {
    checkpointPath: outPath + ".ckpt",
    onStep: (r) => {
      acc += r.exact;
      n++;
      if (r.step % 50 === 0) {
        console.log(
          `step ${r.step} loss ${r.loss.toFixed(4)} exact ${(acc / n).toFixed(3)} lr ${r.lr.toExponential(2)} ` +
            `|g| ${r.gradNorm.toFixed(3)} T ${r.unroll} L ${r.length} ${r.ms}ms`,
        );
        acc = 0;
        n = 0;
      }
    },
    onEval: (e) => console.log(`eval @${e.step}: acc ${JSON.stringify(e.accuracy)} steps ${JSON.stringify(e.meanSteps)}`),
  });
  const s = await trainer.run();
  saveCheckpoint(outPath, s.model, {
    ...trainedRecord(trainer.config, s),
    command: `node --import=tsx scripts/train-model.ts ${configPath} ${outPath}${seedArg !== undefined ? " " + seedArg : ""}`,
    commit: gitCommit(),
    simd: backend.info().device,
    // A fine-tuned model carries the provenance of the one it started from.
    ...(trainer.config.init ? { init: initProvenance(trainer.config.init) } : {}),
  });
  console.log(`done: ${s.steps} steps in ${s.seconds.toFixed(1)} s`);
}
/** What trained the model a fine-tuning run started from: its config, steps, time and command. */
function initProvenance(path: string): Record<string, unknown> {
  const { training } = loadCheckpoint(path);
  const { config, steps, seconds, command, commit, init } = training as Record<string, unknown>;
  return { path, config, steps, seconds, command, commit, ...(init ? { init } : {}) };
}

/** The commit the code was at, marked "+changes" when code (not models/) had uncommitted edits. */
function gitCommit(): string | undefined {
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", ".", ":!models"], { encoding: "utf8" }).trim();
    return dirty ? `${head}+changes` : head;
  } catch {
    return undefined;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
