#!/usr/bin/env node
/**
 * The `sead` command: a thin layer over the typed API.
 *   sead add      add two numbers with a shipped (or given) model, checked exactly
 *   sead mul      multiply two binary numbers on a 2D grid, checked exactly
 *   sead train    train a model, with a progress bar, checkpoints and resume
 *   sead eval     accuracy and steps against length, as a table or JSON
 *   sead run      one example, step by step, with the convergence statistics
 *   sead viz      the spacetime diagram of a run (or a learned Rule 110 trajectory)
 *   sead plot     accuracy and steps against length, or training curves
 *   sead verify   prove a quantized 1D model's fixed points exact at every length
 * Exit codes: 0 success, 1 the run failed (e.g. a wrong answer), 2 bad usage or bad input,
 * 130 / 143 interrupted by Ctrl-C / SIGTERM (after saving what should be saved).
 */
import { AbortError, CheckpointError, InvalidInputError, ResourceLimitError } from "../errors.js";
import { loadTaskModules } from "../tasks/modules.js";
import { cmdAdd } from "./add.js";
import { COMMON_HELP, Interrupted, UsageError } from "./common.js";
import { cmdEval } from "./eval.js";
import { cmdMul } from "./mul.js";
import { cmdPlot } from "./plot.js";
import { cmdRun } from "./run.js";
import { cmdTrain } from "./train.js";
import { cmdVerify } from "./verify.js";
import { cmdViz } from "./viz.js";

export const MAIN_HELP = `sead: SEAD neural cellular automata, learned local rules iterated to a fixed point

usage: sead <command> [options]

commands:
  add     add two numbers with a shipped model (or --digits N random ones), checked exactly
  mul     multiply two binary numbers on a 2D grid (or --bits N random ones), checked exactly
  train   train a model on a task, with a progress bar, checkpoints and resume
  eval    exact-match accuracy and steps against input length
  run     one example step by step, with the convergence statistics of every step
  viz     draw the spacetime diagram of a run (cells across, steps down) as PNG or SVG
  plot    draw accuracy and steps against length, or training curves, from JSON files
  verify  prove a quantized 1D model's fixed points exact at every length, or show a shortest counterexample
  sweep   seeds and hyperparameters as runs: plan, run (array jobs), local, submit, status, report
  worker  take sweep runs from a Redis queue (sead sweep submit) and run them

${COMMON_HELP}

run 'sead <command> --help' for a command's options.
exit codes: 0 success, 1 the run failed (e.g. a wrong answer), 2 bad usage or input,
130 / 143 interrupted by Ctrl-C / SIGTERM.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  add: cmdAdd,
  mul: cmdMul,
  train: cmdTrain,
  eval: cmdEval,
  run: cmdRun,
  viz: cmdViz,
  plot: cmdPlot,
  verify: cmdVerify,
  sweep: (argv) => import("./sweep.js").then((m) => m.cmdSweep(argv)),
  worker: (argv) => import("./sweep.js").then((m) => m.cmdWorker(argv)),
};

/** The modules named by --tasks (comma-separated; the flag may be repeated). */
function taskModulesIn(argv: string[]): string[] {
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    const value = a === "--tasks" ? argv[++i] : a.startsWith("--tasks=") ? a.slice("--tasks=".length) : undefined;
    if (value !== undefined) paths.push(...value.split(",").filter((p) => p.length > 0));
  }
  return paths;
}

/** One line: the first line of a message, whatever produced it. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    const sub = cmd === "help" ? rest[0] : undefined;
    if (sub !== undefined && COMMANDS[sub]) return COMMANDS[sub]!(["--help"]);
    if (cmd === undefined) {
      process.stderr.write(MAIN_HELP + "\n");
      return 2;
    }
    process.stdout.write(MAIN_HELP + "\n");
    return 0;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    process.stderr.write(`sead: unknown command ${JSON.stringify(cmd)}; the commands are ${Object.keys(COMMANDS).join(", ")} (sead --help)\n`);
    return 2;
  }
  try {
    await loadTaskModules(taskModulesIn(rest));
    return await run(rest);
  } catch (e) {
    if (e instanceof Interrupted) {
      process.stderr.write(`sead ${cmd}: ${oneLine(e.message)}\n`);
      return e.exitCode;
    }
    if (e instanceof UsageError || e instanceof InvalidInputError || e instanceof CheckpointError || e instanceof ResourceLimitError) {
      process.stderr.write(`sead ${cmd}: ${oneLine(e.message)}\n`);
      return 2;
    }
    if (e instanceof AbortError) {
      process.stderr.write(`sead ${cmd}: aborted\n`);
      return 1;
    }
    const detail = process.env["SEAD_DEBUG"] && e instanceof Error ? (e.stack ?? e.message) : e instanceof Error ? oneLine(e.message) : String(e);
    process.stderr.write(`sead ${cmd}: failed: ${detail}\n`);
    return 1;
  }
}

if (require.main === module) {
  // Output piped into a reader that stops early (sead ... | head): stop quietly.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
