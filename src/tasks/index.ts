/**
 * The tasks, and the two ways to name one from outside: a `TaskInfo` object (as stored in a
 * checkpoint, validated with zod) and a short name string (as typed on a command line).
 */
import { z } from "zod";
import { InvalidInputError } from "../errors.js";
import { additionTask } from "./addition.js";
import { describeValue } from "./common.js";
import { elementaryTask } from "./elementary.js";
import { parityTask } from "./parity.js";
import type { Task, TaskInfo } from "./types.js";

export * from "./types.js";
export * from "./addition.js";
export * from "./elementary.js";
export * from "./parity.js";

export type AnyTask = Task<any, any>;

const TASK_NAMES = ["parity", "addition", "elementary"] as const;

/** Schema of `Task.describe()` output; checkpoint schemas can embed it. Unknown keys are errors. */
export const taskInfoSchema: z.ZodType<TaskInfo> = z.discriminatedUnion("name", [
  z.strictObject({ name: z.literal("parity") }),
  z.strictObject({ name: z.literal("addition"), base: z.number().int().min(2).max(16) }),
  z.strictObject({
    name: z.literal("elementary"),
    rule: z.number().int().min(0).max(255),
    boundary: z.enum(["zero", "periodic"]),
  }),
]);

/**
 * Rebuilds a task from its `describe()` output (e.g. read from a checkpoint). Throws
 * InvalidInputError naming the field at fault: "task.base: Too big: expected number to be <=16".
 */
export function taskFromInfo(info: unknown): AnyTask {
  const name = typeof info === "object" && info !== null ? (info as { name?: unknown }).name : undefined;
  if (!TASK_NAMES.includes(name as (typeof TASK_NAMES)[number])) {
    throw new InvalidInputError(
      typeof info !== "object" || info === null
        ? `task must be an object like {"name": "parity"}, got ${describeValue(info)}`
        : `task.name: unknown task ${describeValue(name)}; known tasks are ${TASK_NAMES.join(", ")}`,
    );
  }
  const result = taskInfoSchema.safeParse(info);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const field = ["task", ...issue.path.map(String)].join(".");
      return `${field}: ${issue.message}`;
    });
    throw new InvalidInputError(problems.join("; "));
  }
  const valid = result.data;
  switch (valid.name) {
    case "parity":
      return parityTask();
    case "addition":
      return additionTask({ base: valid.base });
    case "elementary":
      return elementaryTask({ rule: valid.rule, boundary: valid.boundary });
  }
}

const NAME_HELP =
  'use "parity", "addition" (base 10), "addition-base<N>" (N = 2..16), ' +
  '"rule<N>" or "elementary-rule<N>" (N = 0..255, zero boundary; add "-periodic" for a periodic one)';

/**
 * The `TaskInfo` for a short name: "parity", "addition" (= base 10), "addition-base2",
 * "rule110", "elementary-rule30", "rule30-periodic". Every `Task.name` is accepted.
 */
export function parseTaskName(name: string): TaskInfo {
  if (typeof name !== "string") throw new InvalidInputError(`task name must be a string, got ${describeValue(name)}`);
  const text = name.trim().toLowerCase();
  if (text === "parity") return { name: "parity" };
  const addition = /^addition(?:-base(\d+))?$/.exec(text);
  if (addition) {
    const base = addition[1] === undefined ? 10 : Number(addition[1]);
    if (base < 2 || base > 16) {
      throw new InvalidInputError(`task name ${JSON.stringify(name)}: base must be from 2 to 16, got ${base}`);
    }
    return { name: "addition", base };
  }
  const elementary = /^(?:elementary-)?rule(\d+)(?:-(zero|periodic))?$/.exec(text);
  if (elementary) {
    const rule = Number(elementary[1]);
    if (rule > 255) {
      throw new InvalidInputError(`task name ${JSON.stringify(name)}: rule must be from 0 to 255, got ${rule}`);
    }
    return { name: "elementary", rule, boundary: elementary[2] === "periodic" ? "periodic" : "zero" };
  }
  throw new InvalidInputError(`task name ${JSON.stringify(name)} is not known; ${NAME_HELP}`);
}

/** `taskFromInfo(parseTaskName(name))`. */
export function taskFromName(name: string): AnyTask {
  return taskFromInfo(parseTaskName(name));
}
