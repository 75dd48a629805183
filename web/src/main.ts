/**
 * The page: pick a shipped model, type operands or draw random ones, run to the fixed point
 * (session.converge) or play / step one step at a time, and watch the spacetime diagram.
 * Everything it computes goes through sead's own layers: the task encodes, decodes and gives
 * the exact answer, run.ts's convergence rule and limits, the backend's sessions. After a run
 * the outcome is written as JSON into #result (docs/web.md).
 */
import type { Session } from "../../src/backend/types.js";
import { InvalidInputError } from "../../src/errors.js";
import type { Model } from "../../src/model/model.js";
import { parseModelJson } from "../../src/model/parse.js";
import { Rng } from "../../src/rng.js";
import { checkModelFitsTask, checkSessionFits, convergeDefaults } from "../../src/run.js";
import {
  AdditionTask,
  type AnyTask,
  decodeChecked,
  type Encoded,
  encodeChecked,
  equalChecked,
  gridChecked,
  padOperands,
  parseOperand,
  referenceChecked,
  taskFromInfo,
} from "../../src/tasks/index.js";
import { type BackendKind, openBackend, type PageBackend, parseBackendKind } from "./backend.js";
import { Diagram } from "./diagram.js";

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
  result: $<HTMLPreElement>("result"),
};

/** Rows of the diagram drawn after a run (the run is replayed in chunks of steps to draw it). */
const REPLAY_ROWS = 240;

interface Loaded {
  name: string;
  model: Model;
  task: AnyTask;
}

/** An input ready to run: encoded, with its exact answer. */
interface Prepared {
  loaded: Loaded;
  input: unknown;
  size: number;
  enc: Encoded;
  expected: unknown;
}

/** A session being played or stepped by hand. */
interface Live {
  prep: Prepared;
  session: Session;
  diagram: Diagram;
  quiet: number;
  steps: number;
  done: boolean;
}

let pageBackend: PageBackend | undefined;
let current: Loaded | undefined;
let live: Live | undefined;
let playing = false;
let busy = false;
const modelCache = new Map<string, Loaded>();

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function showError(e: unknown): void {
  const text = message(e);
  ui.error.textContent = text;
  ui.error.hidden = false;
  writeResult({ error: text, backend: pageBackend?.kind ?? null });
}

function clearError(): void {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

function writeResult(r: Record<string, unknown>): void {
  ui.result.textContent = JSON.stringify(r);
  document.body.dataset["state"] = "error" in r ? "error" : "done";
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

function setButtons(): void {
  const ready = pageBackend !== undefined && current !== undefined;
  ui.run.disabled = busy || playing || !ready;
  ui.random.disabled = busy || playing || !ready;
  ui.step.disabled = busy || playing || !ready || (live?.done ?? false);
  ui.play.disabled = busy || playing || !ready || (live?.done ?? false);
  ui.pause.disabled = !playing;
  ui.reset.disabled = busy || playing;
}

async function loadModel(name: string): Promise<Loaded> {
  const hit = modelCache.get(name);
  if (hit) return hit;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new InvalidInputError(`model must be the name of a shipped model, got ${JSON.stringify(name)}`);
  const res = await fetch(`models/${name}.json`);
  if (!res.ok) throw new InvalidInputError(`no shipped model named ${JSON.stringify(name)} (choose one from the list)`);
  const model = parseModelJson(await res.text(), `models/${name}.json`);
  if (!model.task) throw new InvalidInputError(`model ${name} names no task`);
  const task = taskFromInfo(model.task);
  checkModelFitsTask(model, task);
  const loaded = { name, model, task };
  modelCache.set(name, loaded);
  return loaded;
}

const twoOperands = (task: AnyTask): boolean => ["addition", "multiplication"].includes(task.describe().name);

function showFields(task: AnyTask): void {
  const two = twoOperands(task);
  ui.operands.hidden = !two;
  ui.single.hidden = two;
}

/** The task's input from the fields, checked by the task's own parsers. */
function inputFromFields(task: AnyTask): unknown {
  if (task instanceof AdditionTask) {
    const a = ui.a.value.trim();
    const b = ui.b.value.trim();
    parseOperand(a, task.base, "a");
    parseOperand(b, task.base, "b");
    return padOperands(a, b);
  }
  if (twoOperands(task)) {
    const a = ui.a.value.trim();
    const b = ui.b.value.trim();
    if (a === "" || b === "") throw new InvalidInputError(`operand ${a === "" ? "a" : "b"} is empty; it needs at least one digit`);
    if (!task.parseInput) throw new InvalidInputError(`task ${task.name} cannot parse typed input`);
    return task.parseInput(`${a}*${b}`);
  }
  if (!task.parseInput) throw new InvalidInputError(`task ${task.name} cannot parse typed input`);
  return task.parseInput(ui.input.value);
}

function fieldsFromInput(task: AnyTask, input: unknown): void {
  if (twoOperands(task)) {
    const { a, b } = input as { a: string; b: string };
    ui.a.value = a;
    ui.b.value = b;
  } else {
    ui.input.value = task.formatInput ? task.formatInput(input) : String(input);
  }
}

/** Refuses a grid the backend would not hold, before anything of its size is made. */
function checkSize(loaded: Loaded, size: number): void {
  if (!pageBackend) throw new Error("no backend yet");
  const grid = gridChecked(loaded.task, size);
  checkSessionFits(pageBackend.backend, loaded.model, { batch: 1, ...grid });
}

function drawRandom(): void {
  if (!current) return;
  const length = Number(ui.length.value);
  if (!Number.isSafeInteger(length) || length < 1) throw new InvalidInputError(`length must be a whole number of at least 1, got ${JSON.stringify(ui.length.value)}`);
  const seed = Number(ui.seed.value);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidInputError(`seed must be a whole number of at least 0, got ${JSON.stringify(ui.seed.value)}`);
  checkSize(current, length);
  fieldsFromInput(current.task, current.task.sample(new Rng(seed), length));
}

function prepare(): Prepared {
  if (!current || !pageBackend) throw new Error("the page is not ready yet");
  const { task } = current;
  const input = inputFromFields(task);
  const size = task.sizeOf(input);
  checkSize(current, size);
  const enc = encodeChecked(task, [input]);
  return { loaded: current, input, size, enc, expected: referenceChecked(task, input) };
}

function formatAnswer(task: AnyTask, answer: unknown): string {
  return task.formatAnswer ? task.formatAnswer(answer) : String(answer);
}

/** An addition's sum checked with BigInt arithmetic (bases 2, 8, 10, 16); null for other tasks. */
function bigIntCheck(prep: Prepared, answer: string): boolean | null {
  const { task } = prep.loaded;
  if (!(task instanceof AdditionTask)) return null;
  const prefix = ({ 2: "0b", 8: "0o", 10: "", 16: "0x" } as Record<number, string>)[task.base];
  if (prefix === undefined) return null;
  const { a, b } = prep.input as { a: string; b: string };
  try {
    return BigInt(prefix + a) + BigInt(prefix + b) === BigInt(prefix + answer);
  } catch {
    return false;
  }
}

function newDiagram(prep: Prepared): Diagram {
  return new Diagram(ui.canvas, prep.loaded.task.cOut, prep.enc.target, prep.enc.width, prep.enc.height);
}

function showOutcome(prep: Prepared, outputs: Uint8Array, steps: number, state: string, ms: number | null): { answer: string; exact: boolean; bigint: boolean | null } {
  const { task } = prep.loaded;
  const answerValue = decodeChecked(task, outputs, prep.enc)[0];
  const exact = equalChecked(task, answerValue, prep.expected);
  const answer = formatAnswer(task, answerValue);
  const bigint = bigIntCheck(prep, answer);
  ui.steps.textContent = steps.toLocaleString("en-US");
  ui.settled.textContent = state;
  ui.time.textContent = ms === null ? "–" : `${ms.toFixed(1)} ms`;
  ui.answer.textContent = answer.length > 4000 ? `${answer.slice(0, 2000)} … ${answer.slice(-2000)} (${answer.length.toLocaleString("en-US")} characters)` : answer;
  const bigText = bigint === null ? "" : bigint ? "; BigInt agrees" : "; BigInt DISAGREES";
  ui.check.textContent = (exact ? "exact" : "WRONG: differs from the exact answer") + bigText;
  ui.check.className = exact && bigint !== false ? "ok" : "bad";
  return { answer, exact, bigint };
}

function disposeLive(): void {
  if (live) {
    live.session.dispose();
    live = undefined;
  }
}

/** Run: a fresh session stepped to its fixed point by session.converge, timed; then the diagram. */
async function run(): Promise<void> {
  clearError();
  disposeLive();
  const prep = prepare();
  const backend = pageBackend!;
  const { model } = prep.loaded;
  const grid = { batch: 1, height: prep.enc.height, width: prep.enc.width };
  const conv = convergeDefaults(prep.enc.width, prep.enc.height);
  ui.settled.textContent = "running…";
  document.body.dataset["state"] = "running";
  const session = backend.backend.createSession(model.spec, grid, prep.enc.x);
  let steps: number;
  let settled: boolean;
  let outputs: Uint8Array;
  let ms: number;
  try {
    const t0 = performance.now();
    const r = await session.converge(model.params, conv);
    ms = performance.now() - t0;
    steps = r.steps[0]!;
    settled = r.converged[0] === 1;
    outputs = session.outputs();
  } finally {
    session.dispose();
  }
  const out = showOutcome(prep, outputs, steps, settled ? "settled" : `not settled after ${conv.maxSteps} steps`, ms);
  // The diagram: the same run again, a chunk of steps per row.
  const diagram = newDiagram(prep);
  const replay = backend.backend.createSession(model.spec, grid, prep.enc.x);
  try {
    const rows = Math.max(1, Math.min(steps, REPLAY_ROWS));
    const chunk = Math.ceil(steps / rows);
    for (let done = 0; done < steps; ) {
      const n = Math.min(chunk, steps - done);
      await replay.step(model.params, n);
      done += n;
      diagram.add(replay.outputs());
    }
  } finally {
    replay.dispose();
  }
  diagram.draw();
  writeResult({
    model: prep.loaded.name,
    backend: backend.kind,
    device: backend.device,
    size: prep.size,
    width: prep.enc.width,
    answer: out.answer,
    exact: out.exact,
    bigint: out.bigint,
    steps,
    settled,
    ms: Math.round(ms * 1000) / 1000,
    diagramRows: diagram.length,
  });
}

/** One step of the live session (made on first use); the settle rule of session.converge. */
async function stepLive(): Promise<void> {
  if (!live) {
    clearError();
    const prep = prepare();
    const grid = { batch: 1, height: prep.enc.height, width: prep.enc.width };
    const session = pageBackend!.backend.createSession(prep.loaded.model.spec, grid, prep.enc.x);
    live = { prep, session, diagram: newDiagram(prep), quiet: 0, steps: 0, done: false };
  }
  const l = live;
  if (l.done) return;
  const conv = convergeDefaults(l.prep.enc.width, l.prep.enc.height);
  const r = await l.session.step(l.prep.loaded.model.params, 1);
  l.steps += 1;
  l.quiet = r.changed[0] === 0 ? l.quiet + 1 : 0;
  const settled = l.quiet >= conv.patience && r.maxDelta[0]! < conv.tol;
  const outOfSteps = l.steps >= conv.maxSteps;
  const outputs = l.session.outputs();
  l.diagram.add(outputs);
  l.diagram.draw();
  const state = settled ? "settled" : outOfSteps ? `not settled after ${conv.maxSteps} steps` : `stepping (max |h'-h| ${r.maxDelta[0]!.toExponential(2)})`;
  const out = showOutcome(l.prep, outputs, l.steps, state, null);
  if (settled || outOfSteps) {
    l.done = true;
    writeResult({ model: l.prep.loaded.name, backend: pageBackend!.kind, device: pageBackend!.device, size: l.prep.size, answer: out.answer, exact: out.exact, bigint: out.bigint, steps: l.steps, settled, mode: "play" });
  }
}

function play(): void {
  if (playing || busy) return;
  playing = true;
  setButtons();
  const frame = () => {
    if (!playing) return;
    stepLive()
      .then(() => {
        if (live?.done) playing = false;
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

function reset(): void {
  playing = false;
  disposeLive();
  clearError();
  ui.steps.textContent = "0";
  ui.settled.textContent = "not started";
  ui.time.textContent = "–";
  ui.check.textContent = "–";
  ui.check.className = "";
  ui.answer.textContent = "";
  const ctx = ui.canvas.getContext("2d");
  ctx?.clearRect(0, 0, ui.canvas.width, ui.canvas.height);
  setButtons();
}

async function selectModel(name: string): Promise<void> {
  reset();
  current = undefined;
  setButtons();
  current = await loadModel(name);
  showFields(current.task);
  setButtons();
}

async function start(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const names = (await (await fetch("models/index.json")).json()) as string[];
  for (const n of names) ui.model.add(new Option(n, n));
  const want = params.get("model") ?? (names.includes("addition-base2") ? "addition-base2" : names[0]!);
  ui.model.value = names.includes(want) ? want : "";
  let kind: BackendKind | undefined;
  try {
    kind = parseBackendKind(params.get("backend"));
  } catch (e) {
    showError(e);
    return;
  }
  ui.backendSelect.value = kind ?? "";
  ui.backend.textContent = "backend: starting…";
  pageBackend = await openBackend(kind).catch((e: unknown) => {
    ui.backend.textContent = "backend: none";
    throw e;
  });
  ui.backend.textContent = `backend: ${pageBackend.kind} (${pageBackend.device})${pageBackend.note ? ` — ${pageBackend.note}` : ""}`;
  ui.backend.dataset["kind"] = pageBackend.kind;
  await selectModel(want);
  const a = params.get("a");
  const b = params.get("b");
  const input = params.get("input");
  const random = params.get("random");
  if (params.get("seed") !== null) ui.seed.value = params.get("seed")!;
  if (a !== null) ui.a.value = a;
  if (b !== null) ui.b.value = b;
  if (input !== null) ui.input.value = input;
  if (random !== null) {
    ui.length.value = random;
    drawRandom();
  } else if (a === null && b === null && input === null) {
    drawRandom();
  }
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
ui.random.addEventListener("click", guarded(async () => {
  reset();
  drawRandom();
}));
ui.run.addEventListener("click", guarded(run));
ui.step.addEventListener("click", guarded(stepLive));
ui.play.addEventListener("click", () => {
  try {
    play();
  } catch (e) {
    showError(e);
  }
});
ui.pause.addEventListener("click", () => {
  playing = false;
  setButtons();
});
ui.reset.addEventListener("click", reset);
for (const field of [ui.a, ui.b, ui.input]) field.addEventListener("input", () => (live ? reset() : undefined));
window.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  showError(e.reason);
});
setButtons();
guarded(start)();
