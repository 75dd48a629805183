/**
 * End-to-end benchmarks from TypeScript, at the sizes of `cargo bench -p sead-core`:
 * inference cell-steps/s and GFLOP/s (1D width 17 batch 128, width 1,000,000; 2D 64x64), and
 * training forward+backward (batch 128, width 17, T = 40), with the share of the machine's
 * theoretical FP32 peak (cores x clock x 32 FLOPs/cycle: two 256-bit FMA pipes per core).
 * `cargo bench` measures the real peak with an FMA loop; this prints the theoretical one.
 * Then settled-cell skipping (RunOptions.freeze): the shipped binary adder on a
 * 10,000-digit carry chain and a random 1,000,000-digit sum, with and without skipping, and a
 * binary product with the shipped multiplication model (SEAD_BENCH_MUL_BITS, default 256).
 * Then the same sizes, and the carry chain, on the GPU backend when an adapter exists (on a
 * machine without a GPU, lavapipe: software Vulkan on the CPU, so its figures say nothing
 * about a real GPU).
 *   npm run bench            cpu, then gpu if present
 *   npm run bench -- cpu     one backend only (cpu or gpu)
 */
import { cpus } from "node:os";
import { readFileSync } from "node:fs";
import { type Backend, createBackend } from "../src/backend/index.js";
import { Model } from "../src/model/model.js";
import { macsPerCellStep, type ModelSpec } from "../src/model/spec.js";
import { Rng } from "../src/rng.js";
import { loadModel } from "../src/models.js";
import { solve } from "../src/run.js";
import { additionTask, padOperands, taskFromInfo, type AdditionInput } from "../src/tasks/index.js";

const cpu = createBackend({ backend: "cpu" });
const info = cpu.info();
let backend: Backend = cpu;
const mhz = (() => {
  try {
    const m = readFileSync("/proc/cpuinfo", "utf8").match(/cpu MHz\s*:\s*([\d.]+)/);
    return m ? Number(m[1]) : cpus()[0]!.speed;
  } catch {
    return cpus()[0]!.speed;
  }
})();
const peak = (info.threads * mhz * 1e6 * 32) / 1e9;
console.log(`cpu: ${info.device}; theoretical FP32 peak ${peak.toFixed(0)} GFLOP/s (${info.threads} cores x ${mhz.toFixed(0)} MHz x 32)`);

const spec1d: ModelSpec = { dims: 1, cIn: 4, cH: 16, features: 64, cOut: 2, update: "replace", boundary: "zero", quantize: "none" };

function randomX(n: number): Float32Array {
  const rng = new Rng(1);
  return Float32Array.from({ length: n }, () => rng.bit());
}

function report(label: string, cellSteps: number, flopsPerCellStep: number, seconds: number, target?: number) {
  const gflops = (cellSteps * flopsPerCellStep) / seconds / 1e9;
  const pct = (100 * gflops) / peak;
  console.log(
    `${(backend.name + "/" + label).padEnd(34)} ${(cellSteps / seconds / 1e6).toFixed(2).padStart(8)} M cell-steps/s ${gflops.toFixed(1).padStart(7)} GFLOP/s ` +
      `${pct.toFixed(1).padStart(5)}% of peak${target ? ` (target >= ${target}%)` : ""}`,
  );
}

async function forward(label: string, spec: ModelSpec, batch: number, height: number, width: number, steps: number, target?: number) {
  const model = Model.init(spec, 1);
  const s = backend.createSession(spec, { batch, height, width }, randomX(batch * height * width * spec.cIn));
  await s.step(model.params, 2); // warm-up
  const t0 = performance.now();
  await s.step(model.params, steps);
  const sec = (performance.now() - t0) / 1000;
  s.dispose();
  report(label, batch * height * width * steps, 2 * macsPerCellStep(spec), sec, target);
}

async function train(label: string, spec: ModelSpec, batch: number, width: number, T: number, reps: number, target?: number) {
  const model = Model.init(spec, 1);
  const rng = new Rng(2);
  const cells = batch * width;
  const b = {
    grid: { batch, height: 1, width },
    x: randomX(cells * spec.cIn),
    target: Int32Array.from({ length: cells }, () => rng.int(spec.cOut)),
    stepWeights: Float32Array.from({ length: T }, (_, i) => (i === T - 1 ? 1 : 0)),
  };
  await backend.trainStep(spec, model.params, b);
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await backend.trainStep(spec, model.params, b);
  const sec = (performance.now() - t0) / 1000;
  // Backward counted as twice the forward.
  report(label, cells * T * reps, 3 * 2 * macsPerCellStep(spec), sec, target);
}

async function suite(steps: number) {
  const cpuTargets = backend.name === "cpu";
  await forward("step_forward_1d/W=17,B=128", spec1d, 128, 1, 17, 10 * steps);
  await forward("step_forward_1d/W=1e6", spec1d, 1, 1, 1_000_000, steps, cpuTargets ? 50 : undefined);
  await forward("step_forward_2d/64x64,B=8", { ...spec1d, dims: 2 }, 8, 64, 64, steps);
  await train("train_1d/B=128,W=17,T=40", spec1d, 128, 17, 40, Math.max(1, steps / 4), cpuTargets ? 45 : undefined);
}

/** One addition with every cell computed, then with settled cells skipped (freeze 1e-5). */
async function skipping(on: Backend, label: string, input: AdditionInput, targetShare?: number) {
  const { model } = loadModel("addition-base2");
  const task = additionTask({ base: 2 });
  const run = async (freeze?: number) => {
    const t0 = performance.now();
    const r = await solve(on, model, task, [input], { maxSteps: 4 * input.a.length + 256, ...(freeze === undefined ? {} : { freeze }) });
    if (!r.correct[0]) throw new Error(`${label}: the sum is wrong${freeze === undefined ? "" : ` with freeze ${freeze}`}`);
    return { seconds: (performance.now() - t0) / 1000, steps: r.steps[0]!, cells: r.cellsComputed[0]! };
  };
  const dense = await run();
  const skip = await run(1e-5);
  const share = skip.cells / dense.cells;
  console.log(
    `${(on.name + "/" + label).padEnd(34)} every cell ${dense.seconds.toFixed(2)} s, freeze 1e-5 ${skip.seconds.toFixed(2)} s ` +
      `(${(dense.seconds / skip.seconds).toFixed(1)}x; ${dense.steps} and ${skip.steps} steps; ${(100 * share).toPrecision(2)}% of the cell updates` +
      `${targetShare ? `, target <= ${100 * targetShare}%` : ""})`,
  );
}

/**
 * A binary product end to end with the shipped multiplication model (CPU, settled cells
 * skipped with freeze 1e-5): time, steps and the cell updates computed against every cell at
 * every step. The target is 4,096 bits under 60 s; SEAD_BENCH_MUL_BITS sets the size (default
 * 256, which runs in under a minute here).
 */
async function multiplication(on: Backend) {
  const bits = Number(process.env["SEAD_BENCH_MUL_BITS"] ?? 256);
  const { model } = loadModel("multiplication-base2");
  const task = taskFromInfo(model.task);
  const input = task.sample(new Rng(1), bits);
  const t0 = performance.now();
  const r = await solve(on, model, task, [input], { maxSteps: 8 * bits + 256, freeze: 1e-5 });
  const seconds = (performance.now() - t0) / 1000;
  const g = task.grid(bits);
  const dense = r.steps[0]! * g.height * g.width;
  console.log(
    `${(on.name + `/mul ${bits.toLocaleString("en-US")} bits, freeze 1e-5`).padEnd(34)} ${seconds.toFixed(2)} s, ${r.steps[0]} steps` +
      `${r.converged[0] ? "" : " (not settled: the step budget)"}, ${r.correct[0] ? "exact" : "WRONG"}; ` +
      `${r.cellsComputed[0]!.toExponential(3)} cell updates computed of ${dense.toExponential(3)} (${((100 * r.cellsComputed[0]!) / dense).toPrecision(2)}%)` +
      ` (target: 4,096 bits under 60 s)`,
  );
}

async function main() {
  const only = process.argv[2];
  if (only !== undefined && only !== "cpu" && only !== "gpu") throw new Error(`usage: npm run bench [-- cpu|gpu], got ${only}`);
  if (only !== "gpu") {
    await suite(20);
    await skipping(cpu, "skip/carry chain 10,000 digits", padOperands("1".repeat(10_000), "1"), 0.01);
    await skipping(cpu, "skip/random 1,000,000 digits", additionTask({ base: 2 }).sample(new Rng(1), 1_000_000));
    await multiplication(cpu);
  }
  if (only === "cpu") return;
  try {
    backend = createBackend({ backend: "gpu" });
  } catch (e) {
    console.log(`gpu: skipped: ${(e as Error).message.split("\n")[0]}`);
    return;
  }
  console.log(`gpu: ${backend.info().device} (percentages are of the CPU peak above, for scale only)`);
  await suite(4);
  // Tiles, not cells, are skipped on the GPU: a step computes the 3 tiles around the carry.
  await skipping(backend, "skip/carry chain 10,000 digits", padOperands("1".repeat(10_000), "1"), 0.01);
  backend.dispose();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
