/**
 * The browser's stand-in for src/backend/native-node.ts (scripts/web.ts swaps it in): there is
 * no module to load from disk; the page hands over the WebAssembly build with setNativeModule.
 */
import type { NativeModule } from "../../src/backend/native.js";
import { SeadError } from "../../src/errors.js";

export function loadNativeModule(): NativeModule {
  throw new SeadError("sead: no native module in this page yet (the page calls setNativeModule with the WebAssembly build first)");
}

/** The cores the browser reports. */
export function coreCount(): number {
  return navigator.hardwareConcurrency || 1;
}
