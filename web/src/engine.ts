/**
 * The page's engine, a module Web Worker (protocol.ts): opens the backend, loads shipped
 * models, checks and encodes inputs with the task's own code, runs sessions to their fixed
 * point, and answers with outcomes and diagram rows. Backends: "webgpu" (the WebGPU host over
 * the same WGSL files as the native GPU backend) and "wasm" (src/backend/cpu.ts over the
 * napi-rs WASI build of the native module: the CPU kernels compiled to WebAssembly SIMD128).
 */
import { CpuBackend } from "../../src/backend/cpu.js";
import { setNativeModule } from "../../src/backend/native.js";
import type { Backend, Session } from "../../src/backend/types.js";
import { InvalidInputError } from "../../src/errors.js";
import type { Model } from "../../src/model/model.js";
import { parseCheckpoint } from "../../src/model/parse.js";
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
import type { Answer, BackendKind, Envelope, Fields, Layout, ModelInfo, Outcome, Replies, Request } from "./protocol.js";

/** Sessions the page may open: a wasm32 memory holds at most 4 GiB. */
const PAGE_MAX_SESSION_BYTES = 2 ** 30;

interface Opened {
  kind: BackendKind;
  backend: Backend;
  device: string;
}

interface Loaded {
  name: string;
  model: Model;
  task: AnyTask;
}

interface Prepared {
  loaded: Loaded;
  input: unknown;
  size: number;
  enc: Encoded;
  expected: unknown;
  layout: Layout;
}

interface Live {
  key: string;
  prep: Prepared;
  session: Session;
  quiet: number;
  steps: number;
  done: boolean;
}

let opened: Opened | undefined;
let live: Live | undefined;
const models = new Map<string, Loaded>();

async function wasmBackend(threads: number): Promise<Opened> {
  if (!globalThis.crossOriginIsolated) {
    throw new Error("the WebAssembly backend needs a cross-origin isolated page (serve it with npm run web, which sends the COOP/COEP headers)");
  }
  const mod = await import("sead-web:wasi");
  setNativeModule(mod.default);
  const backend = new CpuBackend({ threads, maxSessionBytes: PAGE_MAX_SESSION_BYTES });
  return { kind: "wasm", backend, device: backend.info().device };
}

async function webGpuBackend(): Promise<Opened> {
  if (!(navigator as { gpu?: unknown }).gpu) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
  const { createWebGpuBackend } = await import("../../src/web/webgpu.js");
  const backend = await createWebGpuBackend({ maxSessionBytes: PAGE_MAX_SESSION_BYTES });
  return { kind: "webgpu", backend, device: backend.info().device };
}

/** `threads`: the wasm backend's (0: the WASI build's default, 1). */
async function init(kind: BackendKind | undefined, threads: number): Promise<Replies["init"]> {
  if (kind === "wasm") opened = await wasmBackend(threads);
  else if (kind === "webgpu") opened = await webGpuBackend();
  else {
    try {
      opened = await webGpuBackend();
    } catch (e) {
      opened = await wasmBackend(threads);
      return { kind: opened.kind, device: opened.device, note: `WebGPU unavailable (${(e as Error).message}); using WebAssembly` };
    }
  }
  return { kind: opened.kind, device: opened.device, note: null };
}

function backend(): Opened {
  if (!opened) throw new Error("the engine has no backend yet");
  return opened;
}

async function loadModel(name: string): Promise<Loaded> {
  const hit = models.get(name);
  if (hit) return hit;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new InvalidInputError(`model must be the name of a shipped model, got ${JSON.stringify(name)}`);
  const res = await fetch(new URL(`models/${name}.json`, location.href));
  if (!res.ok) throw new InvalidInputError(`no shipped model named ${JSON.stringify(name)} (choose one from the list)`);
  const { model } = parseCheckpoint(await res.text(), `models/${name}.json`);
  if (!model.task) throw new InvalidInputError(`model ${name} names no task`);
  const task = taskFromInfo(model.task);
  checkModelFitsTask(model, task);
  const loaded = { name, model, task };
  models.set(name, loaded);
  return loaded;
}

const twoOperands = (task: AnyTask): boolean => ["addition", "multiplication"].includes(task.describe().name);

function info(l: Loaded): ModelInfo {
  return { name: l.name, title: l.task.title, twoOperands: twoOperands(l.task), dims: l.task.dims };
}

/** The task's input from the fields, checked by the task's own parsers. */
function inputFromFields(task: AnyTask, fields: Fields): unknown {
  if ("a" in fields) {
    if (!twoOperands(task)) throw new InvalidInputError(`task ${task.name} takes one input, not two operands`);
    const a = fields.a.trim();
    const b = fields.b.trim();
    if (task instanceof AdditionTask) {
      parseOperand(a, task.base, "a");
      parseOperand(b, task.base, "b");
      return padOperands(a, b);
    }
    if (a === "" || b === "") throw new InvalidInputError(`operand ${a === "" ? "a" : "b"} is empty; it needs at least one digit`);
    if (!task.parseInput) throw new InvalidInputError(`task ${task.name} cannot parse typed input`);
    return task.parseInput(`${a}*${b}`);
  }
  if (twoOperands(task)) throw new InvalidInputError(`task ${task.name} takes two operands, a and b`);
  if (!task.parseInput) throw new InvalidInputError(`task ${task.name} cannot parse typed input`);
  return task.parseInput(fields.input);
}

function fieldsFromInput(task: AnyTask, input: unknown): Fields {
  if (twoOperands(task)) {
    const { a, b } = input as { a: string; b: string };
    return { a, b };
  }
  return { input: task.formatInput ? task.formatInput(input) : String(input) };
}

/** Refuses a grid the backend would not hold, before anything of its size is made. */
function checkSize(l: Loaded, size: number): void {
  const grid = gridChecked(l.task, size);
  checkSessionFits(backend().backend, l.model, { batch: 1, ...grid });
}

async function random(name: string, length: number, seed: number): Promise<Fields> {
  const l = await loadModel(name);
  if (!Number.isSafeInteger(length) || length < 1) throw new InvalidInputError(`length must be a whole number of at least 1, got ${String(length)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidInputError(`seed must be a whole number of at least 0, got ${String(seed)}`);
  checkSize(l, length);
  return fieldsFromInput(l.task, l.task.sample(new Rng(seed), length));
}

async function prepare(name: string, fields: Fields): Promise<Prepared> {
  const loaded = await loadModel(name);
  const { task } = loaded;
  const input = inputFromFields(task, fields);
  const size = task.sizeOf(input);
  checkSize(loaded, size);
  const enc = encodeChecked(task, [input]);
  const layout = { width: enc.width, height: enc.height, cOut: task.cOut, target: enc.target };
  return { loaded, input, size, enc, expected: referenceChecked(task, input), layout };
}

/**
 * An addition's sum (bases 2, 8, 10, 16) or a binary product checked with BigInt arithmetic;
 * null for other tasks.
 */
function bigIntCheck(prep: Prepared, answer: string): boolean | null {
  const { task } = prep.loaded;
  const product = task.describe().name === "multiplication";
  if (!(task instanceof AdditionTask) && !product) return null;
  const prefix = task instanceof AdditionTask ? ({ 2: "0b", 8: "0o", 10: "", 16: "0x" } as Record<number, string>)[task.base] : "0b";
  if (prefix === undefined) return null;
  const { a, b } = prep.input as { a: string; b: string };
  try {
    const [x, y, z] = [a, b, answer].map((s) => BigInt(prefix + s)) as [bigint, bigint, bigint];
    return (product ? x * y : x + y) === z;
  } catch {
    return false;
  }
}

function outcome(prep: Prepared, outputs: Uint8Array, steps: number, settled: boolean, state: string, ms: number | null): Outcome {
  const { task } = prep.loaded;
  const value = decodeChecked(task, outputs, prep.enc)[0];
  const exact = equalChecked(task, value, prep.expected);
  const answer = task.formatAnswer ? task.formatAnswer(value) : String(value);
  const b = backend();
  return {
    model: prep.loaded.name,
    backend: b.kind,
    device: b.device,
    size: prep.size,
    width: prep.enc.width,
    answer,
    exact,
    bigint: bigIntCheck(prep, answer),
    steps,
    settled,
    state,
    ms: ms === null ? null : Math.round(ms * 1000) / 1000,
  };
}

function disposeLive(): void {
  live?.session.dispose();
  live = undefined;
}

/** A fresh session stepped to its fixed point by session.converge, timed; then replayed in chunks for the diagram. */
async function run(name: string, fields: Fields, rowsWanted: number): Promise<Replies["run"]> {
  disposeLive();
  const prep = await prepare(name, fields);
  const b = backend().backend;
  const { model } = prep.loaded;
  const grid = { batch: 1, height: prep.enc.height, width: prep.enc.width };
  const conv = convergeDefaults(prep.enc.width, prep.enc.height);
  const session = b.createSession(model.spec, grid, prep.enc.x);
  let r;
  let outputs: Uint8Array;
  let ms: number;
  try {
    const t0 = performance.now();
    r = await session.converge(model.params, conv);
    ms = performance.now() - t0;
    outputs = session.outputs();
  } finally {
    session.dispose();
  }
  const steps = r.steps[0]!;
  const settled = r.converged[0] === 1;
  const out = outcome(prep, outputs, steps, settled, settled ? "settled" : `not settled after ${conv.maxSteps} steps`, ms);
  const rows: Uint8Array[] = [];
  if (rowsWanted > 0 && steps > 0) {
    const replay = b.createSession(model.spec, grid, prep.enc.x);
    try {
      const chunk = Math.ceil(steps / Math.min(steps, rowsWanted));
      for (let done = 0; done < steps; ) {
        const n = Math.min(chunk, steps - done);
        await replay.step(model.params, n);
        done += n;
        rows.push(replay.outputs());
      }
    } finally {
      replay.dispose();
    }
  }
  return { outcome: out, layout: prep.layout, rows };
}

/**
 * One step of the live session (made on the first step, or when the input changed), judged by
 * the settle rule of session.converge (ConvergeOptions: `patience` steps in a row with no
 * output change, and the last step's max |h' - h| below `tol`).
 */
async function step(name: string, fields: Fields): Promise<Replies["step"]> {
  const key = JSON.stringify([name, fields]);
  let first = false;
  if (!live || live.key !== key) {
    disposeLive();
    const prep = await prepare(name, fields);
    const grid = { batch: 1, height: prep.enc.height, width: prep.enc.width };
    live = { key, prep, session: backend().backend.createSession(prep.loaded.model.spec, grid, prep.enc.x), quiet: 0, steps: 0, done: false };
    first = true;
  }
  const l = live;
  const conv = convergeDefaults(l.prep.enc.width, l.prep.enc.height);
  if (!l.done) {
    const r = await l.session.step(l.prep.loaded.model.params, 1);
    l.steps += 1;
    l.quiet = r.changed[0] === 0 ? l.quiet + 1 : 0;
    const settled = l.quiet >= conv.patience && r.maxDelta[0]! < conv.tol;
    l.done = settled || l.steps >= conv.maxSteps;
    const outputs = l.session.outputs();
    const state = settled ? "settled" : l.done ? `not settled after ${conv.maxSteps} steps` : `stepping (max |h'-h| ${r.maxDelta[0]!.toExponential(2)})`;
    return { outcome: outcome(l.prep, outputs, l.steps, settled, state, null), layout: l.prep.layout, outputs, first, done: l.done };
  }
  const outputs = l.session.outputs();
  return { outcome: outcome(l.prep, outputs, l.steps, true, "settled", null), layout: l.prep.layout, outputs, first, done: true };
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case "init":
      return init(req.backend, req.threads);
    case "model":
      return info(await loadModel(req.name));
    case "random":
      return random(req.model, req.length, req.seed);
    case "run":
      return run(req.model, req.fields, req.rows);
    case "step":
      return step(req.model, req.fields);
    case "reset":
      disposeLive();
      return null;
  }
}

// One request at a time, in order.
let queue: Promise<void> = Promise.resolve();
self.addEventListener("message", (e: MessageEvent<Envelope>) => {
  const { id, request } = e.data;
  queue = queue.then(async () => {
    let answer: Answer;
    try {
      answer = { id, ok: true, value: await handle(request) };
    } catch (err) {
      answer = { id, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    self.postMessage(answer);
  });
});
