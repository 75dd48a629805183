/**
 * Pictures of 2D runs, where a spacetime diagram does not work: the grid itself, drawn at
 * chosen steps side by side (`gridStepsSvg`, SVG text for render.ts), or over every recorded
 * step as an animated GIF (`gridAnimation`, encoded with omggif).
 *
 * Each cell is coloured by its output class (color.ts's `classColours`: white and near-black
 * for two classes, viridis for more). Supervised cells (target >= 0) are the readout cells:
 * they are marked in magenta, by an outline along the edge of the readout region when cells
 * are at least 5 px, and always on the 2 px frame around the grid beside each readout cell on
 * the grid's edge (so the left column and bottom row of a multiplication grid show as a
 * magenta left and bottom frame even at 1 px a cell). A readout cell whose output differs from
 * its target is red, and so is the frame beside it when it is on the grid's edge. Row 0 is drawn at the top, column 0 at the left, as the arrays are laid
 * out ([height][width], row-major).
 *
 * Large grids: cells shrink down to 1 px; a grid with more than `maxPanelPx` - 4 cells across
 * or down (260 by default, so a 256 x 257 multiplication grid still gets 1 px a cell) is
 * downsampled by an integer factor f: one pixel shows an f x f block of cells, red if any
 * readout cell in it is wrong, else its most common output class (hidden channels averaged).
 * The figure says so in its legend. The animation bounds its frames at `maxWidth` px across
 * (600 by default) the same way.
 *
 * @example
 * ```ts
 * import { traceRun } from "../eval/trace.js";
 * import { framesFromTrace, gridAnimation, gridStepsSvg } from "./grid2d.js";
 * import { writeFigure } from "./render.js";
 * import { writeFileSync } from "node:fs";
 *
 * const trace = await traceRun(backend, model, enc, { recordOutputs: true, recordHidden: true });
 * const frames = framesFromTrace(trace);
 * const common = { height: enc.height, width: enc.width, frames, cH: trace.cH, target: enc.target, cOut: enc.cOut };
 * writeFigure("mul.png", gridStepsSvg({ ...common, title: "8-bit multiplication", subtitle: "13 x 11", steps: [0, 4, 16, "final"] }));
 * writeFileSync("mul.gif", gridAnimation(common));
 * ```
 */
import { GifWriter } from "omggif";
import type { Trace } from "../eval/trace.js";
import { InvalidInputError } from "../errors.js";
import { classColours, hex, mix, type Rgb, WRONG } from "./color.js";
import { mostVaryingChannels } from "./figures.js";
import { Raster } from "./raster.js";
import { Svg, textWidth } from "./svg.js";

/** The grid at one step. */
export interface GridFrame {
  /** Steps taken (0 = before the first step). */
  step: number;
  /** Argmax output class of each cell, [height][width]. */
  outputs: Uint8Array;
  /** Hidden state, [height][width][cH]; needed for the hidden row of `gridStepsSvg`. */
  hidden?: Float32Array;
}

/** What both pictures draw. */
export interface GridRun {
  height: number;
  width: number;
  /** The recorded steps, in order. */
  frames: GridFrame[];
  /** Hidden channels per cell; required when frames carry `hidden`. */
  cH?: number;
  /** Exact answer of each cell, [height][width]; -1 (any negative) = unsupervised. */
  target: Int32Array;
  /** Output classes, 1 to 64. */
  cOut: number;
}

export interface GridStepsOptions extends GridRun {
  title: string;
  subtitle?: string;
  /**
   * Steps to draw, each a recorded frame's `step` ("final" = the last frame). Default:
   * `panels` frames evenly spaced over the run, the first and the last included.
   */
  steps?: (number | "final")[];
  /** Panels when `steps` is not given (default 4). */
  panels?: number;
  /**
   * The hidden row: three channels as red, green, blue (default: the three that vary most
   * over the drawn frames); false: no hidden row. Drawn only when every drawn frame has `hidden`.
   */
  hidden?: [number, number, number] | false;
  /** Add a last panel showing the target at the readout cells (default true). */
  showTarget?: boolean;
  /** Largest grid panel, in px each way (default 264). */
  maxPanelPx?: number;
}

export interface GridAnimationOptions extends GridRun {
  /** Use every k-th recorded frame (default: as few as keep `maxFrames`); the last is always shown. */
  every?: number;
  /** Most frames in the GIF (default 300). */
  maxFrames?: number;
  /** Widest (and tallest) image in px (default 600). */
  maxWidth?: number;
  /** Delay of each frame in ms (default 120; GIFs count hundredths of a second). */
  delayMs?: number;
  /** How long the last frame stays, in ms (default 2000). */
  holdMs?: number;
  /** Draw "step N" and the count of wrong readout cells above the grid (default true). */
  label?: boolean;
}

/** Where `gridStepsSvg` puts things: for callers and tests that look at the rendered pixels. */
export interface GridStepsLayout {
  width: number;
  height: number;
  /** Pixels per drawn cell (or per block of cells when downsampled). */
  cellPx: number;
  /** 1, or f: each drawn cell is an f x f block of grid cells. */
  downsample: number;
  /** The steps drawn, in order. */
  steps: number[];
  /** Each panel; (x, y) is the top-left corner of grid cell (0, 0), inside the frame. */
  panels: { kind: "output" | "hidden" | "target"; step: number | null; x: number; y: number; width: number; height: number }[];
}

/** Magenta: readout (supervised) cells. Distinct from the class colours and from red. */
export const READOUT: Rgb = [204, 51, 204];
const EMPTY: Rgb = [225, 225, 225];
const FRAME: Rgb = [150, 150, 150];
const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [17, 17, 17];
/** Frame around each grid, px. */
const MARGIN = 2;
const MAX_CLASSES = 64;
const DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz";
const TITLE = 18;
const LABEL = 14;
const TICK = 12;

/** A wrong output: its class colour pulled most of the way to red (as the 1D figures do). */
function wrongColour(colours: Rgb[], v: number): Rgb {
  return mix(colours[v] ?? EMPTY, WRONG, colours.length === 2 ? 0.78 : 0.85);
}

// ---------------------------------------------------------------- validation

function isPosInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}

function validateRun(o: GridRun, fn: string): void {
  if (!isPosInt(o.height)) throw new InvalidInputError(`${fn}: height must be a positive integer, got ${String(o.height)}`);
  if (!isPosInt(o.width)) throw new InvalidInputError(`${fn}: width must be a positive integer, got ${String(o.width)}`);
  if (!isPosInt(o.cOut) || o.cOut > MAX_CLASSES) throw new InvalidInputError(`${fn}: cOut must be an integer from 1 to ${MAX_CLASSES}, got ${String(o.cOut)}`);
  const n = o.height * o.width;
  if (!(o.target instanceof Int32Array)) throw new InvalidInputError(`${fn}: target must be an Int32Array of height * width = ${n} values`);
  if (o.target.length !== n) throw new InvalidInputError(`${fn}: target has ${o.target.length} values, expected height * width = ${o.height} * ${o.width} = ${n}`);
  for (let i = 0; i < n; i++) {
    if (o.target[i]! >= o.cOut) throw new InvalidInputError(`${fn}: target[${i}] = ${o.target[i]} is not a class below cOut = ${o.cOut} (or negative: unsupervised)`);
  }
  if (!Array.isArray(o.frames) || o.frames.length === 0) throw new InvalidInputError(`${fn}: frames is empty: give at least one frame (record outputs when tracing)`);
  if (o.cH !== undefined && !isPosInt(o.cH)) throw new InvalidInputError(`${fn}: cH must be a positive integer, got ${String(o.cH)}`);
  o.frames.forEach((f, i) => {
    if (typeof f.step !== "number" || !Number.isFinite(f.step)) throw new InvalidInputError(`${fn}: frames[${i}].step must be a number, got ${String(f.step)}`);
    if (!(f.outputs instanceof Uint8Array)) throw new InvalidInputError(`${fn}: frames[${i}].outputs must be a Uint8Array of height * width = ${n} values`);
    if (f.outputs.length !== n) throw new InvalidInputError(`${fn}: frames[${i}].outputs has ${f.outputs.length} values, expected height * width = ${o.height} * ${o.width} = ${n}`);
    for (let j = 0; j < n; j++) {
      if (f.outputs[j]! >= o.cOut) throw new InvalidInputError(`${fn}: frames[${i}].outputs[${j}] = ${f.outputs[j]} is not a class below cOut = ${o.cOut}`);
    }
    if (f.hidden !== undefined) {
      if (o.cH === undefined) throw new InvalidInputError(`${fn}: frames[${i}].hidden is given but cH is not`);
      if (!(f.hidden instanceof Float32Array) || f.hidden.length !== n * o.cH) {
        throw new InvalidInputError(`${fn}: frames[${i}].hidden has ${f.hidden.length} values, expected height * width * cH = ${n * o.cH}`);
      }
    }
  });
}

/** The frames of a trace recorded with `recordOutputs` (and `recordHidden`, for the hidden row). */
export function framesFromTrace(trace: Trace): GridFrame[] {
  if (trace.outputs.length === 0) throw new InvalidInputError("framesFromTrace: the trace holds no outputs: trace with recordOutputs: true");
  return trace.outputs.map((outputs, step) => ({ step, outputs, hidden: trace.hidden[step] }));
}

// ---------------------------------------------------------------- geometry and painting

interface Geometry {
  H: number;
  W: number;
  /** Downsampling factor. */
  f: number;
  cellPx: number;
  /** Drawn rows and columns (blocks). */
  rows: number;
  cols: number;
  /** Image size including the frame. */
  pw: number;
  ph: number;
}

function geometry(H: number, W: number, maxPx: number): Geometry {
  const inner = Math.max(1, maxPx - 2 * MARGIN);
  const big = Math.max(H, W);
  const f = big > inner ? Math.ceil(big / inner) : 1;
  const rows = Math.ceil(H / f);
  const cols = Math.ceil(W / f);
  const cellPx = Math.max(1, Math.min(40, Math.floor(inner / Math.max(rows, cols))));
  return { H, W, f, cellPx, rows, cols, pw: cols * cellPx + 2 * MARGIN, ph: rows * cellPx + 2 * MARGIN };
}

/** Per drawn block: its colour key and whether it holds a readout cell. */
interface Blocks<T> {
  key: (br: number, bc: number) => T;
  readout: Uint8Array;
  /** 1 where a block holds a wrong readout cell (its frame edge is drawn red). */
  wrong?: Uint8Array;
}

function readoutBlocks(g: Geometry, target: Int32Array): Uint8Array {
  const r = new Uint8Array(g.rows * g.cols);
  for (let y = 0; y < g.H; y++) for (let x = 0; x < g.W; x++) if (target[y * g.W + x]! >= 0) r[Math.floor(y / g.f) * g.cols + Math.floor(x / g.f)] = 1;
  return r;
}

/**
 * Output classes per block: the class index, or cOut + class for a wrong readout cell (any
 * wrong readout cell in a block wins; else its most common class).
 */
function outputBlocks(g: Geometry, outputs: Uint8Array, target: Int32Array, cOut: number): Uint16Array {
  const out = new Uint16Array(g.rows * g.cols);
  if (g.f === 1) {
    for (let i = 0; i < out.length; i++) {
      const v = outputs[i]!;
      const t = target[i]!;
      out[i] = t >= 0 && t !== v ? cOut + v : v;
    }
    return out;
  }
  const counts = new Uint32Array(cOut);
  for (let br = 0; br < g.rows; br++) {
    for (let bc = 0; bc < g.cols; bc++) {
      counts.fill(0);
      let wrong = -1;
      for (let y = br * g.f; y < Math.min(g.H, (br + 1) * g.f); y++) {
        for (let x = bc * g.f; x < Math.min(g.W, (bc + 1) * g.f); x++) {
          const i = y * g.W + x;
          const v = outputs[i]!;
          counts[v]!++;
          const t = target[i]!;
          if (wrong < 0 && t >= 0 && t !== v) wrong = v;
        }
      }
      let best = 0;
      for (let c = 1; c < cOut; c++) if (counts[c]! > counts[best]!) best = c;
      out[br * g.cols + bc] = wrong >= 0 ? cOut + wrong : best;
    }
  }
  return out;
}

/** 1 for each block whose value (from `outputBlocks`) marks a wrong readout cell. */
function wrongBlocks(ob: Uint16Array, cOut: number): Uint8Array {
  const w = new Uint8Array(ob.length);
  for (let i = 0; i < ob.length; i++) w[i] = ob[i]! >= cOut ? 1 : 0;
  return w;
}

/** The target per block: its class at readout cells (most common), -1 where none. */
function targetBlocks(g: Geometry, target: Int32Array, cOut: number): Int16Array {
  const out = new Int16Array(g.rows * g.cols).fill(-1);
  const counts = new Uint32Array(cOut);
  for (let br = 0; br < g.rows; br++) {
    for (let bc = 0; bc < g.cols; bc++) {
      counts.fill(0);
      let any = false;
      for (let y = br * g.f; y < Math.min(g.H, (br + 1) * g.f); y++) {
        for (let x = bc * g.f; x < Math.min(g.W, (bc + 1) * g.f); x++) {
          const t = target[y * g.W + x]!;
          if (t >= 0) {
            counts[t]!++;
            any = true;
          }
        }
      }
      if (!any) continue;
      let best = 0;
      for (let c = 1; c < cOut; c++) if (counts[c]! > counts[best]!) best = c;
      out[br * g.cols + bc] = best;
    }
  }
  return out;
}

/**
 * Paints one grid with its frame at (x0, y0) through `set`: block fills, white gaps between
 * big cells, the readout outline, the frame (magenta beside readout cells on the edge).
 */
function paintGrid<T>(set: (x: number, y: number, k: T) => void, x0: number, y0: number, g: Geometry, b: Blocks<T>, keys: { gap: T; frame: T; mark: T; wrong: T }): void {
  const c = g.cellPx;
  const gx = x0 + MARGIN;
  const gy = y0 + MARGIN;
  for (let br = 0; br < g.rows; br++) {
    for (let bc = 0; bc < g.cols; bc++) {
      const k = b.key(br, bc);
      for (let y = 0; y < c; y++) for (let x = 0; x < c; x++) set(gx + bc * c + x, gy + br * c + y, k);
    }
  }
  if (c >= 10) {
    for (let bc = 1; bc < g.cols; bc++) for (let y = 0; y < g.rows * c; y++) set(gx + bc * c, gy + y, keys.gap);
    for (let br = 1; br < g.rows; br++) for (let x = 0; x < g.cols * c; x++) set(gx + x, gy + br * c, keys.gap);
  }
  const ro = (br: number, bc: number) => br >= 0 && bc >= 0 && br < g.rows && bc < g.cols && b.readout[br * g.cols + bc] === 1;
  if (c >= 5) {
    const t = c >= 16 ? 2 : 1;
    for (let br = 0; br < g.rows; br++) {
      for (let bc = 0; bc < g.cols; bc++) {
        if (!ro(br, bc)) continue;
        const x1 = gx + bc * c;
        const y1 = gy + br * c;
        // An edge towards an unsupervised neighbour (the grid's edge is the frame's job).
        if (br > 0 && !ro(br - 1, bc)) for (let d = 0; d < t; d++) for (let x = 0; x < c; x++) set(x1 + x, y1 + d, keys.mark);
        if (br < g.rows - 1 && !ro(br + 1, bc)) for (let d = 0; d < t; d++) for (let x = 0; x < c; x++) set(x1 + x, y1 + c - 1 - d, keys.mark);
        if (bc > 0 && !ro(br, bc - 1)) for (let d = 0; d < t; d++) for (let y = 0; y < c; y++) set(x1 + d, y1 + y, keys.mark);
        if (bc < g.cols - 1 && !ro(br, bc + 1)) for (let d = 0; d < t; d++) for (let y = 0; y < c; y++) set(x1 + c - 1 - d, y1 + y, keys.mark);
      }
    }
  }
  // The frame: beside readout cells on the grid's edge magenta, or red where the cell is
  // wrong (so errors show even at 1 px a cell); grey elsewhere and at the corners.
  const edge = (br: number, bc: number) => (!ro(br, bc) ? keys.frame : b.wrong?.[br * g.cols + bc] ? keys.wrong : keys.mark);
  for (let d = 0; d < MARGIN; d++) {
    for (let x = 0; x < g.pw; x++) {
      const bc = Math.floor((x - MARGIN) / c);
      const inside = x >= MARGIN && x < g.pw - MARGIN;
      set(x0 + x, y0 + d, inside ? edge(0, bc) : keys.frame);
      set(x0 + x, y0 + g.ph - 1 - d, inside ? edge(g.rows - 1, bc) : keys.frame);
    }
    for (let y = MARGIN; y < g.ph - MARGIN; y++) {
      const br = Math.floor((y - MARGIN) / c);
      set(x0 + d, y0 + y, edge(br, 0));
      set(x0 + g.pw - 1 - d, y0 + y, edge(br, g.cols - 1));
    }
  }
}

function rasterOf(g: Geometry, b: Blocks<Rgb>): Raster {
  const img = new Raster(g.pw, g.ph);
  paintGrid((x, y, k) => img.set(x, y, k), 0, 0, g, b, { gap: WHITE, frame: FRAME, mark: READOUT, wrong: WRONG });
  return img;
}

function countWrong(outputs: Uint8Array, target: Int32Array): { wrong: number; readout: number } {
  let wrong = 0;
  let readout = 0;
  for (let i = 0; i < target.length; i++) {
    const t = target[i]!;
    if (t < 0) continue;
    readout++;
    if (outputs[i] !== t) wrong++;
  }
  return { wrong, readout };
}

function hiddenBlocks(g: Geometry, h: Float32Array, cH: number, ch: [number, number, number]): (br: number, bc: number) => Rgb {
  const byte = (v: number) => Math.round(((Math.max(-1, Math.min(1, Number.isFinite(v) ? v : 0)) + 1) / 2) * 255);
  return (br, bc) => {
    const acc = [0, 0, 0];
    let n = 0;
    for (let y = br * g.f; y < Math.min(g.H, (br + 1) * g.f); y++) {
      for (let x = bc * g.f; x < Math.min(g.W, (bc + 1) * g.f); x++) {
        const i = (y * g.W + x) * cH;
        for (let k = 0; k < 3; k++) acc[k] = acc[k]! + h[i + ch[k]!]!;
        n++;
      }
    }
    return [byte(acc[0]! / n), byte(acc[1]! / n), byte(acc[2]! / n)];
  };
}

// ---------------------------------------------------------------- the figure

function pickFrames(o: GridStepsOptions): number[] {
  const n = o.frames.length;
  if (o.steps !== undefined) {
    if (!Array.isArray(o.steps) || o.steps.length === 0) throw new InvalidInputError("gridStepsSvg: steps is empty: give at least one step, or leave it out");
    return o.steps.map((s, i) => {
      if (s === "final") return n - 1;
      const k = o.frames.findIndex((f) => f.step === s);
      if (k < 0) {
        const have = o.frames.length <= 12 ? o.frames.map((f) => f.step).join(", ") : `${o.frames[0]!.step} .. ${o.frames[n - 1]!.step}`;
        throw new InvalidInputError(`gridStepsSvg: steps[${i}] = ${String(s)} is not a recorded step (frames hold steps ${have})`);
      }
      return k;
    });
  }
  const panels = o.panels ?? 4;
  if (!isPosInt(panels)) throw new InvalidInputError(`gridStepsSvg: panels must be a positive integer, got ${String(panels)}`);
  const k = Math.min(panels, n);
  if (k === 1) return [n - 1];
  return [...new Set(Array.from({ length: k }, (_, i) => Math.round((i * (n - 1)) / (k - 1))))];
}

interface Plan {
  layout: GridStepsLayout;
  g: Geometry;
  picked: number[];
  channels: [number, number, number] | null;
  showTarget: boolean;
  rowTitleY: number[];
  captionY: number;
  hiddenCaptionY: number;
  noteY: number;
  legendY: number;
  left: number;
  colX: number[];
  colW: number;
}

const GAP = 24;

function plan(o: GridStepsOptions): Plan {
  validateRun(o, "gridStepsSvg");
  if (typeof o.title !== "string") throw new InvalidInputError("gridStepsSvg: title must be a string");
  const maxPanelPx = o.maxPanelPx ?? 264;
  if (!isPosInt(maxPanelPx) || maxPanelPx < 16) throw new InvalidInputError(`gridStepsSvg: maxPanelPx must be an integer of at least 16, got ${String(maxPanelPx)}`);
  const picked = pickFrames(o);
  const showTarget = o.showTarget ?? true;
  let channels: [number, number, number] | null = null;
  if (o.hidden !== false && o.cH !== undefined && picked.every((k) => o.frames[k]!.hidden !== undefined)) {
    if (o.hidden) {
      o.hidden.forEach((c, i) => {
        if (!Number.isInteger(c) || c < 0 || c >= o.cH!) throw new InvalidInputError(`gridStepsSvg: hidden[${i}] = ${c} is not a channel below cH = ${o.cH}`);
      });
      channels = o.hidden;
    } else {
      channels = mostVaryingChannels(picked.map((k) => o.frames[k]!.hidden!), o.cH);
    }
  }
  const g = geometry(o.height, o.width, maxPanelPx);
  const nCols = picked.length + (showTarget ? 1 : 0);
  const colW = Math.max(g.pw, textWidth("target at readout cells", TICK) + 4, 120);
  const left = 24;
  const colX = Array.from({ length: nCols }, (_, i) => left + i * (colW + GAP));
  let y = o.subtitle ? 62 : 44;
  const rowTitleY: number[] = [];
  const panels: GridStepsLayout["panels"] = [];
  y += 16;
  rowTitleY.push(y);
  y += 20;
  const captionY = y;
  y += 8;
  const gridY = y;
  for (let i = 0; i < nCols; i++) {
    const isTarget = i === picked.length;
    const x = colX[i]! + (colW - g.pw) / 2;
    panels.push({ kind: isTarget ? "target" : "output", step: isTarget ? null : o.frames[picked[i]!]!.step, x: x + MARGIN, y: gridY + MARGIN, width: g.pw - 2 * MARGIN, height: g.ph - 2 * MARGIN });
  }
  y += g.ph + 18;
  const noteY = y;
  y += 20;
  let hiddenCaptionY = 0;
  if (channels) {
    y += 12;
    rowTitleY.push(y);
    y += 20;
    hiddenCaptionY = y;
    y += 8;
    for (let i = 0; i < picked.length; i++) {
      const x = colX[i]! + (colW - g.pw) / 2;
      panels.push({ kind: "hidden", step: o.frames[picked[i]!]!.step, x: x + MARGIN, y: y + MARGIN, width: g.pw - 2 * MARGIN, height: g.ph - 2 * MARGIN });
    }
    y += g.ph + 12;
  }
  y += 14;
  const legendY = y;
  const legendLines = 2 + (channels ? 1 : 0) + (g.f > 1 ? 1 : 0);
  y += legendLines * 22 + 10;
  const width = Math.ceil(
    Math.max(
      left + nCols * colW + (nCols - 1) * GAP + 24,
      left + textWidth(o.title, TITLE) + 24,
      left + textWidth(o.subtitle ?? "", LABEL - 1) + 24,
      left + legendWidth(o.cOut) + 24,
    ),
  );
  return {
    layout: { width, height: Math.ceil(y), cellPx: g.cellPx, downsample: g.f, steps: picked.map((k) => o.frames[k]!.step), panels },
    g,
    picked,
    channels,
    showTarget,
    rowTitleY,
    captionY,
    hiddenCaptionY,
    noteY,
    legendY,
    left,
    colX,
    colW,
  };
}

function legendWidth(cOut: number): number {
  const swatches = cOut <= 2 ? 2 * (20 + textWidth("output 0", TICK) + 16) : cOut * (20 + 10 + 16);
  return Math.min(1400, Math.max(swatches, 560));
}

/** Where `gridStepsSvg` puts the panels and how big the figure is, without drawing it. */
export function gridStepsLayout(o: GridStepsOptions): GridStepsLayout {
  return plan(o).layout;
}

/**
 * The grid at chosen steps, side by side (output classes; under them, optionally, three hidden
 * channels as RGB), a caption and a wrong-cell count per panel, the target, a legend, a title
 * and a subtitle. Returns SVG text; save it with render.ts's `writeFigure` (.svg or .png).
 */
export function gridStepsSvg(o: GridStepsOptions): string {
  const p = plan(o);
  const { g, layout } = p;
  const colours = classColours(o.cOut);
  const wrongs = colours.map((_, v) => wrongColour(colours, v));
  const readout = readoutBlocks(g, o.target);
  const svg = new Svg(layout.width, layout.height);
  svg.text(p.left, 28, o.title, { size: TITLE, weight: "bold" });
  if (o.subtitle) svg.text(p.left, 50, o.subtitle, { size: LABEL - 1, fill: "#444" });
  svg.text(p.left, p.rowTitleY[0]!, `output (argmax) of each cell, ${o.height} x ${o.width} grid, row 0 at the top`, { size: LABEL, weight: "bold" });

  let anyWrong = false;
  const outputPanels = layout.panels.filter((q) => q.kind !== "hidden");
  outputPanels.forEach((q, i) => {
    const cx = p.colX[i]! + p.colW / 2;
    let img: Raster;
    if (q.kind === "target") {
      const tb = targetBlocks(g, o.target, o.cOut);
      img = rasterOf(g, { key: (br, bc) => colours[tb[br * g.cols + bc]!] ?? EMPTY, readout });
      svg.text(cx, p.captionY, "target", { size: LABEL - 1, anchor: "middle", weight: "bold" });
      svg.text(cx, p.noteY, "target at readout cells", { size: TICK, anchor: "middle", fill: "#444" });
    } else {
      const f = o.frames[p.picked[i]!]!;
      const ob = outputBlocks(g, f.outputs, o.target, o.cOut);
      img = rasterOf(g, {
        key: (br, bc) => {
          const v = ob[br * g.cols + bc]!;
          return v >= o.cOut ? wrongs[v - o.cOut]! : colours[v]!;
        },
        readout,
        wrong: wrongBlocks(ob, o.cOut),
      });
      const last = p.picked[i] === o.frames.length - 1 && o.frames.length > 1;
      svg.text(cx, p.captionY, `step ${f.step}${last ? " (final)" : ""}`, { size: LABEL - 1, anchor: "middle", weight: "bold" });
      const { wrong, readout: nRead } = countWrong(f.outputs, o.target);
      if (wrong > 0) anyWrong = true;
      const note = nRead === 0 ? "no readout cells" : wrong === 0 ? `all ${nRead} readout cells right` : `${wrong} of ${nRead} readout cells wrong`;
      svg.text(cx, p.noteY, note, { size: TICK, anchor: "middle", fill: wrong > 0 ? hex(WRONG) : "#444" });
    }
    svg.image(q.x - MARGIN, q.y - MARGIN, g.pw, g.ph, img.png());
  });

  if (p.channels) {
    const [r, gg, b] = p.channels;
    svg.text(p.left, p.rowTitleY[1]!, `hidden state: h${r}, h${gg}, h${b} as red, green, blue`, { size: LABEL, weight: "bold" });
    layout.panels
      .filter((q) => q.kind === "hidden")
      .forEach((q, i) => {
        const f = o.frames[p.picked[i]!]!;
        const img = rasterOf(g, { key: hiddenBlocks(g, f.hidden!, o.cH!, p.channels!), readout });
        svg.text(p.colX[i]! + p.colW / 2, p.hiddenCaptionY, `step ${f.step}`, { size: LABEL - 1, anchor: "middle", weight: "bold" });
        svg.image(q.x - MARGIN, q.y - MARGIN, g.pw, g.ph, img.png());
      });
  }

  // The legend.
  let y = p.legendY;
  let x = p.left;
  const swatch = (c: Rgb, label: string, outline?: Rgb) => {
    svg.rect(x, y + 3, 14, 14, { fill: hex(c), stroke: outline ? hex(outline) : "#666", strokeWidth: outline ? 2 : 0.8 });
    svg.text(x + 20, y + 10, label, { size: TICK, middle: true });
    x += 20 + textWidth(label, TICK) + 16;
  };
  if (o.cOut <= 2) {
    for (let c = 0; c < o.cOut; c++) swatch(colours[c]!, `output ${c}`);
  } else {
    for (let c = 0; c < o.cOut; c++) swatch(colours[c]!, DIGITS[c] ?? String(c));
  }
  if (anyWrong) {
    if (o.cOut === 2) {
      swatch(wrongs[0]!, "0, should be 1");
      swatch(wrongs[1]!, "1, should be 0");
    } else {
      swatch(wrongs[Math.floor(o.cOut / 2)]!, "red: readout cell differs from its target");
    }
  }
  y += 22;
  x = p.left;
  swatch(READOUT, "readout cells (supervised; target >= 0): magenta outline and frame (red frame beside a wrong one); other cells are unsupervised");
  if (p.channels) {
    y += 22;
    svg.text(p.left, y + 10, "hidden: each channel from -1 (none of that colour) to +1 (full); grey = all three near 0 (the start, h = 0)", { size: TICK, middle: true, fill: "#333" });
  }
  if (g.f > 1) {
    y += 22;
    svg.text(p.left, y + 10, `downsampled: 1 px = ${g.f} x ${g.f} cells (red if any readout cell in it is wrong, else its most common class)`, { size: TICK, middle: true, fill: "#333" });
  }
  return svg.toString();
}

// ---------------------------------------------------------------- the animation

/** A 5 x 7 pixel font for the frame labels: rows top to bottom, bit 4 = leftmost pixel. */
const FONT: Record<string, number[]> = {
  "0": [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
  "1": [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
  "2": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
  "3": [0b11110, 0b00001, 0b00001, 0b01110, 0b00001, 0b00001, 0b11110],
  "4": [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
  "5": [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
  "6": [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
  "7": [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
  "8": [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
  "9": [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
  s: [0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110],
  t: [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110],
  e: [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110],
  p: [0b00000, 0b00000, 0b11110, 0b10001, 0b11110, 0b10000, 0b10000],
  w: [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010],
  r: [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000],
  o: [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110],
  n: [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
  g: [0b00000, 0b00000, 0b01111, 0b10001, 0b01111, 0b00001, 0b01110],
  a: [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111],
  l: [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
  i: [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110],
  h: [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
  f: [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000],
  " ": [0, 0, 0, 0, 0, 0, 0],
};

function textPx(s: string, scale: number): number {
  return s.length * 6 * scale - scale;
}

function drawText(px: Uint8Array, imgW: number, x0: number, y0: number, s: string, scale: number, k: number): void {
  let x = x0;
  for (const ch of s) {
    const glyph = FONT[ch] ?? FONT[" "]!;
    for (let r = 0; r < 7; r++) {
      for (let c = 0; c < 5; c++) {
        if (!((glyph[r]! >> (4 - c)) & 1)) continue;
        for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) px[(y0 + r * scale + dy) * imgW + x + c * scale + dx] = k;
      }
    }
    x += 6 * scale;
  }
}

/** Indices of the frames the animation shows: every k-th, the last always, at most maxFrames. */
function animationFrames(n: number, every: number | undefined, maxFrames: number): number[] {
  const minEvery = maxFrames <= 1 ? n : Math.ceil((n - 1) / (maxFrames - 1));
  const k = Math.max(1, every ?? 1, minEvery);
  const idx: number[] = [];
  for (let i = 0; i < n; i += k) idx.push(i);
  if (idx[idx.length - 1] !== n - 1) {
    if (idx.length >= maxFrames) idx[idx.length - 1] = n - 1;
    else idx.push(n - 1);
  }
  return idx;
}

/**
 * An animated GIF of the grid over the recorded steps (every k-th for long runs, at most
 * `maxFrames`, the last always), coloured and marked as in `gridStepsSvg`, with "step N" and
 * the count of wrong readout cells drawn above the grid. Frames are at most `maxWidth` px
 * each way (cells shrink, then the grid is downsampled); the GIF loops forever and holds
 * the last frame `holdMs`.
 */
export function gridAnimation(o: GridAnimationOptions): Uint8Array {
  validateRun(o, "gridAnimation");
  const maxWidth = o.maxWidth ?? 600;
  if (!isPosInt(maxWidth) || maxWidth < 32) throw new InvalidInputError(`gridAnimation: maxWidth must be an integer of at least 32, got ${String(maxWidth)}`);
  const maxFrames = o.maxFrames ?? 300;
  if (!isPosInt(maxFrames)) throw new InvalidInputError(`gridAnimation: maxFrames must be a positive integer, got ${String(maxFrames)}`);
  if (o.every !== undefined && !isPosInt(o.every)) throw new InvalidInputError(`gridAnimation: every must be a positive integer, got ${String(o.every)}`);
  const delayMs = o.delayMs ?? 120;
  const holdMs = o.holdMs ?? 2000;
  if (!(delayMs >= 0) || !(holdMs >= 0)) throw new InvalidInputError(`gridAnimation: delayMs and holdMs must be non-negative numbers, got ${delayMs} and ${holdMs}`);
  const label = o.label ?? true;

  const g = geometry(o.height, o.width, maxWidth);
  const scale = g.pw >= 200 ? 2 : 1;
  const pad = 4;
  const band = label ? 7 * scale + 2 * pad : 0;
  const imgW = Math.max(g.pw, label ? textPx("step 00000", scale) + 2 * pad : 1);
  const imgH = g.ph + band;

  // The palette: fixed entries, the classes, their wrong shades; padded to a power of two.
  const colours = classColours(o.cOut);
  const fixed: Rgb[] = [WHITE, FRAME, READOUT, INK, WRONG];
  const kWhite = 0;
  const kFrame = 1;
  const kMark = 2;
  const kInk = 3;
  const kRed = 4;
  const kClass = fixed.length;
  const all = [...fixed, ...colours, ...colours.map((_, v) => wrongColour(colours, v))];
  let size = 2;
  while (size < all.length) size *= 2;
  const palette = Array.from({ length: size }, (_, i) => {
    const c = all[i] ?? WHITE;
    return (Math.round(c[0]) << 16) | (Math.round(c[1]) << 8) | Math.round(c[2]);
  });

  const readout = readoutBlocks(g, o.target);
  const picked = animationFrames(o.frames.length, o.every, maxFrames);
  const x0 = Math.floor((imgW - g.pw) / 2);
  let buf = new Uint8Array(1024 + imgW * imgH * 2);
  const gif = new GifWriter(buf, imgW, imgH, { palette, loop: 0 });
  const px = new Uint8Array(imgW * imgH);
  picked.forEach((fi, j) => {
    const f = o.frames[fi]!;
    px.fill(kWhite);
    const ob = outputBlocks(g, f.outputs, o.target, o.cOut);
    paintGrid((x, y, k) => (px[y * imgW + x] = k), x0, band, g, { key: (br, bc) => kClass + ob[br * g.cols + bc]!, readout, wrong: wrongBlocks(ob, o.cOut) }, { gap: kWhite, frame: kFrame, mark: kMark, wrong: kRed });
    if (label) {
      drawText(px, imgW, pad, pad, `step ${f.step}`, scale, kInk);
      const { wrong, readout: nRead } = countWrong(f.outputs, o.target);
      const note = nRead === 0 ? "" : wrong === 0 ? "all right" : `${wrong} wrong`;
      if (note && textPx(`step ${f.step}`, scale) + textPx(note, scale) + 4 * pad <= imgW) {
        drawText(px, imgW, imgW - pad - textPx(note, scale), pad, note, scale, wrong > 0 ? kRed : kInk);
      }
    }
    // omggif writes into a buffer it does not grow: make room for the worst case first.
    const pos = gif.getOutputBufferPosition();
    const need = pos + Math.ceil(imgW * imgH * 1.6) + 1024;
    if (need > buf.length) {
      const bigger = new Uint8Array(Math.max(need, buf.length * 2));
      bigger.set(buf.subarray(0, pos));
      buf = bigger;
      gif.setOutputBuffer(buf);
    }
    const last = j === picked.length - 1;
    gif.addFrame(0, 0, imgW, imgH, px, { delay: Math.max(1, Math.round((last ? holdMs : delayMs) / 10)) });
  });
  if (buf.length < gif.getOutputBufferPosition() + 1) {
    const bigger = new Uint8Array(gif.getOutputBufferPosition() + 16);
    bigger.set(buf);
    buf = bigger;
    gif.setOutputBuffer(buf);
  }
  const end = gif.end();
  return buf.slice(0, end);
}
