/**
 * The Session both backends hand out: a native session (CPU `InferenceSession` or
 * `GpuInferenceSession`, which share their methods) with sead's error mapping and
 * AbortSignal support around it.
 */
import type * as Native from "../index.js";
import type { ConvergeOptions, ConvergeResult, GridShape, Session, StepResult } from "./backend.js";
import { InvalidInputError } from "./errors.js";
import { callSync, withCancel } from "./native.js";

export class NativeSession implements Session {
  private disposed = false;
  constructor(
    private readonly inner: Native.InferenceSession | Native.GpuInferenceSession,
    readonly grid: GridShape,
  ) {}

  step(params: Float32Array, steps: number, options: { active?: Uint8Array; signal?: AbortSignal } = {}): Promise<StepResult> {
    return withCancel(options.signal, "session.step", (token) => this.inner.step(params, steps, options.active ?? null, token ?? null));
  }

  converge(params: Float32Array, options: ConvergeOptions, signal?: AbortSignal): Promise<ConvergeResult> {
    return withCancel(signal, "session.converge", (token) => this.inner.converge(params, options, token ?? null));
  }

  outputs() {
    return callSync("session.outputs", () => this.inner.outputs());
  }
  hidden() {
    return callSync("session.hidden", () => this.inner.hidden());
  }
  logits(params: Float32Array) {
    return callSync("session.logits", () => this.inner.logits(params));
  }
  steps() {
    return callSync("session.steps", () => this.inner.steps());
  }
  cellsComputed() {
    return callSync("session.cellsComputed", () => this.inner.cellsComputed());
  }
  dispose() {
    if (this.disposed) throw new InvalidInputError("session.dispose: this session was already disposed");
    callSync("session.dispose", () => this.inner.dispose());
    this.disposed = true;
  }
}
