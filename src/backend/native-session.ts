/**
 * The Session both backends hand out: a native session (CPU `InferenceSession` or
 * `GpuInferenceSession`, which share their methods) with sead's error mapping and
 * AbortSignal support around it.
 */
import type * as Native from "../../index.js";
import type { ConvergeOptions, ConvergeResult, GridShape, Session, StepResult } from "./types.js";
import { InvalidInputError } from "../errors.js";
import { callSync, withCancel } from "./native.js";
import { parseWith } from "../schema.js";
import { z } from "zod";

const sessionArgsSchema = z.object({
  grid: z.object({ batch: z.number(), height: z.number(), width: z.number() }, { message: "must be an object { batch, height, width }" }),
  x: z.instanceof(Float32Array, { message: "must be a Float32Array" }),
  // freeze is only type-checked here: the native check names NaN, infinities and negatives.
  options: z.strictObject({ freeze: z.custom<number>((v) => typeof v === "number", { message: "must be a number" }).optional() }).optional(),
});

/**
 * Checks the shape of createSession's arguments, so that a mistake is named
 * ("createSession.grid.width: ...") rather than reported by the binding's conversion code.
 * Values (sizes, limits, finite inputs) are checked natively.
 */
export function checkSessionArgs(grid: unknown, x: unknown, options: unknown): void {
  parseWith(sessionArgsSchema, { grid, x, options }, "createSession");
}

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
