/**
 * One run of a sweep: train its config, then its checks. Everything lands under
 * DIR/runs/<id>/, each file written atomically:
 *   model.json.ckpt   the trainer's checkpoint while training (removed once the run is done)
 *   curve.json        the loss curve so far (so a resumed run keeps the whole curve)
 *   model.json        the trained model
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
import { type EvalReport, Trainer } from "../train/trainer.js";
import { type Manifest, type PlannedRun, readManifest, runDir } from "./plan.js";
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

export interface SweepRunResult {
  version: typeof RESULT_VERSION;
  sweepId: string;
  id: string;
  index: number;
  point: number;
  seed: number;
  /** Every check passed. */
  pass: boolean;
  steps: number;
  /** Training time over every execution that trained (a resumed run adds its parts). */
  trainSeconds: number;
  checkSeconds: number;
  /** Mean training loss over the last min(50, steps) steps. */
  finalLoss: number;
  lastEval: EvalReport | null;
  checks: CheckResult[];
  /** SHA-256 of the trained parameters' bytes (float32, little-endian): equal means bit for bit equal. */
  paramsSha256: string;
  device: string;
  /** The step the last execution resumed from (null: it trained from the start). */
  resumedFrom: number | null;
  host: string;
  pid: number;
  finishedAt: string;
}

export interface RunProgress {
  phase: "train" | "check";
  step: number;
  steps: number;
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
 * Runs the run at `index` of the sweep planned in `dir`: skipped when complete, resumed from
 * its checkpoint when one is there, else trained from the start.
 */
export async function runOne(dir: string, index: number, opts: RunOneOptions = {}): Promise<RunOutcome> {
  const manifest = readManifest(dir);
  const run = runAt(manifest, index);
  const rdir = runDir(dir, run.id);
  const done = readResult(dir, run, manifest.sweepId);
  if (done) return { status: "skipped", result: done, dir: rdir };
  mkdirSync(rdir, { recursive: true });
  const ckptPath = join(rdir, "model.json.ckpt");
  const curvePath = join(rdir, "curve.json");
  const backend = opts.backend ?? createBackend(manifest.backend);

  let resume: CheckpointContents | undefined;
  if (existsSync(ckptPath)) resume = loadCheckpoint(ckptPath);
  const stop = new AbortController();
  const requested = () => opts.signal?.aborted === true;
  let curve: Curve = { step: [], loss: [], seconds: 0 };
  const every = opts.progressEveryMs ?? 500;
  let lastReport = 0;
  const trainer = new Trainer(
    run.config,
    backend,
    {
      checkpointPath: ckptPath,
      onStep: (r) => {
        curve.step.push(r.step);
        curve.loss.push(r.loss);
        // The curve reaches the step of every checkpoint before the checkpoint is written.
        if (run.config.checkpointEvery > 0 && r.step % run.config.checkpointEvery === 0) {
          writeFileAtomic(curvePath, JSON.stringify({ ...curve, seconds: curve.seconds + (Date.now() - t0) / 1000 }));
        }
        const now = Date.now();
        if (opts.onProgress && (now - lastReport >= every || r.step === run.config.steps)) {
          lastReport = now;
          opts.onProgress({ phase: "train", step: r.step, steps: run.config.steps });
        }
        if (requested() && !stop.signal.aborted) stop.abort(new Error("stop requested"));
      },
    },
    resume,
  );
  const resumedFrom = resume ? trainer.currentStep : null;
  curve = readCurve(curvePath, trainer.currentStep);
  const before = curve.seconds;
  appendFileSync(
    join(rdir, "executions.jsonl"),
    JSON.stringify({ host: hostname(), pid: process.pid, started: new Date().toISOString(), resumedFrom, executor: opts.executor ?? "sweep run" }) + "\n",
  );
  const t0 = Date.now();
  if (requested()) stop.abort();
  let summary;
  try {
    summary = await trainer.run(stop.signal);
  } catch (e) {
    // A stop at the end of a step followed by an evaluation aborts the evaluation: that step is done.
    if (!(e instanceof AbortError) || !requested()) throw e;
    trainer.saveCheckpoint();
    summary = { aborted: true, steps: trainer.currentStep } as const;
  }
  const trainSeconds = before + (Date.now() - t0) / 1000;
  if (summary.aborted) {
    writeFileAtomic(curvePath, JSON.stringify({ ...readCurveAt(curve, trainer.currentStep), seconds: trainSeconds }));
    return { status: "interrupted", step: trainer.currentStep, checkpoint: ckptPath, dir: rdir };
  }
  writeFileAtomic(curvePath, JSON.stringify({ ...curve, seconds: trainSeconds }));
  const model = summary.model;

  const c0 = Date.now();
  opts.onProgress?.({ phase: "check", step: summary.steps, steps: run.config.steps, check: 0, checks: manifest.checks.length });
  let checks: CheckResult[];
  try {
    checks = await runChecks(backend, model, manifest.checks, run.seed, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onCheck: (i) => opts.onProgress?.({ phase: "check", step: summary.steps, steps: run.config.steps, check: i + 1, checks: manifest.checks.length }),
    });
  } catch (e) {
    // Training is done and its checkpoint saved: a rerun goes straight to the checks.
    if (e instanceof AbortError && requested()) return { status: "interrupted", step: summary.steps, checkpoint: ckptPath, dir: rdir };
    throw e;
  }
  const checkSeconds = (Date.now() - c0) / 1000;
  const tail = Math.min(50, curve.loss.length);
  const finalLoss = tail > 0 ? curve.loss.slice(-tail).reduce((a, b) => a + b, 0) / tail : NaN;
  const result: SweepRunResult = {
    version: RESULT_VERSION,
    sweepId: manifest.sweepId,
    id: run.id,
    index: run.index,
    point: run.point,
    seed: run.seed,
    pass: checks.every((c) => c.pass),
    steps: summary.steps,
    trainSeconds,
    checkSeconds,
    finalLoss,
    lastEval: summary.evals.at(-1) ?? null,
    checks,
    paramsSha256: paramsSha256(model),
    device: backend.info().device,
    resumedFrom,
    host: hostname(),
    pid: process.pid,
    finishedAt: new Date().toISOString(),
  };
  saveCheckpoint(join(rdir, "model.json"), model, {
    config: run.config,
    steps: summary.steps,
    seconds: trainSeconds,
    evals: summary.evals,
    sweep: { name: manifest.name, sweepId: manifest.sweepId, id: run.id, index: run.index },
  });
  writeFileAtomic(join(rdir, "log.json"), JSON.stringify({ id: run.id, config: run.config, curve, evals: summary.evals, checks }) + "\n");
  writeFileAtomic(resultPath(dir, run.id), JSON.stringify(result, null, 1) + "\n");
  for (const p of [ckptPath, curvePath]) {
    try {
      unlinkSync(p);
    } catch {
      /* already gone */
    }
  }
  return { status: "done", result, dir: rdir };
}

function readCurveAt(c: Curve, upTo: number): { step: number[]; loss: number[] } {
  const n = c.step.findIndex((s) => s > upTo);
  const keep = n < 0 ? c.step.length : n;
  return { step: c.step.slice(0, keep), loss: c.loss.slice(0, keep) };
}
