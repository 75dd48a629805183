// @ts-check
/**
 * An example of a task of your own: one generation of Conway's Game of Life on a periodic
 * n x n grid, a 2D task with an exact reference. It lives outside the package and needs only
 * zod; sead finds it through the registry, so it trains and runs like a built-in task:
 *
 *     sead train life --tasks examples/life-task.mjs --config examples/life-config.json --out life.json
 *     sead eval life.json --tasks examples/life-task.mjs --lengths 8,64
 *     sead run life.json --tasks examples/life-task.mjs --input 00100/00010/01110/00000/00000
 *
 * or from code: `registerTask(lifeDefinition)`, then `new Trainer({ task: { name: "life" }, ... })`
 * and `solve(backend, model, taskFromInfo({ name: "life" }), inputs)`.
 *
 * An input is an array of n rows, each a string of n characters 0 (dead) or 1 (alive); the
 * answer is the next generation in the same form. A module may export one definition or
 * several (as named exports or an array as the default export).
 */
import { z } from "zod";

/** @typedef {readonly string[]} Rows */

/** @param {string} message */
function invalid(message) {
  // sead reports a task's errors with the task's and the method's names.
  return new RangeError(message);
}

/** Checks an input: n rows of n characters 0 or 1. @param {unknown} rows @param {string} where */
function checkRows(rows, where) {
  if (!Array.isArray(rows) || rows.length === 0) throw invalid(`${where} must be a non-empty array of rows`);
  const n = rows.length;
  rows.forEach((row, i) => {
    if (typeof row !== "string" || row.length !== n || /[^01]/.test(row)) {
      throw invalid(`${where}[${i}] must be a string of ${n} characters 0 or 1 (the grid is square)`);
    }
  });
  return /** @type {Rows} */ (rows);
}

/** The exact next generation. @param {Rows} rows @returns {Rows} */
export function lifeStep(rows) {
  const n = rows.length;
  const at = (/** @type {number} */ y, /** @type {number} */ x) => rows[(y + n) % n].charCodeAt((x + n) % n) - 48;
  const out = [];
  for (let y = 0; y < n; y++) {
    let row = "";
    for (let x = 0; x < n; x++) {
      let live = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) if (dy || dx) live += at(y + dy, x + dx);
      row += live === 3 || (live === 2 && at(y, x) === 1) ? "1" : "0";
    }
    out.push(row);
  }
  return out;
}

class LifeTask {
  name = "life";
  title = "Game of Life";
  /** @type {2} */ dims = 2;
  cIn = 2; // one-hot: dead, alive
  cOut = 2;
  /** @type {"periodic"} */ boundary = "periodic";

  /** @param {number} n */
  grid(n) {
    if (!Number.isSafeInteger(n) || n < 1) throw invalid(`size must be an integer >= 1, got ${n}`);
    return { height: n, width: n };
  }

  /** @param {Rows} input */
  sizeOf(input) {
    return checkRows(input, "input").length;
  }

  /** @param {readonly Rows[]} inputs */
  encode(inputs) {
    if (!Array.isArray(inputs) || inputs.length === 0) throw invalid("inputs must be a non-empty array");
    const n = checkRows(inputs[0], "inputs[0]").length;
    const batch = inputs.length;
    const x = new Float32Array(batch * n * n * 2);
    const target = new Int32Array(batch * n * n);
    inputs.forEach((rows, s) => {
      if (checkRows(rows, `inputs[${s}]`).length !== n) throw invalid(`inputs[${s}] is ${rows.length} x ${rows.length}, inputs[0] is ${n} x ${n}`);
      const next = lifeStep(rows);
      for (let y = 0; y < n; y++) {
        for (let xx = 0; xx < n; xx++) {
          const cell = (s * n + y) * n + xx;
          x[cell * 2 + rows[y].charCodeAt(xx) - 48] = 1;
          target[cell] = next[y].charCodeAt(xx) - 48;
        }
      }
    });
    return { batch, height: n, width: n, cIn: 2, cOut: 2, x, target };
  }

  /** @param {Uint8Array} outputs @param {{ batch: number, height: number, width: number }} shape */
  decode(outputs, { batch, height, width }) {
    const answers = [];
    for (let s = 0; s < batch; s++) {
      const rows = [];
      for (let y = 0; y < height; y++) {
        let row = "";
        for (let x = 0; x < width; x++) row += outputs[(s * height + y) * width + x] ? "1" : "0";
        rows.push(row);
      }
      answers.push(rows);
    }
    return answers;
  }

  /** @param {Rows} input */
  reference(input) {
    return lifeStep(checkRows(input, "input"));
  }

  /** A random grid, about a third alive. @param {{ float(): number }} rng @param {number} n */
  sample(rng, n) {
    this.grid(n);
    return Array.from({ length: n }, () => Array.from({ length: n }, () => (rng.float() < 0.35 ? "1" : "0")).join(""));
  }

  /** @param {Rows} a @param {Rows} b */
  equal(a, b) {
    return a.length === b.length && a.every((row, i) => row === b[i]);
  }

  describe() {
    return { name: "life" };
  }

  /** "00100/00010/01110/00000/00000": rows separated by "/". @param {string} text */
  parseInput(text) {
    return checkRows(text.trim().split("/"), "the input's rows");
  }

  /** @param {Rows} input */
  formatInput(input) {
    return input.join("/");
  }

  /** @param {Rows} answer */
  formatAnswer(answer) {
    return answer.join("/");
  }
}

/** The task's definition: what `registerTask` and `--tasks` take. */
export const lifeDefinition = {
  name: "life",
  summary: "one generation of Conway's Game of Life on a periodic n x n grid (2D)",
  options: z.strictObject({}),
  create: () => new LifeTask(),
  examples: ["life"],
};

export default lifeDefinition;
