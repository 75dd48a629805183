/**
 * Adam with global-norm clipping (src/train/adam.ts) against a reference written out here in
 * float64. One Adam step cannot show clipping: its update is lr x m/sqrt(v) = lr x sign(g)
 * (bias-corrected, up to eps) whatever the gradient's scale. So these tests take two steps
 * whose gradients differ in scale: clipping the first changes how much it weighs in the
 * moments beside the second, and so the second update.
 *
 * Tolerance: adamStep stores params, m and v as float32; the reference keeps float64
 * throughout. After two steps of lr 0.1 on parameters near 1 the two differ by a few float32
 * ulps (about 1e-7); TOL = 1e-6. Clipped and unclipped results differ by over 3e-3 (checked
 * below), so the comparison tells them apart with a wide margin.
 */
import test from "ava";
import { adamInit, adamStep, type AdamOptions } from "../src/train/adam.js";

const TOL = 1e-6;
const LR = 0.1;
const base = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
/** A large first gradient (norm 50) and a small second one (norm 0.05), as float32 values. */
const GRADS = [
  [30, -40],
  [0.03, 0.04],
].map((g) => g.map(Math.fround));
const norm = (g: number[]) => Math.sqrt(g.reduce((s, x) => s + x * x, 0));

/** Adam, float64 throughout: `clip` 0 = no clipping. Returns the parameters after each step. */
function reference(p0: number[], grads: number[][], lr: number, o: AdamOptions): number[][] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const out: number[][] = [];
  grads.forEach((g, k) => {
    const n = norm(g);
    const scale = o.clip > 0 && n > o.clip ? o.clip / n : 1;
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! * scale;
      m[i] = o.beta1 * m[i]! + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i]! + (1 - o.beta2) * gi * gi;
      const mHat = m[i]! / (1 - o.beta1 ** t);
      const vHat = v[i]! / (1 - o.beta2 ** t);
      p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
    out.push([...p]);
  });
  return out;
}

/** adamStep over the same gradients: the parameters and returned norm after each step. */
function run(o: AdamOptions): { params: number[][]; norms: number[]; step: number } {
  const p = Float32Array.from([1, 1]);
  const s = adamInit(2);
  const params: number[][] = [];
  const norms: number[] = [];
  for (const g of GRADS) {
    norms.push(adamStep(p, Float32Array.from(g), s, LR, o));
    params.push(Array.from(p));
  }
  return { params, norms, step: s.step };
}

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

test("the references with and without clipping differ after two steps (but not after one)", (t) => {
  const clipped = reference([1, 1], GRADS, LR, { ...base, clip: 1 });
  const plain = reference([1, 1], GRADS, LR, { ...base, clip: 0 });
  // Step 1 alone: the same update, lr x sign(g), clipped or not (up to eps: ~2e-9, under TOL).
  t.true(maxDiff(clipped[0]!, plain[0]!) < TOL / 10, `step 1: ${clipped[0]} vs ${plain[0]}`);
  t.true(maxDiff(clipped[1]!, plain[1]!) > 3e-3, `step 2: ${clipped[1]} vs ${plain[1]}`);
});

test("adam clips the gradient to its global norm: two steps match the clipped reference", (t) => {
  const o = { ...base, clip: 1 };
  const want = reference([1, 1], GRADS, LR, o);
  const got = run(o);
  // The norm before clipping is returned, for both steps (the second is under the clip).
  t.deepEqual(got.norms, GRADS.map(norm));
  t.is(got.step, 2);
  got.params.forEach((p, k) => {
    t.true(maxDiff(p, want[k]!) < TOL, `step ${k + 1}: got ${p}, want ${want[k]} (within ${TOL})`);
  });
  const unclipped = reference([1, 1], GRADS, LR, { ...base, clip: 0 });
  t.true(maxDiff(got.params[1]!, unclipped[1]!) > 3e-3, "the clipped run must not match the unclipped reference");
});

test("clip 0 and a clip above the norm leave the gradient as it is", (t) => {
  const want = reference([1, 1], GRADS, LR, { ...base, clip: 0 });
  for (const clip of [0, 50.5]) {
    const got = run({ ...base, clip });
    got.params.forEach((p, k) => {
      t.true(maxDiff(p, want[k]!) < TOL, `clip ${clip}, step ${k + 1}: got ${p}, want ${want[k]}`);
    });
  }
});
