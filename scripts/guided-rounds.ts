/**
 * The loop shared by the guided training scripts (verify-train.ts: a proof finds the states to
 * train on; mul-probe-train.ts: a probe beyond the training size does): check the current
 * model; stop when it passes; else add the starting states the check found to the config's
 * `starts`, train on from the current model, and check again, until the rounds run out.
 * Round r trains with the config's seed plus r and writes <out>/round-r.json and its config.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createBackend } from "../src/backend/index.js";
import type { Backend } from "../src/backend/types.js";
import { saveCheckpoint } from "../src/model/checkpoint.js";
import { Trainer, type TrainConfigInput } from "../src/train/trainer.js";

/** An input and the hidden state a training sample starts from: an entry of `config.starts`. */
export type Start = NonNullable<TrainConfigInput["starts"]>[number];

/** What a check of one round's model found. */
export interface RoundCheck {
  passed: boolean;
  /** Written to the log, and to <out>/round-r.<checkName>.json with `report`. */
  verdict: Record<string, unknown>;
  report?: unknown;
  /** Starting states to train on next (none when passed). */
  starts: Start[];
}

/** The command-line options both scripts take (parseArgs form); defaults are theirs. */
export const ROUND_OPTIONS = {
  config: { type: "string" },
  model: { type: "string" },
  out: { type: "string" },
  steps: { type: "string", default: "500" },
  threads: { type: "string", default: "1" },
  final: { type: "string" },
} as const;

/** ROUND_OPTIONS as parsed, with the script's own `rounds` default. */
export interface RoundValues {
  config?: string | undefined;
  model?: string | undefined;
  out?: string | undefined;
  rounds: string;
  steps: string;
  threads: string;
}

/** What the rounds share with a script's check. */
export interface RoundContext {
  base: TrainConfigInput;
  backend: Backend;
}

export interface GuidedRounds {
  /** The verdict file's name: <out>/round-r.<checkName>.json. */
  checkName: string;
  check(modelPath: string, round: number, ctx: RoundContext): Promise<RoundCheck>;
  /** The next round's starts from the old ones and the new (default: the new appended). */
  merge?(old: Start[], found: Start[]): Start[];
}

/**
 * Runs the rounds the options ask for (config, model, out folder, rounds, steps, threads);
 * returns the model that passed and its round, or undefined when the rounds ran out.
 */
export async function guidedRounds(values: RoundValues, g: GuidedRounds): Promise<{ modelPath: string; round: number } | undefined> {
  if (!values.config || !values.model || !values.out) throw new Error("usage: --config FILE --model FILE --out DIR [--rounds N] [--steps N]");
  const base = JSON.parse(readFileSync(values.config, "utf8")) as TrainConfigInput;
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const ctx: RoundContext = { base, backend: createBackend({ backend: "cpu", threads: Number(values.threads) }) };
  const rounds = Number(values.rounds);
  const merge = g.merge ?? ((old, found) => [...old, ...found]);
  let starts: Start[] = [...(base.starts ?? [])];
  let modelPath = resolve(values.model);
  for (let round = 0; round <= rounds; round++) {
    const c = await g.check(modelPath, round, ctx);
    console.log(JSON.stringify(c.verdict));
    const record = c.report === undefined ? c.verdict : { ...c.verdict, report: c.report };
    writeFileSync(join(out, `round-${round}.${g.checkName}.json`), JSON.stringify(record, null, 2));
    if (c.passed) return { modelPath, round };
    if (round === rounds) break;
    starts = merge(starts, c.starts);
    const config: TrainConfigInput = { ...base, init: modelPath, starts, steps: Number(values.steps), seed: (base.seed ?? 0) + round };
    // One line: the starts' hidden states are most of it.
    writeFileSync(join(out, `round-${round + 1}.config.json`), JSON.stringify(config));
    const trained = await new Trainer(config, ctx.backend).run();
    modelPath = join(out, `round-${round + 1}.json`);
    saveCheckpoint(modelPath, trained.model, { config });
  }
  return undefined;
}
