/**
 * Planning a sweep: the sweep file (checked, with the path of every problem) is expanded into a
 * manifest, every run with a stable id and its full training config (defaults filled in), and
 * written atomically to DIR/manifest.json. Executors (sweep run, local, the queue's workers) read
 * only the manifest, so every one of them runs exactly the same config.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { InvalidInputError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { formatIssues } from "../schema.js";
import { safeParseTrainConfig, type TrainConfig } from "../train/trainer.js";
import { type SweepCheck, type SweepFile, sweepFileSchema } from "./schema.js";

export const MANIFEST_VERSION = 1;

export interface PlannedPoint {
  index: number;
  /** "lr=0.003 model.cH=16", or "base" for a sweep without a grid. */
  label: string;
  values: Record<string, unknown>;
}

export interface PlannedRun {
  index: number;
  /** Stable: the grid point, the seed and a hash of the config and checks. */
  id: string;
  point: number;
  seed: number;
  config: TrainConfig;
}

export interface Manifest {
  version: typeof MANIFEST_VERSION;
  name: string;
  description?: string;
  /** A hash of everything that decides the runs' results. */
  sweepId: string;
  grid: Record<string, unknown[]>;
  seeds: number[];
  checks: SweepCheck[];
  backend: SweepFile["backend"];
  points: PlannedPoint[];
  runs: PlannedRun[];
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** JSON with object keys sorted, so equal values hash equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

function deepSet(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = target;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    o[k] = next && typeof next === "object" && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys.at(-1)!] = value;
}

function slug(values: Record<string, unknown>): string {
  const parts = Object.entries(values).map(([k, v]) => `${k}-${typeof v === "object" ? sha(canonicalJson(v)).slice(0, 6) : String(v)}`);
  return parts
    .join("_")
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .slice(0, 80);
}

/** Reads and checks a sweep file; `where` names it in errors. */
export function readSweepFile(path: string): { file: SweepFile; base: Record<string, unknown> } {
  if (!existsSync(path)) throw new InvalidInputError(`sweep file ${path} does not exist`);
  if (statSync(path).isDirectory()) throw new InvalidInputError(`sweep file ${path} is a folder, not a file`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new InvalidInputError(`sweep file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return checkSweepFile(raw, path, dirname(resolve(path)));
}

/** Checks a sweep file's contents and loads its base config (a path is relative to `baseDir`). */
export function checkSweepFile(raw: unknown, where = "sweep", baseDir = process.cwd()): { file: SweepFile; base: Record<string, unknown> } {
  const r = sweepFileSchema.safeParse(raw);
  if (!r.success) throw new InvalidInputError(`${where}: ${formatIssues(r.error)}`);
  const file = r.data;
  let base: Record<string, unknown>;
  if (typeof file.base === "string") {
    const p = resolve(baseDir, file.base);
    if (!existsSync(p)) throw new InvalidInputError(`${where}: base: config file ${file.base} does not exist (looked for ${p})`);
    try {
      const v = JSON.parse(readFileSync(p, "utf8"));
      if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("it must hold a JSON object");
      base = v as Record<string, unknown>;
    } catch (e) {
      throw new InvalidInputError(`${where}: base: config file ${file.base}: ${(e as Error).message}`);
    }
  } else {
    base = file.base;
  }
  return { file, base };
}

/** Every combination of the grid's values, in the file's key order (the last key varies fastest). */
function gridPoints(grid: Record<string, unknown[]>): Record<string, unknown>[] {
  let points: Record<string, unknown>[] = [{}];
  for (const [k, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

/** Expands a checked sweep file into its manifest; every run's config is checked with its grid path. */
export function planSweep(file: SweepFile, base: Record<string, unknown>, where = "sweep"): Manifest {
  const keys = Object.keys(file.grid);
  const points = gridPoints(file.grid).map((values, index) => ({
    index,
    label: keys.length === 0 ? "base" : keys.map((k) => `${k}=${typeof values[k] === "object" ? JSON.stringify(values[k]) : String(values[k])}`).join(" "),
    values,
  }));
  const runs: PlannedRun[] = [];
  const checksHash = canonicalJson(file.checks);
  for (const p of points) {
    for (const seed of file.seeds) {
      const merged: Record<string, unknown> = structuredClone({ ...base, ...file.overrides });
      for (const k of keys) deepSet(merged, k, p.values[k]);
      merged["seed"] = seed;
      const c = safeParseTrainConfig(merged, "config");
      if (!c.success) {
        // Name the grid value that made the config invalid, if one did.
        const at = keys.map((k) => `grid[${JSON.stringify(k)}][${file.grid[k]!.indexOf(p.values[k])}]`).join(", ");
        throw new InvalidInputError(`${where}: ${keys.length > 0 ? `${at} (${p.label}): ` : ""}${c.error}`);
      }
      const hash = sha(canonicalJson({ config: c.data, checks: checksHash, backend: file.backend })).slice(0, 8);
      const id = `${keys.length > 0 ? `${slug(p.values)}_` : ""}seed${seed}-${hash}`;
      runs.push({ index: runs.length, id, point: p.index, seed, config: c.data });
    }
  }
  const body = {
    version: MANIFEST_VERSION,
    name: file.name,
    ...(file.description !== undefined ? { description: file.description } : {}),
    grid: file.grid,
    seeds: file.seeds,
    checks: file.checks,
    backend: file.backend,
    points,
    runs,
  };
  return { ...body, sweepId: sha(canonicalJson(body)).slice(0, 16) } as Manifest;
}

export const manifestPath = (dir: string) => join(dir, "manifest.json");
export const runDir = (dir: string, id: string) => join(dir, "runs", id);

/**
 * Writes the manifest to DIR (created when missing). Planning the same sweep again is a no-op;
 * a folder that holds another sweep's manifest is refused unless `force`.
 */
export function writePlan(manifest: Manifest, dir: string, force = false): { written: boolean } {
  const path = manifestPath(dir);
  if (existsSync(path)) {
    const old = readManifest(dir);
    if (old.sweepId === manifest.sweepId) return { written: false };
    if (!force) {
      throw new InvalidInputError(
        `${dir} already holds the plan of another sweep (${old.name}, ${old.runs.length} runs); plan into another folder, or pass --force to replace it (finished runs whose config is unchanged keep their results)`,
      );
    }
  }
  mkdirSync(join(dir, "runs"), { recursive: true });
  writeFileAtomic(path, JSON.stringify(manifest, null, 1) + "\n");
  return { written: true };
}

/** Reads DIR/manifest.json, refusing anything else with one clear line. */
export function readManifest(dir: string): Manifest {
  const path = manifestPath(dir);
  if (!existsSync(path)) throw new InvalidInputError(`${dir} holds no sweep plan (${path} is missing); make one with: sead sweep plan SWEEP.json --out ${dir}`);
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  } catch (e) {
    throw new InvalidInputError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!m || m.version !== MANIFEST_VERSION || !Array.isArray(m.runs)) throw new InvalidInputError(`${path} is not a sweep manifest of version ${MANIFEST_VERSION}`);
  return m;
}
