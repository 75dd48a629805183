/**
 * The page side of test/webgpu.test.ts: bundled for the browser, it opens the WebGPU backend
 * and runs the cases Node hands it (plain arrays in, plain arrays out) on sessions.
 */
import type { ConvergeOptions, GridShape } from "../../src/backend/types.js";
import { parseCheckpoint } from "../../src/model/parse.js";
import type { ModelSpec } from "../../src/model/spec.js";
import { type WebGpuBackend, type WebGpuSession, createWebGpuBackend } from "../../src/web/webgpu.js";

export interface WebGpuCase {
  name: string;
  /** A checkpoint's text (a shipped model's file), parsed in the page. */
  checkpoint: string;
  grid: GridShape;
  x: number[];
  /** converge: one converge call; step: `steps` steps, then the per-step stats. */
  mode: "converge" | "step";
  converge?: ConvergeOptions;
  steps?: number;
  /** Settled-tile skipping (SessionOptions.freeze). */
  freeze?: number;
  /** Run on a backend whose buffer bindings are capped at this (several groups of samples). */
  maxGroupBytes?: number;
}

export interface WebGpuCaseResult {
  name: string;
  outputs: number[];
  steps: number[];
  cellsComputed: number[];
  hidden: number[];
  converged?: number[];
  lastMaxDelta?: number[];
  maxDelta?: number[];
  changed?: number[];
  packedTile?: number | null;
  groups: number;
  ms: number;
}

const backends = new Map<number | undefined, WebGpuBackend>();

async function open(maxGroupBytes?: number): Promise<WebGpuBackend> {
  let b = backends.get(maxGroupBytes);
  if (!b) {
    b = await createWebGpuBackend(maxGroupBytes === undefined ? {} : { maxGroupBytes });
    backends.set(maxGroupBytes, b);
  }
  return b;
}

async function info(): Promise<string> {
  return (await open()).info().device;
}

async function run(cases: WebGpuCase[]): Promise<WebGpuCaseResult[]> {
  const out: WebGpuCaseResult[] = [];
  for (const c of cases) {
    const b = await open(c.maxGroupBytes);
    const { model } = parseCheckpoint(c.checkpoint, c.name);
    const params = model.params;
    const session = b.createSession(model.spec, c.grid, new Float32Array(c.x), c.freeze === undefined ? {} : { freeze: c.freeze });
    try {
      const t0 = performance.now();
      const r: Partial<WebGpuCaseResult> = {};
      if (c.mode === "converge") {
        const res = await session.converge(params, c.converge!);
        r.converged = Array.from(res.converged);
        r.lastMaxDelta = Array.from(res.lastMaxDelta);
      } else {
        const res = await session.step(params, c.steps!);
        r.maxDelta = Array.from(res.maxDelta);
        r.changed = Array.from(res.changed);
      }
      out.push({
        ...r,
        name: c.name,
        outputs: Array.from(session.outputs()),
        steps: Array.from(session.steps()),
        cellsComputed: Array.from(session.cellsComputed()),
        hidden: Array.from(session.hidden()),
        groups: (session as WebGpuSession).groupCount(),
        packedTile: "packedTile" in session ? ((session as { packedTile?: number }).packedTile ?? null) : null,
        ms: performance.now() - t0,
      });
    } finally {
      session.dispose();
    }
  }
  return out;
}

/** What the backend refuses, each as the error's class name and message (null: no error). */
async function refusals(spec: ModelSpec, params: number[]): Promise<Record<string, string | null>> {
  const b = await open();
  const grid = { batch: 1, height: 1, width: 4 };
  const x = new Float32Array(4 * spec.cIn);
  const caught = async (f: () => unknown): Promise<string | null> => {
    try {
      await f();
      return null;
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message}`;
    }
  };
  const s = b.createSession(spec, grid, x);
  const result = {
    freeze: await caught(() => b.createSession(spec, grid, x, { freeze: -1 })),
    trainStep: await caught(() => b.trainStep()),
    logits: await caught(() => s.logits(new Float32Array(params))),
    badParams: await caught(() => s.step(new Float32Array(3), 1)),
    badX: await caught(() => b.createSession(spec, grid, new Float32Array(3))),
  };
  // Aborted part way: the first window of steps runs, the next is not started.
  const ac = new AbortController();
  const aborted = s.step(new Float32Array(params), 100, { signal: ac.signal });
  ac.abort();
  const abort = await caught(() => aborted);
  const abortSteps = s.steps()[0]!;
  const first = s.step(new Float32Array(params), 4);
  const twoAtOnce = await caught(() => s.step(new Float32Array(params), 4));
  await first;
  s.dispose();
  return { ...result, twoAtOnce, abort, abortSteps: String(abortSteps) };
}

/** A checkpoint parsed in the page: its spec and parameters (the browser-safe parser, src/model/parse.ts). */
function parse(text: string, source: string): { spec: ModelSpec; params: number[] } {
  const { model } = parseCheckpoint(text, source);
  return { spec: model.spec, params: Array.from(model.params) };
}

(globalThis as { seadWebGpuTest?: unknown }).seadWebGpuTest = { info, run, refusals, parse };
