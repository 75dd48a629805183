/**
 * Exact verification of a quantized 1D model against its task (docs/verify.md): every fixed
 * point of the rule, at every length, reads out the exact answer, and every valid input has
 * exactly one fixed point. Decided by automata over the rule's finite cell states in the
 * native core (`sead_core::verify`); the task supplies its relation (`Task.regularRelation`).
 */
import type * as Native from "../../index.js";
import { native, nativeError, threadsArg, withCancel } from "../backend/native.js";
import { InvalidInputError } from "../errors.js";
import type { Model } from "../model/model.js";
import type { ModelSpec } from "../model/spec.js";
import type { AnyTask } from "../tasks/registry.js";
import { callTask } from "../tasks/registry.js";
import type { RegularRelation } from "../tasks/types.js";

/** The search's limits; each left out keeps the core's default. */
export interface VerifyBudget {
  /**
   * Rule evaluations while building the fixed-point NFA (default 2^30): exact checks of a cell
   * and bound checks of the pruned search. At least |Σ| are needed (refused before any work
   * when the budget is smaller); the search stops with a `ResourceLimitError` when it runs past.
   */
  evaluations?: number;
  /** Pair states of the fixed-point NFA (default 2^24): at least |Σ|, at most |Σ|² + |Σ|. */
  pairs?: number;
  /** States of each product or subset search, and NFA edges (default 2^24). */
  states?: number;
}

export const DEFAULT_VERIFY_BUDGET: Required<VerifyBudget> = { evaluations: 2 ** 30, pairs: 2 ** 24, states: 2 ** 24 };

export interface VerifyOptions {
  budget?: VerifyBudget;
  /**
   * Decide the properties over the cell states a run from h = 0 can reach (an over-approximation
   * closed under the rule; docs/verify.md) instead of every cell state: they then speak of the
   * fixed points such a run can end in.
   */
  fromZero?: boolean;
  /** CPU threads (default 0 = every core). */
  threads?: number;
  signal?: AbortSignal;
}

/** A row of cells found by the search: a fixed point (or, for `exists`, the input alone). */
export interface VerifyRow<I> {
  /** Input symbol indices, cell 0 first. */
  symbols: number[];
  /** The task's input. */
  input: I;
  /** Hidden state per cell, each channel -1, 0 or 1 (empty for `exists`). */
  hidden: number[][];
  /** Output class per cell (empty for `exists`). */
  outputs: number[];
}

export interface PropertyResult<I> {
  holds: boolean;
  /** Product or subset states explored. */
  states: number;
  counterexample?: VerifyRow<I>;
  /** `unique`: the second fixed point of the same input. */
  other?: VerifyRow<I>;
}

export interface VerifyResult<I> {
  /** |Σ|: input symbols x 3^C_h. */
  cells: number;
  symbols: number;
  /** Exact checks of a cell made while building the NFA. */
  evaluations: number;
  /** Bound checks of the pruned search (each rules out a branch of right neighbours or lets it on). */
  boundChecks: number;
  pairsReachable: number;
  pairsTrimmed: number;
  edgesTrimmed: number;
  /** Every fixed point of a valid input reads out the exact answer. */
  correct: PropertyResult<I>;
  /** No valid input has two fixed points. */
  unique: PropertyResult<I>;
  /** With fromZero: the cell states reachable from h = 0 (out of `cells`), and the adjacent pairs of them the search kept to. */
  reachableCells?: number;
  reachablePairs?: number;
  /** Every valid input has a fixed point. */
  exists: PropertyResult<I>;
  seconds: number;
  relation: RegularRelation<I>;
}

/** Why this model and task cannot be verified, as one sentence; undefined when they can. */
export function verifyRefusal(spec: ModelSpec, task: AnyTask): string | undefined {
  if (spec.dims !== 1) {
    return `the model is 2D (spec.dims 2): only 1D rules are verified (a 1D rule's fixed points form a regular language; for 2D grids the question is a tiling problem, undecidable in general)`;
  }
  if (spec.boundary !== "zero") {
    return `the model has a periodic boundary: only the zero boundary is verified (a row is read left to right from one zero end to the other; a ring has no ends)`;
  }
  if (spec.quantize !== "ternary") {
    return `the model is continuous (spec.quantize "${spec.quantize}"): its cell states are not a finite set, so its fixed points cannot be enumerated (train with quantize "ternary")`;
  }
  if (typeof task.regularRelation !== "function") {
    return `task ${task.name} describes no regular relation (Task.regularRelation), so there is nothing to verify the model against`;
  }
  return undefined;
}

/** The task's relation, or an InvalidInputError saying why it has none. */
export function relationOf<I>(spec: ModelSpec, task: AnyTask): RegularRelation<I> {
  const why = verifyRefusal(spec, task);
  if (why) throw new InvalidInputError(why);
  const rel = callTask(task, "regularRelation", () => task.regularRelation!()) as RegularRelation<I>;
  if (rel.alphabet.some((x) => x.length !== spec.cIn)) {
    throw new InvalidInputError(`task ${task.name}'s input symbols do not have the model's spec.cIn = ${spec.cIn} channels`);
  }
  return rel;
}

function nativeSpec(spec: ModelSpec): Native.SpecInput {
  return { ...spec };
}

function nativeDfa(d: RegularRelation<unknown>["domain"]): Native.DfaInput {
  return { symbols: d.symbols, start: d.start, accept: [...d.accept], next: d.next };
}

/**
 * Decides the three properties for `model` on `task` (docs/verify.md). Refuses, with an
 * `InvalidInputError` saying why, a 2D, periodic or continuous model and a task with no
 * regular relation; with a `ResourceLimitError` a search over its budget.
 */
export async function verifyModel<I>(model: Model, task: AnyTask, opts: VerifyOptions = {}): Promise<VerifyResult<I>> {
  const rel = relationOf<I>(model.spec, task);
  const alphabet = new Float32Array(rel.alphabet.length * model.spec.cIn);
  rel.alphabet.forEach((x, i) => alphabet.set(x, i * model.spec.cIn));
  const r = await withCancel(opts.signal, "verifyModel", (token) =>
    native().verifyRuleAsync(nativeSpec(model.spec), model.params, alphabet, nativeDfa(rel.domain), nativeDfa(rel.relation), opts.budget ?? null, opts.fromZero ?? false, threadsArg(opts.threads) ?? 0, token ?? null),
  );
  const cH = model.spec.cH;
  const row = (v: Native.VerifyRow | undefined): VerifyRow<I> | undefined => {
    if (!v) return undefined;
    const hidden = Array.from({ length: v.outputs.length }, (_, i) => Array.from(v.hidden.subarray(i * cH, (i + 1) * cH)));
    return { symbols: [...v.input], input: rel.input(v.input), hidden, outputs: [...v.outputs] };
  };
  const prop = (p: Native.VerifyProperty): PropertyResult<I> => {
    const out: PropertyResult<I> = { holds: p.holds, states: p.states };
    const c = row(p.counterexample);
    const o = row(p.other);
    if (c) out.counterexample = c;
    if (o) out.other = o;
    return out;
  };
  return {
    cells: r.cells,
    symbols: rel.alphabet.length,
    evaluations: r.evaluations,
    boundChecks: r.boundChecks,
    pairsReachable: r.pairsReachable,
    pairsTrimmed: r.pairsTrimmed,
    edgesTrimmed: r.edgesTrimmed,
    correct: prop(r.correct),
    unique: prop(r.unique),
    exists: prop(r.exists),
    ...(r.reachableCells !== undefined && r.reachableCells !== null ? { reachableCells: r.reachableCells } : {}),
    ...(r.reachablePairs !== undefined && r.reachablePairs !== null ? { reachablePairs: r.reachablePairs } : {}),
    seconds: r.seconds,
    relation: rel,
  };
}

/**
 * One step of the model's rule on a row of cells with zero ends, computed as `verifyModel`
 * computes it (the portable f32 kernel, ternary rounding): a fixed point comes back unchanged.
 * `symbols` index `relation.alphabet`; `hidden` is one array of C_h values (-1, 0, 1) per cell.
 */
export function stepRow(model: Model, relation: RegularRelation<unknown>, symbols: readonly number[], hidden: readonly (readonly number[])[]): number[][] {
  const { cIn, cH } = model.spec;
  const x = new Float32Array(symbols.length * cIn);
  symbols.forEach((s, i) => {
    const cell = relation.alphabet[s];
    if (!cell) throw new InvalidInputError(`symbol ${s} at cell ${i} is not one of the ${relation.alphabet.length} input symbols`);
    x.set(cell, i * cIn);
  });
  const h = Int32Array.from(hidden.flat());
  let next: Int32Array;
  try {
    next = native().verifyStepRow(nativeSpec(model.spec), model.params, x, h);
  } catch (e) {
    throw nativeError(e, "stepRow");
  }
  return Array.from({ length: symbols.length }, (_, i) => Array.from(next.subarray(i * cH, (i + 1) * cH)));
}
