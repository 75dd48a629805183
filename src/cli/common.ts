/**
 * What every `sead` subcommand shares: argument parsing and validation (zod), the backend
 * flags, output (text, --json, --quiet), checks of files before any work starts, progress
 * bars, and Ctrl-C / SIGTERM handling.
 */
import { closeSync, existsSync, openSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { z } from "zod";
import { createBackend, type Backend } from "../backend/index.js";
import { CheckpointError, SeadError } from "../errors.js";
import { type CheckpointContents, loadCheckpoint } from "../model/checkpoint.js";
import { loadModel, SHIPPED_MODELS } from "../models.js";
import type { Model } from "../model/model.js";
import { checkModelFitsTask } from "../run.js";
import { type AnyTask, taskFromInfo } from "../tasks/index.js";
import type { TaskInfo } from "../tasks/types.js";

/** Bad usage: a flag, an argument, a combination. Exit code 2, like every bad input. */
export class UsageError extends SeadError {}

/** parseArgs options that each take a value (--name VALUE), declared in one list. */
export function valueOptions<N extends string>(...names: N[]): Record<N, { type: "string" }> {
  return Object.fromEntries(names.map((name) => [name, { type: "string" }])) as Record<N, { type: "string" }>;
}

export const COMMON_OPTIONS = {
  ...valueOptions("backend", "threads", "tasks"),
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

/** --out FILE, or -o FILE: the file a command writes (read by outFlag and requiredOut). */
export const OUT_OPTION = { out: { type: "string", short: "o" } } as const;

export const COMMON_HELP = `common options:
  --backend cpu|gpu|auto   where the kernels run (default auto: a GPU when one is usable, else the CPU)
  --threads N              CPU threads (default 0 = every core)
  --json                   print one JSON document on stdout instead of text
  -q, --quiet              print no text (errors still go to stderr; --json output is kept)
  --tasks FILE[,FILE]      modules that export task definitions of your own (see examples/),
                           registered before the command runs
  -h, --help               this help`;

export type Values = Record<string, string | boolean | undefined>;

/** Prints a command's help on stdout: asked for with --help, so exit code 0. */
export function printHelp(text: string): number {
  process.stdout.write(text + "\n");
  return 0;
}

export interface Parsed {
  values: Values;
  positionals: string[];
}

export function parse(argv: string[], options: ParseArgsConfig["options"]): Parsed {
  const all = { ...COMMON_OPTIONS, ...options };
  try {
    const r = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new UsageError(parseArgsMessage(e, argv, all));
  }
}

type ArgToken = NonNullable<ReturnType<typeof parseArgs>["tokens"]>[number];
type OptionToken = Extract<ArgToken, { kind: "option" }>;

/**
 * node's parseArgs error as one short line a user can act on. The error's `code` says which
 * kind of mistake it is; the offending argument is found here, by tokenizing argv the way
 * parseArgs does (its non-strict mode, which reports instead of throwing) and checking each
 * token against the options sead passed, in parseArgs' own order. node's English message is
 * not read (only its first line is shown when the error is not one of parseArgs' own).
 */
function parseArgsMessage(e: unknown, argv: string[], options: NonNullable<ParseArgsConfig["options"]>): string {
  const code = (e as { code?: unknown }).code;
  const fallback = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
  let tokens: ArgToken[];
  try {
    tokens = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true }).tokens;
  } catch {
    return fallback;
  }
  const known = (t: OptionToken) => Object.hasOwn(options, t.name);
  const type = (t: OptionToken) => options[t.name]?.type;
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const t = tokens.find((t): t is OptionToken => t.kind === "option" && !known(t));
      if (t) return `unknown option ${t.rawName} (see --help)`;
      break;
    }
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      for (const t of tokens) {
        if (t.kind !== "option" || !known(t)) continue;
        if (type(t) === "string") {
          if (t.value === undefined) return `${t.rawName} needs a value`;
          // "--samples -3": parseArgs refuses a value that looks like an option unless it is
          // given inline ("--samples=-3").
          if (!t.inlineValue && t.value.length > 1 && t.value.startsWith("-")) {
            return `${t.rawName} needs a value (to give one that starts with "-", write --${t.name}=VALUE)`;
          }
        } else if (t.value !== undefined) {
          return `${t.rawName} takes no value`;
        }
      }
      break;
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL": {
      const t = tokens.find((t) => t.kind === "positional");
      if (t) return `unexpected argument ${t.value}`;
      break;
    }
  }
  return fallback;
}

/** The schema of a whole-number flag: "--digits must be a whole number". */
function wholeNumber(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .regex(/^\s*\d+\s*$/, { message: `--${name} must be a whole number` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { message: `--${name} must be at least ${min}` })
        .max(max, { message: `--${name} must be at most ${max.toLocaleString("en-US")}` }),
    );
}

interface NumberLimits {
  min?: number;
  max?: number;
  positive?: boolean;
}

/** The schema of a number flag (decimal or exponent form). */
function decimalNumber(name: string, opts: NumberLimits) {
  let n = z.number();
  if (opts.positive) n = n.positive({ message: `--${name} must be > 0` });
  if (opts.min !== undefined) n = n.min(opts.min, { message: `--${name} must be at least ${opts.min}` });
  if (opts.max !== undefined) n = n.max(opts.max, { message: `--${name} must be at most ${opts.max}` });
  return z
    .string()
    .regex(/^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i, { message: `--${name} must be a number` })
    .transform(Number)
    .pipe(n);
}

/** The value of a flag checked by `schema`, or undefined when absent. */
export function flag<T>(values: Values, name: string, schema: z.ZodType<T>): T | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const r = schema.safeParse(v);
  if (!r.success) {
    const m = r.error.issues[0]?.message ?? `--${name} is not valid`;
    throw new UsageError(typeof v === "string" ? `${m}, got ${JSON.stringify(v)}` : m);
  }
  return r.data;
}

/** The value of --NAME, a whole number from `min` to `max`, or undefined when absent. */
export const intFlag = (values: Values, name: string, min: number, max?: number) => flag(values, name, wholeNumber(name, min, max));

/** The value of --NAME, a number (decimal or exponent form) within `limits`, or undefined when absent. */
export const numberFlag = (values: Values, name: string, limits: NumberLimits = {}) => flag(values, name, decimalNumber(name, limits));

export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length === 0) throw new UsageError(`--${name} needs a value`);
  return v;
}

export const seedFlag = (values: Values, fallback = 1) => intFlag(values, "seed", 0, 2 ** 32 - 1) ?? fallback;

/** Output of a command: text unless --quiet or --json, JSON when --json. */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  constructor(values: Values) {
    this.json = values["json"] === true;
    this.quiet = values["quiet"] === true;
  }
  /** A line of human-readable text (not with --json or --quiet). */
  line(text = ""): void {
    if (!this.json && !this.quiet) process.stdout.write(text + "\n");
  }
  /** The --json document. */
  doc(value: unknown): void {
    if (this.json) process.stdout.write(JSON.stringify(value) + "\n");
  }
  /** True when a progress bar may be drawn: text output to a terminal. */
  get interactive(): boolean {
    return !this.json && !this.quiet && !!process.stdout.isTTY && !!process.stderr.isTTY;
  }
}

const backendFlag = (values: Values) => flag(values, "backend", z.enum(["cpu", "gpu", "auto"], { message: "--backend must be cpu, gpu or auto" }));

/** --threads N: CPU threads, 0 to 1024 (0 = every core). */
export const threadsFlag = (values: Values) => intFlag(values, "threads", 0, 1024);

/** The backend the flags ask for. */
export function backendFrom(values: Values): Backend {
  return createBackend({ backend: backendFlag(values) ?? "auto", threads: threadsFlag(values) ?? 0 });
}

export const FREEZE_HELP = `  --freeze TOL     skip settled cells: compute only the cells next to the last step's changes
                   (on the GPU, their tiles), and keep the state of a cell that would move by
                   at most TOL (1e-5: a carry across 100,000 digits in seconds, not minutes)`;

/** --freeze TOL: a finite number >= 0. */
export const freezeFlag = (values: Values) => numberFlag(values, "freeze", { min: 0 });

/** Checks the backend flags without creating anything (for commands that do not compute). */
export function checkBackendFlags(values: Values): void {
  backendFlag(values);
  threadsFlag(values);
}

/**
 * Checks that `path` can be written before any work starts: the extension, the folder exists
 * and is a folder, a file can be created in it, and the path itself is not a folder.
 */
export function checkOutPath(path: string, what: string, extensions?: readonly string[]): string {
  if (path.length === 0) throw new UsageError(`${what} needs a file name`);
  const ext = extname(path).toLowerCase();
  if (extensions && !extensions.includes(ext)) {
    const list = extensions.length === 1 ? extensions[0]! : `${extensions.slice(0, -1).join(", ")} or ${extensions.at(-1)}`;
    throw new UsageError(`${what} ${path}: the file must end in ${list}${ext ? `, not ${ext}` : ""}`);
  }
  const full = resolve(path);
  const dir = dirname(full);
  if (!existsSync(dir)) throw new UsageError(`${what} ${path}: the folder ${dirname(path)} does not exist`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${what} ${path}: ${dirname(path)} is not a folder`);
  if (existsSync(full) && statSync(full).isDirectory()) throw new UsageError(`${what} ${path} is a folder, not a file`);
  const probe = join(dir, `.${basename(full)}.${process.pid}.probe`);
  try {
    closeSync(openSync(probe, "wx"));
    unlinkSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EACCES" || code === "EPERM" ? "permission denied" : code === "EROFS" ? "read-only file system" : (e as Error).message;
    throw new UsageError(`${what} ${path}: cannot write in the folder ${dirname(path)} (${why})`);
  }
  return path;
}

/**
 * The file of --out (-o), checked by checkOutPath (`what` names it in errors) before any work
 * starts; `fallback` when the flag is absent; undefined when both are.
 */
export function outFlag(values: Values, what: string, extensions: readonly string[] | undefined, fallback: string): string;
export function outFlag(values: Values, what: string, extensions?: readonly string[]): string | undefined;
export function outFlag(values: Values, what: string, extensions?: readonly string[], fallback?: string): string | undefined {
  const path = stringFlag(values, "out") ?? fallback;
  return path === undefined ? undefined : checkOutPath(path, what, extensions);
}

/** The file of -o FILE, which the command cannot do without: `missing` says so when absent. */
export function requiredOut(values: Values, extensions: readonly string[], missing: string): string {
  const path = outFlag(values, "-o", extensions);
  if (path === undefined) throw new UsageError(missing);
  return path;
}

/** Reads a JSON file given on the command line, with one clear line when it cannot. */
export function readJsonFile(path: string, what: string): unknown {
  if (!existsSync(path)) throw new UsageError(`${what} ${path} does not exist`);
  if (statSync(path).isDirectory()) throw new UsageError(`${what} ${path} is a folder, not a file`);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A shipped model by name or a checkpoint by path, with a clear line when it is neither. */
export function modelArg(nameOrPath: string, what?: string): CheckpointContents {
  if ((SHIPPED_MODELS as readonly string[]).includes(nameOrPath)) return loadModel(nameOrPath);
  if (what !== undefined && !existsSync(nameOrPath)) throw new UsageError(`${what} ${nameOrPath} does not exist`);
  if (!existsSync(nameOrPath)) {
    throw new UsageError(
      `model ${JSON.stringify(nameOrPath)} is neither a shipped model (${SHIPPED_MODELS.join(", ")}) nor a checkpoint file that exists`,
    );
  }
  if (statSync(nameOrPath).isDirectory()) throw new UsageError(`model ${nameOrPath} is a folder, not a checkpoint file`);
  return loadCheckpoint(nameOrPath);
}

/** The one model argument of eval, run and viz: a shipped name or a checkpoint path. */
export function oneModel(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError("needs one model: a shipped name (e.g. addition-base2) or a checkpoint path");
  return positionals[0]!;
}

/** The model and its task; refuses a checkpoint that records no task. */
export function modelWithTask(nameOrPath: string): { ckpt: CheckpointContents; task: AnyTask; info: TaskInfo } {
  const ckpt = modelArg(nameOrPath);
  const info = ckpt.model.task;
  if (!info) throw new CheckpointError(`${nameOrPath} records no task, so sead cannot tell what its cells mean`);
  return { ckpt, task: taskFromInfo(info), info };
}

/** Refuses a model trained for another task, naming both: "parity.json was trained for parity, not addition-base2". */
export function checkFits(modelName: string, model: Model, task: AnyTask): void {
  const have = model.task ? taskFromInfo(model.task).name : undefined;
  if (have !== task.name) {
    throw new UsageError(`${modelName} was trained for ${have ?? "no recorded task"}, not for ${task.name}`);
  }
  checkModelFitsTask(model, task);
}

/** The model and its task, refused unless the model fits that task (eval, run, viz). */
export function checkedModel(nameOrPath: string): { ckpt: CheckpointContents; task: AnyTask; info: TaskInfo } {
  const m = modelWithTask(nameOrPath);
  checkFits(nameOrPath, m.ckpt.model, m.task);
  return m;
}

/** A human name for a task: "binary addition", "addition in base 10", "parity", "rule 110". */
export function taskTitle(info: TaskInfo): string {
  return taskFromInfo(info).title;
}

/** Shortens a long text to its ends: "0101...1100 (1,000,000 digits)". */
export function cut(s: string, max = 64): string {
  return s.length <= max ? s : `${s.slice(0, max / 2 - 2)}...${s.slice(-(max / 2 - 2))} (${s.length.toLocaleString("en-US")} digits)`;
}

/** An input as the task writes it, long operands cut to their ends. */
export function showInput(task: AnyTask, input: unknown, max = 64): string {
  const text = task.formatInput ? task.formatInput(input) : JSON.stringify(input);
  // Cut each operand on its own: "a + b" with two long numbers stays readable.
  return text
    .split(" ")
    .map((part) => cut(part, max))
    .join(" ");
}

/** An answer as the task writes it, cut to its ends when long. */
export function showOutput(task: AnyTask, value: unknown, max = 64): string {
  return cut(task.formatAnswer ? task.formatAnswer(value) : JSON.stringify(value), max);
}

/**
 * Ctrl-C and SIGTERM abort the returned signal (the work stops between steps and saves what it
 * should); `code()` is the exit code for the signal that came (130 or 143), if one did.
 */
export class Interrupt {
  private readonly ac = new AbortController();
  private received: NodeJS.Signals | undefined;
  private readonly handler = (sig: NodeJS.Signals) => {
    this.received = sig;
    this.ac.abort(new Error(`received ${sig}`));
  };
  constructor() {
    process.once("SIGINT", this.handler);
    process.once("SIGTERM", this.handler);
  }
  get signal(): AbortSignal {
    return this.ac.signal;
  }
  get signalName(): string | undefined {
    return this.received;
  }
  code(): number | undefined {
    return this.received === "SIGINT" ? 130 : this.received === "SIGTERM" ? 143 : undefined;
  }
  dispose(): void {
    process.off("SIGINT", this.handler);
    process.off("SIGTERM", this.handler);
  }
}

/** Thrown by a command that stopped on Ctrl-C / SIGTERM after cleaning up. */
export class Interrupted extends SeadError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Runs `f` with an Interrupt; a signal during it becomes `Interrupted` with its exit code. */
export async function interruptible<T>(f: (signal: AbortSignal, interrupt: Interrupt) => Promise<T>): Promise<T> {
  const it = new Interrupt();
  try {
    const r = await f(it.signal, it);
    return r;
  } catch (e) {
    const code = it.code();
    if (code !== undefined && !(e instanceof Interrupted)) throw new Interrupted(`interrupted by ${it.signalName}`, code);
    throw e;
  } finally {
    it.dispose();
  }
}

/** Grouped thousands: 1,000,000. */
export const fmt = (n: number) => n.toLocaleString("en-US");

/** A share as a percentage with two significant digits at least: 0.041%, 2.4%, 37%. */
export function percent(share: number): string {
  const p = share * 100;
  return `${p >= 10 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p.toPrecision(2)}%`;
}

/** Seconds as "3.2 s", "4 min 5 s", "1 h 2 min". */
export function duration(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
