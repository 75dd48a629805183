/**
 * The WebAssembly (WASI) fallback's step rate against the native CPU backend's, in one run:
 * the shipped binary adder (models/addition-base2.json) stepping one row of 50,000 cells
 * (SEAD_BENCH_WASI_WIDTH) for 100 steps on 1 thread, best of 3, in this process with the native binary
 * (the AVX2 kernel where the CPU has it, and the portable kernel), then in a child process
 * forced onto the WASI build (NAPI_RS_FORCE_WASI=error: the loader must load sead.wasi.cjs or
 * fail). Prints steps/s of each, the ratios and the target. Build both first:
 * `npm run build && npm run build:wasi`.
 *
 * Target: the WASI build within 3x of the native portable kernel (the same Rust code; the
 * WebAssembly engine runs it with 128-bit SIMD, as native x86-64 baseline code is, so the gap
 * is what the engine's code generation and bounds checks cost). Against the native AVX2
 * kernel no target: that is a different kernel (256-bit, hand-written).
 *   npm run bench:wasi
 */
import { spawnSync } from "node:child_process";
import { type Backend, createBackend } from "../src/backend/index.js";
import { nativeBuild } from "../src/backend/native.js";
import { loadModel } from "../src/models.js";
import { Rng } from "../src/rng.js";

const width = Number(process.env["SEAD_BENCH_WASI_WIDTH"] ?? 50_000);
const steps = 100;
const TARGET = 3;

interface Rate {
  build: string;
  device: string;
  stepsPerSecond: number;
}

async function rate(backend: Backend): Promise<Rate> {
  const { model } = loadModel("addition-base2");
  const rng = new Rng(1);
  const x = Float32Array.from({ length: width * model.spec.cIn }, () => rng.bit());
  const s = backend.createSession(model.spec, { batch: 1, height: 1, width }, x);
  try {
    await s.step(model.params, 5); // warm-up
    // The best of 3: on a shared machine the slowest runs measure the neighbours.
    let best = 0;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      await s.step(model.params, steps);
      best = Math.max(best, steps / ((performance.now() - t0) / 1000));
    }
    return { build: nativeBuild(), device: backend.info().device, stepsPerSecond: best };
  } finally {
    s.dispose();
  }
}

async function main() {
  if (process.argv.includes("--child")) {
    const r = await rate(createBackend({ backend: "cpu", threads: 1 }));
    process.stdout.write(JSON.stringify(r) + "\n");
    return;
  }
  if (nativeBuild() !== "native") throw new Error("bench:wasi: run it without NAPI_RS_FORCE_WASI (it forces the child itself)");
  console.log(`the shipped binary adder, 1 x ${width.toLocaleString("en-US")} cells, ${steps} steps, 1 thread, best of 3`);
  const line = (label: string, r: Rate) =>
    console.log(`${label.padEnd(16)} ${r.stepsPerSecond.toFixed(1).padStart(8)} steps/s  ${(r.stepsPerSecond * width / 1e6).toFixed(2).padStart(7)} M cell-steps/s  (${r.device})`);
  const auto = await rate(createBackend({ backend: "cpu", threads: 1 }));
  line("native", auto);
  const portable = auto.device.startsWith("cpu: portable") ? auto : await rate(createBackend({ backend: "cpu", threads: 1, simd: "portable" }));
  if (portable !== auto) line("native portable", portable);
  const child = spawnSync(process.execPath, [...process.execArgv, __filename, "--child"], {
    env: { ...process.env, NAPI_RS_FORCE_WASI: "error", NODE_NO_WARNINGS: "1" },
    encoding: "utf8",
  });
  if (child.status !== 0) throw new Error(`the WASI child failed (build it with npm run build:wasi):\n${child.stderr}`);
  const wasi = JSON.parse(child.stdout.trim().split("\n").pop()!) as Rate;
  if (wasi.build !== "wasm") throw new Error(`the child loaded the ${wasi.build} build, not the WASI one`);
  line("wasi", wasi);
  const slower = portable.stepsPerSecond / wasi.stepsPerSecond;
  console.log(
    `wasi: ${slower.toFixed(2)}x slower than native portable (target: within ${TARGET}x: ${slower <= TARGET ? "met" : "missed"})` +
      (portable !== auto ? `, ${(auto.stepsPerSecond / wasi.stepsPerSecond).toFixed(2)}x slower than native ${auto.device.split(",")[0]!.replace("cpu: ", "")} (no target)` : ""),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
