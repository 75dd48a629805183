/**
 * Sweep executors on this machine: 8 tiny runs (tiny parity and Rule 110 configs, 4 seeds each)
 * with `sead sweep local` at 1 and 2 workers, and on a Redis queue with 3 `sead worker`s (a
 * redis-server started here on a free loopback port). Prints the wall time of each, the compute
 * time inside the runs (training + checks, summed from their results), and the overhead per run:
 * (wall x workers - compute) / runs, the time a worker slot spends on anything but the run's own
 * work (starting the child process, loading the manifest, writing files, the queue's round trips),
 * counting an idle slot as overhead too.
 *
 *   node --import=tsx bench/sweep.ts [--dist | --cli PATH/main.js] [--steps N]
 *
 * --dist runs the compiled CLI (node dist/src/cli/main.js; `npm run build:ts` first), --cli a
 * compiled main.js elsewhere, instead of the TypeScript one through tsx, whose start-up costs a
 * second or two per child.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { checkSweepFile, planSweep, readManifest, writePlan } from "../src/sweep/plan.js";
import { parseRedisUrl, pingRedis } from "../src/sweep/queue.js";
import { readResult } from "../src/sweep/run.js";

const root = join(__dirname, "..");
const cliArg = process.argv.indexOf("--cli");
const cli = cliArg >= 0 ? process.argv[cliArg + 1]! : process.argv.includes("--dist") ? join(root, "dist", "src", "cli", "main.js") : undefined;
const stepsArg = process.argv.indexOf("--steps");
const steps = stepsArg >= 0 ? Number(process.argv[stepsArg + 1]) : 40;
const sead = cli ? [process.execPath, cli] : [process.execPath, "--import=tsx", join(root, "src", "cli", "main.ts")];

const tiny = { model: { cH: 4, features: 8 }, steps, batch: 16, warmup: 5, evalEvery: 0, checkpointEvery: 10 };
const sweeps = [
  {
    name: "bench-parity",
    base: { ...tiny, task: { name: "parity" }, lengths: { min: 1, max: 8 }, unroll: { min: 8, max: 12 } },
    seeds: [1, 2, 3, 4],
    checks: [{ kind: "lengths", lengths: [{ from: 1, to: 8 }], samples: 4, maxSteps: 64 }],
  },
  {
    name: "bench-rule110",
    base: { ...tiny, task: { name: "elementary", rule: 110, boundary: "periodic" }, lengths: { min: 8, max: 16 }, unroll: { min: 4, max: 8 } },
    seeds: [1, 2, 3, 4],
    checks: [{ kind: "trajectory", width: 32, generations: 5, starts: 2, maxSteps: 64 }],
  },
];

function planAll(dir: string): string[] {
  return sweeps.map((s) => {
    const { file, base } = checkSweepFile(s);
    const d = join(dir, s.name);
    writePlan(planSweep(file, base), d);
    return d;
  });
}

function run(args: string[]): { proc: ChildProcess; done: Promise<number> } {
  const proc = spawn(sead[0]!, [...sead.slice(1), ...args], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  return { proc, done: new Promise((r) => proc.on("close", (c) => r(c ?? 1))) };
}

function compute(dirs: string[]): number {
  let s = 0;
  for (const d of dirs) {
    const m = readManifest(d);
    for (const r of m.runs) {
      const res = readResult(d, r, m.sweepId);
      if (!res) throw new Error(`run ${r.id} of ${d} has no result`);
      s += res.trainSeconds + res.checkSeconds;
    }
  }
  return s;
}

const allDone = (dirs: string[]) => dirs.every((d) => readManifest(d).runs.every((r) => readResult(d, r) !== undefined));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Row {
  executor: string;
  workers: number;
  wall: number;
  compute: number;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "sead-bench-sweep-"));
  const rows: Row[] = [];
  try {
    for (const workers of [1, 2]) {
      const dirs = planAll(join(work, `local${workers}`));
      const t0 = performance.now();
      for (const d of dirs) {
        const code = await run(["sweep", "local", d, "--workers", String(workers), "-q"]).done;
        if (code !== 0) throw new Error(`sweep local exited with ${code}`);
      }
      rows.push({ executor: "sweep local", workers, wall: (performance.now() - t0) / 1000, compute: compute(dirs) });
    }
    // The queue: a redis-server of our own, 3 workers; the clock stops at the last result.
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    try {
      for (let i = 0; ; i++) {
        try {
          await pingRedis(parseRedisUrl(url), url, 500);
          break;
        } catch (e) {
          if (i > 100) throw e;
          await sleep(100);
        }
      }
      const dirs = planAll(join(work, "queue"));
      // Idle workers wait (no --idle-exit before the jobs come); stopped with SIGTERM once done.
      const workers = [0, 1, 2].map(() => run(["worker", "--redis", url, "--queue", "bench", "-q"]));
      await sleep(3000); // the workers start (and wait) before the clock starts, as on a cluster
      const t0 = performance.now();
      for (const d of dirs) {
        const code = await run(["sweep", "submit", d, "--redis", url, "--queue", "bench", "-q"]).done;
        if (code !== 0) throw new Error(`sweep submit exited with ${code}`);
      }
      while (!allDone(dirs)) {
        if (workers.every((w) => w.proc.exitCode !== null)) throw new Error("every worker exited before the sweep was done");
        await sleep(50);
      }
      rows.push({ executor: "queue (sead worker)", workers: 3, wall: (performance.now() - t0) / 1000, compute: compute(dirs) });
      for (const w of workers) w.proc.kill("SIGTERM");
      await Promise.all(workers.map((w) => w.done));
    } finally {
      redis.kill("SIGTERM");
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const runs = sweeps.reduce((a, s) => a + s.seeds.length, 0);
  console.log(`${runs} tiny runs (${steps} training steps each), ${cpus().length} cores, children run by ${cli ? `node ${cli}` : "tsx (src/cli/main.ts)"}`);
  console.log("| executor | workers | wall | compute in runs | overhead per run |");
  console.log("|---|---:|---:|---:|---:|");
  for (const r of rows) {
    const overhead = (r.wall * r.workers - r.compute) / runs;
    console.log(`| ${r.executor} | ${r.workers} | ${r.wall.toFixed(1)} s | ${r.compute.toFixed(1)} s | ${overhead.toFixed(2)} s |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
