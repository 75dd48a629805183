/**
 * Evaluates the shipped models and writes the results table: results/results.json and the
 * table between the results markers in docs/results.md. Every number comes from this run.
 *
 *   node --import=tsx scripts/results.ts            full table (minutes to an hour, 2 cores)
 *   node --import=tsx scripts/results.ts --quick    the smaller lengths only (what CI checks), to
 *                                                   results/results-quick.json; docs untouched
 *   ... --out file.json                             write the JSON elsewhere, leave the docs alone
 *   ... --models a,b                                evaluate only these models; their rows replace
 *                                                   theirs in the existing results (full table only)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createBackend } from "../src/backend/index.js";
import { percent } from "../src/cli/common.js";
import { hardCaseSweep, lengthSweep, type LengthResult } from "../src/eval/sweep.js";
import { learnedTrajectories } from "../src/eval/trajectory.js";
import { writeFileAtomic } from "../src/io/atomic.js";
import { loadModel } from "../src/models.js";
import { ElementaryTask, taskFromInfo } from "../src/tasks/index.js";

export interface Row {
  model: string;
  kind: "random" | "adversarial" | "trajectory";
  name: string;
  length: number;
  samples: number;
  accuracy: number;
  meanSteps: number;
  maxSteps: number;
  seconds: number;
  /** trajectory rows: cells differing from the exact automaton over every generation */
  wrongCells?: number;
  generations?: number;
  /** rows run with settled cells skipped: the freeze, and the cell updates computed as a
   * share of every cell at every step */
  freeze?: number;
  cellShare?: number;
}

/** The freeze of the rows that skip settled cells (RunOptions.freeze). */
const FREEZE = 1e-5;

export interface ModelSummary {
  model: string;
  task: unknown;
  trainLengths: unknown;
  trainSteps: unknown;
  trainSeconds: unknown;
  trainCommand: unknown;
}

interface Plan {
  model: string;
  random: { length: number; samples: number }[];
  adversarialChains?: number[];
  /** Adversarial cases run with settled cells skipped (FREEZE): long carry chains in seconds. */
  frozenChains?: number[];
  trajectory?: { width: number; generations: number; starts: number };
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

export function plan(quick: boolean): Plan[] {
  const addition = (model: string): Plan => ({
    model,
    random: quick
      ? [
          { length: 16, samples: 100 },
          { length: 1000, samples: 20 },
        ]
      : [
          { length: 16, samples: 100 },
          { length: 1000, samples: 100 },
          { length: 100_000, samples: 100 },
          { length: 1_000_000, samples: 10 },
        ],
    adversarialChains: quick ? [16, 100] : [16, 1000, 10_000],
    frozenChains: quick ? [1000] : [100_000],
  });
  // The ternary adder's states are exact, so skipping unchanged cells is exact and its default:
  // its long chains need no freeze.
  const ternary: Plan = {
    model: "addition-base2-ternary",
    random: addition("addition-base2-ternary").random,
    adversarialChains: quick ? [16, 100, 1000] : [16, 1000, 10_000, 100_000],
  };
  return [
    addition("addition-base2"),
    addition("addition-base10"),
    ternary,
    {
      model: "parity",
      random: quick
        ? [...range(1, 32).map((length) => ({ length, samples: 20 })), { length: 256, samples: 10 }]
        : [...range(1, 256).map((length) => ({ length, samples: 100 })), ...[1024, 4096, 16384].map((length) => ({ length, samples: 10 }))],
    },
    {
      model: "rule110",
      random: [
        { length: 32, samples: 100 },
        { length: 1024, samples: quick ? 20 : 100 },
      ],
      trajectory: quick ? { width: 1024, generations: 200, starts: 2 } : { width: 1024, generations: 10_000, starts: 4 },
    },
  ];
}

function fromLength(model: string, kind: Row["kind"], name: string, r: LengthResult): Row {
  return {
    model,
    kind,
    name,
    length: r.length,
    samples: r.samples,
    accuracy: r.accuracy,
    meanSteps: r.meanSteps,
    maxSteps: r.maxSteps,
    seconds: r.seconds,
  };
}

export async function evaluateShipped(
  quick: boolean,
  log: (s: string) => void = () => {},
  only?: readonly string[],
): Promise<{ rows: Row[]; models: ModelSummary[] }> {
  const backend = createBackend({ backend: "cpu" });
  const rows: Row[] = [];
  const models: ModelSummary[] = [];
  for (const p of plan(quick).filter((q) => !only || only.includes(q.model))) {
    const { model, training } = loadModel(p.model);
    // A fine-tuned model lists its stages, first to last.
    const stages: Record<string, unknown>[] = [];
    for (let t: Record<string, unknown> | undefined = training; t; t = t["init"] as Record<string, unknown> | undefined) stages.unshift(t);
    const lengthsOf = (t: Record<string, unknown>) => (t["config"] as { lengths?: { min: number; max: number } } | undefined)?.lengths;
    models.push({
      model: p.model,
      task: model.task,
      trainLengths: stages.map(lengthsOf),
      trainSteps: stages.map((t) => t["steps"]),
      trainSeconds: stages.map((t) => t["seconds"]),
      trainCommand: stages.map((t) => t["command"]),
    });
    const task = taskFromInfo(model.task);
    // A step budget per run: random additions settle in about their longest carry chain
    // (tens of steps), Rule 110 in a few; parity's wave must cross the row (the default, 2L + 64).
    const opts = p.model.startsWith("addition") ? { maxSteps: 2000 } : p.model === "rule110" ? { maxSteps: 256 } : {};
    const add = (r: Row) => {
      rows.push(r);
      log(`${r.model} ${r.kind} ${r.name}: ${(r.accuracy * 100).toFixed(1)}% of ${r.samples}, steps mean ${r.meanSteps.toFixed(1)} max ${r.maxSteps}, ${r.seconds.toFixed(2)} s`);
    };
    await lengthSweep(backend, model, task, p.random.map((r) => r.length), (L) => p.random.find((r) => r.length === L)!.samples, 1, opts, (r) =>
      add(fromLength(p.model, "random", `L=${r.length}`, r)),
    );
    if (p.adversarialChains && model.task?.name === "addition") {
      for (const r of await hardCaseSweep(backend, model, task, p.adversarialChains)) {
        add(fromLength(p.model, "adversarial", r.name, r));
      }
    }
    if (p.frozenChains && model.task?.name === "addition") {
      for (const r of await hardCaseSweep(backend, model, task, p.frozenChains, { freeze: FREEZE })) {
        add({ ...fromLength(p.model, "adversarial", `${r.name}, freeze ${FREEZE.toExponential()}`, r), freeze: FREEZE, cellShare: r.cellsComputed / r.cellsDense });
      }
    }
    if (p.trajectory && task instanceof ElementaryTask) {
      const t = p.trajectory;
      const r = await learnedTrajectories(backend, model, task, t.width, t.generations, t.starts, 1);
      add({
        model: p.model,
        kind: "trajectory",
        name: `${t.generations} generations, periodic row of ${t.width}`,
        length: t.width,
        samples: t.starts,
        accuracy: r.wrongCells === 0 ? 1 : 0,
        meanSteps: r.meanSteps,
        maxSteps: r.maxSteps,
        seconds: r.seconds,
        wrongCells: r.wrongCells,
        generations: t.generations,
      });
    }
  }
  return { rows, models };
}

/** The docs' table: one line per model and length (parity's 1..256 folded into one line). */
export function markdownTable(rows: Row[], models: ModelSummary[]): string {
  const lines = [
    "| model | trained on | test | samples | exact | steps (mean / max) | time |",
    "|---|---|---|---:|---:|---:|---:|",
  ];
  const trained = (m: string) => {
    const s = models.find((x) => x.model === m);
    if (!s) return "?";
    const lengths = (s.trainLengths as ({ min: number; max: number } | undefined)[]).map((l) => (l ? `${l.min}..${l.max}` : "?"));
    const steps = (s.trainSteps as unknown[]).map(String);
    const seconds = (s.trainSeconds as unknown[]).map((x) => Number(x).toFixed(0));
    // Stages joined by "then": "L 4..16 then 8..16, 6000 + 3000 steps, 1888 + 940 s".
    return `L ${lengths.join(" then ")}, ${steps.join(" + ")} steps, ${seconds.join(" + ")} s`;
  };
  const parityShort = rows.filter((r) => r.model === "parity" && r.kind === "random" && r.length <= 256);
  for (const r of rows) {
    if (r.model === "parity" && r.kind === "random" && r.length <= 256) {
      if (r !== parityShort[0]) continue;
      const correct = parityShort.reduce((a, x) => a + x.accuracy * x.samples, 0);
      const total = parityShort.reduce((a, x) => a + x.samples, 0);
      const maxL = Math.max(...parityShort.map((x) => x.length));
      lines.push(
        `| parity | ${trained("parity")} | every L from 1 to ${maxL} | ${total} | ${((100 * correct) / total).toFixed(1)}% | ` +
          `${Math.max(...parityShort.map((x) => x.maxSteps))} max | ${parityShort.reduce((a, x) => a + x.seconds, 0).toFixed(1)} s |`,
      );
      continue;
    }
    const test =
      r.kind === "trajectory"
        ? `${r.name}: ${r.wrongCells} wrong cells`
        : r.cellShare !== undefined
          ? `${r.name} (computes ${percent(r.cellShare)} of the cell updates)`
          : r.name;
    lines.push(
      `| ${r.model} | ${trained(r.model)} | ${test} | ${r.samples} | ${(r.accuracy * 100).toFixed(1)}% | ` +
        `${r.meanSteps.toFixed(1)} / ${r.maxSteps} | ${r.seconds.toFixed(2)} s |`,
    );
  }
  lines.push(
    "",
    "Exact = the whole output equals the exact answer (BigInt-checked digit-wise sum, running parity, the true automaton). " +
      "Steps = steps until the sample settled (outputs unchanged for 4 steps and max |h' - h| < 1e-3). " +
      "Step budgets: random additions 2,000, Rule 110 256, parity and adversarial additions 2L + 64; a sample still unsettled then is judged as it stands. " +
      `Rows marked freeze ${FREEZE.toExponential()} skip settled cells: a cell is computed only when its neighbourhood changed in the last step, and keeps its state when it would move by at most ${FREEZE.toExponential()} (RunOptions.freeze, CPU).`,
  );
  return lines.join("\n");
}

async function main() {
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  const outIdx = args.indexOf("--out");
  const outPath = outIdx >= 0 ? args[outIdx + 1] : undefined;
  const modelsIdx = args.indexOf("--models");
  const only = modelsIdx >= 0 ? (args[modelsIdx + 1] ?? "").split(",").filter(Boolean) : undefined;
  if (only && quick) throw new Error("--models updates the full table; it does not go with --quick");
  const started = Date.now();
  const fresh = await evaluateShipped(quick, (s) => console.log(s), only);
  const root = join(__dirname, "..");
  let { rows, models } = fresh;
  let generatedBy = `node --import=tsx scripts/results.ts${quick ? " --quick" : ""}`;
  let earlier = "";
  if (only) {
    // Keep every other model's rows from the last full run, in the plan's order.
    const old = JSON.parse(readFileSync(join(root, "results", "results.json"), "utf8")) as {
      rows: Row[];
      models: ModelSummary[];
      generatedBy: string;
      date: string;
      device: string;
      machine: string;
      seconds: number;
    };
    earlier = `\`${old.generatedBy.split("; ")[0]!.replace(/ \(\d{4}-\d\d-\d\d\)$/, "")}\` on ${old.date.slice(0, 10)} (${old.device}, ${old.machine}), ${old.seconds.toFixed(0)} s; `;
    const order = plan(false).map((q) => q.model);
    const rank = (m: string) => order.indexOf(m);
    rows = [...old.rows.filter((r) => !only.includes(r.model)), ...rows].sort((a, b) => rank(a.model) - rank(b.model));
    models = [...old.models.filter((m) => !only.includes(m.model)), ...models].sort((a, b) => rank(a.model) - rank(b.model));
    generatedBy = `${old.generatedBy.split("; ")[0]} (${old.date.slice(0, 10)}); node --import=tsx scripts/results.ts --models ${only.join(",")}`;
  }
  const doc = {
    generatedBy,
    date: new Date().toISOString(),
    machine: `${(await import("node:os")).cpus()[0]?.model ?? "cpu"} x ${(await import("node:os")).cpus().length}`,
    device: createBackend({ backend: "cpu" }).info().device,
    seconds: (Date.now() - started) / 1000,
    models,
    rows,
  };
  writeFileAtomic(outPath ?? join(root, "results", quick ? "results-quick.json" : "results.json"), JSON.stringify(doc, null, 1) + "\n");
  // docs/results.md holds the full table; a quick run must not replace it with the small one.
  if (!outPath && !quick) {
    const readme = join(root, "docs", "results.md");
    const text = readFileSync(readme, "utf8");
    const start = "<!-- results:start -->";
    const end = "<!-- results:end -->";
    const a = text.indexOf(start);
    const b = text.indexOf(end);
    if (a < 0 || b < a) throw new Error("docs/results.md has no results markers");
    const latest = only ? `node --import=tsx scripts/results.ts --models ${only.join(",")}` : doc.generatedBy;
    const table = `${start}\n${markdownTable(rows, models)}\n\nGenerated by ${earlier}${only ? "the rows of " + only.join(", ") + " by " : ""}\`${latest}\` on ${doc.date.slice(0, 10)} (${doc.device}, ${doc.machine}), ${doc.seconds.toFixed(0)} s${only ? "" : " in all"}.\n${end}`;
    writeFileAtomic(readme, text.slice(0, a) + table + text.slice(b + end.length));
  }
  console.log(`results written in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
