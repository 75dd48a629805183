/**
 * The backends: where the kernels run. `createBackend` picks one from options; `CpuBackend`
 * and `GpuBackend` can be constructed directly (GpuBackend takes tuning options such as
 * `tileCells`). The native loader and error mapping (native.ts) and the session wrapper
 * (native-session.ts) are internal.
 */
export type {
  Backend,
  BackendInfo,
  BackendOptions,
  ConvergeOptions,
  ConvergeResult,
  GridShape,
  Session,
  SessionOptions,
  StepResult,
  TrainBatch,
  TrainStepResult,
} from "./types.js";
export { backendOptionsSchema } from "./types.js";
export { CpuBackend } from "./cpu.js";
export { GpuBackend, gpuAdapters, gpuBackendOptionsSchema, type GpuAdapterInfo, type GpuBackendOptions } from "./gpu.js";
export { createBackend } from "./factory.js";
