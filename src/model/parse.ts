/**
 * A model from a checkpoint's JSON text with no Node API (for the browser page): the spec,
 * the task and the parameters, checked as checkpoint.ts checks them, except that the SHA-256
 * checks run only in `parseModelJsonVerified` (Web Crypto is asynchronous). Node code loads
 * checkpoints with checkpoint.ts, which also checks the document's checksum.
 */
import { CheckpointError, InvalidInputError } from "../errors.js";
import { taskInfoSchema } from "../tasks/info.js";
import type { TaskInfo } from "../tasks/types.js";
import { Model } from "./model.js";
import { parseSpec } from "./spec.js";

interface ParamsBlob {
  count: number;
  sha256: string;
  data: string;
}

function base64Bytes(data: string, where: string): Uint8Array<ArrayBuffer> {
  let bin: string;
  try {
    bin = atob(data);
  } catch {
    throw new CheckpointError(`${where}: data is not valid base64`);
  }
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

function parseDocument(text: string, source: string): { model: Model; bytes: Uint8Array<ArrayBuffer>; sha256: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${source} is not valid JSON (${(e as Error).message})`);
  }
  const doc = raw as { format?: unknown; spec?: unknown; task?: unknown; params?: Partial<ParamsBlob> } | null;
  if (typeof doc !== "object" || doc === null || doc.format !== "sead-checkpoint") {
    throw new CheckpointError(`${source} is not a sead checkpoint (no "format": "sead-checkpoint")`);
  }
  const p = doc.params;
  if (typeof p !== "object" || p === null || typeof p.data !== "string" || typeof p.count !== "number" || typeof p.sha256 !== "string") {
    throw new CheckpointError(`${source}: params must be { count, sha256, data }`);
  }
  const bytes = base64Bytes(p.data, `${source}: params`);
  if (bytes.length !== p.count * 4) {
    throw new CheckpointError(`${source}: params holds ${bytes.length} bytes of data but says ${p.count} float32 values`);
  }
  const view = new DataView(bytes.buffer);
  const params = new Float32Array(p.count);
  for (let i = 0; i < p.count; i++) params[i] = view.getFloat32(i * 4, true);
  let task: TaskInfo | undefined;
  if (doc.task !== null && doc.task !== undefined) {
    const t = taskInfoSchema.safeParse(doc.task);
    if (!t.success) throw new CheckpointError(`${source}: task must be an object with a name`);
    task = t.data;
  }
  try {
    return { model: new Model(parseSpec(doc.spec, `${source}: spec`), params, task), bytes, sha256: p.sha256 };
  } catch (e) {
    if (e instanceof InvalidInputError) throw new CheckpointError(`${source}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** The model in a checkpoint's text (no hash checks); `source` names it in errors. */
export function parseModelJson(text: string, source: string): Model {
  return parseDocument(text, source).model;
}

/** The same, also checking the parameters against their SHA-256 with Web Crypto. */
export async function parseModelJsonVerified(text: string, source: string): Promise<Model> {
  const { model, bytes, sha256 } = parseDocument(text, source);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== sha256) throw new CheckpointError(`${source}: params do not match their sha256 (the file was altered)`);
  return model;
}
