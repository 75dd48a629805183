/** Shared test fixtures: small specs and configs, random data, and running the CLI in a child process. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Model } from "../src/model/model.js";
import type { ModelSpec } from "../src/model/spec.js";
import { Rng } from "../src/rng.js";
import type { TrainConfigInput } from "../src/train/trainer.js";

export const smallSpec: ModelSpec = {
  dims: 1,
  cIn: 2,
  cH: 4,
  features: 8,
  cOut: 2,
  update: "replace",
  boundary: "zero",
  quantize: "none",
};

export function randomModel(spec: ModelSpec = smallSpec, seed = 1): Model {
  return Model.init(spec, seed);
}

export function randomX(n: number, seed = 2): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.float() * 2 - 1);
}

export function randomTargets(n: number, classes: number, seed = 3): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(classes));
}

/**
 * A trainer config small enough to train in a second or two: the task, and on top of these
 * defaults whatever the test needs (its values are what the test depends on; the rest is here).
 */
export function tinyConfig(task: TrainConfigInput["task"], over: Partial<TrainConfigInput> = {}): TrainConfigInput {
  return {
    task,
    model: { cH: 6, features: 12 },
    seed: 1,
    steps: 6,
    batch: 8,
    lengths: { min: 3, max: 8 },
    unroll: { min: 6, max: 10 },
    evalEvery: 0,
    checkpointEvery: 0,
    ...over,
  };
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The repository root. */
const ROOT = join(__dirname, "..");

/** Runs `node <nodeArgs>` in `cwd` and collects its exit code and output. */
export function runNode(nodeArgs: string[], cwd = ROOT): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
