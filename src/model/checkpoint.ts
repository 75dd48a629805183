/**
 * Checkpoints: versioned JSON holding the spec, the parameters (little-endian float32,
 * base64, with a SHA-256 so an edited or truncated file is caught), the task, training
 * provenance, and optionally the trainer's state for resuming. Written atomically.
 *
 * A `checksum` of the whole document (last field) catches a change anywhere else too, e.g. a
 * flipped bit in a step count or in the trainer's state, which no other check would notice.
 * It is optional so that checkpoints written before it existed still load.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { CheckpointError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { Model } from "./model.js";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type CheckpointContents,
  type CheckpointFile,
  type Float32Blob,
  documentHash,
  parseCheckpoint,
} from "./parse.js";

// Reading checkpoint text needs no Node and lives in parse.ts (the browser uses it too).
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type CheckpointContents,
  type CheckpointFile,
  type Float32Blob,
  decodeFloat32,
  parseCheckpoint,
} from "./parse.js";

export function encodeFloat32(values: Float32Array): Float32Blob {
  const bytes = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i]!, i * 4);
  return {
    dtype: "float32",
    encoding: "base64-le",
    count: values.length,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    data: bytes.toString("base64"),
  };
}

export function checkpointToJson(
  model: Model,
  training: Record<string, unknown> = {},
  resume?: Record<string, unknown>,
): string {
  const body: CheckpointFile = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    spec: model.spec,
    task: model.task ?? null,
    params: encodeFloat32(model.params),
    training,
    createdAt: new Date().toISOString(),
    ...(resume ? { resume } : {}),
  };
  return JSON.stringify({ ...body, checksum: documentHash(body) }, null, 1) + "\n";
}

/** Writes a checkpoint atomically: the file is the old one or the new one, never partial. */
export function saveCheckpoint(
  path: string,
  model: Model,
  training: Record<string, unknown> = {},
  resume?: Record<string, unknown>,
): void {
  writeFileAtomic(path, checkpointToJson(model, training, resume));
}

export function loadCheckpoint(path: string): CheckpointContents {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "it does not exist" : code === "EISDIR" ? "it is a folder, not a file" : (e as Error).message;
    throw new CheckpointError(`cannot read checkpoint ${path}: ${why}`, { cause: e });
  }
  return parseCheckpoint(text, path);
}
