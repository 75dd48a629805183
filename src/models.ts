/** The models shipped in the package (models/*.json), each trained by our own trainer. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { InvalidInputError } from "./errors.js";
import { type CheckpointContents, loadCheckpoint } from "./model/checkpoint.js";

export const SHIPPED_MODELS = ["addition-base2", "addition-base10", "addition-base2-ternary", "addition-base2-verified", "parity", "rule110", "multiplication-base2", "multiplication-base2-ternary"] as const;
export type ShippedModel = (typeof SHIPPED_MODELS)[number];

/** The package's models/ folder. */
export function modelsDir(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "models"))) return join(dir, "models");
    const up = dirname(dir);
    if (up === dir) throw new InvalidInputError(`cannot find the shipped models/ folder above ${__dirname}`);
    dir = up;
  }
}

/** Loads a shipped model by name, or a checkpoint by path. */
export function loadModel(nameOrPath: string): CheckpointContents {
  if ((SHIPPED_MODELS as readonly string[]).includes(nameOrPath)) {
    const path = join(modelsDir(), `${nameOrPath}.json`);
    if (!existsSync(path)) throw new InvalidInputError(`the shipped model ${nameOrPath} is missing from this install (${path})`);
    return loadCheckpoint(path);
  }
  return loadCheckpoint(nameOrPath);
}
