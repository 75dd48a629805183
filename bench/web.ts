/**
 * The page's WebAssembly path, timed in a real browser: a 10,000-digit binary addition
 * (addition-base2, random operands, seeds 1..RUNS) run on the page's wasm backend through its
 * URL parameters (backend=wasm, random=10000, autorun), in Debian's chromium (headless, driven
 * by puppeteer-core). The page times session.converge with performance.now() (from the first
 * step to the settled state, in its engine worker) and writes it into #result; this prints each
 * run, the median, and, for scale, the same sums on the Node CPU backend (native, AVX2 where
 * the CPU has it, and its portable kernels on one thread: the code the WASI build compiles to
 * WebAssembly SIMD128).
 *
 * Target: the median under 1,000 ms, so that a click on "run" for a 10,000-digit sum answers
 * within a second (an interactive page); a benchmark prints, it does not assert.
 *   npm run bench:web                 (CHROMIUM=/path/to/chromium, BENCH_RUNS=5, BENCH_THREADS=0)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuBackend } from "../src/backend/index.js";
import { loadModel } from "../src/models.js";
import { Rng } from "../src/rng.js";
import { solve } from "../src/run.js";
import { type AdditionInput, additionTask } from "../src/tasks/index.js";
import { buildWeb, serveWeb } from "../scripts/web.js";

const DIGITS = 10_000;
const TARGET_MS = 1000;
const RUNS = Number(process.env["BENCH_RUNS"] ?? "5");
const THREADS = process.env["BENCH_THREADS"] ?? "0";
const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";

interface PageResult {
  error?: string;
  exact?: boolean;
  steps?: number;
  ms?: number;
  device?: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "sead-bench-web-"));
  const built = await buildWeb(join(dir, "site"));
  if (!built.wasm) throw new Error("the WASI build is missing: run npm run build:wasi first");
  const server = await serveWeb(built.outDir, 0);
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  const times: number[] = [];
  try {
    console.log(`${DIGITS.toLocaleString("en-US")}-digit binary addition in the page, wasm backend (chromium ${await browser.version()})`);
    for (let seed = 1; seed <= RUNS; seed++) {
      const page = await browser.newPage();
      const query = new URLSearchParams({ model: "addition-base2", backend: "wasm", random: String(DIGITS), seed: String(seed), autorun: "1", rows: "0", threads: THREADS });
      await page.goto(`${server.url}?${query.toString()}`);
      await page.waitForFunction(() => (document.getElementById("result")?.textContent ?? "") !== "", { timeout: 600_000 });
      const r = JSON.parse(await page.$eval("#result", (e) => e.textContent ?? "")) as PageResult;
      await page.close();
      if (r.error !== undefined) throw new Error(`the page says: ${r.error}`);
      times.push(r.ms!);
      console.log(`  seed ${seed}: ${r.ms!.toFixed(1)} ms to settle, ${r.steps} steps, ${r.exact ? "exact" : "WRONG"} (${r.device})`);
    }
  } finally {
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const m = median(times);
  console.log(`median ${m.toFixed(1)} ms to settle; target < ${TARGET_MS} ms (a click answers within a second): ${m < TARGET_MS ? "met" : "NOT met"}`);

  // For scale: the same sums on the Node CPU backend.
  const { model } = loadModel("addition-base2");
  const task = additionTask({ base: 2 });
  for (const [label, backend] of [
    ["node, native, default kernels and threads", new CpuBackend()],
    ["node, native, portable kernels, 1 thread", new CpuBackend({ simd: "portable", threads: 1 })],
  ] as const) {
    const ms: number[] = [];
    for (let seed = 1; seed <= RUNS; seed++) {
      const input = task.sample(new Rng(seed), DIGITS) as AdditionInput;
      const t0 = performance.now();
      await solve(backend, model, task, [input]);
      ms.push(performance.now() - t0);
    }
    console.log(`  ${label} (${backend.info().device}): median ${median(ms).toFixed(1)} ms (solve: encode, settle, decode, check)`);
  }
}

main().catch((e: unknown) => {
  console.error(`bench:web: ${(e as Error).message}`);
  process.exit(1);
});
