/**
 * The multiplication results: exact-match accuracy, steps and the share of cell updates
 * computed, at each size n (an n x (n+1) grid) on random pairs, and every adversarial case at
 * one size, for a multiplication model (default the shipped one). Every answer is checked
 * against BigInt. Writes results/multiplication.json (atomically) and prints a Markdown table.
 *
 *   node --import=tsx scripts/results-mul.ts                          the table of docs/results.md
 *   node --import=tsx scripts/results-mul.ts --model m.json --sizes 8:100,64:100 --hard 64
 *   ... --freeze 0                                                    compute every cell (slow)
 *
 * Sizes are n:pairs. Runs skip settled cells with --freeze (default 1e-5): answers are still
 * checked exactly; only the dynamics are approximated (docs/skipping.md).
 */
import { parseArgs } from "node:util";
import { createBackend } from "../src/backend/index.js";
import { percent } from "../src/cli/common.js";
import { hardCaseSweep, lengthSweep, type LengthResult } from "../src/eval/sweep.js";
import { writeFileAtomic } from "../src/io/atomic.js";
import { loadModel } from "../src/models.js";
import { taskFromInfo } from "../src/tasks/index.js";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "multiplication-base2" },
    sizes: { type: "string", default: "8:100,64:100,256:100,1024:100,4096:10,8192:2" },
    hard: { type: "string", default: "1024" },
    freeze: { type: "string", default: "1e-5" },
    seed: { type: "string", default: "1" },
    out: { type: "string", default: "results/multiplication.json" },
  },
});
const sizes = values.sizes!.split(",").map((p) => p.split(":").map(Number) as [number, number]);
const hard = values.hard!.split(",").filter(Boolean).map(Number);
const freeze = Number(values.freeze);
const seed = Number(values.seed);

const backend = createBackend({ backend: "cpu" });
const { model, training } = loadModel(values.model!);
const task = taskFromInfo(model.task);
const opts = { ...(freeze > 0 ? { freeze } : {}), maxSteps: 0 };
const row = (kind: string, name: string, r: LengthResult) => ({
  kind,
  name,
  n: r.length,
  samples: r.samples,
  correct: r.correct,
  accuracy: r.accuracy,
  meanSteps: r.meanSteps,
  maxSteps: r.maxSteps,
  unsettled: r.unsettled,
  seconds: r.seconds,
  cellShare: r.cellsComputed / r.cellsDense,
});
const rows: ReturnType<typeof row>[] = [];
const print = (r: ReturnType<typeof row>) =>
  console.log(
    `| ${r.kind} | ${r.name} | ${r.n.toLocaleString("en-US")} | ${r.correct}/${r.samples} | ${r.meanSteps.toFixed(1)} | ${r.maxSteps} | ${r.unsettled} | ${percent(r.cellShare)} | ${r.seconds.toFixed(1)} |`,
  );
async function main(): Promise<void> {
  console.log(`model ${values.model} (${model.paramCount} parameters), task ${JSON.stringify(model.task)}, freeze ${freeze}, seed ${seed}, ${backend.info().device}`);
  console.log("| kind | case | n | exact | mean steps | max steps | unsettled | cells computed | seconds |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const [n, pairs] of sizes) {
    // The budget of `sead mul`: a product settles in about 4 steps per bit or not at all.
    opts.maxSteps = 8 * n + 256;
    const [r] = await lengthSweep(backend, model, task, [n], pairs, seed, opts);
    rows.push(row("random", `${pairs} random pairs`, r!));
    print(rows.at(-1)!);
  }
  for (const n of hard) {
    opts.maxSteps = 8 * n + 256;
    for (const r of await hardCaseSweep(backend, model, task, [n], opts)) {
      rows.push(row("adversarial", r.name, r));
      print(rows.at(-1)!);
    }
  }
  const doc = {
    model: values.model,
    task: model.task,
    parameters: model.paramCount,
    spec: model.spec,
    training: { config: training["config"], steps: training["steps"], seconds: training["seconds"], command: training["command"] },
    freeze,
    seed,
    device: backend.info().device,
    rows,
  };
  writeFileAtomic(values.out!, JSON.stringify(doc, null, 2) + "\n");
  console.log(`written to ${values.out}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
