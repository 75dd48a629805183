/**
 * The figures `sead viz` and `sead plot` draw, built from traces, trajectories and results:
 * what each panel shows, its colours, legends and labels. Layout lives in spacetime.ts and
 * chart.ts.
 */
import type { Trace } from "../eval/trace.js";
import type { LearnedTrajectory } from "../eval/trace.js";
import type { Encoded, TaskInfo } from "../tasks/types.js";
import { type ChartPanel, type ChartSpec, type Series } from "./chart.js";
import { classColours, diverging, mix, type Rgb, WRONG } from "./color.js";
import type { LegendItem, Panel, SpacetimeSpec, Strip } from "./spacetime.js";

export type HiddenView = { kind: "rgb"; channels: [number, number, number] } | { kind: "channel"; channel: number };

export interface RunFigureOptions {
  /** Panels to draw. */
  show: "both" | "hidden" | "output";
  /** How to colour the hidden state (default: the three most varying channels as RGB). */
  hidden?: HiddenView;
  title: string;
  subtitle?: string;
  /** Draw the light cone from cell 0. */
  cone?: boolean;
}

const DIGITS = "0123456789abcdef";
const EMPTY: Rgb = [225, 225, 225];

/** The three hidden channels that vary most over these states (across cells and steps). */
export function mostVaryingChannels(hidden: readonly Float32Array[], cH: number): [number, number, number] {
  const sum = new Float64Array(cH);
  const sq = new Float64Array(cH);
  let count = 0;
  for (const h of hidden) {
    for (let i = 0; i < h.length; i++) {
      const c = i % cH;
      sum[c] = sum[c]! + h[i]!;
      sq[c] = sq[c]! + h[i]! * h[i]!;
    }
    count += h.length / cH;
  }
  const variance = Array.from({ length: cH }, (_, c) => ({ c, v: sq[c]! / count - (sum[c]! / count) ** 2 }));
  variance.sort((a, b) => b.v - a.v || a.c - b.c);
  const pick = variance.slice(0, 3).map((x) => x.c);
  while (pick.length < 3) pick.push(pick[pick.length - 1] ?? 0);
  return pick as [number, number, number];
}

/** The input strips and the exact-answer strip of an encoded sample, from its task. */
export function taskStrips(task: TaskInfo, enc: Encoded): { top: Strip[]; bottom: Strip[]; classes: number } {
  const W = enc.width;
  const cIn = enc.cIn;
  const cell = (i: number) => enc.x.subarray(i * cIn, (i + 1) * cIn);
  const hot = (v: Float32Array, from: number, to: number) => {
    for (let c = from; c < to; c++) if (v[c]! > 0.5) return c - from;
    return -1;
  };
  const classes = enc.cOut;
  const colours = classColours(classes);
  const strip = (label: string, values: number[]): Strip => ({
    label,
    colours: values.map((v) => (v < 0 ? EMPTY : colours[v]!)),
    text: values.map((v) => (v < 0 ? "" : DIGITS[v]!)),
  });
  const target = Array.from(enc.target.subarray(0, W));
  if (task.name === "addition") {
    const b = Number(task["base"]);
    const a = Array.from({ length: W }, (_, i) => hot(cell(i), 0, b));
    const bb = Array.from({ length: W }, (_, i) => hot(cell(i), b, 2 * b));
    return { top: [strip("a", a), strip("b", bb)], bottom: [strip("exact a + b", target)], classes };
  }
  // Any other 1D task: the input cell's hot channel (its one-hot class), or -1 where none is.
  const bits = Array.from({ length: W }, (_, i) => hot(cell(i), 0, cIn));
  const answer = task.name === "parity" ? "exact parity" : task.name === "elementary" ? "exact next row" : "exact answer";
  return { top: [strip("input", bits)], bottom: [strip(answer, target)], classes };
}

/** A wrong output: its class colour pulled most of the way to red. */
function wrongColour(colours: Rgb[], v: number): Rgb {
  return mix(colours[v] ?? EMPTY, WRONG, colours.length === 2 ? 0.78 : 0.85);
}

function classLegend(classes: number, colours: Rgb[], wrongNote: boolean): LegendItem[] {
  const items: LegendItem[] = [];
  if (classes <= 2) {
    items.push({ kind: "swatch", colour: colours[0]!, label: "output 0" }, { kind: "swatch", colour: colours[1]!, label: "output 1" });
  } else {
    for (let c = 0; c < classes; c++) items.push({ kind: "swatch", colour: colours[c]!, label: DIGITS[c]! });
  }
  if (wrongNote && classes === 2) {
    items.push(
      { kind: "swatch", colour: wrongColour(colours, 0), label: "0, should be 1" },
      { kind: "swatch", colour: wrongColour(colours, 1), label: "1, should be 0" },
    );
  } else if (wrongNote) {
    items.push({ kind: "swatch", colour: wrongColour(colours, Math.floor(classes / 2)), label: "red: differs from the exact answer" });
  }
  return items;
}

/** The spacetime diagram of one traced run. `trace` must hold outputs (and hidden, to show it). */
export function runFigure(task: TaskInfo, enc: Encoded, trace: Trace, o: RunFigureOptions): SpacetimeSpec {
  const W = enc.width;
  const rows = trace.outputs.length;
  const { top, bottom, classes } = taskStrips(task, enc);
  const colours = classColours(classes);
  const cH = trace.cH;
  const panels: Panel[] = [];
  if (o.show !== "output") {
    const view: HiddenView = o.hidden ?? { kind: "rgb", channels: mostVaryingChannels(trace.hidden, trace.cH) };
    if (view.kind === "rgb") {
      const [r, g, b] = view.channels;
      const byte = (v: number) => Math.round(((Math.max(-1, Math.min(1, v)) + 1) / 2) * 255);
      panels.push({
        title: `hidden state: h${r}, h${g}, h${b} as red, green, blue`,
        pixel: (c, t) => {
          const h = trace.hidden[t]!;
          return [byte(h[c * cH + r]!), byte(h[c * cH + g]!), byte(h[c * cH + b]!)];
        },
        legend: [
          { kind: "note", label: `each channel from -1 (none of that colour) to +1 (full);` },
          { kind: "note", label: `grey = all three near 0 (the start, h = 0)` },
        ],
      });
    } else {
      const k = view.channel;
      panels.push({
        title: `hidden channel h${k}`,
        pixel: (c, t) => diverging(trace.hidden[t]![c * cH + k]!),
        legend: [{ kind: "colorbar", map: diverging, min: -1, max: 1, label: `h${k}` }],
      });
    }
  }
  if (o.show !== "hidden") {
    let anyWrong = false;
    const target = enc.target;
    const pixel = (c: number, t: number): Rgb => {
      const v = trace.outputs[t]![c]!;
      const want = target[c]!;
      return want >= 0 && want !== v ? wrongColour(colours, v) : (colours[v] ?? EMPTY);
    };
    for (const out of trace.outputs) for (let c = 0; c < W; c++) if (target[c]! >= 0 && out[c] !== target[c]) anyWrong = true;
    const marks: { row: number; label: string }[] = [];
    // The first step from which every output stays exact.
    let exactFrom = -1;
    for (let t = rows - 1; t >= 0; t--) {
      const wrong = t === 0 ? trace.wrongAtStart : trace.stats[t - 1]!.wrong;
      if (wrong > 0) break;
      exactFrom = t;
    }
    if (exactFrom >= 0) marks.push({ row: exactFrom, label: `exact from step ${exactFrom}` });
    panels.push({ title: "output (argmax) at each step", pixel, legend: classLegend(classes, colours, anyWrong), marks });
  }
  if (o.cone) {
    for (const p of panels) p.legend.push({ kind: "line", colour: "#E69F00", dash: "8 5", label: "light cone: 1 cell per step from cell 0" });
  }
  const footer =
    `${trace.converged ? "settled" : "did not settle"} after ${trace.steps} steps` +
    ` (outputs unchanged for the last steps, max |h' - h| ${(trace.stats.at(-1)?.maxDelta ?? 0).toExponential(1)});` +
    ` ${trace.stats.at(-1)?.wrong ?? trace.wrongAtStart} of ${Array.from(enc.target).filter((t) => t >= 0).length} cells wrong at the end`;
  return {
    title: o.title,
    subtitle: o.subtitle,
    width: W,
    rows,
    panels,
    top,
    bottom,
    xLabel: task.name === "addition" ? "digit position (0 = least significant; numbers read as written)" : "cell",
    reverse: task.name === "addition",
    yLabel: "step",
    cone: o.cone,
    footer,
  };
}

/** The learned trajectory beside the exact automaton, differences marked, steps at the side. */
export function trajectoryFigure(rule: number, t: LearnedTrajectory, title: string, subtitle?: string): SpacetimeSpec {
  const colours = classColours(2);
  const W = t.learned[0]!.length;
  const diff = t.wrongCells > 0;
  return {
    title,
    subtitle,
    width: W,
    rows: t.learned.length,
    panels: [
      {
        title: "learned (model's output fed back)",
        pixel: (c, g) => {
          const v = t.learned[g]![c]!;
          return v !== t.exact[g]![c] ? (v ? [150, 0, 10] : [250, 110, 110]) : colours[v]!;
        },
        legend: [
          { kind: "swatch", colour: colours[0]!, label: "0" },
          { kind: "swatch", colour: colours[1]!, label: "1" },
          ...(diff
            ? ([
                { kind: "swatch", colour: [250, 110, 110], label: "0, should be 1" },
                { kind: "swatch", colour: [150, 0, 10], label: "1, should be 0" },
              ] as LegendItem[])
            : ([{ kind: "note", label: "no cell differs from the exact automaton" }] as LegendItem[])),
        ],
      },
      {
        title: `exact rule ${rule}`,
        pixel: (c, g) => colours[t.exact[g]![c]!]!,
        legend: [
          { kind: "swatch", colour: colours[0]!, label: "0" },
          { kind: "swatch", colour: colours[1]!, label: "1" },
        ],
      },
    ],
    xLabel: "cell",
    yLabel: "generation",
    side: { title: "steps to settle", xLabel: "steps per generation", values: [NaN, ...t.steps], colour: "#0072B2" },
    footer:
      `${t.learned.length - 1} generations: ${t.wrongCells} cell${t.wrongCells === 1 ? "" : "s"} differ` +
      (t.firstWrongGeneration !== null ? `, the first at generation ${t.firstWrongGeneration}` : "") +
      `; steps per generation: mean ${(t.steps.reduce((a, b) => a + b, 0) / Math.max(1, t.steps.length)).toFixed(1)}, max ${Math.max(0, ...t.steps)}`,
  };
}

/** One evaluated length, as `sead eval` writes it (and scripts/results.ts rows). */
export interface LengthPoint {
  length: number;
  accuracy: number;
  meanSteps: number;
  maxSteps: number;
  samples: number;
}

/** Accuracy and steps against length (log axes), one series per model. */
export function lengthChart(groups: { label: string; points: LengthPoint[] }[], title: string, subtitle?: string): ChartSpec {
  const acc: Series[] = [];
  const steps: Series[] = [];
  const markers = ["circle", "square", "triangle", "diamond"] as const;
  groups.forEach((g, i) => {
    const pts = [...g.points].sort((a, b) => a.length - b.length);
    const marker = markers[i % markers.length]!;
    acc.push({ label: g.label, points: pts.map((p) => [p.length, p.accuracy * 100]), marker });
    steps.push({ label: `${g.label}: mean`, points: pts.map((p) => [p.length, p.meanSteps]), marker });
    steps.push({ label: `${g.label}: max`, points: pts.map((p) => [p.length, p.maxSteps]), dash: "6 4", marker: "none" });
  });
  // A max series shares its model's colour: give both the colour of the model's index.
  const colourOf = new Map(groups.map((g, i) => [g.label, ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"][i % 6]!]));
  for (const s of [...acc, ...steps]) s.colour = colourOf.get(s.label.replace(/: (mean|max)$/, ""));
  const panels: ChartPanel[] = [
    { title: "exact-match accuracy", xLabel: "input length (digits or cells, log scale)", yLabel: "samples exactly right", xLog: true, yDomain: [0, 100], ySuffix: "%", series: acc },
    { title: "steps to settle", xLabel: "input length (log scale)", yLabel: "steps (log scale)", xLog: true, yLog: true, series: steps },
  ];
  return { title, subtitle, panels };
}

export interface Curve {
  step: number[];
  loss: number[];
  exact?: number[];
}

/** Training curves: loss (log) and batch accuracy against step, and the periodic evaluations. */
export function trainingChart(runs: { label: string; curve?: Curve; evals: { step: number; accuracy: Record<string, number> }[] }[], title: string, subtitle?: string): ChartSpec {
  const panels: ChartPanel[] = [];
  const withCurve = runs.filter((r) => r.curve && r.curve.step.length > 0);
  if (withCurve.length > 0) {
    panels.push({
      title: "training loss",
      xLabel: "training step",
      yLabel: "cross-entropy (log scale)",
      yLog: true,
      series: withCurve.map((r) => ({ label: r.label, points: r.curve!.step.map((s, i) => [s, r.curve!.loss[i]!] as [number, number]), marker: "none" })),
    });
    const exact = withCurve.filter((r) => r.curve!.exact && r.curve!.exact.length === r.curve!.step.length);
    if (exact.length > 0) {
      panels.push({
        title: "training batches exactly right",
        xLabel: "training step",
        yLabel: "samples exactly right",
        yDomain: [0, 100],
        ySuffix: "%",
        series: exact.map((r) => ({ label: r.label, points: r.curve!.step.map((s, i) => [s, r.curve!.exact![i]! * 100] as [number, number]), marker: "none" })),
      });
    }
  }
  const evalSeries: Series[] = [];
  for (const r of runs) {
    const lengths = [...new Set(r.evals.flatMap((e) => Object.keys(e.accuracy)))].sort((a, b) => Number(a) - Number(b));
    for (const L of lengths) {
      evalSeries.push({
        label: `${runs.length > 1 ? `${r.label}, ` : ""}length ${L}`,
        points: r.evals.filter((e) => e.accuracy[L] !== undefined).map((e) => [e.step, e.accuracy[L]! * 100] as [number, number]),
      });
    }
  }
  if (evalSeries.length > 0) {
    panels.push({ title: "evaluation while training", xLabel: "training step", yLabel: "samples exactly right", yDomain: [0, 100], ySuffix: "%", series: evalSeries });
  }
  return { title, subtitle, panels };
}
