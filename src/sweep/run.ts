/**
 * One run of a sweep: train its config (or its stages in order), then its checks. Everything
 * lands under DIR/runs/<id>/, each file written atomically:
 *   stage-K.json      a staged run's model after stage K (all but the last), written before
 *                     stage K + 1 starts from it; a stage whose model is here is not retrained
 *   *.json.ckpt       the trainer's checkpoint of the stage in training (removed once it is done)
 *   curve.json        the loss curve so far, over every stage (so a resumed run keeps the whole curve)
 *   model.json        the trained model (a staged run's last stage)
 *   log.json          the loss curve, the evaluations and the checks in full
 *   result.json       written last: its presence means the run is complete
 *   executions.jsonl  one line per execution that trained (who, when, resumed from which step)
 * A complete run is skipped; an interrupted one resumes from its checkpoint and ends with the
 * same parameters as a run never interrupted (the trainer's resume guarantee), so an executor
 * that dies only costs the steps since the last checkpoint, and running a run twice writes the
 * same model twice.
 */
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Backend, createBackend } from "../backend/index.js";
import { AbortError, InvalidInputError } from "../errors.js";
import { hardCaseSweep, type LengthResult, lengthSweep } from "../eval/sweep.js";
import { learnedTrajectories } from "../eval/trajectory.js";
import { writeFileAtomic } from "../io/atomic.js";
import { type CheckpointContents, loadCheckpoint, saveCheckpoint } from "../model/checkpoint.js";
import type { Model } from "../model/model.js";
import type { RunOptions } from "../run.js";
import { ElementaryTask, taskFromInfo } from "../tasks/index.js";
import { type EvalReport, Trainer, type TrainSummary } from "../train/trainer.js";
import { type Manifest, type PlannedRun, readManifest, runDir, runStages, stageModelFile } from "./plan.js";
import { checkName, expandSizes, type SweepCheck } from "./schema.js";

export const RESULT_VERSION = 1;

export interface CheckResult {
  name: string;
  kind: SweepCheck["kind"];
  /** Exact answers / samples (a trajectory: 1 when no cell of any generation is wrong, else 0). */
  accuracy: number;
  pass: boolean;
  samples: number;
  meanSteps: number;
  maxSteps: number;
  unsettled: number;
  seconds: number;
  /** Trajectory checks: wrong cells over all generations, and the first wrong generation. */
  wrongCells?: number;
  firstWrongGeneration?: number | null;
}

/** One stage of a staged run. */
export interface StageResult {
  name: string;
  steps: number;
  /** Training time of this stage over every execution that trained it. */
  seconds: number;
  /** The model it left in the run's folder ("stage-1.json", ..., "model.json"). */
  model: string;
}

export interface SweepRunResult {
  version: typeof RESULT_VERSION;
  sweepId: string;
  id: string;
  index: number;
  point: number;
  seed: number;
  /** Every check passed. */
  pass: boolean;
  /** Training steps, over every stage. */
  steps: number;
  /** Training time over every execution that trained, every stage (a resumed run adds its parts). */
  trainSeconds: number;
  /** A staged run's stages, the base first (absent without stages). */
  stages?: StageResult[];
  checkSeconds: number;
  /** Mean training loss over the last min(50, steps) steps. */
  finalLoss: number;
  lastEval: EvalReport | null;
  checks: CheckResult[];
  /** SHA-256 of the trained parameters' bytes (float32, little-endian): equal means bit for bit equal. */
  paramsSha256: string;
  device: string;
  /** The step (counted over every stage) the last execution resumed from (null: it trained from the start). */
  resumedFrom: number | null;
  host: string;
  pid: number;
  finishedAt: string;
}

export interface RunProgress {
  phase: "train" | "check";
  /** Counted over every stage of a staged run. */
  step: number;
  steps: number;
  /** A staged run: the stage in training (1-based) of how many. */
  stage?: number;
  stages?: number;
  /** During checks: which one (1-based) of how many. */
  check?: number;
  checks?: number;
}

export interface RunOneOptions {
  /** Defaults to the manifest's backend (CPU, 1 thread unless the sweep file says otherwise). */
  backend?: Backend;
  /** Stops the run at the end of the step in progress; it saves its checkpoint and returns "interrupted". */
  signal?: AbortSignal;
  onProgress?: (p: RunProgress) => void;
  /** Milliseconds between training progress reports (default 500). */
  progressEveryMs?: number;
  /** Recorded in executions.jsonl (e.g. "local", "queue job 3", "slurm"). */
  executor?: string;
}

export type RunOutcome =
  | { status: "done"; result: SweepRunResult; dir: string }
  | { status: "skipped"; result: SweepRunResult; dir: string }
  | { status: "interrupted"; step: number; checkpoint: string; dir: string };

/** What trained the model at `path` (a stage of this run), with what trained the one it started from. */
function provenance(path: string, file: string): Record<string, unknown> {
  const { config, steps, seconds, stage, init } = loadCheckpoint(path).training;
  return { path: file, config, steps, seconds, stage, ...(init ? { init } : {}) };
}

export const resultPath = (dir: string, id: string) => join(runDir(dir, id), "result.json");

/** The result of a complete run, or undefined (missing, or from another plan). */
export function readResult(dir: string, run: PlannedRun, sweepId?: string): SweepRunResult | undefined {
  const p = resultPath(dir, run.id);
  if (!existsSync(p)) return undefined;
  try {
    const r = JSON.parse(readFileSync(p, "utf8")) as SweepRunResult;
    if (r.version !== RESULT_VERSION || r.id !== run.id) return undefined;
    if (sweepId !== undefined && r.sweepId !== sweepId) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

export function paramsSha256(model: Model): string {
  const p = model.params;
  return createHash("sha256").update(Buffer.from(p.buffer, p.byteOffset, p.byteLength)).digest("hex");
}

/** The run at `index` of the manifest, refused with one line when out of range. */
export function runAt(manifest: Manifest, index: number): PlannedRun {
  const run = manifest.runs[index];
  if (!run) throw new InvalidInputError(`--index ${index} is out of range: the sweep ${manifest.name} has ${manifest.runs.length} runs (0..${manifest.runs.length - 1})`);
  return run;
}

interface Curve {
  step: number[];
  loss: number[];
  /** Training seconds of the steps in the curve. */
  seconds: number;
}

function readCurve(path: string, upTo: number): Curve {
  if (!existsSync(path)) return { step: [], loss: [], seconds: 0 };
  try {
    const c = JSON.parse(readFileSync(path, "utf8")) as Curve;
    const n = c.step.findIndex((s) => s > upTo);
    const keep = n < 0 ? c.step.length : n;
    return { step: c.step.slice(0, keep), loss: c.loss.slice(0, keep), seconds: c.seconds };
  } catch {
    return { step: [], loss: [], seconds: 0 };
  }
}

/** Runs the checks of a sweep on a trained model. */
export async function runChecks(
  backend: Backend,
  model: Model,
  checks: readonly SweepCheck[],
  seed: number,
  opts: { signal?: AbortSignal; onCheck?: (i: number) => void } = {},
): Promise<CheckResult[]> {
  if (!model.task) throw new InvalidInputError("the model records no task, so it cannot be checked");
  const task = taskFromInfo(model.task);
  const out: CheckResult[] = [];
  for (const [i, c] of checks.entries()) {
    opts.onCheck?.(i);
    const ro: RunOptions = {
      ...(c.maxSteps !== undefined ? { maxSteps: c.maxSteps } : {}),
      ...(c.freeze !== undefined ? { freeze: c.freeze } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    const name = checkName(c);
    if (c.kind === "trajectory") {
      if (!(task instanceof ElementaryTask)) throw new InvalidInputError(`check ${name}: a trajectory check needs an elementary-automaton task, not ${task.name}`);
      const t = await learnedTrajectories(backend, model, task, c.width, c.generations, c.starts, c.seedOffset + seed, ro);
      const ok = t.wrongCells === 0;
      out.push({
        name,
        kind: c.kind,
        accuracy: ok ? 1 : 0,
        pass: ok,
        samples: c.starts,
        meanSteps: t.meanSteps,
        maxSteps: t.maxSteps,
        unsettled: 0,
        seconds: t.seconds,
        wrongCells: t.wrongCells,
        firstWrongGeneration: t.firstWrongGeneration,
      });
      continue;
    }
    let rs: LengthResult[];
    if (c.kind === "lengths") rs = await lengthSweep(backend, model, task, expandSizes(c.lengths), c.samples, c.seedOffset + seed, ro);
    else rs = await hardCaseSweep(backend, model, task, expandSizes(c.sizes), ro);
    const samples = rs.reduce((a, r) => a + r.samples, 0);
    const correct = rs.reduce((a, r) => a + r.correct, 0);
    const accuracy = correct / samples;
    out.push({
      name,
      kind: c.kind,
      accuracy,
      pass: accuracy >= c.minAccuracy,
      samples,
      meanSteps: rs.reduce((a, r) => a + r.meanSteps * r.samples, 0) / samples,
      maxSteps: Math.max(...rs.map((r) => r.maxSteps)),
      unsettled: rs.reduce((a, r) => a + r.unsettled, 0),
      seconds: rs.reduce((a, r) => a + r.seconds, 0),
    });
  }
  return out;
}

/**
 * Runs the run at `index` of the sweep planned in `dir`: skipped when complete, resumed at the
 * first stage without its model, from that stage's checkpoint when one is there, else trained
 * from the start. Each later stage starts from the previous stage's model.
 */
export async function runOne(dir: string, index: number, opts: RunOneOptions = {}): Promise<RunOutcome> {
  const manifest = readManifest(dir);
  const run = runAt(manifest, index);
  const rdir = runDir(dir, run.id);
  const done = readResult(dir, run, manifest.sweepId);
  if (done) return { status: "skipped", result: done, dir: rdir };
  mkdirSync(rdir, { recursive: true });
  const configs = runStages(run);
  const n = configs.length;
  const names = manifest.stages ?? configs.map((_, k) => (k === 0 ? "base" : `stage ${k + 1}`));
  // Steps are counted over every stage: stage k's step s is offsets[k] + s.
  const offsets = configs.map((_, k) => configs.slice(0, k).reduce((a, c) => a + c.steps, 0));
  const totalSteps = offsets[n - 1]! + configs[n - 1]!.steps;
  const file = (k: number) => stageModelFile(k + 1, n);
  const modelPath = (k: number) => join(rdir, file(k));
  const curvePath = join(rdir, "curve.json");
  const backend = opts.backend ?? createBackend(manifest.backend);
  const sweepInfo = { name: manifest.name, sweepId: manifest.sweepId, id: run.id, index: run.index };
  const stageInfo = (k: number) => (n > 1 ? { stage: { index: k + 1, of: n, name: names[k] } } : {});

  // A stage whose model is on disk is finished (it was written atomically once the stage was done).
  let first = 0;
  while (first < n - 1 && existsSync(modelPath(first))) {
    // Left by an execution stopped between saving the stage's model and removing its checkpoint.
    removeFile(`${modelPath(first)}.ckpt`);
    first++;
  }
  const stageSeconds = configs.map((_, k) => (k < first ? Number(loadCheckpoint(modelPath(k)).training["seconds"]) || 0 : 0));

  const stop = new AbortController();
  const requested = () => opts.signal?.aborted === true;
  const every = opts.progressEveryMs ?? 500;
  let lastReport = 0;
  let curve: Curve = { step: [], loss: [], seconds: 0 };
  let before = 0;
  let t0 = Date.now();
  const elapsed = () => before + (Date.now() - t0) / 1000;
  let resumedFrom: number | null = null;
  let summary: TrainSummary | undefined;
  let ckptPath = "";
  // Training time so far, every stage: taken when a stage's training ends, so the stages add up to it.
  let trainSeconds = 0;
  for (let k = first; k < n; k++) {
    const config = configs[k]!;
    ckptPath = `${modelPath(k)}.ckpt`;
    const resume: CheckpointContents | undefined = existsSync(ckptPath) ? loadCheckpoint(ckptPath) : undefined;
    const trainer = new Trainer(
      config,
      backend,
      {
        checkpointPath: ckptPath,
        // A later stage's init ("stage-K.json") is relative to the run's folder.
        initDir: rdir,
        onStep: (r) => {
          const step = offsets[k]! + r.step;
          curve.step.push(step);
          curve.loss.push(r.loss);
          // The curve reaches the step of every checkpoint before the checkpoint is written.
          if (config.checkpointEvery > 0 && r.step % config.checkpointEvery === 0) writeFileAtomic(curvePath, JSON.stringify({ ...curve, seconds: elapsed() }));
          const now = Date.now();
          if (opts.onProgress && (now - lastReport >= every || r.step === config.steps)) {
            lastReport = now;
            opts.onProgress({ phase: "train", step, steps: totalSteps, ...(n > 1 ? { stage: k + 1, stages: n } : {}) });
          }
          if (requested() && !stop.signal.aborted) stop.abort(new Error("stop requested"));
        },
      },
      resume,
    );
    if (k === first) {
      const at = offsets[k]! + trainer.currentStep;
      resumedFrom = resume || k > 0 ? at : null;
      curve = readCurve(curvePath, at);
      before = curve.seconds;
      appendFileSync(
        join(rdir, "executions.jsonl"),
        JSON.stringify({
          host: hostname(),
          pid: process.pid,
          started: new Date().toISOString(),
          resumedFrom,
          ...(n > 1 ? { stage: k + 1 } : {}),
          executor: opts.executor ?? "sweep run",
        }) + "\n",
      );
      t0 = Date.now();
    }
    const secondsAtStart = stageSeconds.slice(0, k).reduce((a, b) => a + b, 0);
    if (requested()) stop.abort();
    try {
      summary = await trainer.run(stop.signal);
    } catch (e) {
      // A stop at the end of a step followed by an evaluation aborts the evaluation: that step is done.
      if (!(e instanceof AbortError) || !requested()) throw e;
      trainer.saveCheckpoint();
      summary = undefined;
    }
    trainSeconds = elapsed();
    if (!summary || summary.aborted) {
      const step = offsets[k]! + trainer.currentStep;
      writeFileAtomic(curvePath, JSON.stringify({ ...readCurveAt(curve, step), seconds: trainSeconds }));
      return { status: "interrupted", step, checkpoint: ckptPath, dir: rdir };
    }
    // Written before the stage's model: a crash between the two retrains nothing (the stage
    // resumes from its final checkpoint) and loses no part of the curve.
    writeFileAtomic(curvePath, JSON.stringify({ ...curve, seconds: trainSeconds }));
    stageSeconds[k] = Math.max(0, Math.round((trainSeconds - secondsAtStart) * 1000) / 1000);
    if (k < n - 1) {
      saveCheckpoint(modelPath(k), summary.model, {
        config,
        steps: summary.steps,
        seconds: stageSeconds[k],
        evals: summary.evals,
        ...(summary.keptStep !== undefined ? { keptStep: summary.keptStep } : {}),
        sweep: sweepInfo,
        ...stageInfo(k),
        ...(k > 0 ? { init: provenance(modelPath(k - 1), file(k - 1)) } : {}),
      });
      removeFile(ckptPath);
    }
  }
  if (!summary) throw new Error("unreachable: a run has at least one stage");
  const last = summary;
  const model = last.model;

  const c0 = Date.now();
  opts.onProgress?.({ phase: "check", step: totalSteps, steps: totalSteps, check: 0, checks: manifest.checks.length });
  let checks: CheckResult[];
  try {
    checks = await runChecks(backend, model, manifest.checks, run.seed, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onCheck: (i) => opts.onProgress?.({ phase: "check", step: totalSteps, steps: totalSteps, check: i + 1, checks: manifest.checks.length }),
    });
  } catch (e) {
    // Training is done and its checkpoint saved: a rerun goes straight to the checks.
    if (e instanceof AbortError && requested()) return { status: "interrupted", step: totalSteps, checkpoint: ckptPath, dir: rdir };
    throw e;
  }
  const checkSeconds = (Date.now() - c0) / 1000;
  const tail = Math.min(50, curve.loss.length);
  const finalLoss = tail > 0 ? curve.loss.slice(-tail).reduce((a, b) => a + b, 0) / tail : NaN;
  const stages: StageResult[] | undefined =
    n > 1 ? configs.map((c, k) => ({ name: names[k] ?? `stage ${k + 1}`, steps: c.steps, seconds: stageSeconds[k]!, model: file(k) })) : undefined;
  const result: SweepRunResult = {
    version: RESULT_VERSION,
    sweepId: manifest.sweepId,
    id: run.id,
    index: run.index,
    point: run.point,
    seed: run.seed,
    pass: checks.every((c) => c.pass),
    steps: totalSteps,
    trainSeconds,
    ...(stages ? { stages } : {}),
    checkSeconds,
    finalLoss,
    lastEval: last.evals.at(-1) ?? null,
    checks,
    paramsSha256: paramsSha256(model),
    device: backend.info().device,
    resumedFrom,
    host: hostname(),
    pid: process.pid,
    finishedAt: new Date().toISOString(),
  };
  // A staged run's model records its own stage, and what trained the model it started from.
  saveCheckpoint(join(rdir, "model.json"), model, {
    config: configs[n - 1],
    steps: n > 1 ? last.steps : totalSteps,
    seconds: n > 1 ? stageSeconds[n - 1] : trainSeconds,
    evals: last.evals,
    ...(last.keptStep !== undefined ? { keptStep: last.keptStep } : {}),
    sweep: sweepInfo,
    ...stageInfo(n - 1),
    ...(n > 1 ? { init: provenance(modelPath(n - 2), file(n - 2)) } : {}),
  });
  writeFileAtomic(
    join(rdir, "log.json"),
    JSON.stringify({ id: run.id, config: run.config, ...(run.stages ? { stageConfigs: run.stages, stages } : {}), curve, evals: last.evals, checks }) + "\n",
  );
  writeFileAtomic(resultPath(dir, run.id), JSON.stringify(result, null, 1) + "\n");
  removeFile(ckptPath);
  removeFile(curvePath);
  return { status: "done", result, dir: rdir };
}

function removeFile(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    /* already gone */
  }
}

function readCurveAt(c: Curve, upTo: number): { step: number[]; loss: number[] } {
  const n = c.step.findIndex((s) => s > upTo);
  const keep = n < 0 ? c.step.length : n;
  return { step: c.step.slice(0, keep), loss: c.loss.slice(0, keep) };
}
