/** `sead eval`: the length sweep (accuracy and steps against length), as a table or JSON. */
import { batchFor, cellsFor, evaluateInputs, type LengthResult } from "../eval/sweep.js";
import { learnedTrajectories } from "../eval/trajectory.js";
import { writeFileAtomic } from "../io/atomic.js";
import { Rng } from "../rng.js";
import { ElementaryTask } from "../tasks/index.js";
import { z } from "zod";
import {
  backendFrom,
  FREEZE_HELP,
  freezeFlag,
  checkedModel,
  COMMON_HELP,
  duration,
  flag,
  fmt,
  intFlag,
  interruptible,
  oneModel,
  OUT_OPTION,
  outFlag,
  Output,
  parse,
  percent,
  printHelp,
  seedFlag,
  taskTitle,
  UsageError,
  valueOptions,
} from "./common.js";
import { progress } from "./progress.js";

export const EVAL_HELP = `usage: sead eval <model> [--lengths 16,100,1000] [--samples N] [--seed S] [--out results.json]
       sead eval <rule model> --generations G [--width W] [--starts K]

Exact-match accuracy and steps to settle at each length, on random inputs drawn from the seed;
every answer is checked against the exact one. <model>: a shipped name (addition-base2,
addition-base10, parity, rule110) or a checkpoint path. For an elementary automaton,
--generations runs learned trajectories instead: the model's output fed back as the next row,
compared cell by cell with the exact automaton.

options:
  --lengths LIST   comma-separated input lengths (default 16,100,1000)
  --samples N      random inputs per length (default 100)
  --seed S         seed of the inputs (default 1)
  --max-steps N    stop a sample that has not settled after N steps (default 2 L + 66)
${FREEZE_HELP}
  --out FILE       also write the results as JSON (for sead plot); must end in .json
  --generations G  (elementary) trajectory length; with --width W (default 256), --starts K (default 4)

${COMMON_HELP}

exit codes: 0 every answer exact, 1 some answer wrong (or the run failed), 2 bad usage or input,
130/143 interrupted.

examples:
  sead eval addition-base2 --lengths 16,1000,100000 --samples 20 --out add2.json
  sead eval parity --lengths 8,16,32,64,128 --json
  sead eval rule110 --generations 1000 --width 512`;

export async function cmdEval(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...valueOptions("lengths", "samples", "seed", "max-steps", "generations", "width", "starts", "freeze"),
    ...OUT_OPTION,
  });
  if (values["help"]) return printHelp(EVAL_HELP);
  const out = new Output(values);
  const modelName = oneModel(positionals);
  const lengths =
    flag(
      values,
      "lengths",
      z
        .string()
        .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, { message: "--lengths must be a comma-separated list of whole numbers, e.g. 16,100,1000" })
        .transform((s) => s.split(",").map((x) => Number(x.trim())))
        .refine((l) => l.every((x) => x >= 1 && x <= 100_000_000), { message: "--lengths must be from 1 to 100,000,000" }),
    ) ?? [16, 100, 1000];
  const samples = intFlag(values, "samples", 1, 1_000_000) ?? 100;
  const seed = seedFlag(values);
  const maxSteps = intFlag(values, "max-steps", 1, 1e9);
  const generations = intFlag(values, "generations", 1, 10_000_000);
  const width = intFlag(values, "width", 1, 10_000_000);
  const starts = intFlag(values, "starts", 1, 100_000);
  const outPath = outFlag(values, "--out", [".json"]);
  const { ckpt, task, info } = checkedModel(modelName);
  const model = ckpt.model;
  if (generations === undefined && (width !== undefined || starts !== undefined)) throw new UsageError("--width and --starts go with --generations");
  if (generations !== undefined && !(task instanceof ElementaryTask)) {
    throw new UsageError(`--generations runs trajectories of an elementary automaton; ${modelName} was trained for ${task.name}`);
  }
  const freeze = freezeFlag(values);
  const backend = backendFrom(values);
  const opts = { ...(maxSteps !== undefined ? { maxSteps } : {}), ...(freeze !== undefined ? { freeze } : {}) };

  if (generations !== undefined && task instanceof ElementaryTask) {
    const w = width ?? 256;
    const k = starts ?? 4;
    out.line(`${modelName}: ${k} learned trajector${k === 1 ? "y" : "ies"} of ${fmt(generations)} generations on a row of ${fmt(w)} cells (seed ${seed})`);
    const r = await interruptible((signal) => learnedTrajectories(backend, model, task, w, generations, k, seed, { ...opts, signal }));
    out.doc({ model: modelName, task: info, seed, trajectory: r });
    out.line(
      r.wrongCells === 0
        ? `exact: every cell of every generation equals the exact automaton`
        : `NOT exact: ${fmt(r.wrongCells)} cells differ, the first at generation ${r.firstWrongGeneration}`,
    );
    out.line(`steps per generation: mean ${r.meanSteps.toFixed(1)}, max ${r.maxSteps}; ${duration(r.seconds)} on ${backend.info().device}`);
    if (outPath) writeFileAtomic(outPath, JSON.stringify({ model: modelName, task: info, seed, trajectory: r }, null, 2) + "\n");
    return r.wrongCells === 0 ? 0 : 1;
  }

  out.line(`${modelName} (${taskTitle(info)}): ${samples} random inputs per length, seed ${seed}, on ${backend.info().device}`);
  // With --freeze, a last column: the share of the cell updates computed.
  out.line(" length  samples  exact  accuracy  mean steps  max steps  unsettled   seconds" + (freeze !== undefined ? "  computed" : ""));
  // The bar counts cells (samples x width), so the ETA weighs long inputs as they cost.
  const total = lengths.reduce((a, L) => a + samples * cellsFor(task, L), 0);
  const bar = progress(out, "eval", total, "cells", "length {length}: {done} of {all} samples", 0, false);
  let cellsDone = 0;
  const results: LengthResult[] = [];
  try {
    await interruptible(async (signal) => {
      for (const L of lengths) {
        // The same inputs as lengthSweep(..., seed): one generator per length.
        const rng = new Rng(seed).fork(L);
        const inputs = Array.from({ length: samples }, () => task.sample(rng, L));
        const per = batchFor(cellsFor(task, L), samples);
        const parts: LengthResult[] = [];
        let done = 0;
        bar.update(cellsDone, { length: fmt(L), done: "0", all: fmt(samples) });
        for (let i = 0; i < samples; i += per) {
          const part = inputs.slice(i, i + per);
          parts.push(await evaluateInputs(backend, model, task, part, L, { ...opts, signal }));
          done += part.length;
          cellsDone += part.length * cellsFor(task, L);
          bar.update(cellsDone, { length: fmt(L), done: fmt(done), all: fmt(samples) });
        }
        const r = merge(L, parts);
        results.push(r);
        bar.log(
          `${fmt(L).padStart(7)}  ${String(r.samples).padStart(7)}  ${String(r.correct).padStart(5)}  ${(r.accuracy * 100).toFixed(1).padStart(7)}%` +
            `  ${r.meanSteps.toFixed(1).padStart(10)}  ${String(r.maxSteps).padStart(9)}  ${String(r.unsettled).padStart(9)}  ${r.seconds.toFixed(2).padStart(8)}` +
            (freeze !== undefined ? `  ${percent(r.cellsComputed / r.cellsDense).padStart(8)}` : ""),
        );
      }
    });
  } finally {
    bar.stop();
  }
  const doc = { model: modelName, task: info, seed, samples, results };
  if (outPath) writeFileAtomic(outPath, JSON.stringify(doc, null, 2) + "\n");
  out.doc(doc);
  if (outPath) out.line(`results written to ${outPath}`);
  return results.every((r) => r.accuracy === 1) ? 0 : 1;
}

function merge(length: number, parts: LengthResult[]): LengthResult {
  const samples = parts.reduce((a, p) => a + p.samples, 0);
  const correct = parts.reduce((a, p) => a + p.correct, 0);
  return {
    length,
    samples,
    correct,
    accuracy: correct / samples,
    // Steps are whole numbers: recover each part's exact sum, so the mean equals lengthSweep's.
    meanSteps: parts.reduce((a, p) => a + Math.round(p.meanSteps * p.samples), 0) / samples,
    maxSteps: Math.max(...parts.map((p) => p.maxSteps)),
    unsettled: parts.reduce((a, p) => a + p.unsettled, 0),
    seconds: parts.reduce((a, p) => a + p.seconds, 0),
    cellsComputed: parts.reduce((a, p) => a + p.cellsComputed, 0),
    cellsDense: parts.reduce((a, p) => a + p.cellsDense, 0),
  };
}
