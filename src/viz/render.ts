/**
 * Saving a figure: as SVG text, or rendered to PNG by resvg with the DejaVu Sans font that
 * comes with the package (so a PNG looks the same on every machine, fonts installed or not).
 */
import { dirname, extname, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";

let fontFiles: string[] | undefined;

function fonts(): string[] {
  if (!fontFiles) {
    const dir = dirname(require.resolve("dejavu-fonts-ttf/package.json"));
    fontFiles = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf"].map((f) => join(dir, "ttf", f));
  }
  return fontFiles;
}

/** Renders SVG text to PNG bytes; `scale` multiplies the pixel size (2 for print). */
export function svgToPng(svg: string, scale = 1): Buffer {
  // Loaded on first use: only the drawing commands pay for the renderer.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resvg } = require("@resvg/resvg-js") as typeof import("@resvg/resvg-js");
  const r = new Resvg(svg, {
    font: { loadSystemFonts: false, fontFiles: fonts(), defaultFontFamily: "DejaVu Sans" },
    fitTo: scale === 1 ? { mode: "original" } : { mode: "zoom", value: scale },
    background: "white",
  });
  return r.render().asPng();
}

/** Writes a figure atomically: `.svg` as text, `.png` rendered. */
export function writeFigure(path: string, svg: string, scale = 1): void {
  const ext = extname(path).toLowerCase();
  writeFileAtomic(path, ext === ".svg" ? svg : svgToPng(svg, scale));
}
