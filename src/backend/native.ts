/**
 * The native module and sead's mapping of its errors. In Node the module is loaded on first
 * use by native-node.ts (the napi-rs loader `index.js` at the package root picks the prebuilt
 * binary for this platform, and where none fits, the WebAssembly (WASI) build `sead.wasi.cjs`:
 * the same CPU kernels, no GPU backend); a browser page hands over the WebAssembly build with
 * `setNativeModule` first (its bundle replaces native-node.ts, so no Node API is on that path:
 * docs/web.md).
 */
import type * as Native from "../../index.js";
import { AbortError, InvalidInputError, ResourceLimitError, SeadError } from "../errors.js";
import { coreCount, loadNativeModule } from "./native-node.js";

export type NativeModule = typeof Native;

let loaded: NativeModule | undefined;

/** Uses `mod` as the native module from now on (the browser's WebAssembly build). */
export function setNativeModule(mod: NativeModule): void {
  loaded = mod;
}

/** The native module, loaded on first use. */
export function native(): NativeModule {
  if (!loaded) loaded = loadNativeModule();
  return loaded;
}

/**
 * Which build of the binding the loader picked: "native" (a platform binary, e.g.
 * sead.linux-x64-gnu.node) or "wasm" (the WebAssembly (WASI) fallback, sead.wasi.cjs: the
 * CPU kernels, portable with WebAssembly SIMD, and no GPU backend). Read from the
 * `__napiBindingTarget` napi-rs's loader stamps on the module ("native" or "wasm32-wasi").
 */
export function nativeBuild(): "native" | "wasm" {
  const target = (native() as { __napiBindingTarget?: unknown }).__napiBindingTarget;
  return typeof target === "string" && target.startsWith("wasm32") ? "wasm" : "native";
}

/**
 * The thread count to hand the binding for `threads` (0 or undefined: every core). WASI cannot
 * tell the WebAssembly build the core count (it would take 1 thread, and concurrent calls would
 * then wait for each other), so there "every core" is the host's count (`coreCount`: Node's
 * `os.availableParallelism()`, a browser's `navigator.hardwareConcurrency`).
 */
export function threadsArg(threads: number | undefined): number | undefined {
  if (threads || nativeBuild() !== "wasm") return threads;
  return coreCount();
}

/** The prefix the binding puts on a resource-limit error (code "GenericFailure"). */
const TOO_LARGE = "too large: ";

/**
 * Maps an error thrown or rejected by the native module onto sead's error classes, by the
 * napi status the binding gives as `code`: "Cancelled" (an AbortSignal fired), "InvalidArg"
 * (a bad argument, named in the message). A resource limit has no status of its own (it is
 * "GenericFailure", like a busy session or an internal error), so it alone is recognized by
 * the binding's "too large: " prefix (crates/sead-node/src/lib.rs `core_err`, gpu.rs).
 */
export function nativeError(e: unknown, context: string): Error {
  if (!(e instanceof Error)) return new SeadError(`${context}: ${String(e)}`);
  const code = (e as { code?: unknown }).code;
  if (code === "Cancelled") return new AbortError(`${context}: the operation was aborted`, { cause: e });
  if (code === "InvalidArg") return new InvalidInputError(`${context}: ${e.message}`, { cause: e });
  if (code === "GenericFailure" && e.message.startsWith(TOO_LARGE)) {
    return new ResourceLimitError(`${context}: ${e.message.slice(TOO_LARGE.length)}`, { cause: e });
  }
  return new SeadError(`${context}: ${e.message}`, { cause: e });
}

/** Calls `f` with a cancel token linked to `signal`; rejects at once if already aborted. */
export async function withCancel<T>(
  signal: AbortSignal | undefined,
  context: string,
  f: (token: Native.CancelToken | undefined) => Promise<T>,
): Promise<T> {
  if (signal?.aborted) throw new AbortError(`${context}: aborted before it started`, { cause: signal.reason });
  const token = signal ? new (native().CancelToken)() : undefined;
  const onAbort = () => token?.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await f(token);
  } catch (e) {
    throw nativeError(e, context);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Calls a synchronous native function, mapping its errors. */
export function callSync<T>(context: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw nativeError(e, context);
  }
}
