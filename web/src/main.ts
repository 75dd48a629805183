/**
 * The page's UI: pick a shipped model, type operands or draw random ones, run to the fixed
 * point (or stop the run) or play / step one step at a time, and watch the spacetime diagram.
 * The computing is done by the engine (engine.ts, a Web Worker) through sead's own layers. URL
 * parameters:
 * model, a, b, input, random (a length), seed, backend (webgpu | wasm), autorun, rows, threads
 * (the wasm backend's; 0, the default, lets the WASI build choose: 1). After a run
 * (or a played run that settled) the outcome is written as JSON into #result (docs/web.md).
 */
import { Diagram } from "./diagram.js";
import type { Answer, BackendKind, Fields, ModelInfo, Outcome, Replies, Request } from "./protocol.js";

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};

const ui = {
  model: $<HTMLSelectElement>("model"),
  backendSelect: $<HTMLSelectElement>("backend-select"),
  backend: $<HTMLSpanElement>("backend"),
  operands: $<HTMLDivElement>("operands"),
  single: $<HTMLDivElement>("single"),
  a: $<HTMLInputElement>("a"),
  b: $<HTMLInputElement>("b"),
  input: $<HTMLInputElement>("input"),
  length: $<HTMLInputElement>("length"),
  seed: $<HTMLInputElement>("seed"),
  random: $<HTMLButtonElement>("random"),
  run: $<HTMLButtonElement>("run"),
  stop: $<HTMLButtonElement>("stop"),
  play: $<HTMLButtonElement>("play"),
  pause: $<HTMLButtonElement>("pause"),
  step: $<HTMLButtonElement>("step"),
  reset: $<HTMLButtonElement>("reset"),
  error: $<HTMLParagraphElement>("error"),
  steps: $<HTMLSpanElement>("steps"),
  settled: $<HTMLSpanElement>("settled"),
  time: $<HTMLSpanElement>("time"),
  check: $<HTMLSpanElement>("check"),
  answer: $<HTMLElement>("answer"),
  canvas: $<HTMLCanvasElement>("diagram"),
  caption: $<HTMLElement>("caption"),
  result: $<HTMLPreElement>("result"),
};

/**
 * Rows of the diagram drawn after a run (the engine replays the run in chunks of steps); URL
 * parameter `rows` (0: no diagram, no replay).
 */
const REPLAY_ROWS = (() => {
  const r = Number(new URLSearchParams(location.search).get("rows") ?? "240");
  return Number.isSafeInteger(r) && r >= 0 ? Math.min(r, 2000) : 240;
})();

// ---- the engine ----
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 1;
let engine = startEngine();

function startEngine(): Worker {
  const worker = new Worker(new URL("./engine.js", import.meta.url), { type: "module" });
  worker.addEventListener("message", (e: MessageEvent<Answer>) => {
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.ok) p.resolve(e.data.value);
    else p.reject(new Error(e.data.error));
  });
  worker.addEventListener("error", (e) => {
    e.preventDefault();
    const err = new Error(`the engine (a Web Worker) failed: ${e.message || "it did not load"}`);
    failPending(err);
    showError(err);
  });
  return worker;
}

function failPending(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

/** How a run ended by the stop button rejects. */
class StoppedError extends Error {}

/** The engine's init request, made again for a fresh engine after a stop. */
let initRequest: Extract<Request, { op: "init" }> | undefined;

function call<R extends Request>(request: R): Promise<Replies[R["op"]]> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    engine.postMessage({ id, request });
  });
}

// ---- state ----
let backendKind: BackendKind | null = null;
let model: ModelInfo | undefined;
let diagram: Diagram | undefined;
let playing = false;
let busy = false;
let liveDone = false;
/** A step is in flight (play stays disabled until it lands, also after pause). */
let stepping = false;
/** A run to the fixed point is in flight (stop is enabled). */
let running = false;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function showError(e: unknown): void {
  const text = message(e);
  ui.error.textContent = text;
  ui.error.hidden = false;
  ui.settled.textContent = "error";
  writeResult({ error: text, backend: backendKind });
}

function clearError(): void {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

function writeResult(r: object): void {
  ui.result.textContent = JSON.stringify(r);
  document.body.dataset["state"] = "error" in r ? "error" : "done";
}

function setButtons(): void {
  const ready = backendKind !== null && model !== undefined;
  ui.run.disabled = busy || playing || !ready;
  ui.stop.disabled = !running;
  ui.random.disabled = busy || playing || !ready;
  ui.step.disabled = busy || playing || stepping || !ready || liveDone;
  ui.play.disabled = busy || playing || stepping || !ready || liveDone;
  ui.pause.disabled = !playing;
  ui.reset.disabled = busy || playing;
}

/** Runs an action of the page, reporting any error on the page (never uncaught). */
function guarded(action: () => Promise<void>): () => void {
  return () => {
    if (busy) return;
    busy = true;
    setButtons();
    action()
      .catch(showError)
      .finally(() => {
        busy = false;
        setButtons();
      });
  };
}

function fields(): Fields {
  return model?.twoOperands ? { a: ui.a.value, b: ui.b.value } : { input: ui.input.value };
}

function setFields(f: Fields): void {
  if ("a" in f) {
    ui.a.value = f.a;
    ui.b.value = f.b;
  } else ui.input.value = f.input;
}

function showOutcome(o: Outcome): void {
  ui.steps.textContent = o.steps.toLocaleString("en-US");
  ui.settled.textContent = o.state;
  ui.time.textContent = o.ms === null ? "–" : `${o.ms.toFixed(1)} ms to settle`;
  const a = o.answer;
  ui.answer.textContent = a.length > 4000 ? `${a.slice(0, 2000)} … ${a.slice(-2000)} (${a.length.toLocaleString("en-US")} characters)` : a;
  const big = o.bigint === null ? "" : o.bigint ? "; BigInt agrees" : "; BigInt DISAGREES";
  ui.check.textContent = (o.exact ? "exact" : "WRONG: differs from the exact answer") + big;
  ui.check.className = o.exact && o.bigint !== false ? "ok" : "bad";
}

function resultOf(o: Outcome, extra: object = {}): object {
  const { state: _, ...rest } = o;
  return { ...rest, ...extra };
}

function clearOutcome(): void {
  ui.steps.textContent = "0";
  ui.settled.textContent = "not started";
  ui.time.textContent = "–";
  ui.check.textContent = "–";
  ui.check.className = "";
  ui.answer.textContent = "";
  diagram = undefined;
  const ctx = ui.canvas.getContext("2d");
  ctx?.clearRect(0, 0, ui.canvas.width, ui.canvas.height);
}

async function reset(): Promise<void> {
  playing = false;
  liveDone = false;
  clearError();
  clearOutcome();
  await call({ op: "reset" });
}

async function run(): Promise<void> {
  await reset();
  if (!model) return;
  ui.settled.textContent = "running…";
  document.body.dataset["state"] = "running";
  running = true;
  setButtons();
  let r: Replies["run"];
  try {
    r = await call({ op: "run", model: model.name, fields: fields(), rows: REPLAY_ROWS });
  } catch (e) {
    if (!(e instanceof StoppedError)) throw e;
    ui.settled.textContent = "stopped";
    writeResult({ stopped: true, backend: backendKind });
    return;
  } finally {
    running = false;
    setButtons();
  }
  showOutcome(r.outcome);
  diagram = new Diagram(ui.canvas, r.layout);
  for (const row of r.rows) diagram.add(row);
  diagram.draw();
  writeResult(resultOf(r.outcome, { diagramRows: r.rows.length }));
}

/**
 * Stops a run. A call inside the engine cannot be interrupted from here (the WebAssembly build's
 * calls hold the worker until they return), so the worker is ended and a fresh one made, with the
 * same backend and model; requests made meanwhile wait in its queue behind those two.
 */
async function stopRun(): Promise<void> {
  if (!running || !initRequest) return;
  engine.terminate();
  failPending(new StoppedError("stopped"));
  engine = startEngine();
  await call(initRequest);
  if (model) await call({ op: "model", name: model.name });
}

async function stepOnce(): Promise<void> {
  if (!model) return;
  stepping = true;
  let r: Replies["step"];
  try {
    r = await call({ op: "step", model: model.name, fields: fields() });
  } finally {
    stepping = false;
  }
  if (r.first || !diagram) {
    clearError();
    diagram = new Diagram(ui.canvas, r.layout);
  }
  diagram.add(r.outputs);
  diagram.draw();
  showOutcome(r.outcome);
  if (r.done && !liveDone) {
    liveDone = true;
    writeResult(resultOf(r.outcome, { mode: "play" }));
  }
}

function play(): void {
  if (playing || busy || !model) return;
  playing = true;
  setButtons();
  const frame = (): void => {
    if (!playing) {
      setButtons();
      return;
    }
    stepOnce()
      .then(() => {
        if (liveDone) playing = false;
        if (playing) requestAnimationFrame(frame);
        setButtons();
      })
      .catch((e: unknown) => {
        playing = false;
        setButtons();
        showError(e);
      });
  };
  requestAnimationFrame(frame);
}

async function drawRandom(): Promise<void> {
  if (!model) return;
  await reset();
  setFields(await call({ op: "random", model: model.name, length: Number(ui.length.value), seed: Number(ui.seed.value) }));
}

async function selectModel(name: string): Promise<void> {
  await reset();
  model = undefined;
  setButtons();
  model = await call({ op: "model", name });
  ui.operands.hidden = !model.twoOperands;
  ui.single.hidden = model.twoOperands;
  ui.caption.textContent =
    model.dims === 1
      ? "Cells across, steps down. Outputs: light 0, dark 1 (decimal digits in shades); red where a cell differs from the exact answer."
      : "The 2D grid's outputs after the last step (a grid has no room for time): light 0, dark 1; red where a cell differs from the exact answer.";
}

async function start(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const names = (await (await fetch("models/index.json")).json()) as string[];
  for (const n of names) ui.model.add(new Option(n, n));
  const want = params.get("model") ?? (names.includes("addition-base2") ? "addition-base2" : names[0]!);
  ui.model.value = names.includes(want) ? want : "";
  const b = params.get("backend");
  if (b !== null && b !== "" && b !== "auto" && b !== "webgpu" && b !== "wasm") throw new Error(`backend must be webgpu or wasm, got ${JSON.stringify(b)}`);
  const kind = b === "webgpu" || b === "wasm" ? b : undefined;
  ui.backendSelect.value = kind ?? "";
  try {
    const threadsText = params.get("threads") ?? "0";
    const threads = Number(threadsText);
    if (!Number.isSafeInteger(threads) || threads < 0 || threads > 64) throw new Error(`threads must be a whole number from 0 to 64, got ${JSON.stringify(threadsText)}`);
    initRequest = { op: "init", backend: kind, threads };
    const init = await call(initRequest);
    backendKind = init.kind;
    ui.backend.textContent = `backend: ${init.kind} (${init.device})${init.note ? ` — ${init.note}` : ""}`;
    ui.backend.dataset["kind"] = init.kind;
  } catch (e) {
    ui.backend.textContent = "backend: none";
    throw e;
  }
  await selectModel(want);
  const seed = params.get("seed");
  if (seed !== null) ui.seed.value = seed;
  const [a, bb, input, random] = ["a", "b", "input", "random"].map((k) => params.get(k));
  if (a !== null && a !== undefined) ui.a.value = a;
  if (bb !== null && bb !== undefined) ui.b.value = bb;
  if (input !== null && input !== undefined) ui.input.value = input;
  if (random !== null && random !== undefined) {
    ui.length.value = random;
    await drawRandom();
  } else if (a === null && bb === null && input === null) await drawRandom();
  const autorun = params.get("autorun");
  if (autorun !== null && autorun !== "0" && autorun !== "false") await run();
}

ui.model.addEventListener("change", guarded(() => selectModel(ui.model.value)));
ui.backendSelect.addEventListener("change", () => {
  const params = new URLSearchParams(location.search);
  if (ui.backendSelect.value) params.set("backend", ui.backendSelect.value);
  else params.delete("backend");
  params.set("model", ui.model.value);
  location.search = params.toString();
});
ui.random.addEventListener("click", guarded(drawRandom));
ui.run.addEventListener("click", guarded(run));
ui.stop.addEventListener("click", () => void stopRun().catch(showError));
ui.step.addEventListener("click", guarded(stepOnce));
ui.play.addEventListener("click", play);
ui.pause.addEventListener("click", () => {
  playing = false;
  setButtons();
});
ui.reset.addEventListener("click", guarded(reset));
for (const field of [ui.a, ui.b, ui.input]) {
  field.addEventListener("input", () => {
    if (!playing && !busy && diagram) guarded(reset)();
  });
}
window.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  showError(e.reason);
});
setButtons();
guarded(start)();
