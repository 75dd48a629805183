/**
 * Sweeps end to end, with real parts: a real redis-server (started here on a free loopback port,
 * stopped after), real worker processes (`sead worker`), real child runs (`sead sweep run`).
 * Tiny parity and Rule 110 configs, 4 seeds each: every run is done exactly once, and the queue's
 * results equal `sweep local`'s and an in-process run's bit for bit; a worker SIGKILLed mid-run
 * loses nothing; a Redis restarted mid-sweep is survived; an unreachable Redis is one line and
 * exit 2; bad sweep files are refused with the path of the problem. A two-stage sweep (parity,
 * then a fine-tuning stage from its model) gives the parameters of the stages trained by hand,
 * and a run interrupted in either stage resumes there (stage 1 is not trained again).
 */
import test from "ava";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { createBackend } from "../src/backend/index.js";
import { checkSweepFile, planSweep, readManifest, readSweepFile, writePlan } from "../src/sweep/plan.js";
import { jobId, parseRedisUrl, pingRedis, sweepStatus } from "../src/sweep/queue.js";
import { paramsSha256, readResult, runOne, type SweepRunResult } from "../src/sweep/run.js";
import { reportTable, sweepReport } from "../src/sweep/report.js";
import { Trainer } from "../src/train/trainer.js";
import { loadCheckpoint, saveCheckpoint } from "../src/model/checkpoint.js";
import { tinyConfig } from "./helpers.js";

const root = join(__dirname, "..");
const main = join(root, "src", "cli", "main.ts");
const work = mkdtempSync(join(tmpdir(), "sead-sweep-test-"));

// A sweep's base config names no seed (the sweep gives each run its own).
const { seed: _p, ...tinyParity } = tinyConfig({ name: "parity" }, {
  model: { cH: 4, features: 8 }, steps: 40, batch: 16, lengths: { min: 1, max: 8 }, unroll: { min: 8, max: 12 }, warmup: 5, evalEvery: 20, evalLengths: [8], evalSamples: 8, checkpointEvery: 10,
});
const { seed: _r, ...tinyRule110 } = tinyConfig({ name: "elementary", rule: 110, boundary: "periodic" }, {
  model: { cH: 4, features: 8 }, steps: 40, batch: 16, lengths: { min: 8, max: 16 }, unroll: { min: 4, max: 8 }, warmup: 5, checkpointEvery: 10,
});
const paritySweep = {
  name: "tiny-parity",
  base: tinyParity,
  seeds: [1, 2, 3, 4],
  checks: [
    { kind: "lengths", lengths: [{ from: 1, to: 8 }], samples: 4, maxSteps: 64 },
    { kind: "lengths", lengths: [32], samples: 2, maxSteps: 64 },
  ],
};
const rule110Sweep = {
  name: "tiny-rule110",
  base: tinyRule110,
  seeds: [1, 2, 3, 4],
  checks: [
    { kind: "lengths", lengths: [64], samples: 4, maxSteps: 64 },
    { kind: "trajectory", width: 32, generations: 5, starts: 2, maxSteps: 64 },
  ],
};

/** A fine-tuning stage for tinyParity: fewer steps, a lower learning rate, longer inputs. */
const tinyParityFinetune = {
  ...tinyParity,
  steps: 30,
  lr: 0.001,
  lrMin: 1e-5,
  warmup: 3,
  lengths: { min: 4, max: 12 },
  evalEvery: 0,
  checkpointEvery: 5,
  // Replaced by the sweep (the previous stage's model, and the run's seed).
  init: "somewhere/else.json",
  seed: 99,
};
const stagedSweep = {
  name: "tiny-parity-staged",
  base: tinyParity,
  stages: [{ name: "finetune", config: "finetune.json" }],
  seeds: [1, 2],
  checks: [{ kind: "lengths", lengths: [{ from: 1, to: 8 }], samples: 4, maxSteps: 64 }],
};

/** Writes the staged sweep and its stage config to `folder` and plans it into folder/plan. */
function planStaged(folder: string): string {
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "finetune.json"), JSON.stringify(tinyParityFinetune));
  writeFileSync(join(folder, "sweep.json"), JSON.stringify(stagedSweep));
  const { file, base, stages } = readSweepFile(join(folder, "sweep.json"));
  const dir = join(folder, "plan");
  writePlan(planSweep(file, base, "sweep.json", stages), dir);
  return dir;
}

function plan(sweep: unknown, dir: string): string {
  const { file, base } = checkSweepFile(sweep);
  writePlan(planSweep(file, base), dir);
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A redis-server on 127.0.0.1:port, its append-only file in `dir` (so a restart keeps the queue). */
class Redis {
  proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", this.dir, "--daemonize", "no"];
    this.proc = spawn("redis-server", args, { stdio: "ignore" });
    await waitFor("redis-server to answer", () => pingRedis(parseRedisUrl(this.url), this.url, 500).then(() => true, () => false), 15_000);
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    await exited;
    this.proc = undefined;
  }
}

/** `sead ARGS` through tsx, as a child. */
function sead(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const p = spawn(process.execPath, ["--import=tsx", main, ...args], { cwd: root, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (d) => (stdout += d));
  p.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    p.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { proc: p, done };
}

function results(dir: string): SweepRunResult[] {
  const m = readManifest(dir);
  return m.runs.map((r) => readResult(dir, r, m.sweepId)!).filter(Boolean);
}

function executions(dir: string, id: string): { pid: number; resumedFrom: number | null }[] {
  const p = join(dir, "runs", id, "executions.jsonl");
  if (!existsSync(p)) return [];
  return readFileSync(p, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** Everything that must be equal bit for bit between executors (not times, hosts or pids). */
function essence(r: SweepRunResult) {
  return {
    id: r.id,
    paramsSha256: r.paramsSha256,
    steps: r.steps,
    finalLoss: r.finalLoss,
    lastEval: r.lastEval,
    pass: r.pass,
    checks: r.checks.map(({ seconds: _s, ...c }) => c),
  };
}

/** The trained model's parameters, as written to model.json. */
function modelParams(dir: string, id: string): string {
  return paramsSha256(loadCheckpoint(join(dir, "runs", id, "model.json")).model);
}

/** No temporary files, and every result parses. */
function tidy(dir: string): string[] {
  const problems: string[] = [];
  for (const id of readdirSync(join(dir, "runs"))) {
    for (const f of readdirSync(join(dir, "runs", id))) {
      if (f.endsWith(".tmp")) problems.push(`${id}/${f}`);
      if (f === "model.json.ckpt" && existsSync(join(dir, "runs", id, "result.json"))) problems.push(`${id}/${f} left after the result`);
    }
  }
  return problems;
}

let redis: Redis;
let localA: string;
let localB: string;

test.before(async () => {
  const which = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (which.error) throw new Error("redis-server is not installed (apt-get install redis-server; .ci/run does it)");
  redis = new Redis(await freePort(), join(work, "redis"));
  await redis.start();
});

test.after.always(async () => {
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
});

test.serial("bad sweep files are refused with the path of the problem", async (t) => {
  const bad = (v: unknown) => t.throws(() => planSweep(checkSweepFile(v, "s.json").file, checkSweepFile(v, "s.json").base, "s.json")).message;
  t.regex(bad({ ...paritySweep, bogus: 1 }), /^s\.json: unknown key "bogus"/);
  t.regex(bad({ ...paritySweep, seeds: [1, 1] }), /s\.json: seeds: seeds must differ/);
  t.regex(bad({ ...paritySweep, checks: [{ kind: "lengths", lengths: [0], samples: 4 }] }), /s\.json: checks\[0\]\.lengths\[0\]/);
  t.regex(bad({ ...paritySweep, checks: [{ kind: "nope" }] }), /s\.json: checks\[0\]\.kind/);
  t.regex(bad({ ...paritySweep, grid: { lr: [0.01, -1] } }), /s\.json: grid\["lr"\]\[1\] \(lr=-1\): config\.lr/);
  t.regex(bad({ ...paritySweep, grid: { "model.cH": [4, 0] } }), /s\.json: grid\["model\.cH"\]\[1\] .*config\.model\.cH/);
  t.regex(bad({ ...paritySweep, grid: { "no such": [1] } }), /s\.json: grid\.no such: a grid key/);
  t.regex(bad({ ...paritySweep, grid: { seed: [1, 2] } }), /s\.json: grid\.seed: seeds go in "seeds"/);
  t.regex(bad({ ...paritySweep, base: "missing.json" }), /s\.json: base: config file missing\.json does not exist/);
  // Through the CLI: one line on stderr, exit 2.
  const file = join(work, "bad.json");
  writeFileSync(file, JSON.stringify({ ...paritySweep, grid: { noiseStd: [0.01, "x"] } }));
  const r = await sead(["sweep", "plan", file, "--out", join(work, "bad")]).done;
  t.is(r.code, 2);
  t.is(r.stderr.trim().split("\n").length, 1);
  t.regex(r.stderr, /grid\["noiseStd"\]\[1\].*config\.noiseStd/);
});

test.serial("training gives the same parameters bit for bit for any thread count", async (t) => {
  const params = async (threads: number) => {
    const s = await new Trainer({ ...tinyParity, seed: 3, evalEvery: 0, checkpointEvery: 0 }, createBackend({ backend: "cpu", threads })).run();
    return paramsSha256(s.model);
  };
  const one = await params(1);
  t.is(await params(2), one);
  t.is(await params(0), one);
});

test.serial("sweep local: every run, skipped when complete; the report", async (t) => {
  localA = plan(paritySweep, join(work, "local", "parity"));
  localB = plan(rule110Sweep, join(work, "local", "rule110"));
  for (const dir of [localA, localB]) {
    const r = await sead(["sweep", "local", dir, "--workers", "2"]).done;
    t.is(r.code, 0, r.stderr);
    t.is(results(dir).length, 4);
    t.deepEqual(tidy(dir), []);
  }
  // Again: nothing left to do.
  const again = await sead(["sweep", "local", localA, "--workers", "2", "--json"]).done;
  t.is(again.code, 0);
  t.like(JSON.parse(again.stdout), { done: 0, skipped: 4, failed: [] });
  for (const r of results(localA)) t.is(executions(localA, r.id).length, 1);
  // The same run in this process: the same bytes.
  const inproc = plan(paritySweep, join(work, "inproc"));
  const o = await runOne(inproc, 2, { backend: createBackend({ backend: "cpu", threads: 2 }) });
  t.is(o.status, "done");
  t.deepEqual(essence((o as { result: SweepRunResult }).result), essence(results(localA)[2]!));

  const report = sweepReport([localA, localB]);
  t.is(report.points.length, 2);
  t.like(report.points[0], { label: "tiny-parity", planned: 4, run: 4 });
  t.is(report.points[0]!.passed + report.points[0]!.failedSeeds.length, 4);
  const cli = await sead(["sweep", "report", localA, localB, "--out", join(work, "report")]).done;
  t.is(cli.code, 0, cli.stderr);
  t.regex(cli.stdout, /\| tiny-parity \| \d \/ 4/);
  t.regex(cli.stdout, /\| tiny-rule110 \| \d \/ 4/);
  for (const f of ["report.json", "report.md", "report.svg"]) t.true(existsSync(join(work, "report", f)));
});

test.serial("three workers on a Redis queue: every run done exactly once, results equal sweep local's bit for bit", async (t) => {
  const a = plan(paritySweep, join(work, "queue", "parity"));
  const b = plan(rule110Sweep, join(work, "queue", "rule110"));
  const queue = "t-three";
  for (const dir of [a, b]) {
    const s = await sead(["sweep", "submit", dir, "--redis", redis.url, "--queue", queue]).done;
    t.is(s.code, 0, s.stderr);
  }
  // Submitting again adds nothing.
  const again = await sead(["sweep", "submit", a, "--redis", redis.url, "--queue", queue, "--json"]).done;
  t.like(JSON.parse(again.stdout), { added: 0 });
  const workers = [0, 1, 2].map(() => sead(["worker", "--redis", redis.url, "--queue", queue, "--idle-exit", "2"]));
  const ends = await Promise.all(workers.map((w) => w.done));
  for (const e of ends) t.is(e.code, 0, e.stderr);
  const q = new Queue(queue, { connection: { host: "127.0.0.1", port: redis.port } });
  const counts = await q.getJobCounts("completed", "failed", "waiting", "active");
  await q.close();
  t.like(counts, { completed: 8, failed: 0, waiting: 0, active: 0 });
  for (const [dir, local] of [
    [a, localA],
    [b, localB],
  ] as const) {
    const rs = results(dir);
    t.is(rs.length, 4);
    t.deepEqual(rs.map(essence), results(local).map(essence));
    for (const r of rs) {
      t.is(executions(dir, r.id).length, 1, `run ${r.id} trained once`);
      t.deepEqual(modelParams(dir, r.id), modelParams(local, r.id));
    }
    t.deepEqual(tidy(dir), []);
  }
  // The work was shared.
  t.true(ends.filter((e) => /: done/.test(e.stdout)).length >= 2, ends.map((e) => e.stdout).join("\n"));
  const st = await sweepStatus(a, { redis: redis.url, queue });
  t.is(st.counts.done, 4);
});

test.serial("a worker SIGKILLed mid-run: another resumes the run from its checkpoint; nothing lost, duplicated or half-written", async (t) => {
  const long = { ...paritySweep, name: "tiny-parity-long", base: { ...tinyParity, steps: 1000, evalEvery: 0, checkpointEvery: 10 }, seeds: [5, 6] };
  const dir = plan(long, join(work, "kill"));
  const queue = "t-kill";
  const fast = ["--lock-ms", "1500", "--stalled-ms", "500"];
  t.is((await sead(["sweep", "submit", dir, "--redis", redis.url, "--queue", queue]).done).code, 0);
  const first = sead(["worker", "--redis", redis.url, "--queue", queue, ...fast]);
  const m = readManifest(dir);
  // Wait for its first run's checkpoint, and for the queue to show the run's progress.
  const victim = await waitFor("a checkpoint", () => m.runs.find((r) => existsSync(join(dir, "runs", r.id, "model.json.ckpt"))));
  const running = await waitFor("progress in sweep status", async () => {
    const st = await sweepStatus(dir, { redis: redis.url, queue });
    return st.runs.find((r) => r.state === "running" && r.progress?.event === "progress" && r.progress.step > 0);
  });
  t.is(running.id, victim.id);
  first.proc.kill("SIGKILL");
  await first.done;
  // Its child stops too (it watches its parent): no run goes on without a worker.
  const childPid = executions(dir, victim.id)[0]!.pid;
  await waitFor("the orphaned child to stop", () => {
    try {
      process.kill(childPid, 0);
      return false;
    } catch {
      return true;
    }
  }, 10_000);
  const others = [0, 1].map(() => sead(["worker", "--redis", redis.url, "--queue", queue, ...fast, "--idle-exit", "3"]));
  for (const e of await Promise.all(others.map((w) => w.done))) t.is(e.code, 0, e.stderr);
  const rs = results(dir);
  t.is(rs.length, 2);
  const ex = executions(dir, victim.id);
  t.is(ex.length, 2, JSON.stringify(ex));
  t.is(ex[0]!.resumedFrom, null);
  t.true((ex[1]!.resumedFrom ?? 0) > 0, JSON.stringify(ex));
  const other = m.runs.find((r) => r.id !== victim.id)!;
  t.is(executions(dir, other.id).length, 1);
  t.deepEqual(tidy(dir), []);
  // The resumed run ends exactly where an uninterrupted one does.
  const ref = plan(long, join(work, "kill-ref"));
  const o = await runOne(ref, victim.index);
  t.deepEqual(essence(rs.find((r) => r.id === victim.id)!), essence((o as { result: SweepRunResult }).result));
  const q = new Queue(queue, { connection: { host: "127.0.0.1", port: redis.port } });
  t.like(await q.getJobCounts("completed", "failed"), { completed: 2, failed: 0 });
  await q.close();
});

test.serial("a worker stopped by SIGTERM mid-run: the run goes back on the queue without using a try, and another resumes it", async (t) => {
  const long = { ...paritySweep, name: "tiny-parity-term", base: { ...tinyParity, steps: 1000, evalEvery: 0, checkpointEvery: 10 }, seeds: [7] };
  const dir = plan(long, join(work, "term"));
  const queue = "t-term";
  // One try only: were the stop counted as a failure, the run would be failed for good.
  t.is((await sead(["sweep", "submit", dir, "--redis", redis.url, "--queue", queue, "--attempts", "1"]).done).code, 0);
  const first = sead(["worker", "--redis", redis.url, "--queue", queue]);
  const run = readManifest(dir).runs[0]!;
  await waitFor("a checkpoint", () => existsSync(join(dir, "runs", run.id, "model.json.ckpt")));
  first.proc.kill("SIGTERM");
  const stopped = await first.done;
  t.regex(stopped.stdout, /interrupted, back on the queue/, stopped.stdout + stopped.stderr);
  const q = new Queue(queue, { connection: { host: "127.0.0.1", port: redis.port } });
  const job = (await q.getJob(jobId(readManifest(dir), run.index)))!;
  t.is(await job.getState(), "waiting");
  t.is(job.attemptsMade, 0);
  const second = await sead(["worker", "--redis", redis.url, "--queue", queue, "--idle-exit", "2"]).done;
  t.is(second.code, 0, second.stderr);
  t.like(await q.getJobCounts("completed", "failed"), { completed: 1, failed: 0 });
  await q.close();
  const ex = executions(dir, run.id);
  t.is(ex.length, 2, JSON.stringify(ex));
  t.true((ex[1]!.resumedFrom ?? 0) > 0, JSON.stringify(ex));
  t.deepEqual(tidy(dir), []);
  // The resumed run ends exactly where an uninterrupted one does.
  const o = await runOne(plan(long, join(work, "term-ref")), run.index);
  t.deepEqual(essence(results(dir)[0]!), essence((o as { result: SweepRunResult }).result));
});

test.serial("Redis restarted mid-sweep: the workers reconnect and the sweep finishes", async (t) => {
  const sweep = { ...rule110Sweep, name: "tiny-rule110-restart", base: { ...tinyRule110, steps: 300 }, seeds: [1, 2, 3] };
  const dir = plan(sweep, join(work, "restart"));
  const queue = "t-restart";
  t.is((await sead(["sweep", "submit", dir, "--redis", redis.url, "--queue", queue]).done).code, 0);
  const workers = [0, 1].map(() => sead(["worker", "--redis", redis.url, "--queue", queue, "--lock-ms", "4000", "--stalled-ms", "1000", "--idle-exit", "3"]));
  await waitFor("a first result", () => results(dir).length >= 1);
  t.true(results(dir).length < 3, "the sweep was still going when Redis went down");
  await redis.stop();
  await sleep(1500);
  await redis.start();
  for (const e of await Promise.all(workers.map((w) => w.done))) t.is(e.code, 0, e.stderr);
  const rs = results(dir);
  t.is(rs.length, 3);
  t.deepEqual(tidy(dir), []);
  const st = await sweepStatus(dir, { redis: redis.url, queue });
  t.is(st.counts.done, 3);
});

test.serial("an unreachable Redis: one clear line and exit 2, no hang", async (t) => {
  const dir = plan(paritySweep, join(work, "unreachable"));
  const port = await freePort();
  for (const args of [
    ["sweep", "submit", dir, "--redis", `redis://127.0.0.1:${port}`],
    ["sweep", "status", dir, "--redis", `redis://127.0.0.1:${port}`],
    ["worker", "--redis", `redis://127.0.0.1:${port}`],
  ]) {
    const started = Date.now();
    const r = await sead(args).done;
    t.is(r.code, 2, args.join(" "));
    const lines = r.stderr.trim().split("\n");
    t.is(lines.length, 1, r.stderr);
    t.regex(lines[0]!, new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    t.true(Date.now() - started < 15_000);
  }
  const bad = await sead(["sweep", "submit", dir, "--redis", "http://x"]).done;
  t.is(bad.code, 2);
  t.regex(bad.stderr, /must start with redis:\/\//);
});

test.serial("a staged sweep: each stage's config is planned in full, with the previous stage's model as init", (t) => {
  const dir = planStaged(join(work, "staged-plan"));
  const m = readManifest(dir);
  t.is(m.version, 2);
  t.deepEqual(m.stages, ["base", "finetune"]);
  t.is(m.runs.length, 2);
  for (const r of m.runs) {
    t.is(r.stages?.length, 1);
    const s2 = r.stages![0]!;
    t.like(s2, { init: "stage-1.json", seed: r.seed, steps: 30, lr: 0.001, stabilitySteps: 4 });
    t.like(r.config, { seed: r.seed, steps: 40, lr: 0.003 });
    t.is(r.config.init, undefined);
  }
  // A sweep without stages is planned as before (version 1, no stages).
  const flat = planSweep(checkSweepFile(paritySweep).file, checkSweepFile(paritySweep).base);
  t.is(flat.version, 1);
  t.false("stages" in flat);
  t.false("stages" in flat.runs[0]!);
  // The run ids cover every stage: a changed stage gives new ids, a stage-less base others still.
  const inline = (over: Record<string, unknown>) => {
    const v = { ...stagedSweep, stages: [{ config: { ...tinyParityFinetune, ...over } }] };
    return planSweep(checkSweepFile(v).file, checkSweepFile(v).base).runs.map((r) => r.id);
  };
  const ids = m.runs.map((r) => r.id);
  t.deepEqual(inline({}), ids);
  t.notDeepEqual(inline({ steps: 31 }), ids);
  t.deepEqual(inline({ seed: 5, init: "x.json" }), ids, "a stage's own seed and init are replaced, so they change nothing");
  const flatIds = planSweep(checkSweepFile({ ...stagedSweep, stages: [] }).file, checkSweepFile({ ...stagedSweep, stages: [] }).base).runs.map((r) => r.id);
  t.notDeepEqual(flatIds, ids);
  // Grid values: on the base stage; model and task keys on every stage.
  const grid = { ...stagedSweep, stages: [{ config: tinyParityFinetune }], grid: { lr: [0.01], "model.cH": [6] } };
  const g = planSweep(checkSweepFile(grid).file, checkSweepFile(grid).base).runs[0]!;
  t.like(g.config, { lr: 0.01, model: { cH: 6 } });
  t.like(g.stages![0]!, { lr: 0.001, model: { cH: 6 } });
});

test.serial("bad stages are refused at plan time with their path", (t) => {
  const folder = join(work, "staged-bad");
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "bad-finetune.json"), JSON.stringify({ ...tinyParityFinetune, lr: -1 }));
  writeFileSync(join(folder, "wide-finetune.json"), JSON.stringify({ ...tinyParityFinetune, model: { cH: 8, features: 8 } }));
  const bad = (stages: unknown, extra: Record<string, unknown> = {}) =>
    t.throws(() => {
      const c = checkSweepFile({ ...stagedSweep, ...extra, stages }, "s.json", folder);
      planSweep(c.file, c.base, "s.json", c.stages);
    }).message;
  t.regex(bad([{ config: { ...tinyParityFinetune, lr: -1 } }]), /^s\.json: stages\[0\]\.config: config\.lr: Too small/);
  t.regex(bad([{ config: "bad-finetune.json" }]), /^s\.json: stages\[0\]\.config \(bad-finetune\.json\): config\.lr: Too small/);
  t.regex(bad([{ config: tinyParityFinetune }, { config: "missing.json" }]), /^s\.json: stages\[1\]\.config: config file missing\.json does not exist/);
  t.regex(bad([{ config: tinyParityFinetune, overrides: { steps: 0 } }]), /^s\.json: stages\[0\]\.config: config\.steps/);
  t.regex(bad([{ config: tinyParityFinetune, bogus: 1 }]), /^s\.json: stages\[0\]: unknown key "bogus"/);
  t.regex(bad([{ config: tinyParityFinetune, name: "" }]), /^s\.json: stages\[0\]\.name/);
  // A stage must train the model of the stage before it: caught here, not after stage 1.
  t.regex(bad([{ config: "wide-finetune.json" }]), /^s\.json: stages\[0\]\.config \(wide-finetune\.json\): it trains the model .*"cH":8.* but the stage before it trains .*"cH":4/);
  t.regex(bad([{ config: { ...tinyParityFinetune, task: { name: "addition", base: 2 } } }]), /^s\.json: stages\[0\]\.config: it trains the task .*addition/);
  // A grid model key goes to every stage, and is named when a stage refuses it.
  t.regex(bad([{ config: tinyParityFinetune, overrides: { model: { features: 16 } } }], { grid: { "model.cH": [4] } }), /^s\.json: stages\[0\]\.config \(model\.cH=4\): it trains the model .*"features":16/);
  // Through the CLI: one line, exit 2.
  writeFileSync(join(folder, "sweep.json"), JSON.stringify({ ...stagedSweep, stages: [{ config: "bad-finetune.json" }] }));
  return sead(["sweep", "plan", join(folder, "sweep.json"), "--out", join(folder, "plan")]).done.then((r) => {
    t.is(r.code, 2);
    t.is(r.stderr.trim().split("\n").length, 1, r.stderr);
    t.regex(r.stderr, /sweep\.json: stages\[0\]\.config \(bad-finetune\.json\): config\.lr/);
  });
});

test.serial("a staged sweep under sweep local: stage 2 equals the stages trained by hand, bit for bit; the report counts the stages", async (t) => {
  const dir = planStaged(join(work, "staged-local"));
  const r = await sead(["sweep", "local", dir, "--workers", "2"]).done;
  t.is(r.code, 0, r.stderr);
  const rs = results(dir);
  t.is(rs.length, 2);
  t.deepEqual(tidy(dir), []);
  const m = readManifest(dir);
  const backend = createBackend({ backend: "cpu", threads: 1 });
  for (const run of m.runs) {
    const res = rs.find((x) => x.id === run.id)!;
    t.is(res.steps, 70);
    t.deepEqual(
      res.stages?.map((s) => [s.name, s.steps, s.model]),
      [
        ["base", 40, "stage-1.json"],
        ["finetune", 30, "model.json"],
      ],
    );
    t.is(executions(dir, run.id).length, 1);
    // By hand: stage 1 with the run's seed, saved; stage 2 with init pointing at it.
    const s1 = await new Trainer({ ...tinyParity, seed: run.seed }, backend).run();
    const s1Path = join(work, "staged-local", `by-hand-stage1-seed${run.seed}.json`);
    saveCheckpoint(s1Path, s1.model, {});
    const s2 = await new Trainer({ ...tinyParityFinetune, seed: run.seed, init: s1Path }, backend).run();
    const rdir = join(dir, "runs", run.id);
    t.is(paramsSha256(loadCheckpoint(join(rdir, "stage-1.json")).model), paramsSha256(s1.model));
    t.is(res.paramsSha256, paramsSha256(s2.model));
    t.is(modelParams(dir, run.id), paramsSha256(s2.model));
    t.not(paramsSha256(s1.model), paramsSha256(s2.model), "stage 2 trained");
    // The model records its stage and what trained the model it started from.
    const training = loadCheckpoint(join(rdir, "model.json")).training;
    t.like(training, { steps: 30, stage: { index: 2, of: 2, name: "finetune" }, init: { path: "stage-1.json", steps: 40 } });
  }
  // By hand with the CLI, as docs/sweeps.md says: sead train for each stage, the second with init.
  const hand = join(work, "staged-local", "cli");
  mkdirSync(hand, { recursive: true });
  writeFileSync(join(hand, "stage1.json"), JSON.stringify(tinyParity));
  writeFileSync(join(hand, "stage2.json"), JSON.stringify({ ...tinyParityFinetune, init: join(hand, "s1.json") }));
  for (const k of [1, 2]) {
    const tr = await sead(["train", "--config", join(hand, `stage${k}.json`), "--seed", "1", "--backend", "cpu", "--out", join(hand, `s${k}.json`)]).done;
    t.is(tr.code, 0, tr.stderr);
  }
  const seed1 = rs.find((x) => x.seed === 1)!;
  t.is(paramsSha256(loadCheckpoint(join(hand, "s2.json")).model), seed1.paramsSha256);

  const report = sweepReport([dir]);
  t.is(report.points[0]!.stages, 2);
  t.regex(reportTable(report), /\| tiny-parity-staged \| \d \/ 2.* s \(2 stages\) \|$/m);
});

test.serial("a staged run interrupted in stage 1, then in stage 2, resumes where it stopped: a finished stage is not trained again, and the result is the uninterrupted one's", async (t) => {
  const dir = planStaged(join(work, "staged-resume"));
  const m = readManifest(dir);
  const run = m.runs[0]!;
  const rdir = join(dir, "runs", run.id);
  // Stopped at a step (counted over both stages); `seen` is what it reported.
  const stopAt = (step: number) => {
    const stop = new AbortController();
    const seen: { step: number; stage?: number }[] = [];
    const outcome = runOne(dir, 0, {
      signal: stop.signal,
      progressEveryMs: 0,
      onProgress: (p) => {
        if (p.phase !== "train") return;
        seen.push({ step: p.step, ...(p.stage !== undefined ? { stage: p.stage } : {}) });
        if (p.step >= step) stop.abort();
      },
    });
    return outcome.then((o) => ({ o, seen }));
  };
  // First in stage 1 (between its checkpoints), then in stage 2.
  const inStage1 = await stopAt(23);
  t.like(inStage1.o, { status: "interrupted", step: 23, checkpoint: join(rdir, "stage-1.json.ckpt") });
  t.false(existsSync(join(rdir, "stage-1.json")));
  t.like((await sweepStatus(dir)).runs[0], { state: "started", checkpointStep: 23 });
  const first = await stopAt(57);
  t.like(first.o, { status: "interrupted", step: 57 });
  t.is((first.o as { checkpoint: string }).checkpoint, join(rdir, "model.json.ckpt"));
  t.like(first.seen[0], { step: 24, stage: 1 });
  t.like(first.seen.find((p) => p.stage === 2), { step: 41 });
  t.like(first.seen.at(-1), { step: 57, stage: 2 });
  t.true(existsSync(join(rdir, "stage-1.json")));
  t.false(existsSync(join(rdir, "stage-1.json.ckpt")), "a finished stage's checkpoint is removed");
  t.like((await sweepStatus(dir)).runs[0], { state: "started", checkpointStep: 57 });
  const stage1 = statSync(join(rdir, "stage-1.json")).mtimeMs;
  const again = await runOne(dir, 0);
  t.is(again.status, "done");
  const res = (again as { result: SweepRunResult }).result;
  t.is(statSync(join(rdir, "stage-1.json")).mtimeMs, stage1, "stage 1's model was not written again");
  const ex = executions(dir, run.id) as { resumedFrom: number | null; stage?: number }[];
  t.deepEqual(
    ex.map((e) => [e.resumedFrom, e.stage]),
    [
      [null, 1],
      [23, 1],
      [57, 2],
    ],
  );
  t.is(res.resumedFrom, 57);
  // An uninterrupted run: the same parameters, loss and checks.
  const ref = await runOne(planStaged(join(work, "staged-resume-ref")), 0);
  t.deepEqual(essence(res), essence((ref as { result: SweepRunResult }).result));
  // The curve covers every step of both stages once.
  const log = JSON.parse(readFileSync(join(rdir, "log.json"), "utf8")) as { curve: { step: number[] } };
  t.deepEqual(log.curve.step, Array.from({ length: 70 }, (_, i) => i + 1));
  t.deepEqual(tidy(dir), []);
  t.false(existsSync(join(rdir, "curve.json")));
});

test.serial("the seed studies' sweep files plan; the decimal adder's trains its two configs in turn", (t) => {
  const folder = join(root, "configs", "sweeps");
  const files = readdirSync(folder).filter((f) => f.endsWith(".json"));
  t.true(files.length >= 4);
  for (const f of files) {
    const { file, base, stages } = readSweepFile(join(folder, f));
    t.true(planSweep(file, base, f, stages).runs.length > 0, f);
  }
  const { file, base, stages } = readSweepFile(join(folder, "seeds-addition-base10.json"));
  const m = planSweep(file, base, "seeds-addition-base10.json", stages);
  const configs = ["addition-base10.json", "addition-base10-finetune.json"].map((f) => JSON.parse(readFileSync(join(root, "configs", f), "utf8")) as Record<string, unknown>);
  t.deepEqual(m.seeds, [1, 2, 3, 4, 5]);
  for (const r of m.runs) {
    t.like(r.config, { steps: configs[0]!["steps"], lr: configs[0]!["lr"], seed: r.seed, evalEvery: 0 });
    t.like(r.stages![0]!, { steps: configs[1]!["steps"], lr: configs[1]!["lr"], seed: r.seed, init: "stage-1.json", evalEvery: 0 });
  }
});

test.serial("the committed runs of the decimal seed study belong to today's plan of its sweep file, and hold their models", (t) => {
  // results/sweeps/seeds-addition-base10 (docs/results.md): `sweep local` on a copy skips these runs
  // only while the sweep file plans the same runs; a changed config must come with new runs.
  const dir = join(root, "results", "sweeps", "seeds-addition-base10");
  const { file, base, stages } = readSweepFile(join(root, "configs", "sweeps", "seeds-addition-base10.json"));
  const planned = planSweep(file, base, "seeds-addition-base10.json", stages);
  const stored = readManifest(dir);
  t.is(stored.sweepId, planned.sweepId);
  const done = planned.runs.filter((r) => readResult(dir, r, planned.sweepId) !== undefined);
  t.is(done.length, planned.runs.length, "every seed of the study has its complete run");
  for (const r of done) {
    const result = readResult(dir, r, planned.sweepId)!;
    t.true(result.pass, r.id);
    t.is(paramsSha256(loadCheckpoint(join(dir, "runs", r.id, "model.json")).model), result.paramsSha256, r.id);
  }
});
