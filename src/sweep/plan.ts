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
import { taskFromInfo } from "../tasks/index.js";
import { safeParseTrainConfig, specFor, type TrainConfig } from "../train/trainer.js";
import { type SweepCheck, type SweepFile, sweepFileSchema } from "./schema.js";

/**
 * 2: runs may train in stages (`stages`). A sweep without stages is still written as version 1,
 * so its ids and sweepId stay what they were; a staged one is version 2, which a sead that
 * predates stages refuses instead of training the base stage alone.
 */
export const MANIFEST_VERSION = 2;
export type ManifestVersion = 1 | 2;

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
  /** The base stage's config (the only one of a run without stages). */
  config: TrainConfig;
  /** The later stages' configs, in order (absent without stages). Stage K + 1's `init` is
   * "stage-K.json", the previous stage's model, relative to the run's folder. */
  stages?: TrainConfig[];
}

/** Every stage's config of a run, the base first. */
export function runStages(run: PlannedRun): TrainConfig[] {
  return [run.config, ...(run.stages ?? [])];
}

export interface Manifest {
  version: ManifestVersion;
  name: string;
  description?: string;
  /** A hash of everything that decides the runs' results. */
  sweepId: string;
  grid: Record<string, unknown[]>;
  seeds: number[];
  checks: SweepCheck[];
  backend: SweepFile["backend"];
  /** The stages' names, the base first (absent without stages). */
  stages?: string[];
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

/** A checked sweep file with its configs loaded: the base's and each later stage's. */
export interface CheckedSweep {
  file: SweepFile;
  base: Record<string, unknown>;
  stages: Record<string, unknown>[];
}

/** Reads and checks a sweep file; `where` names it in errors. */
export function readSweepFile(path: string): CheckedSweep {
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

/** A config given inline, or read from its file (`at` names the key in errors). */
function loadConfig(ref: string | Record<string, unknown>, at: string, where: string, baseDir: string): Record<string, unknown> {
  if (typeof ref !== "string") return ref;
  const p = resolve(baseDir, ref);
  if (!existsSync(p)) throw new InvalidInputError(`${where}: ${at}: config file ${ref} does not exist (looked for ${p})`);
  try {
    const v = JSON.parse(readFileSync(p, "utf8"));
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("it must hold a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new InvalidInputError(`${where}: ${at}: config file ${ref}: ${(e as Error).message}`);
  }
}

/** Checks a sweep file's contents and loads its configs (a path is relative to `baseDir`). */
export function checkSweepFile(raw: unknown, where = "sweep", baseDir = process.cwd()): CheckedSweep {
  const r = sweepFileSchema.safeParse(raw);
  if (!r.success) throw new InvalidInputError(`${where}: ${formatIssues(r.error)}`);
  const file = r.data;
  const base = loadConfig(file.base, "base", where, baseDir);
  const stages = file.stages.map((s, i) => loadConfig(s.config, `stages[${i}].config`, where, baseDir));
  return { file, base, stages };
}

/** A grid key that every stage takes: the model's shape and the task must be the same in all. */
const everyStage = (key: string) => /^(model|task)(\.|$)/.test(key);

/** The name of the model file stage `k` (1-based; the base is 1) of `n` leaves in a run's folder. */
export const stageModelFile = (k: number, n: number) => (k === n ? "model.json" : `stage-${k}.json`);

/** Every combination of the grid's values, in the file's key order (the last key varies fastest). */
function gridPoints(grid: Record<string, unknown[]>): Record<string, unknown>[] {
  let points: Record<string, unknown>[] = [{}];
  for (const [k, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

/**
 * Expands a checked sweep file into its manifest; every run's configs are checked, with the grid
 * path and stage of a problem. `stages` are the later stages' configs as checkSweepFile loaded
 * them (by default the file's inline ones).
 */
export function planSweep(file: SweepFile, base: Record<string, unknown>, where = "sweep", stages?: Record<string, unknown>[]): Manifest {
  const stageBases =
    stages ??
    file.stages.map((s, i) => {
      if (typeof s.config === "string") throw new InvalidInputError(`${where}: stages[${i}].config names a file (${s.config}): load the sweep with checkSweepFile or readSweepFile`);
      return s.config;
    });
  if (stageBases.length !== file.stages.length) throw new InvalidInputError(`${where}: stages: ${file.stages.length} in the file, but ${stageBases.length} configs given`);
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
      const later = planStages(file, stageBases, keys, p, seed, c.data, where);
      // Without stages the hash is what it was before stages existed: planned runs keep their ids.
      const hash = sha(canonicalJson({ config: c.data, checks: checksHash, backend: file.backend, ...(later.length > 0 ? { stages: later } : {}) })).slice(0, 8);
      const id = `${keys.length > 0 ? `${slug(p.values)}_` : ""}seed${seed}-${hash}`;
      runs.push({ index: runs.length, id, point: p.index, seed, config: c.data, ...(later.length > 0 ? { stages: later } : {}) });
    }
  }
  const staged = file.stages.length > 0;
  const body = {
    version: staged ? MANIFEST_VERSION : 1,
    name: file.name,
    ...(file.description !== undefined ? { description: file.description } : {}),
    grid: file.grid,
    seeds: file.seeds,
    checks: file.checks,
    backend: file.backend,
    ...(staged ? { stages: ["base", ...file.stages.map((s, i) => s.name ?? `stage ${i + 2}`)] } : {}),
    points,
    runs,
  };
  return { ...body, sweepId: sha(canonicalJson(body)).slice(0, 16) } as Manifest;
}

/**
 * The later stages' configs of one run: each stage's config with its overrides, the grid's
 * model and task keys, the run's seed, and `init` naming the previous stage's model. Each must
 * train the same model as the stage before it (checked here, not hours into the run).
 */
function planStages(
  file: SweepFile,
  stageBases: Record<string, unknown>[],
  keys: string[],
  p: PlannedPoint,
  seed: number,
  first: TrainConfig,
  where: string,
): TrainConfig[] {
  const out: TrainConfig[] = [];
  let prev = first;
  for (const [i, stage] of file.stages.entries()) {
    const at = `stages[${i}].config${typeof stage.config === "string" ? ` (${stage.config})` : ""}`;
    const merged: Record<string, unknown> = structuredClone({ ...stageBases[i], ...stage.overrides });
    const shared = keys.filter(everyStage);
    for (const k of shared) deepSet(merged, k, p.values[k]);
    merged["seed"] = seed;
    // The previous stage's model, in the run's folder (Trainer's initDir resolves it there).
    merged["init"] = stageModelFile(i + 1, file.stages.length + 1);
    const c = safeParseTrainConfig(merged, "config");
    const grid = shared.length > 0 ? ` (${shared.map((k) => `${k}=${JSON.stringify(p.values[k])}`).join(" ")})` : "";
    if (!c.success) throw new InvalidInputError(`${where}: ${at}${grid}: ${c.error}`);
    const describe = (t: TrainConfig) => {
      const task = taskFromInfo(t.task);
      return { spec: canonicalJson(specFor(t, task)), task: canonicalJson(task.describe()) };
    };
    const a = describe(prev);
    const b = describe(c.data);
    for (const what of ["task", "spec"] as const) {
      if (a[what] !== b[what]) {
        throw new InvalidInputError(
          `${where}: ${at}${grid}: it trains ${what === "spec" ? "the model" : "the task"} ${b[what]}, but the stage before it trains ${a[what]}; ` +
            "a stage fine-tunes the previous stage's model, so every stage must have the same task and model",
        );
      }
    }
    out.push(c.data);
    prev = c.data;
  }
  return out;
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
  if (!m || (m.version !== 1 && m.version !== 2) || !Array.isArray(m.runs)) {
    throw new InvalidInputError(`${path} is not a sweep manifest this sead reads (version ${String(m?.version)}; it reads versions 1 and 2)`);
  }
  return m;
}
