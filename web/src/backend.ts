/**
 * The page's backends: "webgpu" (the WebGPU host over the same WGSL files as the native GPU
 * backend) and "wasm" (the CPU backend of src/backend/cpu.ts over the napi-rs WASI build of
 * the native module, its kernels compiled to WebAssembly with SIMD128).
 */
import { CpuBackend } from "../../src/backend/cpu.js";
import { setNativeModule } from "../../src/backend/native.js";
import type { Backend } from "../../src/backend/types.js";

export type BackendKind = "webgpu" | "wasm";

/** Sessions the page may open: a wasm32 memory holds at most 4 GiB. */
export const PAGE_MAX_SESSION_BYTES = 1 * 2 ** 30;

export interface PageBackend {
  kind: BackendKind;
  backend: Backend;
  /** e.g. "webgpu: SwiftShader" or "cpu: simd128, 4 threads". */
  device: string;
  /** Why the automatic choice fell back to wasm, if it did. */
  note?: string;
}

export function parseBackendKind(value: string | null): BackendKind | undefined {
  if (value === null || value === "" || value === "auto") return undefined;
  if (value === "webgpu" || value === "wasm") return value;
  throw new Error(`backend must be webgpu or wasm, got ${JSON.stringify(value)}`);
}

async function wasmBackend(): Promise<PageBackend> {
  if (!globalThis.crossOriginIsolated) {
    throw new Error("the WebAssembly backend needs a cross-origin isolated page (serve it with npm run web, which sends the COOP/COEP headers)");
  }
  const mod = await import("sead-web:wasi");
  setNativeModule(mod.default);
  const backend = new CpuBackend({ maxSessionBytes: PAGE_MAX_SESSION_BYTES });
  return { kind: "wasm", backend, device: backend.info().device };
}

async function webGpuBackend(): Promise<PageBackend> {
  if (!(navigator as { gpu?: unknown }).gpu) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
  const { createWebGpuBackend } = await import("sead-web:webgpu");
  const backend = await createWebGpuBackend({ maxSessionBytes: PAGE_MAX_SESSION_BYTES });
  return { kind: "webgpu", backend, device: backend.info().device };
}

/** The backend asked for, or WebGPU where it works and WebAssembly otherwise. */
export async function openBackend(kind: BackendKind | undefined): Promise<PageBackend> {
  if (kind === "wasm") return wasmBackend();
  if (kind === "webgpu") return webGpuBackend();
  try {
    return await webGpuBackend();
  } catch (e) {
    const b = await wasmBackend();
    return { ...b, note: `WebGPU unavailable (${(e as Error).message}); using WebAssembly` };
  }
}
