/**
 * Loads the native module in Node: the napi-rs loader `index.js` at the package root picks the
 * prebuilt binary for this platform. The browser bundle replaces this file (scripts/web.ts).
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import type { NativeModule } from "./native.js";
import { SeadError } from "../errors.js";

/** The package root: the nearest folder above this file holding the napi loader. */
function packageRoot(): string {
  // (dirname(__filename), not __dirname: tsx running an ES module gives a wrong __dirname)
  let dir = dirname(__filename);
  for (;;) {
    if (existsSync(join(dir, "index.js")) && existsSync(join(dir, "package.json"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new SeadError(`sead: cannot find the native loader index.js above ${dirname(__filename)}`);
    dir = up;
  }
}

export function loadNativeModule(): NativeModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(join(packageRoot(), "index.js")) as NativeModule;
  } catch (e) {
    throw new SeadError(
      "sead: the native module did not load. Installing the package brings a prebuilt binary for " +
        "linux-x64-gnu and, for every other platform, a WebAssembly (WASI) build (CPU only; it needs " +
        "Node's WASI and worker threads; NAPI_RS_FORCE_WASI=error forces it); neither loaded here. " +
        "Build the native module from source with `npm run build:native` (needs Rust). " +
        `Cause: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** The cores this process may use. */
export function coreCount(): number {
  return availableParallelism();
}
