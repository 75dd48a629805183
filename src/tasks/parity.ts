/**
 * Running parity: output at cell i is x_0 xor ... xor x_i, so the last cell holds the parity of
 * the whole string. Every output depends on every bit to its left, so a local rule needs about
 * L steps: a clean test of whether the model keeps computing until the light cone has crossed.
 */
import { z } from "zod";
import { BitRowTask } from "./common.js";
import type { TaskDefinition } from "./registry.js";
import type { ParityInfo, RegularRelation } from "./types.js";

/** The running parity of a row of bits (no validation: callers check the row). */
export function runningParity(row: Uint8Array): Uint8Array {
  const out = new Uint8Array(row.length);
  let p = 0;
  for (let i = 0; i < row.length; i++) {
    p ^= row[i]!;
    out[i] = p;
  }
  return out;
}

export class ParityTask extends BitRowTask {
  readonly name = "parity";
  readonly title = "running parity";
  readonly boundary = "zero";

  describe(): ParityInfo {
    return { name: "parity" };
  }

  protected compute(row: Uint8Array): Uint8Array {
    return runningParity(row);
  }

  /** The state is the parity so far; the output at a bit is the parity of (state, bit), by `compute`. */
  regularRelation(): RegularRelation<Uint8Array> {
    return this.bitRelation(2, 0, () => true, (p, bit, out) => {
      const q = this.compute(Uint8Array.of(p, bit))[1]!;
      return out === q ? q : -1;
    });
  }
}

export function parityTask(): ParityTask {
  return new ParityTask();
}

/** The parity task family: no options. */
export const parityDefinition: TaskDefinition<Record<string, never>> = {
  name: "parity",
  summary: "running parity of a row of bits (1D)",
  options: z.strictObject({}),
  create: () => parityTask(),
  examples: ["parity"],
};
