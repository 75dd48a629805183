/**
 * Running a sweep's runs as child processes (`sead sweep run DIR --index I --progress-json`):
 * `sweep local` runs them all on this machine, N at a time; the queue's workers run one each.
 * A child per run keeps the CPU-heavy training off the parent's event loop and gives every
 * executor the same code path, so a run's result does not depend on who ran it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readManifest } from "./plan.js";
import { readResult, type RunProgress } from "./run.js";

/** The command that runs `sead` here: the compiled CLI, or the TypeScript one through tsx. */
export function seadCommand(): string[] {
  const js = join(__dirname, "..", "cli", "main.js");
  if (existsSync(js) && __filename.endsWith(".js")) return [process.execPath, js];
  return [process.execPath, "--import=tsx", join(__dirname, "..", "cli", "main.ts")];
}

/** What a child prints on stdout with --progress-json, one JSON object a line. */
export type ChildEvent =
  | ({ event: "progress" } & RunProgress)
  | { event: "end"; status: "done" | "skipped" | "interrupted"; id: string; pass?: boolean; paramsSha256?: string; step?: number };

export interface ChildRun {
  child: ChildProcess;
  /** Resolves with the exit code (or 128 + signal number) and the last "end" event. */
  done: Promise<{ code: number; signal: NodeJS.Signals | null; end: ChildEvent | undefined; stderr: string }>;
}

/** Starts `sead sweep run DIR --index I --progress-json` as a child process. */
export function spawnRun(
  dir: string,
  index: number,
  opts: { command?: string[]; onEvent?: (e: ChildEvent) => void; executor?: string; env?: NodeJS.ProcessEnv } = {},
): ChildRun {
  const [cmd, ...args] = opts.command ?? seadCommand();
  const child = spawn(cmd!, [...args, "sweep", "run", dir, "--index", String(index), "--progress-json", ...(opts.executor ? ["--executor", opts.executor] : [])], {
    stdio: ["pipe", "pipe", "pipe"],
    // The child watches this pid and stops when its parent is gone (a SIGKILLed worker leaves no run behind).
    env: { ...process.env, ...opts.env, SEAD_SWEEP_PARENT: String(process.pid) },
  });
  let end: ChildEvent | undefined;
  let buf = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const e = JSON.parse(line) as ChildEvent;
        if (e.event === "end") end = e;
        opts.onEvent?.(e);
      } catch {
        /* not an event line */
      }
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const done = new Promise<{ code: number; signal: NodeJS.Signals | null; end: ChildEvent | undefined; stderr: string }>((resolve) => {
    child.on("close", (code, signal) => resolve({ code: code ?? 128, signal, end, stderr }));
    child.on("error", (e) => resolve({ code: 127, signal: null, end, stderr: stderr + String(e) }));
  });
  return { child, done };
}

export interface LocalOptions {
  workers: number;
  command?: string[];
  signal?: AbortSignal;
  onEvent?: (index: number, e: ChildEvent) => void;
  onExit?: (index: number, code: number, stderr: string) => void;
}

export interface LocalSummary {
  runs: number;
  done: number;
  skipped: number;
  failed: { index: number; code: number; stderr: string }[];
  interrupted: number;
  seconds: number;
}

/**
 * Runs every run of the sweep in `dir` on this machine, `workers` child processes at a time
 * (complete runs are skipped by the children themselves). On the signal, the children get
 * SIGTERM: each saves its checkpoint at the end of its step, and the sweep resumes later.
 */
export async function runLocal(dir: string, opts: LocalOptions): Promise<LocalSummary> {
  const manifest = readManifest(dir);
  const started = Date.now();
  const pending = manifest.runs.filter((r) => !readResult(dir, r, manifest.sweepId)).map((r) => r.index);
  const summary: LocalSummary = { runs: manifest.runs.length, done: 0, skipped: manifest.runs.length - pending.length, failed: [], interrupted: 0, seconds: 0 };
  const live = new Set<ChildProcess>();
  const onAbort = () => {
    for (const c of live) c.kill("SIGTERM");
  };
  opts.signal?.addEventListener("abort", onAbort);
  const worker = async () => {
    for (;;) {
      if (opts.signal?.aborted) return;
      const index = pending.shift();
      if (index === undefined) return;
      const r = spawnRun(dir, index, {
        ...(opts.command ? { command: opts.command } : {}),
        executor: "sweep local",
        onEvent: (e) => opts.onEvent?.(index, e),
      });
      live.add(r.child);
      const { code, end, stderr } = await r.done;
      live.delete(r.child);
      opts.onExit?.(index, code, stderr);
      if (end && end.event === "end" && end.status === "interrupted") summary.interrupted++;
      else if (code === 0 && end && end.event === "end" && end.status === "skipped") summary.skipped++;
      else if (code === 0) summary.done++;
      else if (opts.signal?.aborted) summary.interrupted++;
      else summary.failed.push({ index, code, stderr: stderr.trim().split("\n").at(-1) ?? "" });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.workers) }, worker));
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
