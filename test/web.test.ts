/**
 * The page in a real browser (docs/web.md): Debian's chromium, headless, driven by
 * puppeteer-core, WebGPU on SwiftShader (--enable-unsafe-webgpu --use-webgpu-adapter=swiftshader).
 * The page is built into a temporary folder (scripts/web.ts buildWeb) and served on a free
 * loopback port with the COOP/COEP headers. For both of the page's backends, webgpu and wasm,
 * the answers and steps must equal the Node CPU backend's (solve() over the native module) on
 * a 1,000-digit binary and decimal addition, parity, Rule 110 and an 8-bit product (2D); bad input must show a message
 * on the page, write an error into #result and leave no uncaught error or console error; and a
 * screenshot after a run must not be blank (SEAD_UPDATE_SCREENSHOT=1 also writes it to
 * docs/images/web-page.png, the README's picture).
 *
 * The browser is CHROMIUM (default /usr/bin/chromium, which .ci/run installs); without it the
 * test fails saying so. SwiftShader runs WebGPU on the CPU, slowly: parity and Rule 110 use
 * short rows.
 */
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import type { Browser, Page } from "puppeteer-core" with { "resolution-mode": "import" };
import { CpuBackend } from "../src/backend/index.js";
import { loadModel } from "../src/models.js";
import { Rng } from "../src/rng.js";
import { solve } from "../src/run.js";
import { type AnyTask, taskFromInfo } from "../src/tasks/index.js";
import { buildWeb, ROOT, serveWeb, type WebServer } from "../scripts/web.js";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
const BACKENDS = ["wasm", "webgpu"] as const;

interface PageResult {
  error?: string;
  answer?: string;
  exact?: boolean;
  bigint?: boolean | null;
  steps?: number;
  settled?: boolean;
  backend?: string;
  device?: string;
  ms?: number;
  stopped?: boolean;
}

let dir = "";
let site = "";
let server: WebServer | undefined;
let browser: Browser | undefined;

test.before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium; .ci/run does) or set CHROMIUM to one`);
  }
  dir = mkdtempSync(join(tmpdir(), "sead-web-"));
  const built = await buildWeb(join(dir, "site"), { minify: false });
  if (!built.wasm) throw new Error("the WASI build is missing (sead.wasi-browser.js, sead.wasm32-wasi.wasm): run npm run build:wasi first");
  site = built.outDir;
  server = await serveWeb(built.outDir, 0);
  // (puppeteer-core is an ES module: imported, not required)
  const { default: puppeteer } = await import("puppeteer-core");
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--disable-dev-shm-usage"],
  });
});

test.after.always(async () => {
  await browser?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page on `query`, with every uncaught error and console error collected. */
async function open(query: Record<string, string>, problems: string[], on: Browser | undefined = browser): Promise<Page> {
  const page = await on!.newPage();
  await page.setViewport({ width: 1100, height: 600 });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  await page.goto(`${server!.url}?${new URLSearchParams(query).toString()}`);
  return page;
}

/** Waits for the page's #result (written after a run, or with an error) and parses it. */
async function result(page: Page, timeout = 240_000): Promise<PageResult> {
  await page.waitForFunction(() => (document.getElementById("result")?.textContent ?? "") !== "", { timeout });
  return JSON.parse(await page.$eval("#result", (e) => e.textContent ?? "")) as PageResult;
}

const cpu = new CpuBackend();

test.serial("the bundle holds no Node API: no node: module, no require", (t) => {
  const scripts = readdirSync(site).filter((f) => /\.m?js$/.test(f));
  t.true(scripts.includes("main.js") && scripts.includes("engine.js") && scripts.includes("wasi-worker-browser.mjs"), scripts.join(", "));
  for (const f of scripts) {
    const text = readFileSync(join(site, f), "utf8");
    t.notRegex(text, /["'`]node:[a-z_]/, `${f} names a node: module`);
    t.notRegex(text, /\brequire\(["'`]/, `${f} calls require`);
  }
});

interface Case {
  title: string;
  model: string;
  /** The page's URL parameters for the input. */
  query: Record<string, string>;
  /** The same input for the task. */
  input: unknown;
}

function additionCase(model: string, digits: number, seed: number): Case {
  const task = taskFromInfo(loadModel(model).model.task);
  const { a, b } = task.sample(new Rng(seed), digits) as { a: string; b: string };
  return { title: `${digits}-digit ${model}`, model, query: { a, b }, input: { a, b } };
}

function rowCase(model: string, length: number, seed: number): Case {
  const task = taskFromInfo(loadModel(model).model.task);
  const input = task.sample(new Rng(seed), length) as Uint8Array;
  return { title: `${model} of ${length} cells`, model, query: { input: task.formatInput!(input) }, input };
}

const CASES: Case[] = [
  additionCase("addition-base2", 1000, 1),
  additionCase("addition-base10", 1000, 2),
  rowCase("parity", 128, 3),
  rowCase("rule110", 256, 4),
  // 2D: the diagram shows the grid; answers and steps as for the rows
  additionCase("multiplication-base2", 8, 5),
];

async function nodeAnswer(c: Case): Promise<{ answer: string; steps: number; task: AnyTask }> {
  const { model } = loadModel(c.model);
  const task = taskFromInfo(model.task);
  const r = await solve(cpu, model, task, [c.input]);
  return { answer: task.formatAnswer!(r.answers[0]), steps: r.steps[0]!, task };
}

for (const backend of BACKENDS) {
  for (const c of CASES) {
    test.serial(`${backend}: ${c.title} gives the Node CPU backend's answer in the same steps`, async (t) => {
      const want = await nodeAnswer(c);
      const problems: string[] = [];
      const page = await open({ model: c.model, backend, autorun: "1", rows: "0", ...c.query }, problems);
      try {
        const r = await result(page);
        t.is(r.error, undefined, `the page says: ${r.error}`);
        t.is(r.backend, backend);
        t.is(r.answer, want.answer);
        t.true(r.exact);
        if (r.bigint !== null) t.true(r.bigint);
        t.is(r.steps, want.steps);
        t.true(r.settled);
        t.deepEqual(problems, []);
        t.log(`${r.device}: ${r.steps} steps, ${r.ms} ms to settle`);
      } finally {
        await page.close();
      }
    });
  }
}

async function refused(t: ExecutionContext, query: Record<string, string>, message: RegExp, on: Browser | undefined = browser): Promise<void> {
  const problems: string[] = [];
  const page = await open({ backend: "wasm", autorun: "1", ...query }, problems, on);
  try {
    const r = await result(page);
    t.regex(r.error ?? "", message);
    const shown = await page.$eval("#error", (e) => ({ hidden: (e as HTMLElement).hidden, text: e.textContent ?? "" }));
    t.false(shown.hidden, "the message is visible");
    t.regex(shown.text, message);
    t.deepEqual(problems, []);
  } finally {
    await page.close();
  }
}

test.serial("bad input: a digit outside the base is named on the page", (t) =>
  refused(t, { model: "addition-base2", a: "1021", b: "1" }, /operand a: digit '2' at position 2 .* is not valid in base 2/),
);

test.serial("bad input: an empty operand is named on the page", (t) =>
  refused(t, { model: "addition-base10", a: "123", b: "" }, /operand b is empty/),
);

test.serial("bad input: an absurd length is refused before anything of its size is made", (t) =>
  // run.ts's checkSessionFits against the page's limit, or the WASI build's own 4 GiB refusal
  refused(t, { model: "addition-base2", random: "1000000000" }, /1,?000,?000,?001 grid needs ([\d,]+ bytes; the backend's limit is|more than 4 GiB)/),
);

test.serial("bad input: a bit string with another character, for parity", (t) =>
  refused(t, { model: "parity", input: "0110x1" }, /character "x" at position 4 is not a bit/),
);

test.serial("bad input: an unknown backend and an unknown model are named", async (t) => {
  await refused(t, { backend: "cuda", model: "parity" }, /backend must be webgpu or wasm, got "cuda"/);
  await refused(t, { model: "no-such-model" }, /no shipped model named "no-such-model"/);
});

test.serial("no backend asked for: WebGPU where the browser has an adapter, else WebAssembly, saying why", async (t) => {
  const parity = { model: "parity", input: "0110100111", autorun: "1", rows: "0" };
  const withGpu: string[] = [];
  const page = await open(parity, withGpu);
  try {
    const r = await result(page);
    t.is(r.backend, "webgpu");
    t.true(r.exact);
    t.deepEqual(withGpu, []);
  } finally {
    await page.close();
  }
  // Chromium without the WebGPU flags: navigator.gpu is there but offers no adapter here.
  const { default: puppeteer } = await import("puppeteer-core");
  const plain = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  try {
    const problems: string[] = [];
    const p = await open(parity, problems, plain);
    const r = await result(p);
    t.is(r.backend, "wasm");
    t.true(r.exact);
    t.regex(await p.$eval("#backend", (e) => e.textContent ?? ""), /backend: wasm .*WebGPU unavailable \(.+\); using WebAssembly/);
    t.deepEqual(problems, []);
    await p.close();
    // Asked for by name, a missing WebGPU is an error on the page, not an uncaught one.
    await refused(t, { ...parity, backend: "webgpu" }, /WebGPU is present but offers no adapter|WebGPU is not available/, plain);
  } finally {
    await plain.close();
  }
});

test.serial("step, play and pause: stepping by hand settles in the steps of a run, with the same answer", async (t) => {
  const c = rowCase("parity", 64, 9);
  const want = await nodeAnswer(c);
  const problems: string[] = [];
  const page = await open({ model: c.model, backend: "wasm", ...c.query }, problems);
  try {
    const steps = () => page.$eval("#steps", (e) => Number((e.textContent ?? "").replace(/,/g, "")));
    await page.waitForFunction(() => !(document.getElementById("step") as HTMLButtonElement).disabled);
    for (let i = 1; i <= 3; i++) {
      await page.click("#step");
      await page.waitForFunction((n) => document.getElementById("steps")?.textContent === String(n), {}, i);
    }
    t.is(await steps(), 3);
    t.is(await page.$eval("#result", (e) => e.textContent), "", "nothing is written before the run settles");
    await page.click("#play");
    await page.waitForFunction(() => Number(document.getElementById("steps")?.textContent ?? "0") >= 10);
    await page.click("#pause");
    await page.waitForFunction(() => (document.getElementById("play") as HTMLButtonElement).disabled === false);
    const paused = await steps();
    await new Promise((r) => setTimeout(r, 300));
    t.is(await steps(), paused, "no step while paused");
    t.true(paused < want.steps, `paused at ${paused}, before the ${want.steps} steps to settle`);
    await page.click("#play");
    const r = await result(page);
    t.is(r.error, undefined);
    t.is(r.answer, want.answer);
    t.is(r.steps, want.steps);
    t.true(r.settled && r.exact);
    t.is(await page.$eval("#settled", (e) => e.textContent), "settled");
    const canvas = await page.$eval("#diagram", (e) => (e as HTMLCanvasElement).height);
    t.true(canvas >= want.steps, `a row per step: the canvas is ${canvas} px high`);
    t.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test.serial("stop: a long run stops, and the page runs again on a fresh engine", async (t) => {
  const problems: string[] = [];
  // Parity of 20,000 bits settles in about 20,000 steps of 20,000 cells: minutes on the wasm path.
  const page = await open({ model: "parity", backend: "wasm", random: "20000", rows: "0" }, problems);
  try {
    const disabled = (id: string) => page.$eval(`#${id}`, (e) => (e as HTMLButtonElement).disabled);
    await page.waitForFunction(() => !(document.getElementById("run") as HTMLButtonElement).disabled);
    t.true(await disabled("stop"), "stop is off until a run starts");
    await page.click("#run");
    await page.waitForFunction(() => !(document.getElementById("stop") as HTMLButtonElement).disabled);
    await new Promise((r) => setTimeout(r, 500));
    await page.click("#stop");
    const r = await result(page, 30_000);
    t.deepEqual(r, { stopped: true, backend: "wasm" });
    t.is(await page.$eval("#settled", (e) => e.textContent), "stopped");
    t.true(await disabled("stop"));

    const c = rowCase("parity", 64, 9);
    const want = await nodeAnswer(c);
    await page.$eval("#input", (e, v) => ((e as HTMLInputElement).value = v), c.query["input"]!);
    await page.waitForFunction(() => !(document.getElementById("run") as HTMLButtonElement).disabled);
    await page.click("#run");
    await page.waitForFunction(() => (document.getElementById("result")?.textContent ?? "").includes('"answer"'), { timeout: 240_000 });
    const again = JSON.parse(await page.$eval("#result", (e) => e.textContent ?? "")) as PageResult;
    t.is(again.answer, want.answer);
    t.is(again.steps, want.steps);
    t.true(again.settled && again.exact);
    t.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test.serial("npm run web as the README says: builds dist/web and serves it with the isolation headers and MIME types", async (t) => {
  // `npm run web` is `node --import=tsx scripts/web.ts`; PORT=0 asks for a free port.
  const child = spawn(process.execPath, ["--import=tsx", join(ROOT, "scripts", "web.ts")], { cwd: ROOT, env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`npm run web printed no URL in 120 s: ${out}`)), 120_000);
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /serving .* at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      child.once("exit", (code) => reject(new Error(`npm run web exited (${code}): ${out}`)));
    });
    t.true(existsSync(join(ROOT, "dist", "web", "index.html")));
    for (const [path, type] of [
      ["", "text/html; charset=utf-8"],
      ["main.js", "text/javascript; charset=utf-8"],
      ["engine.js", "text/javascript; charset=utf-8"],
      ["wasi-worker-browser.mjs", "text/javascript; charset=utf-8"],
      ["sead.wasm32-wasi.wasm", "application/wasm"],
      ["models/index.json", "application/json; charset=utf-8"],
    ] as const) {
      const res = await fetch(url + path);
      t.is(res.status, 200, path);
      t.is(res.headers.get("content-type"), type, path);
      t.is(res.headers.get("cross-origin-opener-policy"), "same-origin", path);
      t.is(res.headers.get("cross-origin-embedder-policy"), "require-corp", path);
      await res.arrayBuffer();
    }
    t.is((await fetch(url + "no-such-file.js")).status, 404);
  } finally {
    child.kill("SIGTERM");
  }
});

test.serial("a screenshot after a run is not blank", async (t) => {
  const problems: string[] = [];
  const page = await open({ model: "addition-base2", backend: "wasm", autorun: "1", random: "48", seed: "7" }, problems);
  try {
    const r = await result(page);
    t.is(r.error, undefined);
    t.true(r.exact);
    const file = join(dir, "web-page.png");
    const png = (await page.screenshot({ path: file, fullPage: true })) as Uint8Array;
    const image = PNG.sync.read(Buffer.from(png));
    const colours = new Set<number>();
    let ink = 0;
    for (let i = 0; i < image.data.length; i += 4) {
      const [red, green, blue] = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
      colours.add((red << 16) | (green << 8) | blue);
      if (red + green + blue < 600) ink++;
    }
    const share = ink / (image.width * image.height);
    t.log(`${file}: ${image.width} x ${image.height}, ${colours.size} colours, ${(share * 100).toFixed(1)}% ink`);
    t.true(colours.size > 50, `only ${colours.size} colours`);
    t.true(share > 0.02, `only ${(share * 100).toFixed(2)}% of the pixels are not background`);
    // The diagram itself: a canvas with both shades of output in it.
    const canvas = await page.$eval("#diagram", (c) => {
      const cv = c as HTMLCanvasElement;
      const d = cv.getContext("2d")!.getImageData(0, 0, cv.width, cv.height).data;
      const s = new Set<number>();
      for (let i = 0; i < d.length; i += 4) s.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
      return { width: cv.width, height: cv.height, colours: s.size };
    });
    t.true(canvas.height > 10 && canvas.colours >= 2, JSON.stringify(canvas));
    t.deepEqual(problems, []);
    if (process.env["SEAD_UPDATE_SCREENSHOT"] === "1") {
      mkdirSync(join(ROOT, "docs", "images"), { recursive: true });
      writeFileSync(join(ROOT, "docs", "images", "web-page.png"), png);
    }
  } finally {
    await page.close();
  }
});
