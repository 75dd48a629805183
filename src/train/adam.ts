/** Adam with global-norm gradient clipping. State is plain arrays so it can be checkpointed. */

export interface AdamState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export interface AdamOptions {
  beta1: number;
  beta2: number;
  eps: number;
  /** Clip the gradient to this global L2 norm (0 = no clipping). */
  clip: number;
}

export function adamInit(n: number): AdamState {
  return { step: 0, m: new Float32Array(n), v: new Float32Array(n) };
}

/** Global L2 norm of a gradient. */
export function gradNorm(g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return Math.sqrt(s);
}

/**
 * One Adam update of `params` in place with learning rate `lr`; returns the gradient's norm
 * before clipping. Moments are kept in float64 arithmetic, stored as float32.
 */
export function adamStep(params: Float32Array, grad: Float32Array, state: AdamState, lr: number, o: AdamOptions): number {
  const norm = gradNorm(grad);
  const scale = o.clip > 0 && norm > o.clip ? o.clip / norm : 1;
  state.step += 1;
  const c1 = 1 - Math.pow(o.beta1, state.step);
  const c2 = 1 - Math.pow(o.beta2, state.step);
  for (let i = 0; i < params.length; i++) {
    const g = grad[i]! * scale;
    const m = (state.m[i] = o.beta1 * state.m[i]! + (1 - o.beta1) * g);
    const v = (state.v[i] = o.beta2 * state.v[i]! + (1 - o.beta2) * g * g);
    params[i] = params[i]! - (lr * (m / c1)) / (Math.sqrt(v / c2) + o.eps);
  }
  return norm;
}
