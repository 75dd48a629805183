/**
 * The task registry: every task, built-in or a user's own, is a `TaskDefinition` registered
 * under its family name. A checkpoint or config names its task by a `TaskInfo` ({ name, ...
 * options }); the command line by a short name ("addition-base2"); both are resolved here, so
 * a registered task works everywhere (Trainer, solve, sweeps, checkpoints, the CLI) with no
 * edit to the package.
 *
 *     import { registerTask } from "sead";
 *     registerTask(myTaskDefinition);                 // from the API
 *     sead train my-task --tasks ./my-task.js         // from the CLI: the module exports it
 */
import { z } from "zod";
import { InvalidInputError } from "../errors.js";
import { formatIssues } from "../schema.js";
import { describeValue } from "./common.js";
import type { BatchShape, Encoded, GridSize, Task, TaskInfo } from "./types.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTask = Task<any, any>;

/** A task family: its options, how to build a task from them, and its short names. */
export interface TaskDefinition<Options extends object = object> {
  /** The family name, stored in checkpoints as `task.name`: "addition", "my-task". */
  readonly name: string;
  /** One line for help texts: what the task computes. */
  readonly summary: string;
  /** The options besides `name`, checked with zod (use a strict object: unknown keys are errors). */
  readonly options: z.ZodType<Options>;
  /** Builds the task from checked options. */
  create(options: Options): AnyTask;
  /**
   * The options for a short name typed on a command line ("addition-base2" gives { base: 2 }),
   * or undefined when the name is not one of this family's. Without it, the family name
   * alone is accepted, with default options.
   */
  parseName?(text: string): Options | undefined;
  /** Short names shown in help texts, e.g. ["addition-base2", "addition-base10"]. */
  readonly examples?: readonly string[];
  /**
   * The training curriculum's options (`config.curriculum`), passed to `Task.trainingSample`;
   * defaults fill what a config leaves out. Without it, a config may not set `curriculum`.
   */
  readonly curriculum?: z.ZodType<Record<string, unknown>>;
}

const registry = new Map<string, TaskDefinition>();

const NAME = /^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$/;

/**
 * Registers a task family. Registering the same definition again is a no-op; another
 * definition under a taken name is an error (unregister it first to replace it).
 */
export function registerTask<O extends object>(definition: TaskDefinition<O>): void {
  checkDefinition(definition);
  const have = registry.get(definition.name);
  if (have === (definition as unknown as TaskDefinition)) return;
  if (have) {
    throw new InvalidInputError(
      `registerTask: a task named ${JSON.stringify(definition.name)} is already registered; ` +
        "call unregisterTask first to replace it",
    );
  }
  registry.set(definition.name, definition as unknown as TaskDefinition);
}

/** Removes a task family; returns whether it was registered. */
export function unregisterTask(name: string): boolean {
  return registry.delete(name);
}

/** The definition registered under `name`, if any. */
export function taskDefinition(name: string): TaskDefinition | undefined {
  return registry.get(name);
}

/** Every registered definition, in registration order (built-ins first). */
export function registeredTasks(): TaskDefinition[] {
  return [...registry.values()];
}

function checkDefinition(d: unknown): asserts d is TaskDefinition {
  const problem = (what: string) => new InvalidInputError(`registerTask: ${what}`);
  if (typeof d !== "object" || d === null) throw problem(`expected a task definition object, got ${String(d)}`);
  const def = d as Partial<TaskDefinition>;
  if (typeof def.name !== "string" || !NAME.test(def.name)) {
    throw problem(`name must be lower-case letters and digits joined by - or _, like "my-task", got ${JSON.stringify(def.name)}`);
  }
  const where = `task ${JSON.stringify(def.name)}`;
  if (typeof def.summary !== "string") throw problem(`${where}: summary must be a string`);
  if (typeof def.create !== "function") throw problem(`${where}: create must be a function (options) => Task`);
  // Duck-typed: a user's module may bring its own copy of zod.
  if (!isSchema(def.options)) throw problem(`${where}: options must be a zod schema (z.strictObject({...}))`);
  if (def.parseName !== undefined && typeof def.parseName !== "function") throw problem(`${where}: parseName must be a function`);
  if (def.curriculum !== undefined && !isSchema(def.curriculum)) throw problem(`${where}: curriculum must be a zod schema`);
}

function isSchema(v: unknown): v is z.ZodType {
  return typeof v === "object" && v !== null && typeof (v as { safeParse?: unknown }).safeParse === "function";
}

/** How to make a task known, for error messages. */
export const REGISTER_HINT =
  "register it with registerTask(definition) before use, or on the command line with --tasks <module> (a module exporting the definition)";

function knownNames(): string {
  return registeredTasks()
    .map((d) => d.name)
    .join(", ");
}

/** The definition for a task name, or an error naming the known tasks and how to register one. */
export function requireDefinition(name: unknown, where = "task.name"): TaskDefinition {
  const def = typeof name === "string" ? registry.get(name) : undefined;
  if (!def) {
    throw new InvalidInputError(
      `${where}: task ${JSON.stringify(name)} is not registered (known tasks: ${knownNames()}); ${REGISTER_HINT}`,
    );
  }
  return def;
}

/** The options of `info` checked against its definition: { name, ...options }. */
export function checkTaskInfo(info: unknown, where = "task"): { def: TaskDefinition; options: object } {
  if (typeof info !== "object" || info === null || Array.isArray(info)) {
    throw new InvalidInputError(`${where} must be an object like {"name": "parity"}, got ${describeValue(info)}`);
  }
  const { name, ...rest } = info as { name?: unknown };
  const def = requireDefinition(name, `${where}.name`);
  const r = def.options.safeParse(rest);
  if (!r.success) throw new InvalidInputError(formatIssues(r.error, where));
  return { def, options: r.data };
}

/**
 * Rebuilds a task from its `describe()` output (e.g. read from a checkpoint). Throws
 * InvalidInputError naming the field at fault: "task.base: Too big: expected number to be <=16",
 * or the task that is not registered and how to register it.
 */
export function taskFromInfo(info: unknown): AnyTask {
  const { def, options } = checkTaskInfo(info);
  let task: AnyTask;
  try {
    task = def.create(options);
  } catch (e) {
    if (e instanceof InvalidInputError) throw e;
    throw new InvalidInputError(`task ${def.name}: create threw: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  checkTaskShape(task, def.name);
  return task;
}

/** The checks a user's task must pass before the kernels see it. */
function checkTaskShape(task: unknown, family: string): asserts task is AnyTask {
  const where = `task ${family}: create`;
  if (typeof task !== "object" || task === null) throw new InvalidInputError(`${where} returned ${describeValue(task)}, not a task`);
  const t = task as Partial<AnyTask>;
  for (const m of ["grid", "sizeOf", "encode", "decode", "reference", "sample", "equal", "describe"] as const) {
    if (typeof t[m] !== "function") throw new InvalidInputError(`${where} returned a task without the method ${m}()`);
  }
  for (const k of ["cIn", "cOut"] as const) {
    const v = t[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new InvalidInputError(`${where} returned a task whose ${k} is ${describeValue(v)}, not an integer >= 1`);
  }
  if (t.dims !== 1 && t.dims !== 2) throw new InvalidInputError(`${where} returned a task whose dims is ${describeValue(t.dims)}, not 1 or 2`);
  if (t.boundary !== "zero" && t.boundary !== "periodic") throw new InvalidInputError(`${where} returned a task whose boundary is ${describeValue(t.boundary)}, not "zero" or "periodic"`);
  if (typeof t.name !== "string" || typeof t.title !== "string") throw new InvalidInputError(`${where} returned a task without a name and a title (strings)`);
}

/**
 * The `TaskInfo` for a short name: "parity", "addition" (= base 10), "addition-base2",
 * "rule110", "elementary-rule30", "rule30-periodic", or a registered task's own names. Every
 * `Task.name` is accepted.
 */
export function parseTaskName(name: string): TaskInfo {
  if (typeof name !== "string") throw new InvalidInputError(`task name must be a string, got ${describeValue(name)}`);
  const text = name.trim().toLowerCase();
  for (const def of registry.values()) {
    const options = def.parseName ? def.parseName(text) : text === def.name ? {} : undefined;
    if (options !== undefined) {
      const info = { name: def.name, ...options };
      checkTaskInfo(info, `task name ${JSON.stringify(name)}`);
      return info;
    }
  }
  const examples = registeredTasks().flatMap((d) => d.examples ?? [d.name]);
  throw new InvalidInputError(`task name ${JSON.stringify(name)} is not known; known names: ${examples.join(", ")} (${REGISTER_HINT})`);
}

/** `taskFromInfo(parseTaskName(name))`. */
export function taskFromName(name: string): AnyTask {
  return taskFromInfo(parseTaskName(name));
}

/** Two task infos that build the same task. */
export function sameTaskInfo(a: TaskInfo, b: TaskInfo): boolean {
  return JSON.stringify(taskFromInfo(a).describe()) === JSON.stringify(taskFromInfo(b).describe());
}


/** Calls a task's method; an error that is not sead's own is reported with the task and method. */
export function callTask<T>(task: AnyTask, method: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof InvalidInputError) throw e;
    throw new InvalidInputError(`task ${task.name}: ${method} threw: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

/** `task.encode(inputs)`, with its result checked: shapes and lengths that fit the task. */
export function encodeChecked(task: AnyTask, inputs: readonly unknown[]): Encoded {
  const enc = callTask(task, "encode", () => task.encode(inputs));
  const bad = (what: string) => new InvalidInputError(`task ${task.name}: encode returned ${what}`);
  if (typeof enc !== "object" || enc === null) throw bad(describeValue(enc));
  for (const k of ["batch", "height", "width"] as const) {
    if (!Number.isSafeInteger(enc[k]) || enc[k] < 1) throw bad(`${k} = ${describeValue(enc[k])}, not an integer >= 1`);
  }
  if (enc.batch !== inputs.length) throw bad(`batch = ${enc.batch} for ${inputs.length} inputs`);
  if (task.dims === 1 && enc.height !== 1) throw bad(`height = ${enc.height} for a 1D task (1D grids have height 1)`);
  if (enc.cIn !== task.cIn || enc.cOut !== task.cOut) throw bad(`cIn = ${enc.cIn}, cOut = ${enc.cOut}; the task says cIn = ${task.cIn}, cOut = ${task.cOut}`);
  const cells = enc.batch * enc.height * enc.width;
  if (!(enc.x instanceof Float32Array) || enc.x.length !== cells * task.cIn) {
    throw bad(`x of ${enc.x instanceof Float32Array ? `${enc.x.length} values` : describeValue(enc.x)}; expected a Float32Array of batch x height x width x cIn = ${cells * task.cIn}`);
  }
  if (!(enc.target instanceof Int32Array) || enc.target.length !== cells) {
    throw bad(`target of ${enc.target instanceof Int32Array ? `${enc.target.length} values` : describeValue(enc.target)}; expected an Int32Array of batch x height x width = ${cells}`);
  }
  for (let i = 0; i < cells; i++) {
    const v = enc.target[i]!;
    if (v < -1 || v >= task.cOut) throw bad(`target ${v} at cell ${i}; targets are -1 (unsupervised) or a class below cOut = ${task.cOut}`);
  }
  return enc;
}

/** `task.decode(outputs, shape)`, with its result checked: one answer per sample. */
export function decodeChecked(task: AnyTask, outputs: Uint8Array, shape: BatchShape): unknown[] {
  const answers = callTask(task, "decode", () => task.decode(outputs, shape));
  if (!Array.isArray(answers) || answers.length !== shape.batch) {
    throw new InvalidInputError(`task ${task.name}: decode returned ${Array.isArray(answers) ? `${answers.length} answers` : describeValue(answers)} for a batch of ${shape.batch}`);
  }
  return answers;
}

/** `task.reference(input)`, errors named. */
export function referenceChecked(task: AnyTask, input: unknown): unknown {
  return callTask(task, "reference", () => task.reference(input));
}

/** `task.equal(a, b)`, errors named and the result checked. */
export function equalChecked(task: AnyTask, a: unknown, b: unknown): boolean {
  const r = callTask(task, "equal", () => task.equal(a, b));
  if (typeof r !== "boolean") throw new InvalidInputError(`task ${task.name}: equal returned ${describeValue(r)}, not a boolean`);
  return r;
}

/** `task.grid(size)`, checked: 1D tasks have height 1. */
export function gridChecked(task: AnyTask, size: number): GridSize {
  const g = callTask(task, "grid", () => task.grid(size));
  if (typeof g !== "object" || g === null || !Number.isSafeInteger(g.height) || !Number.isSafeInteger(g.width) || g.height < 1 || g.width < 1) {
    throw new InvalidInputError(`task ${task.name}: grid(${size}) returned ${describeValue(g)}; expected { height, width }, integers >= 1`);
  }
  if (task.dims === 1 && g.height !== 1) throw new InvalidInputError(`task ${task.name}: grid(${size}) returned height ${g.height} for a 1D task`);
  return g;
}
