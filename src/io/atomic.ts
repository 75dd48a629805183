/**
 * Atomic file writes: the data goes to a temporary file in the same folder, is flushed to
 * disk, and is renamed over the target. A reader (or a crash) sees the old file or the new
 * one, never a half-written one.
 *
 * A writer killed part way (SIGKILL, power loss) leaves its temporary file
 * `.<name>.<pid>.<ms>.<n>.tmp` behind. Readers never look at those, and the next write of the
 * same target removes the ones whose writer is gone (see removeStaleTemps), so they do not pile up.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { InvalidInputError } from "../errors.js";

let counter = 0;

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.${counter++}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, "wx", 0o644);
  } catch (e) {
    throw new InvalidInputError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* never created or already renamed */
    }
    throw new InvalidInputError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  // Make the rename itself durable.
  try {
    const dfd = openSync(dir, "r");
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* some filesystems cannot fsync a directory; the rename is still atomic */
  }
  removeStaleTemps(path);
}

/** A temporary file is only removed when untouched this long, as well as its writer being gone. */
export const STALE_TEMP_MS = 10 * 60_000;

/**
 * Best effort: deletes temporary files of `path` left by writers that died. A file counts as
 * stale only when no process has its pid here AND it has not been written for STALE_TEMP_MS:
 * the age guards against a live writer whose pid we cannot see (another container or host
 * sharing the folder), the pid against a slow writer on this machine.
 */
function removeStaleTemps(path: string): void {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)\.\d+\.\d+\.tmp$/.exec(name.slice(prefix.length))?.[1]);
    if (!pid || pid === process.pid || processExists(pid)) continue;
    const file = join(dir, name);
    try {
      if (Date.now() - statSync(file).mtimeMs >= STALE_TEMP_MS) unlinkSync(file);
    } catch {
      /* gone already, or not ours to delete */
    }
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
