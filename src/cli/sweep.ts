/**
 * `sead sweep` (plan, run, local, submit, status, report) and `sead worker`: seeds and
 * hyperparameters as runs, executed by array jobs, on this machine, or from a Redis queue.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createBackend } from "../backend/index.js";
import { writeFileAtomic } from "../io/atomic.js";
import { runLocal } from "../sweep/local.js";
import { planSweep, readManifest, readSweepFile, writePlan } from "../sweep/plan.js";
import { DEFAULT_QUEUE, startWorker, submitSweep, sweepStatus } from "../sweep/queue.js";
import { reportSvg, reportTable, seedPoints, sweepReport } from "../sweep/report.js";
import { runAt, runOne } from "../sweep/run.js";
import { COMMON_HELP, duration, fmt, intFlag, Interrupt, Interrupted, OUT_OPTION, Output, parse, printHelp, stringFlag, threadsFlag, UsageError, valueOptions, type Values } from "./common.js";

export const SWEEP_HELP = `usage: sead sweep plan SWEEP.json --out DIR [--force]
       sead sweep run DIR --index I
       sead sweep local DIR [--workers N]
       sead sweep submit DIR --redis URL [--queue NAME] [--attempts N] [--wait]
       sead sweep status DIR [--redis URL] [--queue NAME]
       sead sweep report DIR [DIR...] [--out FOLDER]

Seeds and hyperparameters as runs: a sweep file (see configs/sweeps/ and docs/sweeps.md) holds a
base training config, a grid over config keys ("lr", "model.cH", ...), seeds, and the checks a
run must pass (lengths, adversarial, trajectory); optionally "stages", later configs that each
fine-tune the previous stage's model.

  plan     checks the sweep file (every problem with its path) and writes DIR/manifest.json:
           every run with a stable id and its full config
  run      one run: trains it (each stage in turn), runs its checks, and writes DIR/runs/<id>/
           (model.json, log.json, result.json) atomically; a complete run is skipped, an
           interrupted one resumes from its checkpoint (in the stage it stopped in). What
           array jobs call (--index $SLURM_ARRAY_TASK_ID)
  local    every run on this machine, --workers N child processes at a time (default 1)
  submit   puts every unfinished run on a BullMQ queue in Redis, for 'sead worker's on any
           number of machines that share DIR
  status   done, running (with progress), queued and failed runs (the queue's view with --redis)
  report   per grid point: seeds passing every check out of those run, mean and spread of the
           final metrics, the best seed, training time; a table (text, or --json) and
           report.json / report.md / report.svg in --out (default: the first DIR)

options:
  --out DIR|FOLDER   plan: the sweep folder; report: where report.* go
  --force            plan: replace another sweep's plan in DIR
  --index I          run: which run (0-based, as in the manifest)
  --workers N        local: runs at a time
  --redis URL        redis://HOST:PORT[/DB] (rediss:// for TLS)
  --queue NAME       the queue (default ${DEFAULT_QUEUE})
  --attempts N       submit: tries per run before it counts as failed (default 3)
  --wait             submit: wait until every run is done or failed, showing progress
  --progress-json    run: progress as JSON lines on stdout (what executors read)

${COMMON_HELP}

exit codes: 0 done (a run that fails its checks is still done: see report), 1 a run failed,
2 bad usage or input (a bad sweep file, an unreachable Redis), 130/143 interrupted.`;

export const WORKER_HELP = `usage: sead worker --redis URL [--queue NAME] [--concurrency N] [--lock-ms MS] [--stalled-ms MS]
                   [--dir DIR] [--idle-exit S]

Takes sweep runs from the queue ('sead sweep submit') and runs each as a child process
('sead sweep run DIR --index I'), reporting its progress to the queue. Start one on every
machine that shares the sweep folder. A worker that dies stops renewing its job's lock: after
--lock-ms another worker finds the job stalled (it looks every --stalled-ms) and resumes the
run from its checkpoint. Ctrl-C / SIGTERM: the runs in progress save a checkpoint and their
jobs go back to the queue.

options:
  --redis URL        redis://HOST:PORT[/DB]
  --queue NAME       default ${DEFAULT_QUEUE}
  --concurrency N    runs at a time on this worker (default 1)
  --lock-ms MS       a job lock not renewed for this long counts as stalled (default 30000)
  --stalled-ms MS    how often to look for stalled jobs (default 30000)
  --dir DIR          the shared sweep folder as mounted here, when its path differs from
                     the submitting machine's
  --idle-exit S      exit once the queue has had nothing to do for S seconds

${COMMON_HELP}`;

function oneDir(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`sweep ${what} needs one sweep folder, got ${positionals.length === 0 ? "none" : positionals.join(" ")}`);
  return positionals[0]!;
}

function redisFlag(values: Values, required: true): string;
function redisFlag(values: Values, required: false): string | undefined;
function redisFlag(values: Values, required: boolean): string | undefined {
  const r = stringFlag(values, "redis");
  if (required && r === undefined) throw new UsageError("needs --redis URL (e.g. redis://127.0.0.1:6379)");
  return r;
}

/**
 * A child of an executor stops when its parent is gone: a SIGKILLed worker or local sweep
 * leaves no run computing behind it (its job goes to another worker, which resumes the run).
 */
function watchParent(): void {
  const want = Number(process.env["SEAD_SWEEP_PARENT"]);
  if (!want) return;
  setInterval(() => {
    if (process.ppid !== want) process.kill(process.pid, "SIGKILL");
  }, 250).unref();
}

export async function cmdSweep(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    (sub === undefined ? process.stderr : process.stdout).write(SWEEP_HELP + "\n");
    return sub === undefined ? 2 : 0;
  }
  const { values, positionals } = parse(rest, {
    ...OUT_OPTION,
    ...valueOptions("index", "workers", "redis", "queue", "attempts", "executor"),
    force: { type: "boolean" },
    wait: { type: "boolean" },
    "progress-json": { type: "boolean" },
  });
  if (values["help"]) return printHelp(SWEEP_HELP);
  const out = new Output(values);
  switch (sub) {
    case "plan": {
      if (positionals.length !== 1) throw new UsageError("sweep plan needs one sweep file: sead sweep plan SWEEP.json --out DIR");
      const dir = stringFlag(values, "out");
      if (dir === undefined) throw new UsageError("sweep plan needs --out DIR, the folder the runs go to");
      const { file, base, stages } = readSweepFile(positionals[0]!);
      const manifest = planSweep(file, base, positionals[0]!, stages);
      const { written } = writePlan(manifest, dir, values["force"] === true);
      out.doc({ dir, name: manifest.name, sweepId: manifest.sweepId, runs: manifest.runs.map((r) => ({ index: r.index, id: r.id })), written });
      out.line(`${written ? "planned" : "already planned"} ${manifest.name}: ${manifest.runs.length} runs (${manifest.points.length} grid point${manifest.points.length === 1 ? "" : "s"} x ${manifest.seeds.length} seeds${manifest.stages ? `, ${manifest.stages.length} stages each` : ""}) in ${dir}`);
      for (const r of manifest.runs) out.line(`  ${String(r.index).padStart(3)}  ${r.id}`);
      out.line(`next: sead sweep local ${dir} --workers N, or sead sweep run ${dir} --index I for I in 0..${manifest.runs.length - 1}`);
      return 0;
    }
    case "run": {
      const dir = oneDir(positionals, "run");
      const index = intFlag(values, "index", 0);
      if (index === undefined) throw new UsageError("sweep run needs --index I (an array job passes $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX)");
      const manifest = readManifest(dir);
      const run = runAt(manifest, index);
      const threads = threadsFlag(values);
      if (values["backend"] !== undefined) throw new UsageError("sweep run computes where the sweep file says (its \"backend\"), so that every executor gives the same parameters; --backend is not taken");
      const progressJson = values["progress-json"] === true;
      const emit = (e: unknown) => progressJson && process.stdout.write(JSON.stringify(e) + "\n");
      watchParent();
      const it = new Interrupt();
      let r;
      try {
        r = await runOne(dir, index, {
          signal: it.signal,
          backend: createBackend({ ...manifest.backend, ...(threads !== undefined ? { threads } : {}) }),
          ...(progressJson ? { onProgress: (p) => emit({ event: "progress", ...p }) } : {}),
          executor: stringFlag(values, "executor") ?? "sweep run",
        });
      } finally {
        it.dispose();
      }
      if (r.status === "interrupted") {
        emit({ event: "end", status: "interrupted", id: run.id, step: r.step });
        throw new Interrupted(`run ${index} (${run.id}) interrupted at step ${fmt(r.step)}: checkpoint saved to ${r.checkpoint}; the same command resumes it`, it.code() ?? 130);
      }
      const res = r.result;
      emit({ event: "end", status: r.status, id: run.id, pass: res.pass, paramsSha256: res.paramsSha256 });
      if (!progressJson) out.doc({ status: r.status, dir: r.dir, result: res });
      if (!progressJson) {
        out.line(
          `run ${index} (${run.id}): ${r.status === "skipped" ? "already complete" : `trained ${fmt(res.steps)} steps${res.stages ? ` (${res.stages.length} stages)` : ""} in ${duration(res.trainSeconds)}${res.resumedFrom !== null ? ` (resumed at step ${fmt(res.resumedFrom)})` : ""}`}, final loss ${res.finalLoss.toPrecision(3)}`,
        );
        for (const c of res.checks) out.line(`  ${c.pass ? "pass" : "FAIL"}  ${c.name}: ${(c.accuracy * 100).toFixed(1)}% of ${fmt(c.samples)}, mean ${c.meanSteps.toFixed(1)} steps`);
        out.line(`${res.pass ? "passed every check" : "did not pass every check"}; written to ${r.dir}`);
      }
      return 0;
    }
    case "local": {
      const dir = oneDir(positionals, "local");
      const workers = intFlag(values, "workers", 1, 1024) ?? 1;
      const manifest = readManifest(dir);
      const it = new Interrupt();
      let s;
      try {
        s = await runLocal(dir, {
          workers,
          signal: it.signal,
          onEvent: (i, e) => {
            if (e.event === "end" && e.status !== "interrupted") out.line(`run ${i} (${e.id}): ${e.status}${e.pass === undefined ? "" : e.pass ? ", passed" : ", did not pass"}`);
          },
          onExit: (i, code, stderr) => {
            if (code !== 0 && !it.signal.aborted) process.stderr.write(`sead sweep local: run ${i} failed (exit ${code}): ${stderr.trim().split("\n").at(-1) ?? ""}\n`);
          },
        });
      } finally {
        it.dispose();
      }
      out.doc(s);
      out.line(`${manifest.name}: ${s.done} run, ${s.skipped} already complete, ${s.failed.length} failed, ${s.interrupted} interrupted, in ${duration(s.seconds)} with ${workers} worker${workers === 1 ? "" : "s"}`);
      const code = it.code();
      if (code !== undefined) throw new Interrupted(`interrupted: the runs in progress saved checkpoints; sead sweep local ${dir} resumes them`, code);
      return s.failed.length > 0 ? 1 : 0;
    }
    case "submit": {
      const dir = oneDir(positionals, "submit");
      const redis = redisFlag(values, true);
      const queue = stringFlag(values, "queue") ?? DEFAULT_QUEUE;
      const attempts = intFlag(values, "attempts", 1, 1000) ?? 3;
      const manifest = readManifest(dir);
      const s = await submitSweep(dir, { redis, queue, attempts });
      out.line(`${manifest.name}: ${s.added} runs queued on ${queue}${s.retried ? `, ${s.retried} failed runs queued again` : ""}${s.present ? `, ${s.present} already queued or running` : ""}${s.complete ? `, ${s.complete} already complete` : ""}`);
      if (values["wait"] !== true) {
        out.doc(s);
        out.line(`start workers on machines that share ${dir}: sead worker --redis ${redis}${queue !== DEFAULT_QUEUE ? ` --queue ${queue}` : ""}`);
        return 0;
      }
      const it = new Interrupt();
      try {
        let last = "";
        for (;;) {
          const st = await sweepStatus(dir, { redis, queue });
          const line = `done ${st.counts.done}, running ${st.counts.running}, queued ${st.counts.queued}, failed ${st.counts.failed} of ${st.runs.length}`;
          if (line !== last) out.line(line);
          last = line;
          if (st.counts.done + st.counts.failed === st.runs.length) {
            out.doc({ ...s, counts: st.counts });
            return st.counts.failed > 0 ? 1 : 0;
          }
          await new Promise((r) => setTimeout(r, 1000));
          if (it.signal.aborted) throw new Interrupted("stopped waiting (the runs go on on the workers)", it.code() ?? 130);
        }
      } finally {
        it.dispose();
      }
    }
    case "status": {
      const dir = oneDir(positionals, "status");
      const redis = redisFlag(values, false);
      const st = await sweepStatus(dir, { ...(redis ? { redis } : {}), queue: stringFlag(values, "queue") ?? DEFAULT_QUEUE });
      out.doc(st);
      out.line(`${st.name} (${st.sweepId}): ${Object.entries(st.counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(", ")}`);
      for (const r of st.runs) {
        let detail = "";
        if (r.state === "done") detail = r.pass ? "passed" : "did not pass";
        if (r.state === "running" && r.progress?.event === "progress") {
          const p = r.progress;
          detail = p.phase === "train" ? `step ${fmt(p.step)} of ${fmt(p.steps)} (${((100 * p.step) / p.steps).toFixed(0)}%)` : `checks ${p.check ?? 0} of ${p.checks ?? 0}`;
          if (p.worker) detail += ` on ${p.worker}`;
        }
        if (r.state === "failed") detail = `after ${r.attempts} attempts: ${r.failedReason ?? ""}`;
        if (r.state === "started") detail = `checkpoint at step ${fmt(r.checkpointStep ?? 0)} (running, or interrupted: sweep run resumes it)`;
        out.line(`  ${String(r.index).padStart(3)}  ${r.state.padEnd(11)} ${r.id}${detail ? `  ${detail}` : ""}`);
      }
      return 0;
    }
    case "report": {
      if (positionals.length === 0) throw new UsageError("sweep report needs one or more sweep folders");
      const dest = stringFlag(values, "out") ?? positionals[0]!;
      const r = sweepReport(positionals);
      const table = reportTable(r);
      mkdirSync(dest, { recursive: true });
      writeFileAtomic(join(dest, "report.json"), JSON.stringify(r, null, 1) + "\n");
      writeFileAtomic(join(dest, "report.md"), table + "\n");
      writeFileAtomic(join(dest, "report.svg"), reportSvg(r, seedPoints(positionals)));
      out.doc(r);
      out.line(table);
      out.line(`\nwritten: ${join(dest, "report.md")}, report.json, report.svg`);
      return 0;
    }
    default:
      throw new UsageError(`unknown sweep command ${JSON.stringify(sub)}; the commands are plan, run, local, submit, status, report (sead sweep --help)`);
  }
}

export async function cmdWorker(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, valueOptions("redis", "queue", "concurrency", "lock-ms", "stalled-ms", "dir", "idle-exit"));
  if (values["help"]) return printHelp(WORKER_HELP);
  if (positionals.length > 0) throw new UsageError(`worker takes no arguments, got ${positionals.join(" ")} (the jobs name their sweep folder; --dir overrides it)`);
  const redis = redisFlag(values, true);
  const out = new Output(values);
  const lockMs = intFlag(values, "lock-ms", 100, 86_400_000);
  const stalledMs = intFlag(values, "stalled-ms", 100, 86_400_000);
  const concurrency = intFlag(values, "concurrency", 1, 256);
  const idle = intFlag(values, "idle-exit", 0, 86_400 * 365);
  const dir = stringFlag(values, "dir");
  const queue = stringFlag(values, "queue") ?? DEFAULT_QUEUE;
  const it = new Interrupt();
  try {
    const log = (line: string) => out.line(`[${new Date().toISOString()}] ${line}`);
    log(`worker ${process.pid} on ${queue} at ${redis}`);
    const s = await startWorker({
      redis,
      queue,
      signal: it.signal,
      log,
      ...(lockMs !== undefined ? { lockDurationMs: lockMs } : {}),
      ...(stalledMs !== undefined ? { stalledIntervalMs: stalledMs } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(idle !== undefined ? { idleExitMs: idle * 1000 } : {}),
      ...(dir !== undefined ? { dir } : {}),
    });
    out.doc(s);
    log(`worker ${process.pid} stopping: ${s.done} runs done, ${s.failed} failed`);
  } finally {
    it.dispose();
  }
  const code = it.code();
  if (code !== undefined) throw new Interrupted("stopped: the runs in progress saved checkpoints and go back to the queue", code);
  return 0;
}
