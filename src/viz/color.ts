/** Colour maps for the figures: sequential (viridis), diverging (blue-white-red), categories. */

export type Rgb = [number, number, number];

/** An "#rrggbb" colour as its red, green and blue (0 to 255): the inverse of `hex`. */
export function rgb(hexColour: string): Rgb {
  const n = parseInt(hexColour.slice(1), 16);
  return [n >> 16, (n >> 8) & 255, n & 255];
}

/** Viridis, sampled at 9 stops (matplotlib's values). */
const VIRIDIS: Rgb[] = ["#440154", "#472c7a", "#3b518b", "#2c718e", "#21908d", "#27ad81", "#5cc863", "#aadc32", "#fde725"].map(rgb);

/** ColorBrewer RdBu (11 classes, its published values), reversed: -1 blue, 0 white, +1 red. */
const BLUE_WHITE_RED: Rgb[] = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"].map(rgb);

function interpolate(stops: Rgb[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** t in [0, 1]. */
export const viridis = (t: number): Rgb => interpolate(VIRIDIS, t);

/** v in [-1, 1]: blue for negative, white at 0, red for positive. */
export const diverging = (v: number): Rgb => interpolate(BLUE_WHITE_RED, (v + 1) / 2);

/** Colours of the output classes: two classes white and near-black, more along viridis. */
export function classColours(classes: number): Rgb[] {
  if (classes <= 2) return [
    [250, 250, 250],
    [35, 35, 45],
  ];
  return Array.from({ length: classes }, (_, i) => viridis(i / (classes - 1)));
}

/** The colour that marks a cell that differs from the exact answer. */
export const WRONG: Rgb = [228, 26, 28];

/** Line colours of chart series (Okabe-Ito, readable by colour-blind readers). */
export const SERIES = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];

export function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

export function hex(c: Rgb): string {
  return "#" + c.map((v) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, "0")).join("");
}

/** Black or white, whichever reads better on this background. */
export function textOn(c: Rgb): string {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? "#111" : "#fff";
}
