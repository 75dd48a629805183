/** Scales and tick marks for the charts: linear and base-10 logarithmic. */

export interface Scale {
  (v: number): number;
  domain: [number, number];
  range: [number, number];
  log: boolean;
  ticks(): { value: number; label: string; minor?: boolean }[];
}

/** A short label: 1, 2.5, 100, 10k, 1M. */
export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6 && a % 1e5 === 0) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4 && a % 100 === 0) return `${+(v / 1e3).toFixed(1)}k`;
  if (Number.isInteger(v)) return String(v);
  if (a >= 0.01) return String(+v.toPrecision(3));
  return v.toExponential(0);
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f >= 5 ? 10 : f >= 2 ? 5 : f >= 1 ? 2 : 1) * p;
}

/** Extends [lo, hi] outward to round numbers. */
export function niceDomain(lo: number, hi: number, count = 5): [number, number] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.5 : 1;
    return [lo - pad, hi + pad];
  }
  const step = niceStep(hi - lo, count);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

/** Extends [lo, hi] (> 0) to whole powers of ten. */
export function logDomain(lo: number, hi: number): [number, number] {
  const a = 10 ** Math.floor(Math.log10(Math.max(lo, 1e-12)));
  let b = 10 ** Math.ceil(Math.log10(Math.max(hi, 1e-12)));
  if (b <= a) b = a * 10;
  return [a, b];
}

export function linearScale(domain: [number, number], range: [number, number], count = 5): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const f = ((v: number) => r0 + ((v - d0) / (d1 - d0 || 1)) * (r1 - r0)) as Scale;
  f.domain = domain;
  f.range = range;
  f.log = false;
  f.ticks = () => {
    const step = niceStep(d1 - d0, count);
    const out = [];
    for (let v = Math.ceil(d0 / step - 1e-9) * step; v <= d1 + step * 1e-9; v += step) {
      const value = Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12);
      out.push({ value, label: formatNumber(value) });
    }
    return out;
  };
  return f;
}

export function logScale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const l0 = Math.log10(d0);
  const l1 = Math.log10(d1);
  const f = ((v: number) => r0 + ((Math.log10(Math.max(v, 1e-300)) - l0) / (l1 - l0 || 1)) * (r1 - r0)) as Scale;
  f.domain = domain;
  f.range = range;
  f.log = true;
  f.ticks = () => {
    const out: { value: number; label: string; minor?: boolean }[] = [];
    const decades = Math.round(l1 - l0);
    const every = Math.max(1, Math.ceil(decades / 8));
    for (let e = Math.floor(l0); e <= Math.ceil(l1); e++) {
      const base = 10 ** e;
      if (base >= d0 * (1 - 1e-9) && base <= d1 * (1 + 1e-9) && (e - Math.floor(l0)) % every === 0) {
        out.push({ value: base, label: e >= 3 && e <= 8 ? ["1k", "10k", "100k", "1M", "10M", "100M"][e - 3]! : formatNumber(base) });
      }
      if (decades <= 6) {
        for (let m = 2; m <= 9; m++) {
          const v = m * base;
          if (v > d0 && v < d1) out.push({ value: v, label: "", minor: true });
        }
      }
    }
    // Very small or large powers of ten read best as 10 to a power (and then all of them).
    const majors = out.filter((t) => !t.minor);
    if (majors.some((t) => t.value < 0.01 || t.value > 1e6)) {
      for (const t of majors) t.label = powerOfTen(Math.round(Math.log10(t.value)));
    }
    // Few decades: label 2 and 5 as well, so the axis has enough numbers to read.
    if (decades <= 1) for (const t of out) if (t.minor && [2, 5].includes(Math.round(t.value / 10 ** Math.floor(Math.log10(t.value))))) {
      t.label = formatNumber(t.value);
      t.minor = false;
    }
    return out;
  };
  return f;
}

const SUPERSCRIPT: Record<string, string> = { "-": "\u207b", "0": "\u2070", "1": "\u00b9", "2": "\u00b2", "3": "\u00b3", "4": "\u2074", "5": "\u2075", "6": "\u2076", "7": "\u2077", "8": "\u2078", "9": "\u2079" };

/** "10⁻³". */
export function powerOfTen(e: number): string {
  return e === 0 ? "1" : e === 1 ? "10" : "10" + String(e).split("").map((c) => SUPERSCRIPT[c] ?? c).join("");
}
