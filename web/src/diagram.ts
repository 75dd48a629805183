/**
 * The spacetime diagram: one row of cells per recorded step, each cell coloured by its output
 * (shades from light to dark for classes 0 .. cOut-1), red where it differs from the exact
 * answer's cell. A row wider than the canvas is scaled down (a pixel shows the mean of its
 * cells, red if any is wrong); more rows than fit are sampled evenly. A 2D grid (height > 1)
 * has no room for time: the diagram shows its latest state, one row per grid row.
 */
import type { Layout } from "./protocol.js";

export class Diagram {
  private rows: { outputs: Uint8Array; target: Int32Array }[] = [];
  private recorded = 0;

  private readonly cOut: number;
  /** The exact answer per cell, -1 where no output is checked: [height][width]. */
  private readonly target: Int32Array;
  private readonly width: number;
  private readonly height: number;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    layout: Layout,
    private readonly maxHeight = 480,
  ) {
    ({ cOut: this.cOut, target: this.target, width: this.width, height: this.height } = layout);
  }

  /** Steps recorded. */
  get length(): number {
    return this.recorded;
  }

  /** The outputs after a step, [height][width]. */
  add(outputs: Uint8Array): void {
    this.recorded++;
    if (this.height === 1) {
      this.rows.push({ outputs: outputs.slice(), target: this.target });
      return;
    }
    this.rows = [];
    for (let y = 0; y < this.height; y++) {
      const at = y * this.width;
      this.rows.push({ outputs: outputs.slice(at, at + this.width), target: this.target.subarray(at, at + this.width) });
    }
  }

  clear(): void {
    this.rows = [];
    this.recorded = 0;
    this.draw();
  }

  draw(): void {
    const width = this.width;
    const maxW = 1000;
    const cellPx = width >= maxW ? 1 : Math.max(1, Math.min(16, Math.floor(maxW / width)));
    const w = width >= maxW ? maxW : width * cellPx;
    const n = this.rows.length;
    const rowPx = n === 0 ? 1 : Math.max(1, Math.min(Math.max(cellPx, 4), 12, Math.floor(this.maxHeight / n)));
    const shown = Math.min(n, Math.floor(this.maxHeight / rowPx));
    const h = Math.max(1, shown * rowPx);
    if (this.canvas.width !== w) this.canvas.width = w;
    if (this.canvas.height !== h) this.canvas.height = h;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    const img = ctx.createImageData(w, h);
    const px = img.data;
    const shade = (v: number) => Math.round(235 - (v / Math.max(1, this.cOut - 1)) * 200);
    for (let r = 0; r < shown; r++) {
      const { outputs: row, target } = this.rows[shown === n ? r : Math.floor((r * (n - 1)) / Math.max(1, shown - 1))]!;
      for (let x = 0; x < w; x++) {
        // the cells this pixel column shows
        const c0 = Math.floor((x / w) * width);
        const c1 = Math.max(c0 + 1, Math.floor(((x + 1) / w) * width));
        let sum = 0;
        let wrong = false;
        for (let c = c0; c < c1; c++) {
          const o = row[c]!;
          sum += o;
          const t = target[c]!;
          if (t >= 0 && t !== o) wrong = true;
        }
        const g = shade(sum / (c1 - c0));
        const [red, green, blue] = wrong ? [214, Math.round(g * 0.35), Math.round(g * 0.3)] : [g, g, Math.min(255, g + 12)];
        for (let y = r * rowPx; y < (r + 1) * rowPx; y++) {
          const i = (y * w + x) * 4;
          px[i] = red;
          px[i + 1] = green;
          px[i + 2] = blue;
          px[i + 3] = 255;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
  }
}
