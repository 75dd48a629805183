/** `sead plot`: accuracy and steps against length, or training curves, from JSON files. */
import { formatIssues } from "../schema.js";
import { basename } from "node:path";
import { z } from "zod";
import { chartSvg, type ChartSpec } from "../viz/chart.js";
import { type Curve, type LengthPoint, lengthChart, trainingChart } from "../viz/figures.js";
import { writeFigure } from "../viz/render.js";
import {
  checkBackendFlags,
  COMMON_HELP,
  numberFlag,
  OUT_OPTION,
  Output,
  parse,
  printHelp,
  readJsonFile,
  requiredOut,
  stringFlag,
  UsageError,
  valueOptions,
} from "./common.js";

export const PLOT_HELP = `usage: sead plot <results.json>... -o out.svg|out.png [--title T]

Draws what JSON files hold:
  - length sweeps (sead eval --out, or results/results.json from scripts/results.ts): exact-match
    accuracy and steps to settle (mean solid, max dashed) against input length, on log axes,
    one series per model;
  - trained models (sead train --out, models/*.json): the training loss, the fraction of
    training batches exactly right, and the evaluations made while training, against step.
Several files of the same kind are drawn together.

options:
  -o, --out FILE   the chart: .svg or .png
  --title T        the chart's title
  --scale S        pixels per unit of the PNG (default 2)

${COMMON_HELP}

exit codes: 0 drawn, 2 bad usage or input (a missing file, a file with nothing to plot).

examples:
  sead eval addition-base2 --lengths 10,100,1000,10000 --out add2.json
  sead eval parity --lengths 10,100,1000 --out parity.json
  sead plot add2.json parity.json -o lengths.svg
  sead plot models/addition-base2.json -o training.png`;

const point = z.looseObject({
  length: z.number().positive(),
  samples: z.number().int().min(0),
  accuracy: z.number().min(0).max(1),
  meanSteps: z.number().min(0),
  maxSteps: z.number().min(0),
});
const evalDoc = z.looseObject({ model: z.string(), results: z.array(point).min(1) });
const resultsDoc = z.looseObject({
  rows: z.array(z.looseObject({ model: z.string(), kind: z.string() }).and(point)).min(1),
});
const evalReport = z.looseObject({ step: z.number(), accuracy: z.record(z.string(), z.number()) });
const checkpointDoc = z.looseObject({
  format: z.literal("sead-checkpoint"),
  training: z.looseObject({
    evals: z.array(evalReport).optional(),
    curve: z
      .looseObject({ step: z.array(z.number()), loss: z.array(z.number()), exact: z.array(z.number()).optional() })
      .refine((c) => c.step.length === c.loss.length, { message: "step and loss differ in length" })
      .optional(),
  }),
});

type Loaded =
  | { kind: "lengths"; groups: { label: string; points: LengthPoint[] }[] }
  | { kind: "training"; label: string; curve?: Curve; evals: { step: number; accuracy: Record<string, number> }[] };

function load(path: string): Loaded {
  const raw = readJsonFile(path, "results file");
  const obj = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  if (obj["format"] === "sead-checkpoint") {
    const r = checkpointDoc.safeParse(raw);
    if (!r.success) throw new UsageError(`${path}: ${formatIssues(r.error)}`);
    const t = r.data.training;
    const evals = t.evals ?? [];
    if (!t.curve && evals.length === 0) {
      throw new UsageError(`${path} is a model with no training history to plot (train it with sead train to record one)`);
    }
    return { kind: "training", label: basename(path, ".json"), curve: t.curve, evals };
  }
  if ("results" in obj) {
    const r = evalDoc.safeParse(raw);
    if (!r.success) throw new UsageError(`${path}: ${formatIssues(r.error)}`);
    return { kind: "lengths", groups: [{ label: r.data.model, points: r.data.results }] };
  }
  if ("rows" in obj) {
    const r = resultsDoc.safeParse(raw);
    if (!r.success) throw new UsageError(`${path}: ${formatIssues(r.error)}`);
    const byModel = new Map<string, LengthPoint[]>();
    for (const row of r.data.rows) {
      if (row.kind !== "random") continue;
      byModel.set(row.model, [...(byModel.get(row.model) ?? []), row]);
    }
    if (byModel.size === 0) throw new UsageError(`${path} has no random-input rows to plot`);
    return { kind: "lengths", groups: [...byModel].map(([label, points]) => ({ label, points })) };
  }
  if ("trajectory" in obj) throw new UsageError(`${path} holds a trajectory evaluation, which has no lengths to plot`);
  throw new UsageError(
    `${path} is neither a length sweep (sead eval --out), a results file (scripts/results.ts) nor a trained model with a training history`,
  );
}

export async function cmdPlot(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...OUT_OPTION, ...valueOptions("title", "scale") });
  if (values["help"]) return printHelp(PLOT_HELP);
  const out = new Output(values);
  checkBackendFlags(values);
  if (positionals.length === 0) throw new UsageError("needs at least one JSON file: sead plot results.json -o out.svg");
  const outPath = requiredOut(values, [".svg", ".png"], "needs -o FILE.svg (or .png): where to draw the chart");
  const scale = numberFlag(values, "scale", { positive: true, max: 8 }) ?? 2;
  const loaded = positionals.map(load);
  const kinds = new Set(loaded.map((l) => l.kind));
  if (kinds.size > 1) throw new UsageError("give either length sweeps or trained models, not a mix: they are drawn on different axes");
  let spec: ChartSpec;
  const title = stringFlag(values, "title");
  if (loaded[0]!.kind === "lengths") {
    const groups = loaded.flatMap((l) => (l.kind === "lengths" ? l.groups : []));
    const total = groups.reduce((a, g) => a + g.points.reduce((b, p) => b + p.samples, 0), 0);
    spec = lengthChart(groups, title ?? "Accuracy and steps against input length", `${groups.map((g) => g.label).join(", ")}; ${total.toLocaleString("en-US")} samples in all, every answer checked exactly`);
  } else {
    const runs = loaded.flatMap((l) => (l.kind === "training" ? [l] : []));
    spec = trainingChart(runs, title ?? `Training: ${runs.map((r) => r.label).join(", ")}`);
    if (spec.panels.length === 0) throw new UsageError("nothing to plot: no training curve and no evaluations");
  }
  writeFigure(outPath, chartSvg(spec), scale);
  out.doc({ out: outPath, kind: loaded[0]!.kind, series: spec.panels.flatMap((p) => p.series.map((s) => s.label)) });
  out.line(`drawn to ${outPath}`);
  return 0;
}
