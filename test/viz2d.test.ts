/**
 * Pictures of 2D runs (src/viz/grid2d.ts) from a synthetic trace built by hand, no model: a
 * 5 x 6 grid whose readout cells (left column and bottom row, as in multiplication) converge
 * to their target over 4 steps. The SVG is rendered to PNG and its pixels looked at; the GIF
 * is decoded with omggif's reader.
 */
import test from "ava";
import { GifReader } from "omggif";
import { PNG } from "pngjs";
import { InvalidInputError } from "../src/errors.js";
import type { Trace } from "../src/eval/trace.js";
import { classColours, type Rgb } from "../src/viz/color.js";
import { framesFromTrace, type GridFrame, type GridRun, gridAnimation, gridStepsLayout, gridStepsSvg, READOUT } from "../src/viz/grid2d.js";
import { pngSize } from "../src/viz/raster.js";
import { svgToPng } from "../src/viz/render.js";

const H = 5;
const W = 6;
const CH = 4;

/** Readout cells: column 0 and row H-1; target bits by a fixed pattern. */
function makeTarget(h = H, w = W): Int32Array {
  const t = new Int32Array(h * w).fill(-1);
  for (let r = 0; r < h; r++) t[r * w] = (r * 7 + 1) % 3 === 0 ? 0 : 1;
  for (let c = 0; c < w; c++) t[(h - 1) * w + c] = (c * 5 + 2) % 3 === 0 ? 0 : 1;
  return t;
}

/**
 * Frames for steps 0..4: at step 0 every cell is 0; at step s the readout cells with index
 * (in reading order) below s * n / 4 hold their target, the others the opposite; the
 * unsupervised cells change too (a checkerboard appears from step 2).
 */
function makeFrames(target: Int32Array, h = H, w = W, steps = 4, hidden = true): GridFrame[] {
  const readout = [...target.keys()].filter((i) => target[i]! >= 0);
  return Array.from({ length: steps + 1 }, (_, s) => {
    const outputs = new Uint8Array(h * w);
    if (s > 0) {
      const right = Math.round((s * readout.length) / steps);
      readout.forEach((i, k) => (outputs[i] = k < right ? target[i]! : 1 - target[i]!));
      if (s >= 2) for (let i = 0; i < h * w; i++) if (target[i]! < 0) outputs[i] = (Math.floor(i / w) + (i % w)) % 2;
    }
    const frame: GridFrame = { step: s, outputs };
    if (hidden) frame.hidden = Float32Array.from({ length: h * w * CH }, (_, j) => (s === 0 ? 0 : Math.sin(j * 0.7 + s) * (s / steps)));
    return frame;
  });
}

function run(): GridRun {
  const target = makeTarget();
  return { height: H, width: W, frames: makeFrames(target), cH: CH, target, cOut: 2 };
}

function decode(png: Uint8Array): PNG {
  return PNG.sync.read(Buffer.from(png));
}

function pixel(img: PNG, x: number, y: number): Rgb {
  const i = (Math.floor(y) * img.width + Math.floor(x)) * 4;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
}

const isRed = (c: Rgb) => c[0] > 180 && c[1] < 110 && c[2] < 110 && c[0] - c[1] > 100;
const near = (a: Rgb, b: Rgb, tol = 6) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

test("gridStepsSvg renders to a PNG of its layout's size; a wrong readout cell is red at its place, a right one is not", (t) => {
  const r = run();
  const opts = { ...r, title: "synthetic 5 x 6 run", subtitle: "readout: left column and bottom row" };
  const layout = gridStepsLayout(opts);
  // 5 frames, 4 panels by default: steps 0, 1, 3, 4, the first and last included.
  t.deepEqual(layout.steps, [0, 1, 3, 4]);
  t.is(layout.downsample, 1);
  t.true(layout.cellPx >= 10, `a small grid gets big cells, got ${layout.cellPx}`);
  t.is(layout.panels.filter((p) => p.kind === "output").length, 4);
  t.is(layout.panels.filter((p) => p.kind === "target").length, 1);
  t.is(layout.panels.filter((p) => p.kind === "hidden").length, 4);

  const png = svgToPng(gridStepsSvg(opts));
  t.deepEqual(pngSize(png), { width: layout.width, height: layout.height });
  const img = decode(png);

  // Not blank: many colours, some of them dark.
  const seen = new Set<number>();
  let dark = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    seen.add((img.data[i]! << 16) | (img.data[i + 1]! << 8) | img.data[i + 2]!);
    if (img.data[i]! + img.data[i + 1]! + img.data[i + 2]! < 200) dark++;
  }
  t.true(seen.size > 50, `only ${seen.size} colours`);
  t.true(dark > 500, `only ${dark} dark pixels`);

  const centre = (panel: (typeof layout.panels)[number], row: number, col: number) =>
    pixel(img, panel.x + (col + 0.5) * layout.cellPx, panel.y + (row + 0.5) * layout.cellPx);
  const outputs = layout.panels.filter((p) => p.kind === "output");
  const first = outputs[0]!;
  const final = outputs[3]!;
  const colours = classColours(2);
  let checked = 0;
  for (let row = 0; row < H; row++) {
    for (let col = 0; col < W; col++) {
      const i = row * W + col;
      const want = r.target[i]!;
      const at0 = r.frames[0]!.outputs[i]!;
      const at4 = r.frames[4]!.outputs[i]!;
      if (want >= 0 && at0 !== want) {
        t.true(isRed(centre(first, row, col)), `readout cell (${row}, ${col}) is wrong at step 0 and should be red, got ${centre(first, row, col)}`);
        checked++;
      }
      if (want >= 0 && at0 === want) t.false(isRed(centre(first, row, col)), `readout cell (${row}, ${col}) is right at step 0`);
      // At the end every readout cell is right: its class colour, never red.
      t.is(at4 === want || want < 0, true);
      t.false(isRed(centre(final, row, col)), `cell (${row}, ${col}) is right at the end and must not be red`);
      t.true(near(centre(final, row, col), colours[at4]!), `cell (${row}, ${col}) at the end: ${centre(final, row, col)} is not class ${at4}'s colour`);
      // Unsupervised cells are never red, right or not.
      if (want < 0) t.false(isRed(centre(first, row, col)));
    }
  }
  t.true(checked >= 3, "the synthetic run has wrong readout cells at step 0");

  // The readout region is marked in magenta: on the frame left of column 0, and along the
  // inside edge of the bottom-row cells that border unsupervised cells.
  const magenta = (c: Rgb) => near(c, READOUT, 30);
  t.true(magenta(pixel(img, first.x - 1, first.y + 2.5 * layout.cellPx)), "frame left of a readout cell");
  t.false(magenta(pixel(img, first.x + 2.5 * layout.cellPx, first.y - 1)), "frame above an unsupervised cell is not magenta");
  t.true(magenta(pixel(img, first.x + 3.5 * layout.cellPx, first.y + (H - 1) * layout.cellPx + 0.5)), "top edge of a bottom-row readout cell");
  // Beside a wrong readout cell on the grid's edge the frame is red (cell (0, 0) is wrong at step 0).
  t.not(r.frames[0]!.outputs[0], r.target[0]);
  t.true(isRed(pixel(img, first.x - 1, first.y + 0.5 * layout.cellPx)), "frame beside a wrong readout cell");
  t.true(magenta(pixel(img, final.x - 1, final.y + 0.5 * layout.cellPx)), "the same frame once the cell is right");

  // The target panel shows each readout cell's target.
  const target = layout.panels.find((p) => p.kind === "target")!;
  t.true(near(centre(target, H - 1, 2), colours[r.target[(H - 1) * W + 2]!]!));
});

test("gridStepsSvg draws chosen steps, 'final' included, and leaves out the hidden row on request", (t) => {
  const r = run();
  const opts = { ...r, title: "chosen steps", steps: [0, 2, "final"] as (number | "final")[], hidden: false as const, showTarget: false };
  const layout = gridStepsLayout(opts);
  t.deepEqual(layout.steps, [0, 2, 4]);
  t.deepEqual(
    layout.panels.map((p) => p.kind),
    ["output", "output", "output"],
  );
  const svg = gridStepsSvg(opts);
  t.true(svg.includes(">step 2<") && svg.includes(">step 4 (final)<"));
  t.deepEqual(pngSize(svgToPng(svg)), { width: layout.width, height: layout.height });
  const e = t.throws(() => gridStepsSvg({ ...opts, steps: [7] }), { instanceOf: InvalidInputError });
  t.regex(e!.message, /steps\[0\] = 7/);
  t.throws(() => gridStepsSvg({ ...r, title: "x", hidden: [0, 1, 9] }), { instanceOf: InvalidInputError, message: /hidden\[2\]/ });
});

test("large grids render at a sensible size: 256 x 257 at 1 px a cell, bigger grids downsampled", (t) => {
  const target = makeTarget(256, 257);
  const frames = makeFrames(target, 256, 257, 2, false);
  const big = { height: 256, width: 257, frames, target, cOut: 2, title: "256 x 257" };
  const layout = gridStepsLayout(big);
  t.is(layout.cellPx, 1);
  t.is(layout.downsample, 1);
  t.true(layout.width < 1400 && layout.height < 700, `figure ${layout.width} x ${layout.height}`);
  t.deepEqual(pngSize(svgToPng(gridStepsSvg(big))), { width: layout.width, height: layout.height });

  const t2 = makeTarget(600, 601);
  const huge = { height: 600, width: 601, frames: makeFrames(t2, 600, 601, 1, false), target: t2, cOut: 2, title: "600 x 601" };
  const l2 = gridStepsLayout(huge);
  t.is(l2.downsample, 3);
  t.true(l2.panels[0]!.width <= 260);
  t.true(gridStepsSvg(huge).includes("downsampled: 1 px = 3 x 3 cells"));

  const gif = new GifReader(gridAnimation({ height: 256, width: 257, frames, target, cOut: 2 }));
  t.true(gif.width <= 600 && gif.height <= 640, `frame ${gif.width} x ${gif.height}`);
  t.is(gif.numFrames(), 3);
});

test("gridAnimation: a GIF89a with one frame per step, delays set, first and last frames differ", (t) => {
  const r = run();
  const bytes = gridAnimation({ ...r, delayMs: 100, holdMs: 1500 });
  t.is(Buffer.from(bytes.subarray(0, 6)).toString("latin1"), "GIF89a");
  const gif = new GifReader(bytes);
  t.is(gif.numFrames(), r.frames.length);
  t.is(gif.loopCount(), 0);
  t.true(gif.width <= 600);
  t.is(gif.frameInfo(0).delay, 10);
  t.is(gif.frameInfo(r.frames.length - 1).delay, 150);
  const frame = (k: number) => {
    const px = new Uint8Array(gif.width * gif.height * 4);
    gif.decodeAndBlitFrameRGBA(k, px);
    return px;
  };
  const a = frame(0);
  const z = frame(r.frames.length - 1);
  let differ = 0;
  for (let i = 0; i < a.length; i += 4) if (a[i] !== z[i] || a[i + 1] !== z[i + 1] || a[i + 2] !== z[i + 2]) differ++;
  t.true(differ > 100, `first and last frames differ in ${differ} pixels`);
  // Red (wrong readout cells) in the first frame, none in the last.
  const reds = (px: Uint8Array) => {
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (isRed([px[i]!, px[i + 1]!, px[i + 2]!])) n++;
    return n;
  };
  t.true(reds(a) > 100);
  t.is(reds(z), 0);
});

test("framesFromTrace turns a recorded trace into frames", (t) => {
  const r = run();
  const trace: Trace = {
    width: W,
    height: H,
    cH: CH,
    steps: 4,
    converged: true,
    stats: [],
    wrongAtStart: 7,
    outputs: r.frames.map((f) => f.outputs),
    hidden: r.frames.map((f) => f.hidden!),
    finalOutputs: r.frames[4]!.outputs,
  };
  const frames = framesFromTrace(trace);
  t.deepEqual(
    frames.map((f) => f.step),
    [0, 1, 2, 3, 4],
  );
  t.is(frames[2]!.hidden, trace.hidden[2]);
  t.deepEqual(gridStepsLayout({ ...r, frames, title: "from a trace" }).steps, [0, 1, 3, 4]);
  t.throws(() => framesFromTrace({ ...trace, outputs: [] }), { instanceOf: InvalidInputError, message: /recordOutputs/ });
});

test("gridAnimation: long runs keep every k-th frame, at most maxFrames, the last always", (t) => {
  const target = makeTarget();
  const frames = makeFrames(target, H, W, 99, false);
  t.is(new GifReader(gridAnimation({ height: H, width: W, frames, target, cOut: 2, maxFrames: 10 })).numFrames(), 10);
  t.is(new GifReader(gridAnimation({ height: H, width: W, frames, target, cOut: 2, every: 25 })).numFrames(), 5);
  t.is(new GifReader(gridAnimation({ height: H, width: W, frames, target, cOut: 2 })).numFrames(), 100);
});

test("bad input throws InvalidInputError naming the argument", (t) => {
  const r = run();
  const svg = (o: Partial<GridRun>) => () => gridStepsSvg({ ...r, ...o, title: "bad" });
  const gif = (o: Partial<GridRun>) => () => gridAnimation({ ...r, ...o });
  for (const f of [svg, gif]) {
    const shortFrames = r.frames.map((fr, i) => (i === 1 ? { ...fr, outputs: fr.outputs.subarray(1) } : fr));
    t.throws(f({ frames: shortFrames }), { instanceOf: InvalidInputError, message: /frames\[1\]\.outputs has 29 values, expected height \* width/ });
    t.throws(f({ target: new Int32Array(H * W + 1) }), { instanceOf: InvalidInputError, message: /target has 31 values/ });
    t.throws(f({ frames: [] }), { instanceOf: InvalidInputError, message: /frames is empty/ });
    t.throws(f({ cOut: 0 }), { instanceOf: InvalidInputError, message: /cOut/ });
    t.throws(f({ height: 2.5 }), { instanceOf: InvalidInputError, message: /height/ });
    const badClass = r.frames.map((fr, i) => (i === 2 ? { ...fr, outputs: fr.outputs.map((v, j) => (j === 3 ? 5 : v)) } : fr));
    t.throws(f({ frames: badClass }), { instanceOf: InvalidInputError, message: /frames\[2\]\.outputs\[3\] = 5/ });
    const badHidden = r.frames.map((fr, i) => (i === 0 ? { ...fr, hidden: new Float32Array(3) } : fr));
    t.throws(f({ frames: badHidden }), { instanceOf: InvalidInputError, message: /frames\[0\]\.hidden/ });
  }
});
