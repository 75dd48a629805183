/**
 * The sweep file: a base training config, a grid over config keys, seeds, and the checks that
 * decide whether a run passes. Checked with zod; every problem is reported with its path
 * ("sweep.json: grid["model.cH"][1]: ...").
 */
import { z } from "zod";

/** Input sizes: whole numbers, or inclusive ranges { from, to } (every size between). */
const sizes = z
  .array(
    z.union([
      z.number().int().min(1).max(10_000_000),
      z
        .strictObject({ from: z.number().int().min(1).max(10_000_000), to: z.number().int().min(1).max(10_000_000) })
        .refine((r) => r.from <= r.to, { message: "from must be <= to" }),
    ]),
  )
  .min(1);

/** The fraction of exact answers a check needs to pass (default 1: every one). */
const minAccuracy = z.number().min(0).max(1).default(1);
/** Step budget per sample (a sample not settled by then is judged as it stands). */
const maxSteps = z.number().int().min(1).max(100_000_000).optional();
/** Skip settled cells (RunOptions.freeze). */
const freeze = z.number().min(0).optional();

export const checkSchema = z.discriminatedUnion("kind", [
  /** Exact-match accuracy on random inputs at each size (`lengthSweep`). */
  z.strictObject({
    kind: z.literal("lengths"),
    name: z.string().min(1).optional(),
    lengths: sizes,
    samples: z.number().int().min(1).max(1_000_000),
    /** The inputs are drawn with seed seedOffset + the run's seed (1000: the inputs of the seed studies in results/). */
    seedOffset: z.number().int().min(0).max(2 ** 31).default(1000),
    minAccuracy,
    maxSteps,
    freeze,
  }),
  /** The task's adversarial cases at each size (`hardCaseSweep`). */
  z.strictObject({
    kind: z.literal("adversarial"),
    name: z.string().min(1).optional(),
    sizes,
    minAccuracy,
    maxSteps,
    freeze,
  }),
  /** Learned trajectories of an elementary automaton (`learnedTrajectories`): passes when no cell
   * of any generation differs from the exact automaton. */
  z.strictObject({
    kind: z.literal("trajectory"),
    name: z.string().min(1).optional(),
    width: z.number().int().min(1).max(10_000_000),
    generations: z.number().int().min(1).max(10_000_000),
    starts: z.number().int().min(1).max(100_000),
    /** The starting rows are drawn with seed seedOffset + the run's seed. */
    seedOffset: z.number().int().min(0).max(2 ** 31).default(0),
    maxSteps,
    freeze,
  }),
]);

export type SweepCheck = z.output<typeof checkSchema>;

/** A training config: an object, or the path of a config file (relative to the sweep file). */
const configRef = z.union([z.string().min(1), z.record(z.string(), z.unknown())]);

/**
 * A later training stage: its config fine-tunes the previous stage's model. The sweep sets its
 * `init` (to the previous stage's model of the same run) and its `seed` (the run's seed).
 */
export const stageSchema = z.strictObject({
  /** Names the stage in reports and logs (default "stage K"). */
  name: z.string().min(1).max(80).optional(),
  config: configRef,
  /** Keys set on this stage's config (the sweep's top-level `overrides` are the base's only). */
  overrides: z.record(z.string(), z.unknown()).default({}),
});

export type SweepStage = z.output<typeof stageSchema>;

/** A config key as a dotted path: "lr", "model.cH", "curriculum.adversarial". */
const GRID_KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export const sweepFileSchema = z.strictObject({
  /** Names the sweep (and its queue jobs); letters, digits, '-', '_' and '.'. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, { message: "a name of letters, digits, '.', '_' and '-' (at most 80)" }),
  description: z.string().optional(),
  /** The base training config: an object, or the path of a config file (relative to the sweep file). */
  base: configRef,
  /** Keys set on top of the base for every run (e.g. evalEvery: 0). */
  overrides: z.record(z.string(), z.unknown()).default({}),
  /** Training stages after the base, in order, each starting from the previous stage's model. */
  stages: z.array(stageSchema).default([]),
  /** Each key's values; the runs are every combination (the product), times every seed. The
   * values are set on the base stage; keys under "model." and "task." on every stage (each stage
   * fine-tunes the previous one's model, so all must describe the same model). */
  grid: z
    .record(z.string(), z.array(z.unknown()).min(1))
    .superRefine((grid, ctx) => {
      for (const k of Object.keys(grid)) {
        if (!GRID_KEY.test(k)) ctx.addIssue({ code: "custom", path: [k], message: 'a grid key is a config key or a dotted path to one, e.g. "lr" or "model.cH"' });
        if (k === "seed") ctx.addIssue({ code: "custom", path: [k], message: 'seeds go in "seeds", not in the grid' });
      }
    })
    .default({}),
  /** Training seeds (each config's `seed`). */
  seeds: z.array(z.number().int().min(0).max(2 ** 32 - 1)).min(1).refine((s) => new Set(s).size === s.length, { message: "seeds must differ" }),
  checks: z.array(checkSchema).default([]),
  /** Where runs compute. Training on the CPU is the same bit for bit for any thread count
   * (test/sweep.test.ts checks it), so threads only trades speed against the other runs. */
  backend: z
    .strictObject({
      backend: z.enum(["cpu", "gpu", "auto"]).default("cpu"),
      threads: z.number().int().min(0).max(1024).default(1),
    })
    .default({ backend: "cpu", threads: 1 }),
});

export type SweepFile = z.output<typeof sweepFileSchema>;
export type SweepFileInput = z.input<typeof sweepFileSchema>;

/** The sizes a check names, ranges expanded. */
export function expandSizes(list: readonly (number | { from: number; to: number })[]): number[] {
  const out: number[] = [];
  for (const s of list) {
    if (typeof s === "number") out.push(s);
    else for (let L = s.from; L <= s.to; L++) out.push(L);
  }
  return out;
}

/** A check's name: its own, or one made from what it does ("lengths 1..64 x20"). */
export function checkName(c: SweepCheck): string {
  if (c.name) return c.name;
  const span = (list: readonly (number | { from: number; to: number })[]) =>
    list.map((s) => (typeof s === "number" ? String(s) : `${s.from}..${s.to}`)).join(",");
  if (c.kind === "lengths") return `L=${span(c.lengths)} x${c.samples}`;
  if (c.kind === "adversarial") return `adversarial ${span(c.sizes)}`;
  return `trajectory ${c.width}x${c.generations}`;
}
