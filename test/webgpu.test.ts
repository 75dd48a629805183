/**
 * The WebGPU host (src/web/webgpu.ts) in a real browser: the shipped models run in Debian's
 * chromium on WebGPU (SwiftShader, Chromium's software Vulkan, so no GPU is needed) from the
 * same WGSL files as the native GPU backend, on inputs encoded here with the package's tasks.
 *
 * - Against the native GPU backend (the Rust host over the same WGSL, on whatever adapter wgpu
 *   finds: lavapipe in CI): everything equal bit for bit (outputs, steps, converged flags,
 *   hidden states, per-step stats). The two hosts lay out and dispatch the same kernels.
 * - Against the CPU backend: outputs equal, and steps equal except where the native GPU backend
 *   differs from the CPU too. The WGSL and the CPU kernels agree within float rounding, not bit
 *   for bit (docs/gpu.md), so a sample whose max |h' - h| passes tol within a few ulps settles
 *   a step apart: e.g. addition-base10, 30 digits, seed 4, sample 5, whose max |h' - h| at its
 *   step 19 is 1.0001e-3 on the CPU and 0.99981e-3 on both GPU hosts (tol 1e-3).
 *
 * The page is test/web/webgpu-entry.ts, bundled with esbuild (platform "browser", .wgsl as
 * text) and served from 127.0.0.1 (a secure context, which WebGPU needs). chromium missing
 * fails the test (CI installs it), and so does no native GPU adapter unless
 * SEAD_SKIP_GPU_TESTS=1 (as test/gpu.test.ts): never skipped silently.
 */
import test from "ava";
import { build } from "esbuild";
import { existsSync, readFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core" with { "resolution-mode": "import" };
import { CpuBackend } from "../src/backend/cpu.js";
import { GpuBackend, gpuAdapters } from "../src/backend/gpu.js";
import { nativeBuild } from "../src/backend/native.js";
import type { Backend, ConvergeOptions, ConvergeResult, StepResult } from "../src/backend/types.js";
import { checkpointToJson } from "../src/model/checkpoint.js";
import { type Model, Model as ModelClass } from "../src/model/model.js";
import { SHIPPED_MODELS, loadModel, modelsDir } from "../src/models.js";
import { Rng } from "../src/rng.js";
import { convergeDefaults } from "../src/run.js";
import { encodeChecked, taskFromInfo } from "../src/tasks/index.js";
import { randomX } from "./helpers.js";
import type { WebGpuCase, WebGpuCaseResult } from "./web/webgpu-entry.js";

const CHROMIUM = process.env["SEAD_CHROMIUM"] ?? "/usr/bin/chromium";
// --use-webgpu-adapter=swiftshader: the software adapter, so no GPU is needed; with
// Chromium 156 it gives an adapter without --enable-features=Vulkan.
const CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"];

interface PageApi {
  info(): Promise<string>;
  run(cases: WebGpuCase[]): Promise<WebGpuCaseResult[]>;
  refusals(spec: Model["spec"], params: number[]): Promise<Record<string, string | null>>;
  parse(text: string, source: string): { spec: Model["spec"]; params: number[] };
}

async function bundle(): Promise<string> {
  const r = await build({
    entryPoints: [join(__dirname, "web", "webgpu-entry.ts")],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    loader: { ".wgsl": "text" },
    write: false,
    logLevel: "silent",
  });
  return r.outputFiles[0]!.text;
}

async function serve(js: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === "/entry.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(js);
    } else if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end('<!doctype html><meta charset="utf-8"><title>sead webgpu test</title><script type="module" src="/entry.js"></script>');
    } else if (req.url === "/favicon.ico") {
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** A case as Node runs it: the page's, with the model Node loaded. */
interface Case extends WebGpuCase {
  spec: Model["spec"];
  params: number[];
  /** A trained model, compared with the CPU backend too (a random one only with the native GPU). */
  trained: boolean;
}

interface Shipped {
  model: Model;
  text: string;
}

/** A shipped model, and its file's text for the page to parse. */
function shipped(name: string): Shipped {
  return { model: loadModel(name).model, text: readFileSync(join(modelsDir(), `${name}.json`), "utf8") };
}

/** One case: a shipped model on `batch` random inputs of `size`, encoded with its task. */
function converging(name: string, { model, text }: Shipped, size: number, batch: number, seed: number): Case {
  const task = taskFromInfo(model.task);
  const rng = new Rng(seed);
  const inputs = Array.from({ length: batch }, () => task.sample(rng, size));
  const enc = encodeChecked(task, inputs);
  const grid = { batch: enc.batch, height: enc.height, width: enc.width };
  return {
    name,
    checkpoint: text,
    spec: model.spec,
    params: Array.from(model.params),
    grid,
    x: Array.from(enc.x),
    mode: "converge",
    converge: convergeDefaults(enc.width, enc.height),
    trained: true,
  };
}

/**
 * A randomly initialised model of `spec` (the shipped ones are all "replace" updates) on
 * random inputs, `steps` steps: compared with the native GPU backend only (a random model has
 * near-ties the CPU may break the other way).
 */
function randomCase(name: string, spec: Model["spec"], grid: { batch: number; height: number; width: number }, steps: number): Case {
  const model = ModelClass.init(spec, 11);
  return {
    name,
    checkpoint: checkpointToJson(model),
    spec: model.spec,
    params: Array.from(model.params),
    grid,
    x: Array.from(randomX(grid.batch * grid.height * grid.width * spec.cIn, 12)),
    mode: "step",
    steps,
    trained: false,
  };
}

function stepping(c: Case, steps: number): Case {
  return { ...c, name: `${c.name}, ${steps} steps`, mode: "step", steps };
}

function freezing(c: Case, freeze: number): Case {
  return { ...c, name: `${c.name}, freeze ${freeze}`, freeze };
}

/** The same case on a native backend. */
async function onNative(backend: Backend, c: Case) {
  const s = backend.createSession(c.spec, c.grid, new Float32Array(c.x), c.freeze === undefined ? {} : { freeze: c.freeze });
  try {
    const params = new Float32Array(c.params);
    const r = c.mode === "converge" ? await s.converge(params, c.converge as ConvergeOptions) : await s.step(params, c.steps!);
    return { r, outputs: s.outputs(), steps: s.steps(), hidden: s.hidden(), cellsComputed: s.cellsComputed() };
  } finally {
    s.dispose();
  }
}
type NativeResult = Awaited<ReturnType<typeof onNative>>;

/** Float32 values as their bit patterns, so -0 and 0 (and NaNs) compare exactly. */
function bits(v: ArrayLike<number>): Uint32Array {
  return new Uint32Array(Float32Array.from(v).buffer);
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string | undefined {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `at ${i}: ${a[i]} and ${b[i]}`;
  return undefined;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// The WebGPU host is held to the native GPU backend, which the WebAssembly (WASI) build of the
// binding does not have: in that run (npm run test:wasi) this file is skipped, saying so; the
// native run covers it. (The page's WebAssembly path is test/web.test.ts's, in both runs.)
const wasm = nativeBuild() === "wasm";
if (wasm) console.log("the WebAssembly (WASI) build has no native GPU backend to compare the WebGPU host with: skipping test/webgpu.test.ts");

(wasm ? test.skip : test)("the shipped models on WebGPU in chromium: bit for bit the native GPU backend, and the CPU backend's outputs and steps", async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`chromium is not installed at ${CHROMIUM} (apt-get install chromium, or set SEAD_CHROMIUM): the WebGPU test needs it`);
    return;
  }
  const { server, url } = await serve(await bundle());
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  // puppeteer-core is an ES module; this test file is compiled as CommonJS.
  const { default: puppeteer } = await import("puppeteer-core");
  const browser: Browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, protocolTimeout: 300_000 });
  t.teardown(() => browser.close());
  const page: Page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warn") pageErrors.push(m.text());
  });
  await page.goto(url);
  await page.waitForFunction(() => "seadWebGpuTest" in globalThis, { timeout: 30_000 });
  const device = await page.evaluate(() => (globalThis as unknown as { seadWebGpuTest: PageApi }).seadWebGpuTest.info());
  t.log(`device: ${device}`);
  t.regex(device, /^webgpu: /);

  const m = (name: string) => shipped(name);
  const add2 = m("addition-base2");
  const cases: Case[] = [
    converging("addition-base2, 1000 digits", add2, 1000, 2, 1),
    converging("addition-base2, 12 digits (short rows packed)", add2, 12, 24, 2),
    converging("addition-base10, 100 digits", m("addition-base10"), 100, 3, 3),
    converging("addition-base10, 30 digits", m("addition-base10"), 30, 6, 4),
    converging("addition-base2-ternary, 200 digits", m("addition-base2-ternary"), 200, 4, 5),
    converging("parity, 64 bits", m("parity"), 64, 4, 6),
    converging("rule110, 48 cells (periodic)", m("rule110"), 48, 6, 7),
    converging("multiplication-base2, 8 bits (2D)", m("multiplication-base2"), 8, 3, 8),
  ];
  cases.push(stepping(cases[1]!, 40), stepping(cases[4]!, 40), stepping(cases[7]!, 20));
  // Several groups of samples (buffer bindings capped low), with and without packed rows.
  cases.push(
    { ...converging("parity, 64 bits, 1 sample per group", m("parity"), 64, 4, 6), maxGroupBytes: 10_000 },
    { ...converging("addition-base2, 12 digits, 4 samples per group", add2, 12, 24, 2), maxGroupBytes: 8_000 },
  );
  // Settled-tile skipping: freeze 0 keeps the states of plain stepping bit for bit.
  cases.push(
    freezing(converging("addition-base2-ternary, 1000 digits", m("addition-base2-ternary"), 1000, 2, 9), 0),
    freezing(cases[7]!, 1e-5),
    freezing(stepping(cases[4]!, 40), 0),
  );
  const spec2d = { dims: 2, cIn: 2, cH: 5, features: 7, cOut: 3, update: "residual", boundary: "periodic", quantize: "none" } as const;
  const spec1d = { dims: 1, cIn: 2, cH: 6, features: 10, cOut: 3, update: "residual", boundary: "periodic", quantize: "ternary" } as const;
  cases.push(
    randomCase("random 2D residual periodic", spec2d, { batch: 3, height: 9, width: 11 }, 8),
    randomCase("random 1D residual periodic ternary", spec1d, { batch: 4, height: 1, width: 37 }, 12),
  );
  // The page parses the checkpoints with src/model/parse.ts: the same spec and parameters.
  for (const name of SHIPPED_MODELS) {
    const { model, text } = shipped(name);
    const parsed = await page.evaluate((tx, n) => (globalThis as unknown as { seadWebGpuTest: PageApi }).seadWebGpuTest.parse(tx, n), text, name);
    t.deepEqual(parsed.spec, model.spec, `${name}: spec parsed in the page`);
    t.is(firstDifference(bits(parsed.params), bits(model.params)), undefined, `${name}: params parsed in the page`);
  }
  const toPage = cases.map(({ spec: _s, params: _p, trained: _t, ...c }) => c);
  // One case per evaluate, so no single call nears puppeteer's protocol timeout.
  const results: WebGpuCaseResult[] = [];
  for (const c of toPage) {
    results.push(...(await page.evaluate((cs) => (globalThis as unknown as { seadWebGpuTest: PageApi }).seadWebGpuTest.run(cs), [c])));
  }

  const cpu = new CpuBackend();
  t.teardown(() => cpu.dispose());
  const skipNative = process.env["SEAD_SKIP_GPU_TESTS"] === "1" && gpuAdapters().length === 0;
  if (skipNative) t.log("SEAD_SKIP_GPU_TESTS=1 and no native GPU adapter: not comparing with the native GPU backend");
  // No adapter makes this throw, and so fails the test (unless skipped above).
  const native = skipNative ? undefined : new GpuBackend();
  if (native) t.teardown(() => native.dispose());
  let stepsApart = 0;
  let skipped = 0;
  for (const [i, c] of cases.entries()) {
    const g = results[i]!;
    const want = await onNative(cpu, c);
    const gpu = native ? await onNative(native, c) : undefined;
    const computed = c.freeze === undefined ? "" : `, cells computed ${g.cellsComputed.join(" ")}`;
    const layout = `${g.packedTile ? `, packed tiles of ${g.packedTile}` : ""}${g.groups > 1 ? `, ${g.groups} groups` : ""}`;
    t.log(`${c.name}: ${g.ms.toFixed(0)} ms on WebGPU, steps ${g.steps.join(" ")}${layout}${computed}`);
    if (c.maxGroupBytes !== undefined) t.true(g.groups > 1, `${c.name}: one group of samples`);
    const cells = c.grid.height * c.grid.width;
    if (c.freeze === undefined) t.deepEqual(g.cellsComputed, g.steps.map((s) => s * cells), `${c.name}: cellsComputed is steps x cells`);
    else {
      t.true(g.cellsComputed.every((n, b) => n <= g.steps[b]! * cells), `${c.name}: more cells computed than steps x cells`);
      if (g.cellsComputed.some((n, b) => n < g.steps[b]! * cells)) skipped++;
    }
    if (gpu) sameAsNativeGpu(c, g, gpu);
    if (!c.trained) continue;
    t.is(firstDifference(g.outputs, want.outputs), undefined, `${c.name}: outputs differ from the CPU backend's`);
    if (gpu) {
      // Where the native GPU settles a sample a step apart from the CPU, so may WebGPU.
      stepsApart += g.steps.filter((_, b) => gpu.steps[b] !== want.steps[b]).length;
      for (let b = 0; b < g.steps.length; b++) {
        if (gpu.steps[b] === want.steps[b]) t.is(g.steps[b], want.steps[b], `${c.name}: sample ${b} takes other steps than on the CPU`);
        else t.log(`  sample ${b}: ${want.steps[b]} steps on the CPU, ${gpu.steps[b]} on both GPU hosts (float rounding at the tol threshold)`);
      }
    } else {
      t.is(firstDifference(g.steps, want.steps), undefined, `${c.name}: steps differ from the CPU backend's`);
    }
    // Hidden states of the samples that took the same steps: within float rounding of the
    // CPU's (test/gpu.test.ts's tolerance), equal for the ternary model (values -1, 0, +1).
    const per = cells * c.spec.cH;
    for (let b = 0; b < g.steps.length; b++) {
      if (g.steps[b] !== want.steps[b]) continue;
      const dh = maxAbsDiff(g.hidden.slice(b * per, (b + 1) * per), want.hidden.subarray(b * per, (b + 1) * per));
      if (c.spec.quantize === "ternary") t.is(dh, 0, `${c.name}: sample ${b}'s hidden state differs from the CPU's`);
      else t.true(dh <= 5e-5, `${c.name}: sample ${b}'s hidden state differs from the CPU's by up to ${dh}`);
    }
  }
  t.log(`samples settling a step apart from the CPU (as on the native GPU backend): ${stepsApart}`);
  t.true(skipped > 0, "freeze skipped no tile in any case");

  function sameAsNativeGpu(c: Case, g: WebGpuCaseResult, gpu: NativeResult): void {
    const what = `${c.name}, WebGPU and the native GPU backend`;
    t.is(firstDifference(g.outputs, gpu.outputs), undefined, `${what}: outputs differ`);
    t.is(firstDifference(g.steps, gpu.steps), undefined, `${what}: steps differ`);
    t.is(firstDifference(g.cellsComputed, gpu.cellsComputed), undefined, `${what}: cells computed differ`);
    t.is(firstDifference(bits(g.hidden), bits(gpu.hidden)), undefined, `${what}: hidden states differ`);
    if (c.mode === "converge") {
      const r = gpu.r as ConvergeResult;
      t.deepEqual(g.converged, Array.from(r.converged), `${what}: converged flags differ`);
      t.is(firstDifference(bits(g.lastMaxDelta!), bits(r.lastMaxDelta)), undefined, `${what}: last max |h' - h| differs`);
    } else {
      const r = gpu.r as StepResult;
      t.is(firstDifference(g.changed!, r.changed), undefined, `${what}: per-step changed outputs differ`);
      t.is(firstDifference(bits(g.maxDelta!), bits(r.maxDelta)), undefined, `${what}: per-step max |h' - h| differs`);
    }
  }
  t.true(
    results.some((r) => r.packedTile),
    "no case packed short rows (step_packed untested)",
  );

  const refused = await page.evaluate(
    (spec, params) => (globalThis as unknown as { seadWebGpuTest: PageApi }).seadWebGpuTest.refusals(spec, params),
    add2.model.spec,
    Array.from(add2.model.params),
  );
  t.regex(refused["freeze"] ?? "", /^InvalidInputError: createSession.options.freeze: must be finite and >= 0, got -1/);
  t.regex(refused["tooLarge"] ?? "", /^ResourceLimitError: createSession: a session of 1 x 1 x 4 cells .* over the limit of 100$/);
  t.regex(refused["trainStep"] ?? "", /^InvalidInputError: .*training is not available on WebGPU in the browser/);
  t.regex(refused["logits"] ?? "", /^InvalidInputError: .*logits are not available on WebGPU/);
  t.regex(refused["badParams"] ?? "", /^InvalidInputError: session.step: params has 3 values/);
  t.regex(refused["badX"] ?? "", /^InvalidInputError: createSession: x has 3 values/);
  t.regex(refused["twoAtOnce"] ?? "", /^InvalidInputError: .*still running/);
  t.regex(refused["abort"] ?? "", /^AbortError: session.step: the operation was aborted/);
  t.is(refused["abortSteps"], "32", "an aborted step call ends after its first window of 32 steps");
  t.deepEqual(pageErrors, [], "the page logged errors");
});
