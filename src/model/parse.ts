/**
 * Reading checkpoint text, without Node: the checkpoint schema, the float32 blobs (base64,
 * SHA-256) and parseCheckpoint, so a browser can load the shipped models with the same checks
 * as Node (checkpoint.ts, which writes checkpoints and reads files, re-exports these). SHA-256
 * is computed here in plain TypeScript (Web Crypto's digest is asynchronous, and parsing is not).
 */
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

// ---- SHA-256 (FIPS 180-4), hex digest of bytes or of a string's UTF-8.
const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export function sha256Hex(input: Uint8Array | string): string {
  const data = typeof input === "string" ? new TextEncoder().encode(input) : input;
  // Message, 0x80, zeros, 64-bit big-endian bit length, to a multiple of 64 bytes.
  const blocks = Math.ceil((data.length + 9) / 64);
  const msg = new Uint8Array(blocks * 64);
  msg.set(data);
  msg[data.length] = 0x80;
  const view = new DataView(msg.buffer);
  view.setUint32(msg.length - 8, Math.floor(data.length / 2 ** 29));
  view.setUint32(msg.length - 4, (data.length * 8) >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  for (let at = 0; at < msg.length; at += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(at + 4 * i);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!;
      const b = w[i - 2]!;
      const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
      const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!];
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i]! + w[i]!) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    const add = [a, b, c, d, e, f, g, hh];
    for (let i = 0; i < 8; i++) h[i] = (h[i]! + add[i]!) >>> 0;
  }
  return Array.from(h, (v) => v.toString(16).padStart(8, "0")).join("");
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
