/**
 * Messages between the page (main.ts, the UI) and its engine (engine.ts, a module Web Worker
 * holding the backend, the model and the sessions). The engine runs in a worker because the
 * WASI build's synchronous calls may wait on a lock (Atomics.wait), which a page's main thread
 * may not do; WebGPU runs there too so that both backends take one path.
 */
export type BackendKind = "webgpu" | "wasm";

/** The two operands of an addition or a multiplication, or one input row. */
export type Fields = { a: string; b: string } | { input: string };

export interface ModelInfo {
  name: string;
  title: string;
  /** Two operand fields (a, b) or one (input). */
  twoOperands: boolean;
  dims: number;
}

/** What the diagram needs to draw a run. */
export interface Layout {
  width: number;
  height: number;
  cOut: number;
  /** The exact answer's class per cell, -1 where none is checked, [height][width]. */
  target: Int32Array;
}

export interface Outcome {
  model: string;
  backend: BackendKind;
  device: string;
  /** The input's size (digits, bits, cells). */
  size: number;
  width: number;
  answer: string;
  exact: boolean;
  /** An addition's sum or a binary product checked with BigInt; null for other tasks. */
  bigint: boolean | null;
  steps: number;
  settled: boolean;
  state: string;
  /** Time to settle, ms (performance.now() around session.converge); null when stepped by hand. */
  ms: number | null;
}

export type Request =
  | { op: "init"; backend: BackendKind | undefined; threads: number }
  | { op: "model"; name: string }
  | { op: "random"; model: string; length: number; seed: number }
  | { op: "run"; model: string; fields: Fields; rows: number }
  | { op: "step"; model: string; fields: Fields }
  | { op: "reset" };

export interface Replies {
  init: { kind: BackendKind; device: string; note: string | null };
  model: ModelInfo;
  random: Fields;
  run: { outcome: Outcome; layout: Layout; rows: Uint8Array[] };
  step: { outcome: Outcome; layout: Layout; outputs: Uint8Array; first: boolean; done: boolean };
  reset: null;
}

export type Reply<K extends Request["op"]> = Replies[K];

export type Envelope = { id: number; request: Request };
export type Answer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
