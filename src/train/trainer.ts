/**
 * The trainer: Adam on batches drawn fresh every step, a random unroll length T per batch
 * (so the model cannot count steps), loss at T and on a few steps past it (so outputs stay
 * put: a stable attractor), Gaussian noise on h, periodic evaluation by running to a fixed
 * point, and resumable checkpoints: a resumed run computes the same numbers as one that
 * was never interrupted.
 */
import { resolve } from "node:path";
import { z } from "zod";
import type { Backend } from "../backend/index.js";
import { AbortError, CheckpointError, InvalidInputError } from "../errors.js";
import { decodeFloat32, encodeFloat32, loadCheckpoint, saveCheckpoint, type CheckpointContents } from "../model/checkpoint.js";
import { Model } from "../model/model.js";
import type { ModelSpec } from "../model/spec.js";
import { Rng } from "../rng.js";
import { solve } from "../run.js";
import { formatIssues } from "../schema.js";
import { type AnyTask, callTask, checkTaskInfo, encodeChecked, taskFromInfo, taskInfoSchema } from "../tasks/index.js";
import type { Encoded } from "../tasks/types.js";
import { type AdamState, adamInit, adamStep } from "./adam.js";

const range = (min: number, max: number) =>
  z
    .strictObject({ min: z.number().int().min(min).max(max), max: z.number().int().min(min).max(max) })
    .refine((r) => r.min <= r.max, { message: "min must be <= max" });

export const trainConfigSchema = z.strictObject({
  task: taskInfoSchema,
  model: z
    .strictObject({
      cH: z.number().int().min(1).max(1024).default(16),
      features: z.number().int().min(1).max(4096).default(64),
      update: z.enum(["replace", "residual"]).default("replace"),
      quantize: z.enum(["none", "ternary"]).default("none"),
    })
    .default({ cH: 16, features: 64, update: "replace", quantize: "none" }),
  /** Fine-tuning: a model checkpoint whose parameters start the run instead of random ones
   * (its spec and task must be the ones this config describes). */
  init: z.string().min(1).optional(),
  /** Seeds the initial parameters, the data and the noise. */
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(0),
  /** Adam steps. */
  steps: z.number().int().min(1).max(10_000_000).default(3000),
  batch: z.number().int().min(1).max(65536).default(128),
  /** Input lengths drawn per batch. */
  lengths: range(1, 1_000_000).default({ min: 1, max: 16 }),
  /** Unroll length T drawn per batch. */
  unroll: range(1, 100_000).default({ min: 24, max: 40 }),
  /** Steps past T that also carry loss: the stability term. */
  stabilitySteps: z.number().int().min(0).max(1000).default(4),
  /** Std of the Gaussian noise added to h before every training step. */
  noiseStd: z.number().min(0).max(10).default(0.02),
  /**
   * Weight of the settling penalty on (h_t - h_{t-1})^2 over the loss-carrying steps
   * (TrainBatch.settleWeight; docs/DESIGN.md, "Training"). 0 = off.
   */
  settleWeight: z.number().min(0).max(1000).default(0),
  /**
   * Fraction of each batch's samples that start from a random hidden state instead of zero
   * (TrainBatch.h0: each value -1, 0 or 1 for a quantized model, uniform in [-1, 1] otherwise),
   * so the rule learns to repair any state: a rule that does has no wrong fixed points, which
   * `sead verify` can then prove (docs/verify.md). 0 = off.
   */
  randomStart: z.number().min(0).max(1).default(0),
  /**
   * Given inputs with given initial hidden states (`h0`, [height][width][cH] of the input's
   * grid), e.g. wrong fixed points that `sead verify` found: a batch whose grid has an entry's
   * shape carries a quarter of its samples from these, in turn, so training moves the rule away
   * from them (scripts/verify-train.ts). Absent or empty: none.
   */
  starts: z.array(z.strictObject({ input: z.unknown(), h0: z.array(z.number()) })).default([]),
  lr: z.number().positive().max(1).default(3e-3),
  /** The learning rate decays along a cosine to this. */
  lrMin: z.number().min(0).max(1).default(1e-4),
  warmup: z.number().int().min(0).default(100),
  /** Global gradient-norm clip (0 = off). */
  clip: z.number().min(0).default(1),
  /** The task's training curriculum (hard cases mixed in), checked by the task's own schema;
   * e.g. addition's { adversarial, uniformRuns, noCarry, carryRuns }. Defaults filled in. */
  curriculum: z.record(z.string(), z.unknown()).default({}),
  /** Modules exporting task definitions, registered by the CLI before the config is checked
   * (paths relative to the config file). Through the API, call registerTask instead. */
  taskModules: z.array(z.string().min(1)).optional(),
  evalEvery: z.number().int().min(0).default(500),
  evalLengths: z.array(z.number().int().min(1).max(1_000_000)).default([16, 100]),
  evalSamples: z.number().int().min(1).max(100_000).default(64),
  /**
   * End with the parameters of the best evaluation (mean exact-match accuracy over evalLengths;
   * on a tie the later one) instead of the last step's. For quantized models, whose accuracy can
   * jump between evaluations even late in training. Needs evalEvery > 0.
   */
  keepBest: z.boolean().default(false),
  checkpointEvery: z.number().int().min(0).default(500),
});

export type TrainConfig = z.output<typeof trainConfigSchema>;
export type TrainConfigInput = z.input<typeof trainConfigSchema>;

/** Keys that configs written before `curriculum` existed held at the top level (addition's). */
const LEGACY_CURRICULUM_KEYS = ["adversarial", "noCarry", "uniformRuns", "carryRuns"] as const;

/**
 * A config as the schema takes it: addition's curriculum keys, once top-level, moved into
 * `curriculum` (other tasks ignored them, so they are dropped there).
 */
function migrateConfig(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const v = { ...(value as Record<string, unknown>) };
  const legacy = LEGACY_CURRICULUM_KEYS.filter((k) => k in v);
  if (legacy.length === 0) return v;
  const task = v["task"] as { name?: unknown } | undefined;
  if (task?.name === "addition" && v["curriculum"] === undefined) {
    v["curriculum"] = Object.fromEntries(legacy.map((k) => [k, v[k]]));
  }
  for (const k of legacy) delete v[k];
  return v;
}

/**
 * Checks a config (every problem with its path) and fills in defaults, the task's curriculum
 * included: the result is what a checkpoint stores, and parses back to itself.
 */
export function safeParseTrainConfig(value: unknown, where = "config"): { success: true; data: TrainConfig } | { success: false; error: string } {
  const r = trainConfigSchema.safeParse(migrateConfig(value));
  if (!r.success) return { success: false, error: formatIssues(r.error, where) };
  const config = r.data;
  try {
    const { def } = checkTaskInfo(config.task, where ? `${where}.task` : "task");
    if (def.curriculum) {
      const c = def.curriculum.safeParse(config.curriculum ?? {});
      if (!c.success) return { success: false, error: formatIssues(c.error, where ? `${where}.curriculum` : "curriculum") };
      return { success: true, data: { ...config, curriculum: c.data } };
    }
    if (Object.keys(config.curriculum).length > 0) {
      return { success: false, error: `${where ? `${where}.` : ""}curriculum: task ${def.name} takes no curriculum options` };
    }
    return { success: true, data: { ...config, curriculum: {} } };
  } catch (e) {
    if (e instanceof InvalidInputError) return { success: false, error: e.message };
    throw e;
  }
}

export function parseTrainConfig(value: unknown): TrainConfig {
  const r = safeParseTrainConfig(value);
  if (!r.success) throw new InvalidInputError(r.error);
  return r.data;
}

export interface StepReport {
  step: number;
  loss: number;
  /** Fraction of the batch exactly right after the unroll. */
  exact: number;
  lr: number;
  gradNorm: number;
  unroll: number;
  length: number;
  ms: number;
}

export interface EvalReport {
  step: number;
  /** Exact-match accuracy per evaluated length. */
  accuracy: Record<string, number>;
  meanSteps: Record<string, number>;
}

export interface TrainerHooks {
  onStep?: (r: StepReport) => void;
  onEval?: (r: EvalReport) => void;
  /** Where periodic and final checkpoints go (written atomically). */
  checkpointPath?: string;
  /** The folder a relative `config.init` is resolved against (default: the working directory).
   * A sweep's later stages name the previous stage's model relative to the run's folder, so
   * their config (and the checkpoint that stores it) is the same wherever the folder is mounted. */
  initDir?: string;
}

export interface TrainSummary {
  model: Model;
  steps: number;
  seconds: number;
  lastLoss: number;
  evals: EvalReport[];
  /** True when the run stopped early through the AbortSignal (a checkpoint was saved). */
  aborted: boolean;
  /** With config.keepBest: the step whose parameters the model holds. */
  keptStep?: number;
}

/** The spec a config trains: dimensions and channels from the task. */
export function specFor(config: TrainConfig, task: AnyTask): ModelSpec {
  return {
    dims: task.dims,
    cIn: task.cIn,
    cH: config.model.cH,
    features: config.model.features,
    cOut: task.cOut,
    update: config.model.update,
    boundary: task.boundary,
    quantize: config.model.quantize,
  };
}

/** The model a fine-tuning run starts from, refused unless its spec and task match. */
function initialModel(path: string, spec: ModelSpec, task: AnyTask): Model {
  const { model } = loadCheckpoint(path);
  if (JSON.stringify(model.spec) !== JSON.stringify(spec)) {
    throw new CheckpointError(`config.init: ${path} holds a model of spec ${JSON.stringify(model.spec)}, but this config trains ${JSON.stringify(spec)}`);
  }
  if (JSON.stringify(model.task) !== JSON.stringify(task.describe())) {
    throw new CheckpointError(`config.init: ${path} was trained for ${JSON.stringify(model.task)}, not ${JSON.stringify(task.describe())}`);
  }
  return model;
}

/** Learning rate at a step: linear warm-up, then a cosine down to lrMin at the last step. */
export function learningRate(c: TrainConfig, step: number): number {
  if (step < c.warmup) return (c.lr * (step + 1)) / c.warmup;
  const t = c.steps <= c.warmup ? 1 : (step - c.warmup) / Math.max(1, c.steps - c.warmup);
  return c.lrMin + 0.5 * (c.lr - c.lrMin) * (1 + Math.cos(Math.PI * Math.min(1, t)));
}

/** Loss weights over the unroll: equal on step T and the stability steps after it. */
export function stepWeights(unroll: number, stabilitySteps: number): Float32Array {
  const w = new Float32Array(unroll + stabilitySteps);
  for (let t = unroll - 1; t < w.length; t++) w[t] = 1 / (stabilitySteps + 1);
  return w;
}

/** The best evaluation so far (config.keepBest) and its parameters. */
interface Best {
  step: number;
  score: number;
  params: Float32Array;
}

/** An evaluation's score for keepBest: the mean accuracy over the evaluated lengths. */
function evalScore(r: EvalReport): number {
  const v = Object.values(r.accuracy);
  return v.length === 0 ? 0 : v.reduce((a, b) => a + b, 0) / v.length;
}

interface ResumeState {
  step: number;
  rng: string;
  adam: AdamState;
}

/** A config.starts entry, encoded. */
interface Start {
  enc: Encoded;
  h0: Float32Array;
}

function encodeStart(task: AnyTask, st: { input: unknown; h0: number[] }, cH: number, i: number): Start {
  const enc = encodeChecked(task, [st.input]);
  const want = enc.height * enc.width * cH;
  if (st.h0.length !== want) {
    throw new InvalidInputError(`config.starts[${i}].h0 has ${st.h0.length} values but the input's grid has ${enc.height} x ${enc.width} cells x cH ${cH} = ${want}`);
  }
  return { enc, h0: Float32Array.from(st.h0) };
}

export class Trainer {
  readonly config: TrainConfig;
  readonly task: AnyTask;
  private model: Model;
  private rng: Rng;
  private adam: AdamState;
  private step = 0;
  private readonly evals: EvalReport[] = [];
  private best: Best | undefined;
  /** config.starts, encoded. */
  private readonly starts: Start[];

  constructor(
    config: TrainConfigInput,
    private readonly backend: Backend,
    private readonly hooks: TrainerHooks = {},
    resume?: CheckpointContents,
  ) {
    this.config = parseTrainConfig(config);
    this.task = taskFromInfo(this.config.task);
    if (this.config.lengths.max < 1) throw new InvalidInputError("config.lengths.max must be >= 1");
    const spec = specFor(this.config, this.task);
    this.model = this.config.init ? initialModel(resolve(hooks.initDir ?? ".", this.config.init), spec, this.task) : Model.init(spec, this.config.seed, this.task.describe());
    this.rng = new Rng(this.config.seed).fork(1);
    this.adam = adamInit(this.model.paramCount);
    if (this.config.keepBest && this.config.evalEvery === 0) {
      throw new InvalidInputError("config.keepBest needs evaluations to choose from: set evalEvery > 0");
    }
    this.starts = this.config.starts.map((st, i) => encodeStart(this.task, st, spec.cH, i));
    if (resume) this.restore(resume);
  }

  /** Continues from a checkpoint written by a trainer with the same config. */
  private restore(ckpt: CheckpointContents): void {
    const saved = safeParseTrainConfig(ckpt.training["config"]);
    if (!saved.success || JSON.stringify(saved.data) !== JSON.stringify(this.config)) {
      throw new CheckpointError(
        "cannot resume: the checkpoint was written with a different training config " +
          "(resume with the config stored in the checkpoint)",
      );
    }
    const r = ckpt.resume;
    if (!r) throw new CheckpointError("cannot resume: the checkpoint holds no trainer state (it is a final model)");
    const state = z
      .strictObject({
        step: z.number().int().min(0),
        rng: z.string(),
        adamStep: z.number().int().min(0),
        m: z.any(),
        v: z.any(),
        best: z.strictObject({ step: z.number().int().min(0), score: z.number(), params: z.any() }).optional(),
      })
      .safeParse(r);
    if (!state.success) throw new CheckpointError("cannot resume: the checkpoint's trainer state is malformed");
    const m = decodeFloat32(state.data.m, "resume.m");
    const v = decodeFloat32(state.data.v, "resume.v");
    if (m.length !== this.model.paramCount || v.length !== this.model.paramCount) {
      throw new CheckpointError("cannot resume: the optimizer state does not match the model's size");
    }
    this.model = ckpt.model;
    this.rng = Rng.fromState(state.data.rng);
    this.adam = { step: state.data.adamStep, m, v };
    this.step = state.data.step;
    if (state.data.best) {
      const params = decodeFloat32(state.data.best.params, "resume.best.params");
      if (params.length !== this.model.paramCount) throw new CheckpointError("cannot resume: the kept best parameters do not match the model's size");
      this.best = { step: state.data.best.step, score: state.data.best.score, params };
    }
    // The evaluations made before the interruption belong to this run's history too.
    const evals = ckpt.training["evals"];
    if (Array.isArray(evals)) this.evals.push(...(evals as EvalReport[]));
  }

  get currentModel(): Model {
    return this.model;
  }

  get currentStep(): number {
    return this.step;
  }

  private resumeState(): ResumeState {
    return { step: this.step, rng: this.rng.getState(), adam: this.adam };
  }

  /** Saves the current model and trainer state (atomically) if a path was given. */
  saveCheckpoint(extra: Record<string, unknown> = {}): void {
    if (!this.hooks.checkpointPath) return;
    const s = this.resumeState();
    saveCheckpoint(
      this.hooks.checkpointPath,
      this.model,
      { config: this.config, step: this.step, evals: this.evals, ...extra },
      {
        step: s.step,
        rng: s.rng,
        adamStep: s.adam.step,
        m: encodeFloat32(s.adam.m),
        v: encodeFloat32(s.adam.v),
        ...(this.best ? { best: { step: this.best.step, score: this.best.score, params: encodeFloat32(this.best.params) } } : {}),
      },
    );
  }

  /** Draws one batch: a size, inputs (the task's curriculum mixed in), T and a noise seed. */
  private drawBatch() {
    const c = this.config;
    const rng = this.rng;
    const task = this.task;
    const length = c.lengths.min + rng.int(c.lengths.max - c.lengths.min + 1);
    const curriculum = c.curriculum;
    const inputs: unknown[] = [];
    for (let i = 0; i < c.batch; i++) {
      inputs.push(
        task.trainingSample
          ? callTask(task, "trainingSample", () => task.trainingSample!(rng, length, curriculum))
          : callTask(task, "sample", () => task.sample(rng, length)),
      );
    }
    const unroll = c.unroll.min + rng.int(c.unroll.max - c.unroll.min + 1);
    const noiseSeed = rng.nextU32();
    return { length, inputs, unroll, noiseSeed };
  }

  /**
   * Initial hidden states for `config.randomStart`: that fraction of the samples (rounded) start
   * from random values, the others from zero. Drawn from the trainer's generator, after the
   * batch, so a run without randomStart draws exactly what it did before the option existed.
   */
  private drawStarts(batch: number, cells: number): Float32Array {
    const { cH, quantize } = this.model.spec;
    const per = cells * cH;
    const h0 = new Float32Array(batch * per);
    const random = Math.round(batch * this.config.randomStart);
    for (let i = 0; i < random * per; i++) {
      h0[i] = quantize === "ternary" ? this.rng.int(3) - 1 : this.rng.float() * 2 - 1;
    }
    return h0;
  }

  /**
   * Overwrites the last quarter of `enc`'s samples (at least one) with config.starts entries of
   * its grid's shape, taken in turn from the step number (so a resumed run takes the same
   * ones), and returns the batch's h0 with their states.
   */
  private mixInStarts(enc: Encoded, h0: Float32Array | undefined): Float32Array | undefined {
    const fits = this.starts.filter((st) => st.enc.height === enc.height && st.enc.width === enc.width);
    const n = fits.length === 0 ? 0 : Math.max(1, Math.floor(enc.batch / 4));
    if (n === 0) return h0;
    const cells = enc.height * enc.width;
    const per = cells * this.model.spec.cH;
    const out = h0 ?? new Float32Array(enc.batch * per);
    for (let i = 0; i < n; i++) {
      const st = fits[(this.step * n + i) % fits.length]!;
      const b = enc.batch - 1 - i;
      enc.x.set(st.enc.x, b * cells * enc.cIn);
      enc.target.set(st.enc.target, b * cells);
      out.set(st.h0, b * per);
    }
    return out;
  }

  /** Trains to `config.steps` (from where a resumed run left off). */
  async run(signal?: AbortSignal): Promise<TrainSummary> {
    const c = this.config;
    const t0 = Date.now();
    let lastLoss = NaN;
    let aborted = false;
    const params = new Float32Array(this.model.params);
    while (this.step < c.steps) {
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      const started = Date.now();
      // Drawing moves the generator on: keep where it was, so a step cancelled part way
      // leaves the trainer exactly at the start of that step for the checkpoint.
      const rngBefore = this.rng.getState();
      const { length, inputs, unroll, noiseSeed } = this.drawBatch();
      const enc = encodeChecked(this.task, inputs);
      let h0 = c.randomStart > 0 ? this.drawStarts(enc.batch, enc.height * enc.width) : undefined;
      h0 = this.mixInStarts(enc, h0);
      let r;
      try {
        r = await this.backend.trainStep(
          this.model.spec,
          params,
          {
            grid: { batch: enc.batch, height: enc.height, width: enc.width },
            x: enc.x,
            target: enc.target,
            stepWeights: stepWeights(unroll, c.stabilitySteps),
            noiseStd: c.noiseStd,
            noiseSeed,
            settleWeight: c.settleWeight,
            ...(h0 ? { h0 } : {}),
          },
          signal,
        );
      } catch (e) {
        if (e instanceof AbortError) {
          this.rng = Rng.fromState(rngBefore);
          aborted = true;
          break;
        }
        throw e;
      }
      if (!Number.isFinite(r.loss)) {
        throw new InvalidInputError(`training diverged at step ${this.step}: the loss is ${r.loss}; lower config.lr`);
      }
      const lr = learningRate(c, this.step);
      const gradNorm = adamStep(params, r.grad, this.adam, lr, { beta1: 0.9, beta2: 0.999, eps: 1e-8, clip: c.clip });
      this.model = this.model.withParams(new Float32Array(params));
      this.step += 1;
      lastLoss = r.loss;
      this.hooks.onStep?.({
        step: this.step,
        loss: r.loss,
        exact: r.exact / enc.batch,
        lr,
        gradNorm,
        unroll,
        length,
        ms: Date.now() - started,
      });
      if (c.evalEvery > 0 && (this.step % c.evalEvery === 0 || this.step === c.steps)) {
        let report: EvalReport;
        try {
          report = await this.evaluate(signal);
        } catch (e) {
          if (!(e instanceof AbortError)) throw e;
          // The step itself is done: the checkpoint below resumes after it.
          aborted = true;
          break;
        }
        this.evals.push(report);
        this.hooks.onEval?.(report);
        if (c.keepBest && (!this.best || evalScore(report) >= this.best.score)) {
          this.best = { step: this.step, score: evalScore(report), params: new Float32Array(this.model.params) };
        }
      }
      if (c.checkpointEvery > 0 && this.step % c.checkpointEvery === 0) this.saveCheckpoint();
    }
    this.saveCheckpoint();
    // The run's model: the last step's, or with keepBest (once training is complete) the best evaluation's.
    const model = c.keepBest && !aborted && this.best ? this.model.withParams(this.best.params) : this.model;
    const keptStep = c.keepBest && !aborted && this.best ? { keptStep: this.best.step } : {};
    return { model, steps: this.step, seconds: (Date.now() - t0) / 1000, lastLoss, evals: this.evals, aborted, ...keptStep };
  }

  /**
   * Accuracy (exact match of the whole output) at each evaluation length, running to a
   * fixed point. Uses its own generator so evaluation never shifts the training stream.
   */
  async evaluate(signal?: AbortSignal): Promise<EvalReport> {
    const c = this.config;
    const rng = new Rng(c.seed).fork(1000 + this.step);
    const accuracy: Record<string, number> = {};
    const meanSteps: Record<string, number> = {};
    for (const L of c.evalLengths) {
      const inputs = Array.from({ length: c.evalSamples }, () => callTask(this.task, "sample", () => this.task.sample(rng, L)));
      const r = await solve(this.backend, this.model, this.task, inputs, { signal });
      accuracy[L] = r.correct.filter(Boolean).length / inputs.length;
      meanSteps[L] = r.steps.reduce((a, b) => a + b, 0) / r.steps.length;
    }
    return { step: this.step, accuracy, meanSteps };
  }
}
