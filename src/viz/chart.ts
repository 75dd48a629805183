/**
 * Line charts for `sead plot`: panels side by side, each with labelled axes (linear or log),
 * grid lines, series with markers, and a legend under the panel. Returned as SVG text.
 */
import { logDomain, logScale, linearScale, niceDomain, type Scale } from "./axis.js";
import { SERIES } from "./color.js";
import { Svg, textWidth } from "./svg.js";

export interface Series {
  label: string;
  points: [number, number][];
  colour?: string;
  dash?: string;
  marker?: "circle" | "square" | "triangle" | "diamond" | "none";
}

export interface ChartPanel {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** Fixed y range (e.g. [0, 100] for percentages). */
  yDomain?: [number, number];
  /** Suffix for y tick labels, e.g. "%". */
  ySuffix?: string;
  series: Series[];
  /** A note drawn inside the panel, top left. */
  note?: string;
}

export interface ChartSpec {
  title: string;
  subtitle?: string;
  panels: ChartPanel[];
  footer?: string;
}

const PW = 440;
const PH = 300;
const TICK = 12;
const LABEL = 14;
const MARKERS = ["circle", "square", "triangle", "diamond"] as const;

function domainOf(values: number[], log: boolean, fixed?: [number, number]): [number, number] {
  if (fixed) return fixed;
  const v = values.filter((x) => Number.isFinite(x) && (!log || x > 0));
  if (v.length === 0) return log ? [1, 10] : [0, 1];
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return log ? logDomain(lo, hi) : niceDomain(Math.min(lo, lo >= 0 && hi > 0 && lo < hi * 0.5 ? 0 : lo), hi);
}

function scaleFor(domain: [number, number], range: [number, number], log: boolean): Scale {
  return log ? logScale(domain, range) : linearScale(domain, range, 5);
}

function legendRows(series: Series[], maxW: number): Series[][] {
  const rows: Series[][] = [[]];
  let w = 0;
  for (const s of series) {
    const iw = 40 + textWidth(s.label, TICK) + 18;
    if (w > 0 && w + iw > maxW) {
      rows.push([]);
      w = 0;
    }
    rows[rows.length - 1]!.push(s);
    w += iw;
  }
  return rows.filter((r) => r.length > 0);
}

/** The chart as SVG text. */
export function chartSvg(spec: ChartSpec): string {
  const left = 84;
  const gap = 96;
  const top = spec.subtitle ? 96 : 76;
  // Series keep their colour and marker across panels when they share a label.
  const styles = new Map<string, { colour: string; marker: string }>();
  for (const p of spec.panels) {
    for (const s of p.series) {
      if (!styles.has(s.label)) {
        const i = styles.size;
        styles.set(s.label, { colour: s.colour ?? SERIES[i % SERIES.length]!, marker: s.marker ?? MARKERS[i % MARKERS.length]! });
      }
    }
  }
  const legends = spec.panels.map((p) => legendRows(p.series, PW));
  const legendH = Math.max(0, ...legends.map((l) => l.length * 22));
  const figW = Math.max(left + spec.panels.length * PW + (spec.panels.length - 1) * gap + 40, textWidth(spec.title, 18) + 60, textWidth(spec.subtitle ?? "", 13) + 60);
  const figH = top + PH + 62 + legendH + (spec.footer ? 30 : 12);
  const svg = new Svg(Math.ceil(figW), Math.ceil(figH));
  svg.text(left, 30, spec.title, { size: 18, weight: "bold" });
  if (spec.subtitle) svg.text(left, 52, spec.subtitle, { size: 13, fill: "#444" });

  spec.panels.forEach((p, k) => {
    const x0 = left + k * (PW + gap);
    const y0 = top;
    const xd = domainOf(p.series.flatMap((s) => s.points.map((q) => q[0])), !!p.xLog);
    const yd = domainOf(p.series.flatMap((s) => s.points.map((q) => q[1])), !!p.yLog, p.yDomain);
    const xs = scaleFor(xd, [x0, x0 + PW], !!p.xLog);
    const ys = scaleFor(yd, [y0 + PH, y0], !!p.yLog);
    svg.text(x0 + PW / 2, y0 - 12, p.title, { size: LABEL, weight: "bold", anchor: "middle" });
    // grid and ticks
    for (const t of xs.ticks()) {
      const px = xs(t.value);
      if (px < x0 - 0.5 || px > x0 + PW + 0.5) continue;
      svg.line(px, y0, px, y0 + PH, { stroke: t.minor ? "#f3f3f3" : "#e2e2e2" });
      svg.line(px, y0 + PH, px, y0 + PH + (t.minor ? 3 : 6), { stroke: "#333" });
      if (t.label) svg.text(px, y0 + PH + 20, t.label, { size: TICK, anchor: "middle" });
    }
    for (const t of ys.ticks()) {
      const py = ys(t.value);
      if (py < y0 - 0.5 || py > y0 + PH + 0.5) continue;
      svg.line(x0, py, x0 + PW, py, { stroke: t.minor ? "#f3f3f3" : "#e2e2e2" });
      svg.line(x0 - (t.minor ? 3 : 6), py, x0, py, { stroke: "#333" });
      if (t.label) svg.text(x0 - 9, py, t.label + (p.ySuffix ?? ""), { size: TICK, anchor: "end", middle: true });
    }
    svg.rect(x0, y0, PW, PH, { stroke: "#333", strokeWidth: 1 });
    svg.text(x0 + PW / 2, y0 + PH + 44, p.xLabel, { size: LABEL, anchor: "middle" });
    svg.text(x0 - 58, y0 + PH / 2, p.yLabel, { size: LABEL, anchor: "middle", rotate: -90 });
    if (p.note) svg.text(x0 + 10, y0 + 20, p.note, { size: TICK, fill: "#444" });
    svg.clipped(x0 - 6, y0 - 6, PW + 12, PH + 12, () => {
      for (const s of p.series) {
        const st = styles.get(s.label)!;
        const pts = s.points
          .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.xLog || x > 0) && (!p.yLog || y > 0))
          .map(([x, y]) => [xs(x), ys(y)] as [number, number]);
        svg.polyline(pts, { stroke: st.colour, strokeWidth: 2, dash: s.dash });
        const marker = s.marker ?? st.marker;
        // Earlier series get bigger markers, so points that coincide (e.g. at 100%) all show.
        const r = Math.max(3, 5.5 - p.series.filter((x) => x.marker !== "none").indexOf(s) * 1.2);
        if (marker !== "none" && pts.length <= 60) for (const [x, y] of pts) svg.marker(marker, x, y, r, { fill: st.colour, stroke: "white", strokeWidth: 0.8 });
      }
    });
    // legend under the panel
    let ly = y0 + PH + 62;
    for (const row of legends[k]!) {
      let lx = x0;
      for (const s of row) {
        const st = styles.get(s.label)!;
        svg.line(lx, ly, lx + 30, ly, { stroke: st.colour, strokeWidth: 2, dash: s.dash });
        const marker = s.marker ?? st.marker;
        if (marker !== "none") svg.marker(marker, lx + 15, ly, 4, { fill: st.colour, stroke: "white", strokeWidth: 0.8 });
        svg.text(lx + 38, ly, s.label, { size: TICK, middle: true });
        lx += 40 + textWidth(s.label, TICK) + 18;
      }
      ly += 22;
    }
  });
  if (spec.footer) svg.text(left, figH - 12, spec.footer, { size: TICK, fill: "#333" });
  return svg.toString();
}
