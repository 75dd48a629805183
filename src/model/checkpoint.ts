/**
 * Checkpoints: versioned JSON holding the spec, the parameters (little-endian float32,
 * base64, with a SHA-256 so an edited or truncated file is caught), the task, training
 * provenance, and optionally the trainer's state for resuming. Written atomically.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { CheckpointError, InvalidInputError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { formatIssues } from "../schema.js";
import { taskInfoSchema } from "../tasks/index.js";
import type { TaskInfo } from "../tasks/types.js";
import { Model } from "./model.js";
import { modelSpecSchema } from "./spec.js";

export const CHECKPOINT_FORMAT = "sead-checkpoint";
export const CHECKPOINT_VERSION = 1;

const float32BlobSchema = z.strictObject({
  dtype: z.literal("float32"),
  encoding: z.literal("base64-le"),
  count: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  data: z.string(),
});
export type Float32Blob = z.output<typeof float32BlobSchema>;

const checkpointSchema = z.strictObject({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(CHECKPOINT_VERSION),
  spec: modelSpecSchema,
  task: taskInfoSchema.nullable(),
  params: float32BlobSchema,
  /** Free-form provenance: seed, command, steps, config, metrics. */
  training: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  /** The trainer's state, present in checkpoints written to resume from. */
  resume: z.record(z.string(), z.unknown()).optional(),
});
export type CheckpointFile = z.output<typeof checkpointSchema>;

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

export function decodeFloat32(blob: Float32Blob, where: string): Float32Array {
  const bytes = Buffer.from(blob.data, "base64");
  if (bytes.length !== blob.count * 4) {
    throw new CheckpointError(`${where}: holds ${bytes.length} bytes of data but says ${blob.count} float32 values`);
  }
  const hash = createHash("sha256").update(bytes).digest("hex");
  if (hash !== blob.sha256) throw new CheckpointError(`${where}: data does not match its sha256 (the file was altered)`);
  const out = new Float32Array(blob.count);
  for (let i = 0; i < blob.count; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

export interface CheckpointContents {
  model: Model;
  training: Record<string, unknown>;
  resume: Record<string, unknown> | undefined;
  createdAt: string;
}

export function checkpointToJson(
  model: Model,
  training: Record<string, unknown> = {},
  resume?: Record<string, unknown>,
): string {
  const file: CheckpointFile = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    spec: model.spec,
    task: model.task ?? null,
    params: encodeFloat32(model.params),
    training,
    createdAt: new Date().toISOString(),
    ...(resume ? { resume } : {}),
  };
  return JSON.stringify(file, null, 1) + "\n";
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

/** Parses checkpoint text; `source` names it in errors. */
export function parseCheckpoint(text: string, source: string): CheckpointContents {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(
      `${source} is not a valid checkpoint: not valid JSON (${(e as Error).message}); it may be truncated`,
    );
  }
  if (typeof raw !== "object" || raw === null || (raw as { format?: unknown }).format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${source} is not a sead checkpoint (no "format": "${CHECKPOINT_FORMAT}")`);
  }
  const version = (raw as { version?: unknown }).version;
  if (version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      `${source} has checkpoint version ${JSON.stringify(version)}; this sead reads version ${CHECKPOINT_VERSION}`,
    );
  }
  const r = checkpointSchema.safeParse(raw);
  if (!r.success) throw new CheckpointError(`${source} is not a valid checkpoint: ${formatIssues(r.error, "")}`);
  const f = r.data;
  const params = decodeFloat32(f.params, `${source}: params`);
  let model: Model;
  try {
    model = new Model(f.spec, params, (f.task ?? undefined) as TaskInfo | undefined);
  } catch (e) {
    if (e instanceof InvalidInputError) throw new CheckpointError(`${source}: ${e.message}`, { cause: e });
    throw e;
  }
  return { model, training: f.training, resume: f.resume, createdAt: f.createdAt };
}

export function loadCheckpoint(path: string): CheckpointContents {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseCheckpoint(text, path);
}
