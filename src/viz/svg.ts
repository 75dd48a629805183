/**
 * A small SVG writer: the figures are generated as plain SVG (text stays text, lines stay
 * lines), then saved as .svg or rendered to .png (render.ts).
 */

export const FONT = "DejaVu Sans";

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A number for an attribute: short, no exponent. */
export function n(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, "");
}

export interface TextOptions {
  size?: number;
  anchor?: "start" | "middle" | "end";
  weight?: "normal" | "bold";
  fill?: string;
  /** Degrees, about (x, y). */
  rotate?: number;
  /** Vertical alignment of y: the text's baseline (default) or its middle. */
  middle?: boolean;
  italic?: boolean;
  family?: string;
}

export interface ShapeOptions {
  fill?: string;
  stroke?: string;
  strokeWidth?: number;
  dash?: string;
  opacity?: number;
}

function shapeAttrs(o: ShapeOptions): string {
  let a = ` fill="${o.fill ?? "none"}"`;
  if (o.stroke) a += ` stroke="${o.stroke}" stroke-width="${n(o.strokeWidth ?? 1)}"`;
  if (o.dash) a += ` stroke-dasharray="${o.dash}"`;
  if (o.opacity !== undefined) a += ` opacity="${n(o.opacity)}"`;
  return a;
}

export class Svg {
  private readonly parts: string[] = [];
  private clipCount = 0;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  raw(s: string): this {
    this.parts.push(s);
    return this;
  }

  text(x: number, y: number, s: string, o: TextOptions = {}): this {
    const size = o.size ?? 13;
    const yy = o.middle ? y + size * 0.35 : y;
    let a = `x="${n(x)}" y="${n(yy)}" font-size="${n(size)}"`;
    if (o.anchor && o.anchor !== "start") a += ` text-anchor="${o.anchor}"`;
    if (o.weight === "bold") a += ` font-weight="bold"`;
    if (o.italic) a += ` font-style="italic"`;
    if (o.family) a += ` font-family="${esc(o.family)}"`;
    a += ` fill="${o.fill ?? "#222"}"`;
    if (o.rotate) a += ` transform="rotate(${n(o.rotate)} ${n(x)} ${n(y)})"`;
    this.parts.push(`<text ${a}>${esc(s)}</text>`);
    return this;
  }

  rect(x: number, y: number, w: number, h: number, o: ShapeOptions = {}): this {
    this.parts.push(`<rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}"${shapeAttrs(o)}/>`);
    return this;
  }

  line(x1: number, y1: number, x2: number, y2: number, o: ShapeOptions = {}): this {
    this.parts.push(
      `<line x1="${n(x1)}" y1="${n(y1)}" x2="${n(x2)}" y2="${n(y2)}"${shapeAttrs({ stroke: "#222", ...o, fill: undefined })}/>`,
    );
    return this;
  }

  polyline(points: [number, number][], o: ShapeOptions = {}): this {
    if (points.length === 0) return this;
    const p = points.map(([x, y]) => `${n(x)},${n(y)}`).join(" ");
    this.parts.push(`<polyline points="${p}"${shapeAttrs({ stroke: "#222", ...o, fill: "none" })} stroke-linejoin="round"/>`);
    return this;
  }

  circle(x: number, y: number, r: number, o: ShapeOptions = {}): this {
    this.parts.push(`<circle cx="${n(x)}" cy="${n(y)}" r="${n(r)}"${shapeAttrs(o)}/>`);
    return this;
  }

  /** A marker shape centred at (x, y): "circle", "square", "triangle", "diamond". */
  marker(kind: string, x: number, y: number, r: number, o: ShapeOptions = {}): this {
    switch (kind) {
      case "square":
        return this.rect(x - r, y - r, 2 * r, 2 * r, o);
      case "triangle":
        return this.raw(`<path d="M${n(x)},${n(y - r * 1.15)} L${n(x + r)},${n(y + r * 0.8)} L${n(x - r)},${n(y + r * 0.8)} Z"${shapeAttrs(o)}/>`);
      case "diamond":
        return this.raw(`<path d="M${n(x)},${n(y - r * 1.2)} L${n(x + r)},${n(y)} L${n(x)},${n(y + r * 1.2)} L${n(x - r)},${n(y)} Z"${shapeAttrs(o)}/>`);
      default:
        return this.circle(x, y, r, o);
    }
  }

  /** An embedded PNG drawn at (x, y) with this size, without smoothing. */
  image(x: number, y: number, w: number, h: number, png: Uint8Array): this {
    const data = Buffer.from(png).toString("base64");
    this.parts.push(
      `<image x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" preserveAspectRatio="none" ` +
        `image-rendering="optimizeSpeed" style="image-rendering:pixelated" href="data:image/png;base64,${data}"/>`,
    );
    return this;
  }

  /** Runs `draw` with everything it adds clipped to a rectangle. */
  clipped(x: number, y: number, w: number, h: number, draw: () => void): this {
    const id = `clip${this.clipCount++}`;
    this.parts.push(`<clipPath id="${id}"><rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}"/></clipPath><g clip-path="url(#${id})">`);
    draw();
    this.parts.push("</g>");
    return this;
  }

  toString(): string {
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" width="${n(this.width)}" height="${n(this.height)}" ` +
      `viewBox="0 0 ${n(this.width)} ${n(this.height)}" font-family="${FONT}, Helvetica, Arial, sans-serif">\n` +
      `<rect width="100%" height="100%" fill="white"/>\n` +
      this.parts.join("\n") +
      "\n</svg>\n"
    );
  }
}

/** Approximate width of a string in DejaVu Sans at this size (for layout). */
export function textWidth(s: string, size: number): number {
  let w = 0;
  for (const ch of s) {
    if ("il.,:;|!'".includes(ch)) w += 0.32;
    else if ("mwMW".includes(ch)) w += 0.9;
    else if (ch >= "A" && ch <= "Z") w += 0.7;
    else if (ch === " ") w += 0.32;
    else w += 0.62;
  }
  return w * size;
}
