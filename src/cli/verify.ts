/** `sead verify`: proves a quantized 1D model's fixed points exact, or prints a shortest counterexample. */
import { CpuBackend } from "../backend/cpu.js";
import type { Model } from "../model/model.js";
import { solve } from "../run.js";
import { decodeChecked, referenceChecked } from "../tasks/index.js";
import type { AnyTask } from "../tasks/registry.js";
import { DEFAULT_VERIFY_BUDGET, relationOf, stepRow, verifyModel, type PropertyResult, type VerifyRow } from "../verify/index.js";
import { COMMON_HELP, fmt, intFlag, interruptible, modelWithTask, Output, parse, printHelp, showInput, showOutput, threadsFlag, UsageError } from "./common.js";

export const VERIFY_HELP = `usage: sead verify <model> [--from-zero] [--budget N] [--json]

Proves, for every input length at once, that a quantized model (spec.quantize "ternary", 1D,
zero boundary) computes its task exactly at its fixed points:
  correct  every fixed point of every valid input reads out the exact answer
  unique   no valid input has two fixed points
  exists   every valid input has a fixed point
It decides them with automata over the rule's finite cell states (input symbol, h in
{-1,0,1}^C_h), not by sampling; the rule is the portable f32 kernel's. A failing property
prints a shortest counterexample, checks it by stepping it once, and runs the model on it
from h = 0 to show whether its plain answer is wrong too. What is proven, and what is only
tested (that a run from h = 0 reaches the fixed point): docs/verify.md.

options:
  --from-zero      decide the properties over the adjacent pairs of cell states a run from
                   h = 0 can show (a set closed under the rule, found first) instead of every
                   cell state:
                   they then cover every fixed point such a run can end in, and ignore
                   fixed points no run from h = 0 can reach
  --budget N       at most N rule evaluations, exact and bound checks (default
                   ${fmt(DEFAULT_VERIFY_BUDGET.evaluations)}); a model that needs more at least (one per cell
                   state) is refused before any work with the size it needs, and a search
                   that runs past the budget stops
  (the search and the plain runs use the CPU, the runs its portable kernel, whatever
  --backend says; --threads sets the threads of both)

${COMMON_HELP}

exit codes: 0 all three proven, 1 a property fails, 2 bad usage or input (a continuous, 2D or
periodic model, a task with no regular relation, or a model over the budget).

examples:
  sead verify my-ternary-adder.json
  sead verify models/addition-base2-ternary.json --json`;

/** A hidden state as text: one character per channel (+, 0, -), cells separated by spaces. */
function hiddenText(hidden: readonly (readonly number[])[]): string {
  return hidden.map((h) => h.map((v) => (v > 0 ? "+" : v < 0 ? "-" : "0")).join("")).join(" ");
}

interface Checked {
  input: string;
  cells: number;
  symbols: string[];
  hidden?: string;
  answer?: string;
  expected: string;
  /** Stepping the reported fixed point once gives it back. */
  fixedPoint?: boolean;
  other?: { hidden: string; answer: string; fixedPoint: boolean };
  plainRun: { answer: string; correct: boolean; steps: number; settled: boolean };
}

export async function cmdVerify(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { budget: { type: "string" }, "from-zero": { type: "boolean" } });
  const fromZero = values["from-zero"] === true;
  if (values["help"]) return printHelp(VERIFY_HELP);
  const out = new Output(values);
  if (positionals.length !== 1) throw new UsageError("needs one model: a checkpoint path (or a shipped model name)");
  const budget = intFlag(values, "budget", 1);
  const threads = threadsFlag(values) ?? 0;
  const modelName = positionals[0]!;
  const { ckpt, task } = modelWithTask(modelName);
  const model = ckpt.model;
  const s = model.spec;
  relationOf(s, task); // refuses a model or task that cannot be verified, before the header
  const evaluations = budget ?? DEFAULT_VERIFY_BUDGET.evaluations;
  const r = await interruptible((signal) => verifyModel<unknown>(model, task, { budget: { evaluations }, fromZero, threads, signal }));
  // (printed after the search: a model refused for its size prints nothing but the one error line)
  out.line(`${modelName}: ${task.title}, 1D, zero boundary, ternary, C_h ${s.cH}, F ${s.features}`);
  const k = r.symbols;
  const cells = r.cells;
  out.line(`cells: ${fmt(k)} input symbols x 3^${s.cH} hidden states = ${fmt(cells)} (at most ${fmt(cells * cells + cells)} pairs; budget ${fmt(evaluations)} rule evaluations)`);
  if (r.reachableCells !== undefined) {
    out.line(
      `from h = 0: ${fmt(r.reachablePairs ?? 0)} adjacent pairs of ${fmt(r.reachableCells)} of the ${fmt(cells)} cell states are reachable; the properties below are over those`,
    );
  }
  out.line(
    `fixed-point NFA: ${fmt(r.pairsReachable)} pairs reachable from the left end, ${fmt(r.pairsTrimmed)} on a fixed point (${fmt(r.edgesTrimmed)} edges); ` +
      `${fmt(r.evaluations)} exact and ${fmt(r.boundChecks)} bound checks of the rule`,
  );

  const backend = new CpuBackend({ simd: "portable", threads });
  const names = (symbols: readonly number[]) => symbols.map((x) => r.relation.names[x] ?? String(x));
  const answerOf = (row: VerifyRow<unknown>) =>
    showOutput(task, decodeChecked(task, Uint8Array.from(row.outputs), { batch: 1, height: 1, width: row.outputs.length })[0]);
  const isFixed = (row: VerifyRow<unknown>) => JSON.stringify(stepRow(model, r.relation, row.symbols, row.hidden)) === JSON.stringify(row.hidden);
  const check = async (p: PropertyResult<unknown>): Promise<Checked | undefined> => {
    const c = p.counterexample;
    if (!c) return undefined;
    const plain = await plainRun(backend, model, task, c.input);
    const checked: Checked = {
      input: showInput(task, c.input, 200),
      cells: c.symbols.length,
      symbols: names(c.symbols),
      expected: showOutput(task, referenceChecked(task, c.input), 200),
      plainRun: plain,
    };
    if (c.outputs.length > 0) {
      checked.hidden = hiddenText(c.hidden);
      checked.answer = answerOf(c);
      checked.fixedPoint = isFixed(c);
    }
    if (p.other) checked.other = { hidden: hiddenText(p.other.hidden), answer: answerOf(p.other), fixedPoint: isFixed(p.other) };
    return checked;
  };
  const props = [
    ["correct", r.correct, "every fixed point of every valid input reads out the exact answer", "a valid input has a fixed point that reads out a wrong answer", "product states"],
    ["unique", r.unique, "no valid input has two fixed points", "a valid input has two fixed points", "product states"],
    ["exists", r.exists, "every valid input has a fixed point", "a valid input has no fixed point", "subsets"],
  ] as const;
  const doc: Record<string, unknown> = {};
  for (const [name, p, good, bad, unit] of props) {
    out.line(`${`${name}:`.padEnd(9)}${p.holds ? "PROVEN" : "FAILS "}  ${p.holds ? good : bad} (${fmt(p.states)} ${unit})`);
    const c = await check(p);
    doc[name] = { holds: p.holds, states: p.states, ...(c ? { counterexample: c } : {}) };
    if (!c) continue;
    out.line(`  shortest input: ${c.input} (${fmt(c.cells)} cell${c.cells === 1 ? "" : "s"}: ${c.symbols.join(" ")}); exact answer ${c.expected}`);
    if (c.hidden !== undefined) {
      out.line(`  fixed point h:  ${c.hidden}   (cell 0 first; +, 0, - per channel), reads out ${c.answer}`);
      out.line(`  stepping it once ${c.fixedPoint ? "gives it back: a fixed point" : "CHANGES it (a bug in sead verify: please report it)"}`);
    }
    if (c.other) {
      out.line(`  second fixed point h: ${c.other.hidden}, reads out ${c.other.answer}; stepping it once ${c.other.fixedPoint ? "gives it back" : "CHANGES it (please report it)"}`);
    }
    const run = c.plainRun;
    const how = `a plain run from h = 0 (portable kernel) ${run.settled ? `settled after ${fmt(run.steps)} steps` : `did not settle in ${fmt(run.steps)} steps`}: ${run.answer}`;
    let verdict: string;
    if (name === "correct") verdict = run.correct ? "exact, so this bad fixed point is not reached from h = 0" : "wrong too";
    else if (name === "exists") verdict = run.correct ? "exact at the last step, though no state of the row is a fixed point" : "wrong too";
    else verdict = run.correct ? "exact" : "wrong";
    out.line(`  ${how}, ${verdict}`);
  }
  const proven = r.correct.holds && r.unique.holds && r.exists.holds;
  out.line(`time: ${r.seconds.toFixed(2)} s; ${proven ? "all three proven for every length" : "NOT proven"}`);
  out.doc({
    model: modelName,
    task: task.describe(),
    spec: s,
    symbols: k,
    cells,
    budget: { ...DEFAULT_VERIFY_BUDGET, evaluations },
    evaluations: r.evaluations,
    boundChecks: r.boundChecks,
    fromZero,
    ...(r.reachableCells !== undefined ? { reachableCells: r.reachableCells, reachablePairs: r.reachablePairs } : {}),
    pairsReachable: r.pairsReachable,
    pairsTrimmed: r.pairsTrimmed,
    edgesTrimmed: r.edgesTrimmed,
    ...doc,
    seconds: r.seconds,
    proven,
  });
  return proven ? 0 : 1;
}

async function plainRun(backend: CpuBackend, model: Model, task: AnyTask, input: unknown): Promise<Checked["plainRun"]> {
  const r = await solve<unknown, unknown>(backend, model, task, [input]);
  return { answer: showOutput(task, r.answers[0], 200), correct: r.correct[0]!, steps: r.steps[0]!, settled: r.converged[0] === 1 };
}
