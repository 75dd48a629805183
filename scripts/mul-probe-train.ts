/**
 * Probe-guided training of a quantized multiplication model: the 2D counterpart of
 * scripts/verify-train.ts, with a probe in place of the proof (2D rules have no decision
 * procedure). Each round runs the model on random pairs at probe sizes beyond the training
 * sizes (every answer checked against BigInt), finds the runs that end wrong or still
 * changing, and cuts a window of the training size around the first bad cell of each (the
 * cell still changing, else the first wrong cell in the order the answer is computed in):
 * the window's operand bits become a training input and its hidden state that input's
 * initial state (`config.starts`). Training then goes on from the current model, so the rule
 * learns to leave the local states it was stuck in. Training inputs stay within the config's
 * sizes: the probe only chooses initial states.
 *
 *   node --import=tsx scripts/mul-probe-train.ts --config <train config> --model <start model>
 *        --out <dir> [--rounds 10] [--steps 500] [--probe 24:32,64:8] [--windows 6,7,8] [--final m.json]
 *
 * Each round's model, config and probe verdict go to <dir>/round-N.*; a model whose probe is
 * all exact and settled is written to --final with a record of how it was made. Exit 0 when
 * a probe passes, 1 when the rounds run out. Deterministic, as training and the probe are.
 */
import { parseArgs } from "node:util";
import type { Backend } from "../src/backend/types.js";
import { saveCheckpoint } from "../src/model/checkpoint.js";
import type { Model } from "../src/model/model.js";
import { loadModel } from "../src/models.js";
import { Rng } from "../src/rng.js";
import { MultiplicationTask } from "../src/tasks/multiplication.js";
import { guidedRounds, ROUND_OPTIONS, type Start } from "./guided-rounds.js";

interface Probe {
  pairs: number;
  exact: number;
  settled: number;
  starts: Start[];
}

/** Bits of an operand string (most significant first) as an array, least significant first. */
const lsbFirst = (s: string): number[] => [...s].reverse().map(Number);

/** An operand string (most significant first) from bits least significant first. */
const msbString = (bits: number[]): string => bits.slice().reverse().join("");

/**
 * Runs `pairs` random n-bit products for the step budget of `sead mul` (8n + 256), comparing
 * the last two steps' states, and returns windows around the first bad cell of every run that
 * ends wrong or still changing.
 */
async function probe(backend: Backend, model: Model, n: number, pairs: number, seed: number, windows: number[]): Promise<Probe> {
  const task = new MultiplicationTask({ supervise: "all" });
  const rng = new Rng(seed);
  const bits = (): string => Array.from({ length: n }, () => rng.bit()).join("");
  const inputs = Array.from({ length: pairs }, () => ({ a: bits(), b: bits() }));
  const enc = task.encode(inputs);
  const { height, width } = enc;
  const cells = height * width;
  const cH = model.spec.cH;
  const session = backend.createSession(model.spec, { batch: pairs, height, width }, enc.x);
  try {
    await session.step(model.params, 8 * n + 255);
    const before = session.hidden();
    await session.step(model.params, 1);
    const after = session.hidden();
    const outputs = session.outputs();
    const answers = task.decode(outputs, { batch: pairs, height, width });
    const result: Probe = { pairs, exact: 0, settled: 0, starts: [] };
    for (let s = 0; s < pairs; s++) {
      const input = inputs[s]!;
      const exact = answers[s] === task.reference(input);
      const moving: number[] = [];
      const wrong: number[] = [];
      for (let c = 0; c < cells; c++) {
        const at = (s * cells + c) * cH;
        for (let k = 0; k < cH; k++) {
          if (before[at + k] !== after[at + k]) {
            moving.push(c);
            break;
          }
        }
        const t = enc.target[s * cells + c]!;
        if (t >= 0 && outputs[s * cells + c] !== t) wrong.push(c);
      }
      if (exact) result.exact++;
      if (moving.length === 0) result.settled++;
      if (moving.length === 0 && wrong.length === 0) continue;
      // Cell (i, j) waits on (i - 1, j + 1) and (i, j - 1): 2i + j orders the computation.
      const order = (c: number): number => 2 * Math.floor(c / width) + (c % width);
      const bad = (moving.length > 0 ? moving : wrong).reduce((x, y) => (order(y) < order(x) ? y : x));
      const [r, col] = [Math.floor(bad / width), bad % width];
      const a = lsbFirst(input.a);
      const b = lsbFirst(input.b);
      for (const w of windows) {
        if (w > n) continue;
        const r0 = Math.min(Math.max(r - Math.floor(w / 2), 0), height - w);
        const c0 = Math.min(Math.max(col - Math.floor(w / 2), 0), width - (w + 1));
        const h0: number[] = [];
        for (let i = 0; i < w; i++) {
          for (let j = 0; j <= w; j++) {
            const at = (s * cells + (r0 + i) * width + c0 + j) * cH;
            for (let k = 0; k < cH; k++) h0.push(after[at + k]!);
          }
        }
        result.starts.push({
          input: { a: msbString(a.slice(c0, c0 + w)), b: msbString(b.slice(r0, r0 + w)) },
          h0,
        });
      }
    }
    return result;
  } finally {
    session.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...ROUND_OPTIONS,
      rounds: { type: "string", default: "10" },
      probe: { type: "string", default: "24:32" },
      windows: { type: "string", default: "6,7,8" },
      "max-starts": { type: "string", default: "256" },
      /** What made the starting model and how to rerun it all, for --final's record. */
      chain: { type: "string" },
      /** Training seconds spent before this run (earlier stages), added to --final's. */
      "seconds-before": { type: "string", default: "0" },
    },
  });
  const probes = values.probe.split(",").map((p) => p.split(":").map(Number) as [number, number]);
  const windows = values.windows.split(",").map(Number);
  const maxStarts = Number(values["max-starts"]);
  const started = Date.now();
  let passedProbe: unknown;
  const passed = await guidedRounds(values, {
    checkName: "probe",
    async check(modelPath, round, { backend }) {
      const { model } = loadModel(modelPath);
      const t0 = Date.now();
      const found: Start[] = [];
      const sizes = [];
      for (const [n, pairs] of probes) {
        const p = await probe(backend, model, n, pairs, 1000 + round, windows);
        sizes.push({ n, pairs, exact: p.exact, settled: p.settled });
        found.push(...p.starts);
      }
      passedProbe = sizes;
      const verdict = { round, model: modelPath, sizes, newStarts: found.length, seconds: (Date.now() - t0) / 1000 };
      return { passed: found.length === 0, verdict, starts: found };
    },
    // The newest first, so a long run keeps the states the current rule gets stuck in.
    merge: (old, found) => [...found, ...old].slice(0, maxStarts),
  });
  if (!passed) {
    console.log(`no probe passed in ${values.rounds} rounds`);
    process.exitCode = 1;
    return;
  }
  console.log(`round ${passed.round}: every probe exact and settled (${passed.modelPath})`);
  if (values.final) {
    // The record keeps the config without its starts (regenerated by the rounds, and most
    // of the file's size), the chain that made it and the probe it passed.
    const { model, training } = loadModel(passed.modelPath);
    const config = { ...(training["config"] as Record<string, unknown>) };
    const startsUsed = Array.isArray(config["starts"]) ? config["starts"].length : 0;
    config["starts"] = [];
    saveCheckpoint(values.final, model, {
      config,
      startsUsed,
      chain: values.chain ?? "",
      round: passed.round,
      probe: passedProbe,
      seconds: (Date.now() - started) / 1000 + Number(values["seconds-before"]),
    });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(2);
});
