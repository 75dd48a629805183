/**
 * Reading checkpoint text, without Node: the checkpoint schema, the float32 blobs (base64,
 * SHA-256) and parseCheckpoint, so a browser can load the shipped models with the same checks
 * as Node (checkpoint.ts, which writes checkpoints and reads files, re-exports these). SHA-256
 * comes from @noble/hashes (Web Crypto's digest is asynchronous, and parsing is not).
 */
import { sha256 } from "@noble/hashes/sha2";
import { bytesToHex } from "@noble/hashes/utils";
import { z } from "zod";
import { CheckpointError, InvalidInputError } from "../errors.js";
import { formatIssues } from "../schema.js";
import { taskInfoSchema } from "../tasks/info.js";
import type { TaskInfo } from "../tasks/types.js";
import { Model } from "./model.js";
import { modelSpecSchema } from "./spec.js";

export const CHECKPOINT_FORMAT = "sead-checkpoint";
export const CHECKPOINT_VERSION = 1;

export const float32BlobSchema = z.strictObject({
  dtype: z.literal("float32"),
  encoding: z.literal("base64-le"),
  count: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  data: z.string(),
});
export type Float32Blob = z.output<typeof float32BlobSchema>;

export const checkpointSchema = z.strictObject({
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

export interface CheckpointContents {
  model: Model;
  training: Record<string, unknown>;
  resume: Record<string, unknown> | undefined;
  createdAt: string;
}

/** Hex SHA-256 of bytes, or of a string's UTF-8 (synchronous, so parsing stays synchronous). */
export function sha256Hex(input: Uint8Array | string): string {
  return bytesToHex(sha256(input));
}

// ---- base64 (standard alphabet, padded), without Buffer.
function base64Decode(text: string): Uint8Array | undefined {
  let bin: string;
  try {
    bin = atob(text);
  } catch {
    return undefined;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function base64Encode(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function decodeFloat32(blob: Float32Blob, where: string): Float32Array {
  const bytes = base64Decode(blob.data);
  // Decoders skip or forgive some characters that are not base64 (and ignore spare low bits at
  // the end) instead of failing: insist on the exact text the encoder writes.
  if (bytes === undefined || base64Encode(bytes) !== blob.data) {
    throw new CheckpointError(`${where}: data is not valid base64 (the file was altered or corrupted)`);
  }
  if (bytes.length !== blob.count * 4) {
    throw new CheckpointError(`${where}: holds ${bytes.length} bytes of data but says ${blob.count} float32 values`);
  }
  if (sha256Hex(bytes) !== blob.sha256) throw new CheckpointError(`${where}: data does not match its sha256 (the file was altered)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(blob.count);
  for (let i = 0; i < blob.count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * The checksum of a document: SHA-256 of its fields but `checksum`, as compact JSON in the
 * file's key order. Parsing and re-serializing gives back the writer's text, so it is checked
 * on the parsed value, independent of whitespace.
 */
export function documentHash(doc: Record<string, unknown>): string {
  const { checksum: _, ...rest } = doc;
  return "sha256:" + sha256Hex(JSON.stringify(rest));
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
