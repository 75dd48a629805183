/** `sead train`: train a model with a progress bar, checkpoints, resume and a final summary. */
import { existsSync, unlinkSync } from "node:fs";
import { AbortError } from "../errors.js";
import { saveCheckpoint } from "../model/checkpoint.js";
import { dirname, resolve } from "node:path";
import { parseTaskName, sameTaskInfo, taskFromInfo } from "../tasks/index.js";
import { loadTaskModules } from "../tasks/modules.js";
import { type EvalReport, safeParseTrainConfig, Trainer, type TrainConfig, type TrainSummary } from "../train/trainer.js";
import {
  backendFrom,
  COMMON_HELP,
  duration,
  fmt,
  intFlag,
  Interrupted,
  modelArg,
  numberFlag,
  OUT_OPTION,
  outFlag,
  Output,
  parse,
  printHelp,
  readJsonFile,
  stringFlag,
  UsageError,
  valueOptions,
} from "./common.js";
import { progress } from "./progress.js";

export const TRAIN_HELP = `usage: sead train <task> [--config file.json] [--steps N] [--seed S] [--out model.json]
       sead train --resume model.json.ckpt [--out model.json]

Trains a model on a task, with a progress bar (rate, ETA, loss), evaluations as it goes,
a checkpoint every checkpointEvery steps, and the final model written to --out.
Ctrl-C (or SIGTERM) finishes the step in progress, saves a checkpoint to <out>.ckpt and
exits with 130 (143); a second Ctrl-C stops at once. --resume continues from the checkpoint
and ends with the same parameters as an uninterrupted run.

<task>: parity, addition-base2, addition-base10 (or addition-baseN, N = 2..16), rule110,
        elementary-ruleN, ruleN-periodic, multiplication, or a task of your own registered
        with --tasks FILE. It may be left out when the config names the task.

options:
  --config FILE    a JSON trainer config (see configs/*.json); every key is checked: unknown
                   keys, wrong types and out-of-range values are reported with their path
  --steps N        Adam steps (overrides the config)
  --seed S         seed of the initial parameters, the data and the noise
  --batch N        samples per step
  --lr X           peak learning rate
  --out FILE       where the trained model goes (default <task>.json; must end in .json)
  --resume CKPT    continue an interrupted run from its checkpoint (its config is used)

${COMMON_HELP}

exit codes: 0 trained, 1 the run failed, 2 bad usage or input, 130/143 interrupted (checkpoint saved).

examples:
  sead train addition-base2 --steps 3000 --out my-adder.json
  sead train --config configs/parity.json --out parity.json
  sead train --resume parity.json.ckpt --out parity.json`;

/** Keeps at most `max` points of a curve by averaging runs of consecutive steps. */
function downsample(step: number[], loss: number[], exact: number[], max = 1000) {
  if (step.length <= max) return { step, loss, exact };
  const per = Math.ceil(step.length / max);
  const o = { step: [] as number[], loss: [] as number[], exact: [] as number[] };
  for (let i = 0; i < step.length; i += per) {
    const j = Math.min(step.length, i + per);
    const avg = (a: number[]) => a.slice(i, j).reduce((s, v) => s + v, 0) / (j - i);
    o.step.push(step[j - 1]!);
    o.loss.push(avg(loss));
    o.exact.push(avg(exact));
  }
  return o;
}

function evalLine(e: EvalReport): string {
  const parts = Object.keys(e.accuracy).map((L) => `L=${L} ${(e.accuracy[L]! * 100).toFixed(1)}% (${e.meanSteps[L]!.toFixed(1)} steps)`);
  return `eval at step ${fmt(e.step)}: ${parts.join(", ")}`;
}

/**
 * What a model's checkpoint records of the run that trained it (sead train and
 * scripts/train-model.ts), before the fields only the caller knows.
 */
export function trainedRecord(config: TrainConfig, s: TrainSummary): Record<string, unknown> {
  return { config, steps: s.steps, seconds: s.seconds, evals: s.evals, ...(s.keptStep !== undefined ? { keptStep: s.keptStep } : {}) };
}

/**
 * Ctrl-C / SIGTERM for training: the first signal stops the run at the end of the step in
 * progress (so the checkpoint holds a state an uninterrupted run also passes through, and a
 * resumed run ends with the same parameters); a second one stops it at once.
 */
class StepStop {
  private readonly ac = new AbortController();
  received: NodeJS.Signals | undefined;
  private readonly handler = (sig: NodeJS.Signals) => {
    if (this.received) {
      this.ac.abort(new Error(`received ${sig} twice`));
      return;
    }
    this.received = sig;
    this.onFirst(sig);
  };
  constructor(private readonly onFirst: (sig: NodeJS.Signals) => void) {
    process.on("SIGINT", this.handler);
    process.on("SIGTERM", this.handler);
  }
  get signal(): AbortSignal {
    return this.ac.signal;
  }
  /** Between steps: turns a requested stop into the abort the trainer checks. */
  atStepEnd(): void {
    if (this.received && !this.ac.signal.aborted) this.ac.abort(new Error(`received ${this.received}`));
  }
  code(): number | undefined {
    return this.received === "SIGINT" ? 130 : this.received === "SIGTERM" ? 143 : undefined;
  }
  dispose(): void {
    process.off("SIGINT", this.handler);
    process.off("SIGTERM", this.handler);
  }
}

/** Registers the tasks of a config's "taskModules" (paths relative to `base`). */
async function loadConfigTaskModules(config: unknown, base: string): Promise<void> {
  const modules = typeof config === "object" && config !== null ? (config as { taskModules?: unknown }).taskModules : undefined;
  if (modules === undefined) return;
  if (!Array.isArray(modules) || !modules.every((m) => typeof m === "string")) {
    throw new UsageError("config: taskModules must be an array of module paths (relative to the config file)");
  }
  await loadTaskModules(modules as string[], base);
}

export async function cmdTrain(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...valueOptions("config", "steps", "seed", "batch", "lr", "resume"), ...OUT_OPTION });
  if (values["help"]) return printHelp(TRAIN_HELP);
  const out = new Output(values);
  if (positionals.length > 1) throw new UsageError(`needs at most one task name, got ${positionals.length}: ${positionals.join(" ")}`);
  const taskArg = positionals[0] !== undefined ? parseTaskName(positionals[0]) : undefined;
  const overrides: Record<string, unknown> = {};
  const steps = intFlag(values, "steps", 1, 10_000_000);
  const seed = intFlag(values, "seed", 0, 2 ** 32 - 1);
  const batch = intFlag(values, "batch", 1, 65536);
  const lr = numberFlag(values, "lr", { positive: true, max: 1 });
  if (steps !== undefined) overrides["steps"] = steps;
  if (seed !== undefined) overrides["seed"] = seed;
  if (batch !== undefined) overrides["batch"] = batch;
  if (lr !== undefined) overrides["lr"] = lr;

  const resumePath = stringFlag(values, "resume");
  const configPath = stringFlag(values, "config");
  let config: TrainConfig;
  let resume;
  if (resumePath !== undefined) {
    const clash = ["config", "steps", "seed", "batch", "lr"].filter((k) => values[k] !== undefined);
    if (clash.length > 0) throw new UsageError(`--resume continues with the checkpoint's own config; drop --${clash.join(", --")}`);
    resume = modelArg(resumePath, "--resume: checkpoint");
    await loadConfigTaskModules(resume.training["config"], process.cwd());
    const r = safeParseTrainConfig(resume.training["config"], "");
    if (!r.success) throw new UsageError(`checkpoint ${resumePath} holds no valid training config (${r.error}), so it cannot be resumed`);
    if (!resume.resume) throw new UsageError(`checkpoint ${resumePath} is a final model without trainer state; resume from the <out>.ckpt file an interrupted run wrote`);
    config = r.data;
    if (taskArg && !sameTaskInfo(taskArg, config.task)) {
      throw new UsageError(`checkpoint ${resumePath} was trained for ${taskFromInfo(config.task).name}, not ${taskFromInfo(taskArg).name}`);
    }
  } else {
    let fromFile: Record<string, unknown> = {};
    if (configPath !== undefined) {
      const raw = readJsonFile(configPath, "config");
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new UsageError(`config ${configPath} must hold a JSON object`);
      fromFile = raw as Record<string, unknown>;
    }
    if (taskArg === undefined && fromFile["task"] === undefined) {
      throw new UsageError("needs a task: sead train addition-base2 (or a --config that names one)");
    }
    const merged = { ...fromFile, ...overrides, ...(taskArg && fromFile["task"] === undefined ? { task: taskArg } : {}) };
    await loadConfigTaskModules(merged, configPath ? dirname(resolve(configPath)) : process.cwd());
    const r = safeParseTrainConfig(merged, "");
    if (!r.success) throw new UsageError(`${configPath ? `config ${configPath}` : "config"}: ${r.error}`);
    config = r.data;
    if (taskArg && !sameTaskInfo(taskArg, config.task)) {
      throw new UsageError(`config ${configPath} trains ${taskFromInfo(config.task).name}, but the command names ${taskFromInfo(taskArg).name}`);
    }
  }
  const taskName = taskFromInfo(config.task).name;
  const defaultOut = resumePath?.endsWith(".json.ckpt") ? resumePath.slice(0, -".ckpt".length) : `${taskName}.json`;
  const outPath = outFlag(values, "--out", [".json"], defaultOut);
  const ckptPath = `${outPath}.ckpt`;
  const backend = backendFrom(values);

  const curve = { step: [] as number[], loss: [] as number[], exact: [] as number[] };
  let ema: number | undefined;
  let emaExact: number | undefined;
  let bar: ReturnType<typeof progress> | undefined;
  const interrupt = new StepStop((sig) => {
    if (out.interactive) bar?.log(`${sig}: stopping after this step to save a checkpoint (press Ctrl-C again to stop at once)`);
  });
  let trainer: Trainer;
  try {
    trainer = new Trainer(
      config,
      backend,
      {
        checkpointPath: ckptPath,
        onStep: (r) => {
          curve.step.push(r.step);
          curve.loss.push(r.loss);
          curve.exact.push(r.exact);
          ema = ema === undefined ? r.loss : 0.9 * ema + 0.1 * r.loss;
          emaExact = emaExact === undefined ? r.exact : 0.9 * emaExact + 0.1 * r.exact;
          bar?.update(r.step, { loss: ema.toFixed(4), exact: `${(emaExact * 100).toFixed(0)}%` });
          interrupt.atStepEnd();
        },
        onEval: (e) => bar?.log(evalLine(e)),
      },
      resume,
    );
  } catch (e) {
    interrupt.dispose();
    throw e;
  }
  const startStep = trainer.currentStep;
  out.line(
    `training ${taskName}: ${fmt(config.steps)} steps${startStep > 0 ? ` (resuming at step ${fmt(startStep)})` : ""}, batch ${config.batch}, ` +
      `lengths ${config.lengths.min}..${config.lengths.max}, model cH ${config.model.cH} features ${config.model.features}, seed ${config.seed}, on ${backend.info().device}`,
  );
  bar = progress(out, "train", config.steps, "steps", "loss {loss} | exact {exact}");
  bar.update(startStep);
  let s;
  try {
    s = await trainer.run(interrupt.signal);
  } catch (e) {
    // A stop requested at the end of a step that is followed by an evaluation aborts the
    // evaluation, which the trainer does not catch: save here (the state of the finished step).
    if (!(e instanceof AbortError) || interrupt.code() === undefined) throw e;
    trainer.saveCheckpoint();
    s = { steps: trainer.currentStep, aborted: true } as const;
  } finally {
    bar.stop();
    interrupt.dispose();
  }
  if (s.aborted) {
    const code = interrupt.code() ?? 130;
    out.doc({ aborted: true, steps: s.steps, checkpoint: ckptPath, resume: `sead train --resume ${ckptPath} --out ${outPath}` });
    throw new Interrupted(
      `interrupted at step ${fmt(s.steps)} of ${fmt(config.steps)}: checkpoint saved to ${ckptPath}; continue with: sead train --resume ${ckptPath} --out ${outPath}`,
      code,
    );
  }
  saveCheckpoint(outPath, s.model, {
    ...trainedRecord(trainer.config, s),
    curve: { from: startStep, ...downsample(curve.step, curve.loss, curve.exact) },
    command: `sead train ${argv.join(" ")}`,
  });
  if (existsSync(ckptPath)) unlinkSync(ckptPath);
  const trained = s.steps - startStep;
  const last = s.evals.at(-1);
  out.doc({ model: outPath, task: config.task, steps: s.steps, seconds: s.seconds, lastLoss: s.lastLoss, evals: s.evals, aborted: false });
  out.line(`trained ${fmt(trained)} steps in ${duration(s.seconds)} (${(trained / Math.max(1e-9, s.seconds)).toFixed(1)} steps/s), final loss ${s.lastLoss.toFixed(5)}`);
  if (last) out.line(`last ${evalLine(last)}`);
  if (s.keptStep !== undefined) out.line(`kept the parameters of step ${fmt(s.keptStep)}, the best evaluation (config.keepBest)`);
  out.line(`model saved to ${outPath}`);
  return 0;
}
