/** createBackend: the backend the options ask for, "auto" choosing between GPU and CPU. */
import { parseWith } from "../schema.js";
import { CpuBackend } from "./cpu.js";
import { GpuBackend, gpuAdapters } from "./gpu.js";
import { type Backend, type BackendOptions, backendOptionsSchema } from "./types.js";

/**
 * Creates a backend. "gpu" opens a GPU adapter (the best one, or the first whose name
 * contains the SEAD_GPU_ADAPTER environment variable) and fails with an error that lists
 * the adapters wgpu found and what to install when there is none. "auto" picks a GPU when
 * one exists, else the CPU: `info().device` says which was picked.
 */
export function createBackend(options: BackendOptions = {}): Backend {
  const opts = parseWith(backendOptionsSchema, options, "backend options");
  const adapter = process.env["SEAD_GPU_ADAPTER"] || undefined;
  const gpuOpts = { ...(adapter ? { adapter } : {}), ...(opts.maxSessionBytes ? { maxSessionBytes: opts.maxSessionBytes } : {}) };
  if (opts.backend === "gpu") return new GpuBackend(gpuOpts);
  if (opts.backend === "auto") {
    // Prefer the CPU when the only adapters are software ones (Mesa's lavapipe reports
    // "llvmpipe", SwiftShader, WARP): they run the GPU kernels on the CPU, correctly but
    // slower than the CPU backend's SIMD kernels. Ask for backend "gpu" to use one anyway.
    const hardware = gpuAdapters().filter((a) => !a.software && (!adapter || a.name.toLowerCase().includes(adapter.toLowerCase())));
    if (hardware.length > 0) {
      try {
        return new GpuBackend({ ...gpuOpts, adapter: adapter ?? hardware[0]!.name });
      } catch {
        // The adapter refused a device: fall back to the CPU, which always works.
      }
    }
  }
  return new CpuBackend(opts);
}
