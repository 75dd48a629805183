/**
 * Sweeps across machines: a BullMQ queue on Redis. `submitSweep` puts one job per unfinished
 * run (job id = sweep id + run id, so submitting twice adds nothing); `startWorker` takes jobs and
 * runs each as a child process (`sead sweep run DIR --index I`), which keeps BullMQ's lock renewal
 * on an event loop that training never blocks. Workers on any number of machines share DIR (a
 * shared file system). A worker killed mid-run stops renewing its lock: after lockDuration the
 * job is found stalled (checked every stalledInterval by the other workers) and goes back to the
 * queue, and the next worker resumes the run from its checkpoint.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { ConnectionOptions, Job, Queue } from "bullmq";

/** bullmq (and ioredis under it) load only for the commands that talk to Redis: a run's child
 * process, which starts once per run, does without them. */
const bullmq = () => import("bullmq");
import { InvalidInputError } from "../errors.js";
import { type Manifest, readManifest, runDir } from "./plan.js";
import { type ChildEvent, spawnRun } from "./local.js";
import { readResult } from "./run.js";

export const DEFAULT_QUEUE = "sead-sweep";

export interface RedisTarget {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  tls: boolean;
}

/** redis://[user:password@]host[:port][/db] or rediss://... (TLS). */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError(`--redis ${url} is not a URL; write redis://HOST:PORT (e.g. redis://127.0.0.1:6379)`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new InvalidInputError(`--redis ${url}: the URL must start with redis:// or rediss://`);
  const db = u.pathname && u.pathname !== "/" ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new InvalidInputError(`--redis ${url}: the database (the path) must be a whole number`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db,
    tls: u.protocol === "rediss:",
  };
}

function connection(t: RedisTarget): ConnectionOptions {
  return {
    host: t.host,
    port: t.port,
    db: t.db,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
    // Reconnect for ever (a restarted Redis), waiting at most 2 s between tries.
    retryStrategy: (times: number) => Math.min(2000, 100 * times),
    maxRetriesPerRequest: null,
  };
}

/** A Redis command in RESP. */
const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;

/**
 * Checks that Redis answers (AUTH and SELECT when the URL asks, then PING) within `timeoutMs`,
 * so a wrong address is one clear line instead of a client retrying for ever.
 */
export function pingRedis(t: RedisTarget, url: string, timeoutMs = 3000): Promise<void> {
  return new Promise((resolveP, reject) => {
    const where = `${t.host}:${t.port}`;
    let settled = false;
    let sock: Socket;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      sock?.destroy();
      reject(new InvalidInputError(`cannot reach Redis at ${url} (${why}); is redis-server running there, and is ${where} reachable from here?`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    const onConnect = () => {
      let cmds = "";
      if (t.password) cmds += t.username ? resp("AUTH", t.username, t.password) : resp("AUTH", t.password);
      if (t.db) cmds += resp("SELECT", String(t.db));
      cmds += resp("PING");
      sock.write(cmds);
    };
    sock = t.tls ? tlsConnect({ host: t.host, port: t.port, servername: t.host }, onConnect) : netConnect({ host: t.host, port: t.port }, onConnect);
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      const err = /^-(.*)\r\n/m.exec(buf);
      if (err) {
        clearTimeout(timer);
        fail(`Redis said: ${err[1]}`);
        return;
      }
      if (buf.includes("+PONG\r\n")) {
        clearTimeout(timer);
        settled = true;
        sock.end();
        resolveP();
      }
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(e.code ?? e.message);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      fail("the connection was closed");
    });
  });
}

export interface JobData {
  dir: string;
  sweepId: string;
  name: string;
  index: number;
  id: string;
}

export const jobId = (m: Manifest, index: number) => `${m.sweepId}-${m.runs[index]!.id}`;

export interface SubmitOptions {
  redis: string;
  queue?: string;
  /** Tries per run before it counts as failed (default 3): a crashed child uses one; a stopped worker does not. */
  attempts?: number;
}

/** Puts a job on the queue for every run without a result; failed jobs of earlier submissions are retried. */
export async function submitSweep(dir: string, opts: SubmitOptions): Promise<{ added: number; retried: number; complete: number; present: number }> {
  const manifest = readManifest(dir);
  const target = parseRedisUrl(opts.redis);
  await pingRedis(target, opts.redis);
  const queue = new (await bullmq()).Queue<JobData>(opts.queue ?? DEFAULT_QUEUE, { connection: connection(target) });
  queue.on("error", () => {});
  try {
    let added = 0;
    let retried = 0;
    let complete = 0;
    let present = 0;
    const adds = [];
    for (const run of manifest.runs) {
      if (readResult(dir, run, manifest.sweepId)) {
        complete++;
        continue;
      }
      const id = jobId(manifest, run.index);
      const job = await queue.getJob(id);
      if (job) {
        const state = await job.getState();
        if (state === "failed" || state === "completed") {
          await job.retry(state);
          retried++;
        } else present++;
        continue;
      }
      adds.push({
        name: `${manifest.name}/${run.id}`,
        data: { dir: resolve(dir), sweepId: manifest.sweepId, name: manifest.name, index: run.index, id: run.id },
        opts: { jobId: id, attempts: opts.attempts ?? 3, backoff: { type: "fixed", delay: 1000 }, removeOnComplete: false, removeOnFail: false },
      });
    }
    if (adds.length > 0) await queue.addBulk(adds);
    added = adds.length;
    return { added, retried, complete, present };
  } finally {
    await queue.close();
  }
}

/** "started": not done, no job in the queue (or no queue asked), but a checkpoint on disk (an
 * array task running or interrupted); "not started": nothing yet. */
export type RunState = "done" | "running" | "queued" | "failed" | "started" | "not started";

export interface RunStatus {
  index: number;
  id: string;
  state: RunState;
  pass?: boolean;
  /** Running: the job's last progress report. */
  progress?: ChildEvent & { host?: string; worker?: string };
  attempts?: number;
  failedReason?: string;
  /** "started": the step of the checkpoint on disk. */
  checkpointStep?: number;
}

/**
 * The last step (over every stage) of a run's saved loss curve, written with each checkpoint and
 * at the end of each stage, if the run has a checkpoint or a finished stage.
 */
function checkpointStep(dir: string, id: string): number | undefined {
  const rdir = runDir(dir, id);
  const p = join(rdir, "curve.json");
  if (!existsSync(p) || !readdirSync(rdir).some((f) => f.endsWith(".json.ckpt") || /^stage-\d+\.json$/.test(f))) return undefined;
  try {
    return (JSON.parse(readFileSync(p, "utf8")) as { step: number[] }).step.at(-1) ?? 0;
  } catch {
    return 0;
  }
}

export interface SweepStatus {
  name: string;
  sweepId: string;
  counts: Record<RunState, number>;
  runs: RunStatus[];
}

/** Where every run stands: done (a result on disk), and from the queue running, queued or failed. */
export async function sweepStatus(dir: string, opts: { redis?: string; queue?: string } = {}): Promise<SweepStatus> {
  const manifest = readManifest(dir);
  let queue: Queue<JobData> | undefined;
  if (opts.redis) {
    const target = parseRedisUrl(opts.redis);
    await pingRedis(target, opts.redis);
    queue = new (await bullmq()).Queue<JobData>(opts.queue ?? DEFAULT_QUEUE, { connection: connection(target) });
    queue.on("error", () => {});
  }
  try {
    const runs: RunStatus[] = [];
    for (const run of manifest.runs) {
      const result = readResult(dir, run, manifest.sweepId);
      if (result) {
        runs.push({ index: run.index, id: run.id, state: "done", pass: result.pass });
        continue;
      }
      const job = queue ? await queue.getJob(jobId(manifest, run.index)) : undefined;
      if (!job) {
        const step = checkpointStep(dir, run.id);
        runs.push({ index: run.index, id: run.id, state: step === undefined ? "not started" : "started", ...(step !== undefined ? { checkpointStep: step } : {}) });
        continue;
      }
      const s = await job.getState();
      const state: RunState = s === "active" ? "running" : s === "failed" ? "failed" : s === "completed" ? "done" : "queued";
      const progress = typeof job.progress === "object" && job.progress !== null ? (job.progress as RunStatus["progress"]) : undefined;
      runs.push({
        index: run.index,
        id: run.id,
        state,
        ...(state === "running" && progress ? { progress } : {}),
        attempts: job.attemptsMade,
        ...(job.failedReason ? { failedReason: job.failedReason } : {}),
      });
    }
    const counts: Record<RunState, number> = { done: 0, running: 0, queued: 0, failed: 0, started: 0, "not started": 0 };
    for (const r of runs) counts[r.state]++;
    return { name: manifest.name, sweepId: manifest.sweepId, counts, runs };
  } finally {
    await queue?.close();
  }
}

export interface WorkerOptions {
  redis: string;
  queue?: string;
  /** Runs at a time on this worker (default 1). */
  concurrency?: number;
  /** A job whose lock is not renewed for this long counts as stalled (default 30,000 ms). */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (default 30,000 ms). */
  stalledIntervalMs?: number;
  /** How many times a job may stall before it fails (default 5). */
  maxStalledCount?: number;
  /** Overrides the sweep folder the jobs name (a shared file system mounted elsewhere here). */
  dir?: string;
  /** Exit after the queue has had nothing waiting, delayed or active for this long. */
  idleExitMs?: number;
  command?: string[];
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** Takes jobs until the signal (or, with idleExitMs, until the queue stays empty). */
export async function startWorker(opts: WorkerOptions): Promise<{ done: number; failed: number }> {
  const target = parseRedisUrl(opts.redis);
  await pingRedis(target, opts.redis);
  const log = opts.log ?? (() => {});
  const me = `${hostname()}:${process.pid}`;
  const children = new Set<import("node:child_process").ChildProcess>();
  let done = 0;
  let failed = 0;
  // Set when this worker is asked to stop: the runs it interrupts then go back on the queue.
  let stopping = false;
  const { Worker, WaitingError } = await bullmq();
  const processor = async (job: Job<JobData>, token?: string) => {
    const dir = opts.dir ?? job.data.dir;
    const manifest = readManifest(dir);
    if (manifest.sweepId !== job.data.sweepId) {
      throw new Error(`${dir} holds sweep ${manifest.sweepId}, but the job is for sweep ${job.data.sweepId} (give the shared folder with --dir)`);
    }
    log(`run ${job.data.index} (${job.data.id}) of ${job.data.name}: started${job.attemptsMade > 0 ? ` (attempt ${job.attemptsMade + 1})` : ""}`);
    const r = spawnRun(dir, job.data.index, {
      ...(opts.command ? { command: opts.command } : {}),
      executor: `worker ${me} job ${job.id}`,
      onEvent: (e) => {
        if (e.event === "progress") job.updateProgress({ ...e, worker: me }).catch(() => {});
      },
    });
    children.add(r.child);
    const { code, end, stderr } = await r.done;
    children.delete(r.child);
    if (code === 0 && end && end.event === "end" && end.status !== "interrupted") {
      log(`run ${job.data.index} (${job.data.id}): ${end.status}${end.pass === undefined ? "" : end.pass ? ", passed" : ", did not pass"}`);
      return { status: end.status, pass: end.pass, paramsSha256: end.paramsSha256, worker: me };
    }
    const interrupted = end?.event === "end" && end.status === "interrupted";
    if (interrupted && stopping) {
      // Stopping a worker is not the run's fault: back to waiting, the try not counted (a thrown
      // error would use one of its attempts), for any worker to resume from the checkpoint.
      await job.moveToWait(token);
      log(`run ${job.data.index} (${job.data.id}): interrupted, back on the queue`);
      throw new WaitingError();
    }
    const why = stderr.trim().split("\n").at(-1) || `exit code ${code}`;
    log(`run ${job.data.index} (${job.data.id}): ${interrupted ? "interrupted" : "failed"}: ${why}`);
    throw new Error(`sead sweep run ${job.data.index} on ${me}: ${why}`);
  };
  const worker = new Worker<JobData>(opts.queue ?? DEFAULT_QUEUE, processor, {
    connection: connection(target),
    concurrency: opts.concurrency ?? 1,
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
    maxStalledCount: opts.maxStalledCount ?? 5,
    autorun: false,
  });
  let lastError = "";
  worker.on("error", (e) => {
    // Connection errors while Redis restarts: the client reconnects on its own.
    const m = e.message.split("\n")[0]!;
    if (m !== lastError) log(`redis: ${m} (retrying)`);
    lastError = m;
  });
  worker.on("completed", () => {
    done++;
    lastError = "";
  });
  worker.on("failed", () => {
    failed++;
  });
  const running = worker.run();
  let idleTimer: NodeJS.Timeout | undefined;
  let idleQueue: Queue<JobData> | undefined;
  const stop = async () => {
    stopping = true;
    if (idleTimer) clearInterval(idleTimer);
    // The children save a checkpoint at the end of their step; their jobs go back on the queue.
    for (const c of children) c.kill("SIGTERM");
    await worker.close();
  };
  if (opts.idleExitMs !== undefined) {
    const queue = new (await bullmq()).Queue<JobData>(opts.queue ?? DEFAULT_QUEUE, { connection: connection(target) });
    idleQueue = queue;
    queue.on("error", () => {});
    let idleSince = Date.now();
    let checking = false;
    idleTimer = setInterval(async () => {
      if (checking) return;
      checking = true;
      try {
        const c = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "paused");
        const busy = Object.values(c).reduce((a, b) => a + b, 0) > 0 || children.size > 0;
        if (busy) idleSince = Date.now();
        else if (Date.now() - idleSince >= opts.idleExitMs!) await stop();
      } catch {
        idleSince = Date.now();
      } finally {
        checking = false;
      }
    }, 500);
  }
  const onAbort = () => void stop();
  opts.signal?.addEventListener("abort", onAbort);
  try {
    await running;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    if (idleTimer) clearInterval(idleTimer);
    await idleQueue?.close().catch(() => {});
  }
  return { done, failed };
}
