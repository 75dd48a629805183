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
  /** "sha256:" + hex SHA-256 of documentHash's text. */
  checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
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
  // Node's decoder skips characters that are not base64 (and ignores spare low bits at the
  // end) instead of failing: insist on the exact text the encoder writes.
  if (bytes.toString("base64") !== blob.data) {
    throw new CheckpointError(`${where}: data is not valid base64 (the file was altered or corrupted)`);
  }
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

/**
 * The checksum of a document: SHA-256 of its fields but `checksum`, as compact JSON in the
 * file's key order. Parsing and re-serializing gives back the writer's text, so it is checked
 * on the parsed value, independent of whitespace.
 */
function documentHash(doc: Record<string, unknown>): string {
  const { checksum: _, ...rest } = doc;
  return "sha256:" + createHash("sha256").update(JSON.stringify(rest)).digest("hex");
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
    const msg = (e as Error).message;
    const body = text.trimEnd();
    if (body === "") throw new CheckpointError(`${source} is not a valid checkpoint: not valid JSON (the file is empty)`);
    // sead writes "...}\n": a file that stops before that, or where the parser ran out of
    // input, was cut short (an interrupted copy, a full disk), not edited.
    const at = /at position (\d+)/.exec(msg);
    const truncated = !body.endsWith("}") || /end of JSON input/.test(msg) || (at !== null && Number(at[1]) >= body.length);
    throw new CheckpointError(
      truncated
        ? `${source} is not a valid checkpoint: not valid JSON, it is truncated (it stops part way through, after ${body.length} characters)`
        : `${source} is not a valid checkpoint: not valid JSON (${msg}); the file was altered or corrupted`,
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
  // Last, so that the checks above can name a more specific problem first.
  if (f.checksum !== undefined && documentHash(raw as Record<string, unknown>) !== f.checksum) {
    throw new CheckpointError(
      `${source} does not match its checksum: the file was altered or corrupted ` +
        `(to load a file you edited on purpose, delete its "checksum" field)`,
    );
  }
  return { model, training: f.training, resume: f.resume, createdAt: f.createdAt };
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
