/**
 * The report of one or more sweeps: per grid point, the seeds that pass every check out of those
 * run, mean and spread of the final metrics (training loss, each check's accuracy), the best seed
 * and the training time. As data (JSON), as a Markdown table, and as an SVG plot.
 */
import { readManifest } from "./plan.js";
import { readResult, type SweepRunResult } from "./run.js";

export interface Stat {
  mean: number;
  /** Sample standard deviation (0 for one value). */
  std: number;
  min: number;
  max: number;
}

export interface PointReport {
  sweep: string;
  point: number;
  /** The sweep's name for a sweep without a grid, else "name: lr=0.003 model.cH=16". */
  label: string;
  values: Record<string, unknown>;
  planned: number;
  run: number;
  passed: number;
  passedSeeds: number[];
  failedSeeds: number[];
  finalLoss: Stat | null;
  checks: Record<string, Stat>;
  /** Training time per seed, every stage together. */
  trainSeconds: Stat | null;
  /** Training stages per run (1 without stages). */
  stages: number;
  /** A passing seed with the lowest final loss (or the lowest loss of all when none pass). */
  bestSeed: number | null;
}

export interface SweepReport {
  sweeps: { name: string; sweepId: string; dir: string; runs: number; done: number }[];
  points: PointReport[];
}

export function stat(xs: readonly number[]): Stat | null {
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std, min: Math.min(...xs), max: Math.max(...xs) };
}

/** Reads the results of the sweeps planned in `dirs` (runs not yet done are counted as planned only). */
export function sweepReport(dirs: readonly string[]): SweepReport {
  const report: SweepReport = { sweeps: [], points: [] };
  for (const dir of dirs) {
    const m = readManifest(dir);
    const results = m.runs.map((r) => readResult(dir, r, m.sweepId));
    report.sweeps.push({ name: m.name, sweepId: m.sweepId, dir, runs: m.runs.length, done: results.filter(Boolean).length });
    for (const p of m.points) {
      const planned = m.runs.filter((r) => r.point === p.index);
      const rs = results.filter((r): r is SweepRunResult => r !== undefined && r.point === p.index).sort((a, b) => a.seed - b.seed);
      const checks: Record<string, Stat> = {};
      for (const name of new Set(rs.flatMap((r) => r.checks.map((c) => c.name)))) {
        checks[name] = stat(rs.flatMap((r) => r.checks.filter((c) => c.name === name).map((c) => c.accuracy)))!;
      }
      const pool = rs.some((r) => r.pass) ? rs.filter((r) => r.pass) : rs;
      const best = pool.reduce<SweepRunResult | undefined>((b, r) => (b === undefined || r.finalLoss < b.finalLoss ? r : b), undefined);
      report.points.push({
        sweep: m.name,
        point: p.index,
        label: m.points.length === 1 && p.label === "base" ? m.name : `${m.name}: ${p.label}`,
        values: p.values,
        planned: planned.length,
        run: rs.length,
        passed: rs.filter((r) => r.pass).length,
        passedSeeds: rs.filter((r) => r.pass).map((r) => r.seed),
        failedSeeds: rs.filter((r) => !r.pass).map((r) => r.seed),
        finalLoss: stat(rs.map((r) => r.finalLoss)),
        checks,
        trainSeconds: stat(rs.map((r) => r.trainSeconds)),
        stages: m.stages?.length ?? 1,
        bestSeed: best?.seed ?? null,
      });
    }
  }
  return report;
}

const g = (x: number, digits = 3) => (Math.abs(x) >= 1e-3 || x === 0 ? Number(x.toPrecision(digits)).toString() : x.toExponential(digits - 1));
const pm = (s: Stat | null, digits = 3) => (s ? (s.std > 0 ? `${g(s.mean, digits)} ± ${g(s.std, 2)}` : g(s.mean, digits)) : "-");
const secs = (s: Stat | null) => {
  if (!s) return "-";
  const f = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1));
  return s.min === s.max ? `${f(s.min)} s` : `${f(s.min)}-${f(s.max)} s`;
};

/** The report as a Markdown table (the README's seed table is this). */
export function reportTable(r: SweepReport): string {
  const rows = [
    "| config | seeds exact on every check | final loss (mean ± sd) | check accuracy (mean) | best seed | training time per seed |",
    "|---|---:|---:|---|---:|---:|",
  ];
  for (const p of r.points) {
    const checks = Object.entries(p.checks)
      .map(([n, s]) => `${n}: ${(s.mean * 100).toFixed(s.mean === 1 ? 0 : 1)}%`)
      .join("; ");
    const failed = p.failedSeeds.length > 0 ? ` (fail: ${p.failedSeeds.join(", ")})` : "";
    const pending = p.run < p.planned ? `, ${p.planned - p.run} not run` : "";
    // A staged run's time covers every stage: say how many.
    const stages = p.stages > 1 && p.trainSeconds ? ` (${p.stages} stages)` : "";
    rows.push(
      `| ${p.label} | ${p.passed} / ${p.run}${failed}${pending} | ${pm(p.finalLoss)} | ${checks || "-"} | ${p.bestSeed ?? "-"} | ${secs(p.trainSeconds)}${stages} |`,
    );
  }
  return rows.join("\n");
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** An SVG plot: each point's pass rate as a bar, with its seeds' final losses as dots (log scale, right axis). */
export function reportSvg(r: SweepReport, results: Map<string, { seed: number; finalLoss: number; pass: boolean }[]> = new Map()): string {
  const n = Math.max(1, r.points.length);
  const barW = 60;
  const gap = 30;
  const left = 60;
  const top = 56;
  const h = 220;
  const width = Math.max(640, left + n * (barW + gap) + 80);
  const height = top + h + 110;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="11">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${left}" y="16" font-size="12">bars: seeds passing every check (left axis)</text>`);
  parts.push(`<text x="${left}" y="31" font-size="12">dots: each seed's final training loss (right axis, log scale; green passed, red did not)</text>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + h}" stroke="black"/><line x1="${left}" y1="${top + h}" x2="${width - 60}" y2="${top + h}" stroke="black"/>`);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const y = top + h - f * h;
    parts.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${f * 100}%</text><line x1="${left}" y1="${y}" x2="${width - 60}" y2="${y}" stroke="#ddd"/>`);
  }
  const losses = [...results.values()].flat().map((x) => x.finalLoss).filter((x) => x > 0 && Number.isFinite(x));
  const lo = losses.length ? Math.floor(Math.log10(Math.min(...losses))) : -4;
  const hi = losses.length ? Math.ceil(Math.log10(Math.max(...losses))) : 0;
  const span = Math.max(1, hi - lo);
  const ly = (x: number) => top + h - ((Math.log10(x) - lo) / span) * h;
  for (let e = lo; e <= hi; e++) parts.push(`<text x="${width - 55}" y="${ly(10 ** e) + 4}">1e${e}</text>`);
  r.points.forEach((p, i) => {
    const x = left + gap / 2 + i * (barW + gap);
    const rate = p.run > 0 ? p.passed / p.run : 0;
    parts.push(`<rect x="${x}" y="${top + h - rate * h}" width="${barW}" height="${rate * h}" fill="#8fb4d9"/>`);
    parts.push(`<text x="${x + barW / 2}" y="${top + h - rate * h - 4}" text-anchor="middle">${p.passed}/${p.run}</text>`);
    for (const s of results.get(`${p.sweep}#${p.point}`) ?? []) {
      if (!(s.finalLoss > 0)) continue;
      parts.push(`<circle cx="${x + barW / 2 + ((s.seed * 7) % 21) - 10}" cy="${ly(s.finalLoss)}" r="3" fill="${s.pass ? "#2a7" : "#d33"}"><title>seed ${s.seed}: ${s.finalLoss}</title></circle>`);
    }
    parts.push(`<text transform="translate(${x + barW / 2},${top + h + 12}) rotate(30)" font-size="10">${esc(p.label.slice(0, 40))}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** Per point, each seed's final loss and pass, for the plot. */
export function seedPoints(dirs: readonly string[]): Map<string, { seed: number; finalLoss: number; pass: boolean }[]> {
  const out = new Map<string, { seed: number; finalLoss: number; pass: boolean }[]>();
  for (const dir of dirs) {
    const m = readManifest(dir);
    for (const run of m.runs) {
      const r = readResult(dir, run, m.sweepId);
      if (!r) continue;
      const k = `${m.name}#${r.point}`;
      out.set(k, [...(out.get(k) ?? []), { seed: r.seed, finalLoss: r.finalLoss, pass: r.pass }]);
    }
  }
  return out;
}
