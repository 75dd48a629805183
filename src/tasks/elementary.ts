/**
 * Elementary cellular automata (Wolfram's rules 0..255): input a row of bits, output the next
 * generation. Rule 110 is Turing complete, so a model that learns it exactly and stays exact over
 * a long trajectory (its thresholded output fed back as the next input) has learned a real
 * computation rather than a statistic.
 */
import { InvalidInputError } from "../errors.js";
import { z } from "zod";
import { BitRowTask, checkBits, checkBoundary, checkCount, describeValue } from "./common.js";
import type { TaskDefinition } from "./registry.js";
import type { Boundary, ElementaryInfo, RegularRelation } from "./types.js";

export interface ElementaryOptions {
  rule: number;
  boundary: Boundary;
}

export function checkRule(rule: unknown): number {
  if (typeof rule !== "number" || !Number.isInteger(rule) || rule < 0 || rule > 255) {
    throw new InvalidInputError(`rule must be an integer from 0 to 255 (Wolfram numbering), got ${describeValue(rule)}`);
  }
  return rule;
}

/**
 * One generation, unchecked. Wolfram numbering: the new cell is bit (4*left + 2*centre + right)
 * of the rule number. "zero" boundary: cells outside the row are 0; "periodic": the row wraps.
 */
function step(rule: number, row: Uint8Array, periodic: boolean): Uint8Array {
  const n = row.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const left = i > 0 ? row[i - 1]! : periodic ? row[n - 1]! : 0;
    const right = i < n - 1 ? row[i + 1]! : periodic ? row[0]! : 0;
    out[i] = (rule >>> ((left << 2) | (row[i]! << 1) | right)) & 1;
  }
  return out;
}

/** The exact next generation of `row` under `rule`. */
export function elementaryStep(rule: number, row: Uint8Array, boundary: Boundary = "zero"): Uint8Array {
  return step(checkRule(rule), checkBits(row, "row"), checkBoundary(boundary) === "periodic");
}

/**
 * The exact trajectory: `generations + 1` rows, the first a copy of `row`, then each generation
 * in turn (so `result[g]` is generation g).
 */
export function trajectory(
  rule: number,
  row: Uint8Array,
  generations: number,
  boundary: Boundary = "zero",
): Uint8Array[] {
  checkRule(rule);
  checkBits(row, "row");
  checkCount(generations, "generations", 0);
  const periodic = checkBoundary(boundary) === "periodic";
  const rows: Uint8Array[] = [row.slice()];
  for (let g = 0; g < generations; g++) rows.push(step(rule, rows[g]!, periodic));
  return rows;
}

export class ElementaryTask extends BitRowTask {
  readonly name: string;
  readonly title: string;
  readonly rule: number;
  readonly boundary: Boundary;

  constructor(options: ElementaryOptions) {
    super();
    this.rule = checkRule(options.rule);
    this.boundary = checkBoundary(options.boundary);
    this.name = `elementary-rule${this.rule}${this.boundary === "periodic" ? "-periodic" : ""}`;
    this.title = `rule ${this.rule}${this.boundary === "periodic" ? " (periodic)" : ""}`;
  }

  describe(): ElementaryInfo {
    return { name: "elementary", rule: this.rule, boundary: this.boundary };
  }

  protected compute(row: Uint8Array): Uint8Array {
    return step(this.rule, row, this.boundary === "periodic");
  }

  /**
   * A cell's output needs its right neighbour, so the state holds the last two bits and the
   * output guessed for the last one: 0 = start, 1 + 4 left + 2 centre + output after. The
   * guess is checked when the next bit arrives, and at the end against a 0 beyond the row.
   * The rule's bits come from `compute` on 3-bit rows (the middle cell sees both neighbours).
   */
  regularRelation(): RegularRelation<Uint8Array> {
    if (this.boundary === "periodic") {
      throw new InvalidInputError(
        `${this.name} has a periodic boundary: a ring has no first cell, so it is not read left to right by an automaton (only zero-boundary rules are verified)`,
      );
    }
    const bit = (l: number, c: number, r: number) => this.compute(Uint8Array.of(l, c, r))[1]!;
    const state = (l: number, c: number, out: number) => 1 + 4 * l + 2 * c + out;
    const parts = (q: number) => [((q - 1) >> 2) & 1, ((q - 1) >> 1) & 1, (q - 1) & 1] as const;
    return this.bitRelation(
      9,
      0,
      (q) => q > 0 && bit(parts(q)[0], parts(q)[1], 0) === parts(q)[2],
      (q, r, out) => {
        if (q === 0) return state(0, r, out);
        const [l, c, guessed] = parts(q);
        return bit(l, c, r) === guessed ? state(c, r, out) : -1;
      },
    );
  }
}

export function elementaryTask(options: ElementaryOptions): ElementaryTask {
  return new ElementaryTask(options);
}

/** Elementary automata: "rule110", "elementary-rule30", "rule30-periodic". */
export const elementaryDefinition: TaskDefinition<ElementaryOptions> = {
  name: "elementary",
  summary: "the next generation of an elementary cellular automaton, rules 0..255 (1D)",
  options: z.strictObject({ rule: z.number().int().min(0).max(255), boundary: z.enum(["zero", "periodic"]) }),
  create: (o) => elementaryTask(o),
  parseName(text) {
    const m = /^(?:elementary-)?rule(\d+)(?:-(zero|periodic))?$/.exec(text);
    if (!m) return undefined;
    const rule = Number(m[1]);
    if (rule > 255) throw new InvalidInputError(`task name ${JSON.stringify(text)}: rule must be from 0 to 255, got ${rule}`);
    return { rule, boundary: m[2] === "periodic" ? "periodic" : "zero" };
  },
  examples: ["rule110", "elementary-ruleN", "ruleN-periodic"],
};
