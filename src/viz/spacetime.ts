/**
 * Spacetime diagrams of 1D runs: cells across, steps (or generations) down, one raster panel
 * per view (hidden channels, outputs), input strips above, the exact answer below, labelled
 * axes and a legend under each panel. Returned as SVG text (render.ts saves it).
 */
import { linearScale, niceDomain } from "./axis.js";
import { hex, type Rgb, textOn } from "./color.js";
import { Raster } from "./raster.js";
import { Svg, textWidth } from "./svg.js";

/** A row of labelled cells drawn above or below the panels (an input, the exact answer). */
export interface Strip {
  label: string;
  /** Colour of each cell. */
  colours: Rgb[];
  /** Text in each cell (a digit), drawn when cells are wide enough. */
  text?: string[];
}

export type LegendItem =
  | { kind: "swatch"; colour: Rgb; label: string; outline?: boolean }
  | { kind: "colorbar"; map: (v: number) => Rgb; min: number; max: number; label: string }
  | { kind: "line"; colour: string; dash?: string; label: string }
  | { kind: "note"; label: string };

export interface Panel {
  title: string;
  /** Colour of a cell at a row (row 0 = the start). */
  pixel: (cell: number, row: number) => Rgb;
  legend: LegendItem[];
  /** Rows to mark with a horizontal tick on the right edge, e.g. where a run settled. */
  marks?: { row: number; label: string }[];
}

export interface SpacetimeSpec {
  title: string;
  subtitle?: string;
  /** Cells across. */
  width: number;
  /** Rows down (steps + 1: row 0 is the state before the first step). */
  rows: number;
  panels: Panel[];
  top?: Strip[];
  bottom?: Strip[];
  xLabel: string;
  yLabel: string;
  /** Draw the light cone from cell 0: t = x, information moving one cell per step. */
  cone?: boolean;
  /** A chart drawn to the right of the panels, sharing their rows (e.g. steps per generation). */
  side?: SidePlot;
  /** A note under everything (e.g. a summary). */
  footer?: string;
  /** Draw cell 0 at the right (numbers then read as written, most significant digit first). */
  reverse?: boolean;
}

/** A horizontal bar/line plot sharing the panels' rows: one value per row. */
export interface SidePlot {
  title: string;
  xLabel: string;
  /** Value at each row (NaN: none). */
  values: number[];
  colour: string;
}

const TITLE = 18;
const LABEL = 14;
const TICK = 12;

/** Pixel sizes of a cell and a row so a panel is roughly `target` pixels each way. */
export function cellSizes(width: number, rows: number, target = 460): { cellPx: number; rowPx: number } {
  const cellPx = Math.max(1, Math.min(36, Math.floor(target / width)));
  const rowPx = Math.max(1, Math.min(cellPx, Math.floor((target * 1.1) / rows)));
  return { cellPx, rowPx };
}

function legendSize(items: LegendItem[], maxWidth: number): { lines: LegendItem[][]; height: number } {
  const lines: LegendItem[][] = [[]];
  let w = 0;
  for (const it of items) {
    const iw = itemWidth(it);
    if (it.kind === "colorbar" || it.kind === "note" || (w > 0 && w + iw > maxWidth)) {
      if (lines[lines.length - 1]!.length > 0) lines.push([]);
      w = 0;
    }
    lines[lines.length - 1]!.push(it);
    w += iw + 16;
    if (it.kind === "colorbar" || it.kind === "note") {
      lines.push([]);
      w = 0;
    }
  }
  const used = lines.filter((l) => l.length > 0);
  const height = used.reduce((h, l) => h + (l[0]!.kind === "colorbar" ? 44 : 22), 0);
  return { lines: used, height };
}

function itemWidth(it: LegendItem): number {
  switch (it.kind) {
    case "swatch":
      return 20 + textWidth(it.label, TICK);
    case "line":
      return 34 + textWidth(it.label, TICK);
    case "colorbar":
      return 200;
    case "note":
      return textWidth(it.label, TICK);
  }
}

function drawLegend(svg: Svg, x: number, y: number, items: LegendItem[], maxWidth: number): number {
  const { lines, height } = legendSize(items, maxWidth);
  let yy = y;
  for (const line of lines) {
    let xx = x;
    for (const it of line) {
      switch (it.kind) {
        case "swatch":
          svg.rect(xx, yy + 3, 14, 14, { fill: hex(it.colour), stroke: "#666", strokeWidth: 0.8 });
          svg.text(xx + 20, yy + 10, it.label, { size: TICK, middle: true });
          break;
        case "line":
          svg.line(xx, yy + 10, xx + 28, yy + 10, { stroke: it.colour, strokeWidth: 2, dash: it.dash });
          svg.text(xx + 34, yy + 10, it.label, { size: TICK, middle: true });
          break;
        case "note":
          svg.text(xx, yy + 10, it.label, { size: TICK, middle: true, fill: "#333" });
          break;
        case "colorbar": {
          const w = Math.min(200, maxWidth);
          const steps = 64;
          for (let i = 0; i < steps; i++) {
            const v = it.min + ((it.max - it.min) * (i + 0.5)) / steps;
            svg.rect(xx + (i * w) / steps, yy + 3, w / steps + 0.5, 12, { fill: hex(it.map(v)) });
          }
          svg.rect(xx, yy + 3, w, 12, { stroke: "#666", strokeWidth: 0.8 });
          const mid = (it.min + it.max) / 2;
          for (const [v, anchor] of [
            [it.min, "start"],
            [mid, "middle"],
            [it.max, "end"],
          ] as const) {
            const px = xx + ((v - it.min) / (it.max - it.min)) * w;
            svg.line(px, yy + 15, px, yy + 19, { stroke: "#444" });
            svg.text(px, yy + 30, String(+v.toFixed(2)), { size: TICK - 1, anchor });
          }
          svg.text(xx + w + 10, yy + 10, it.label, { size: TICK, middle: true });
          break;
        }
      }
      xx += itemWidth(it) + 16;
    }
    yy += line[0]!.kind === "colorbar" ? 44 : 22;
  }
  return height;
}

/** Draws one raster panel with its frame; returns nothing (positions are the caller's). */
function drawRaster(svg: Svg, x: number, y: number, cols: number, rows: number, cellPx: number, rowPx: number, pixel: (c: number, r: number) => Rgb): void {
  const img = new Raster(cols * cellPx, rows * rowPx);
  const gapX = cellPx >= 10;
  const gapY = rowPx >= 10;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      img.block(c, r, cellPx, rowPx, pixel(c, r));
    }
  }
  // Thin white gaps between big cells make single cells easy to count.
  if (gapX || gapY) {
    const white: Rgb = [255, 255, 255];
    if (gapX) for (let c = 1; c < cols; c++) for (let yy = 0; yy < img.height; yy++) img.set(c * cellPx, yy, white);
    if (gapY) for (let r = 1; r < rows; r++) for (let xx = 0; xx < img.width; xx++) img.set(xx, r * rowPx, white);
  }
  svg.image(x, y, img.width, img.height, img.png());
  svg.rect(x - 0.5, y - 0.5, img.width + 1, img.height + 1, { stroke: "#333", strokeWidth: 1 });
}

function drawStrip(svg: Svg, x: number, y: number, strip: Strip, cellPx: number, h: number, label: boolean): void {
  const cols = strip.colours.length;
  const img = new Raster(cols * cellPx, h);
  strip.colours.forEach((c, i) => img.block(i, 0, cellPx, h, c));
  if (cellPx >= 10) for (let c = 1; c < cols; c++) for (let yy = 0; yy < h; yy++) img.set(c * cellPx, yy, [255, 255, 255]);
  svg.image(x, y, img.width, h, img.png());
  svg.rect(x - 0.5, y - 0.5, img.width + 1, h + 1, { stroke: "#333", strokeWidth: 0.8 });
  if (strip.text && cellPx >= 13) {
    const size = Math.min(13, Math.floor(cellPx * 0.62));
    strip.text.forEach((t, i) => svg.text(x + (i + 0.5) * cellPx, y + h / 2, t, { size, anchor: "middle", middle: true, fill: textOn(strip.colours[i]!) }));
  }
  if (label) svg.text(x - 8, y + h / 2, strip.label, { size: TICK, anchor: "end", middle: true });
}

/** The whole figure as SVG text. */
export function spacetimeSvg(spec: SpacetimeSpec): string {
  const { width: W, rows: R } = spec;
  const { cellPx, rowPx } = cellSizes(W, R, spec.panels.length > 1 ? 440 : 520);
  const col = (c: number) => (spec.reverse ? W - 1 - c : c);
  const panelW = W * cellPx;
  const panelH = R * rowPx;
  const stripH = Math.max(12, Math.min(22, cellPx));
  const top = (spec.top ?? []).map((s) => reorder(s, spec.reverse));
  const bottom = (spec.bottom ?? []).map((s) => reorder(s, spec.reverse));
  const stripLabelW = Math.max(0, ...[...top, ...bottom].map((s) => textWidth(s.label, TICK)));
  const tickW = textWidth(String(R - 1), TICK);
  const left = Math.max(stripLabelW + 12, tickW + 12 + 30) + 16;
  const yLabelX = left - tickW - 12 - 16;
  const gap = 56;
  const side = spec.side;
  const sideW = side ? 200 : 0;
  const legendW = Math.max(panelW, 260);
  const colW = Math.max(panelW, legendW);
  const markW = Math.max(0, ...spec.panels.flatMap((p) => (p.marks ?? []).map((m) => textWidth(m.label, TICK - 1) + 14)));
  const panelsW = spec.panels.length * colW + (spec.panels.length - 1) * gap + (side ? gap + sideW : 0);
  const figW = Math.max(left + panelsW + Math.max(30, markW + 10), textWidth(spec.title, TITLE) + left + 20, textWidth(spec.subtitle ?? "", LABEL - 1) + left + 20, textWidth(spec.footer ?? "", TICK) + left + 20);

  let y = spec.subtitle ? 62 : 44;
  y += 18;
  const panelTitleY = y;
  y += 14;
  const topY = y;
  y += top.length * (stripH + 4) + (top.length ? 6 : 0);
  const rasterY = y;
  y += panelH + (bottom.length ? 6 : 0);
  const bottomY = y;
  y += bottom.length * (stripH + 4);
  const axisY = y;
  y += 56; // tick labels and the x label
  const legends = spec.panels.map((p) => legendSize(p.legend, legendW).height);
  const legendY = y;
  y += Math.max(0, ...legends) + (spec.footer ? 34 : 10);
  const figH = y;

  const svg = new Svg(Math.ceil(figW), Math.ceil(figH));
  svg.text(left, 28, spec.title, { size: TITLE, weight: "bold" });
  if (spec.subtitle) svg.text(left, 50, spec.subtitle, { size: LABEL - 1, fill: "#444" });

  const xs = linearScale([0, Math.max(1, W - 1)], [0, Math.max(1, W - 1) * cellPx], Math.max(2, Math.min(8, Math.floor(panelW / 60))));
  const ys = linearScale([0, Math.max(1, R - 1)], [0, Math.max(1, R - 1) * rowPx], Math.max(2, Math.min(10, Math.floor(panelH / 40))));

  spec.panels.forEach((p, k) => {
    const x0 = left + k * (colW + gap) + (colW - panelW) / 2;
    svg.text(x0 + panelW / 2, panelTitleY, p.title, { size: LABEL, weight: "bold", anchor: "middle" });
    top.forEach((s, i) => drawStrip(svg, x0, topY + i * (stripH + 4), s, cellPx, stripH, k === 0));
    drawRaster(svg, x0, rasterY, W, R, cellPx, rowPx, (c, r) => p.pixel(col(c), r));
    bottom.forEach((s, i) => drawStrip(svg, x0, bottomY + i * (stripH + 4), s, cellPx, stripH, k === 0));
    if (spec.cone) {
      const t = Math.min(W, R - 1);
      const x1 = spec.reverse ? x0 + panelW : x0;
      const dir = spec.reverse ? -1 : 1;
      svg.clipped(x0, rasterY, panelW, panelH, () => {
        svg.line(x1, rasterY + rowPx / 2, x1 + dir * t * cellPx, rasterY + rowPx / 2 + t * rowPx, { stroke: "#E69F00", strokeWidth: 2.5, dash: "8 5" });
      });
    }
    for (const m of p.marks ?? []) {
      const yy = rasterY + (m.row + 0.5) * rowPx;
      svg.line(x0 + panelW + 1, yy, x0 + panelW + 8, yy, { stroke: "#0072B2", strokeWidth: 2 });
      svg.text(x0 + panelW + 11, yy, m.label, { size: TICK - 1, middle: true, fill: "#0072B2" });
    }
    // x axis: cell ticks at cell centres
    for (const tk of xs.ticks()) {
      if (tk.value > W - 1 || !Number.isInteger(tk.value)) continue;
      const px = x0 + (col(tk.value) + 0.5) * cellPx;
      svg.line(px, axisY + 2, px, axisY + 7, { stroke: "#333" });
      svg.text(px, axisY + 21, tk.label, { size: TICK, anchor: "middle" });
    }
    svg.text(x0 + panelW / 2, axisY + 42, spec.xLabel, { size: LABEL, anchor: "middle" });
    // y axis: row ticks at row centres, labels on the first panel only
    for (const tk of ys.ticks()) {
      if (tk.value > R - 1 || !Number.isInteger(tk.value)) continue;
      const py = rasterY + (tk.value + 0.5) * rowPx;
      svg.line(x0 - 6, py, x0 - 1, py, { stroke: "#333" });
      if (k === 0) svg.text(x0 - 9, py, tk.label, { size: TICK, anchor: "end", middle: true });
    }
    drawLegend(svg, left + k * (colW + gap), legendY, p.legend, legendW);
  });
  svg.text(yLabelX, rasterY + panelH / 2, spec.yLabel, { size: LABEL, anchor: "middle", rotate: -90 });
  if (side) drawSide(svg, left + spec.panels.length * (colW + gap), rasterY, panelTitleY, sideW, panelH, rowPx, side);
  if (spec.footer) svg.text(left, figH - 16, spec.footer, { size: TICK, fill: "#333" });
  return svg.toString();
}

function reorder(s: Strip, reverse: boolean | undefined): Strip {
  if (!reverse) return s;
  return { label: s.label, colours: [...s.colours].reverse(), text: s.text ? [...s.text].reverse() : undefined };
}

function drawSide(svg: Svg, x: number, y: number, titleY: number, w: number, h: number, rowPx: number, side: SidePlot): void {
  const vals = side.values.filter((v) => Number.isFinite(v));
  const scale = linearScale(niceDomain(0, Math.max(1, ...vals), 4), [0, w], 4);
  svg.text(x + w / 2, titleY, side.title, { size: LABEL, weight: "bold", anchor: "middle" });
  svg.rect(x, y, w, h, { stroke: "#bbb", strokeWidth: 0.8 });
  for (const tk of scale.ticks()) {
    const px = x + scale(tk.value);
    svg.line(px, y, px, y + h, { stroke: "#eee" });
    svg.line(px, y + h, px, y + h + 5, { stroke: "#333" });
    svg.text(px, y + h + 18, tk.label, { size: TICK, anchor: "middle" });
  }
  const pts: [number, number][] = [];
  side.values.forEach((v, r) => {
    if (Number.isFinite(v)) pts.push([x + scale(v), y + (r + 0.5) * rowPx]);
  });
  if (rowPx >= 3) {
    for (const [px, py] of pts) svg.rect(x, py - rowPx * 0.35, px - x, rowPx * 0.7, { fill: side.colour, opacity: 0.85 });
  } else {
    svg.polyline(pts, { stroke: side.colour, strokeWidth: 1.2 });
  }
  svg.text(x + w / 2, y + h + 38, side.xLabel, { size: LABEL, anchor: "middle" });
}
