//! Deterministic test data for the tests and benchmarks of sead-core and sead-gpu (and for
//! anyone profiling the kernels): a small seeded generator, random parameters shaped like a
//! model's mid-training, and one-hot inputs as the tasks encode digits. Not used by the
//! library itself.

use crate::{Batch, Boundary, ConvergeOptions, Grid, Quantize, Spec, Update};

/// A 64-bit linear congruential generator (Knuth's MMIX constants): tiny, seeded, and the
/// same on every platform, so a failing test or a benchmark input can be reproduced.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next 53 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    /// Uniform in [0, 1).
    // A test generator with one draw, not an iterator: `next` reads as "the next number".
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> f64 {
        self.bits() as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-scale, scale).
    pub fn sym(&mut self, scale: f64) -> f64 {
        (2.0 * self.next() - 1.0) * scale
    }

    /// `sym`, rounded to f32.
    pub fn sym_f32(&mut self, scale: f64) -> f32 {
        self.sym(scale) as f32
    }

    /// Uniform in 0 .. n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize % n
    }
}

/// Parameters scaled by fan-in, as a model looks mid-training: the state stays in tanh's
/// working range and the outputs are not all ties.
pub fn fan_in_params(spec: &Spec, rng: &mut Lcg) -> Vec<f32> {
    let l = spec.layout();
    let mut p = vec![0.0f32; l.total];
    let s1 = 2.0 / ((spec.k() * spec.c()) as f64).sqrt();
    let s2 = 2.0 / (spec.features as f64).sqrt();
    for (r, s) in [
        (l.w1, s1),
        (l.b1, 0.3),
        (l.w2, s2),
        (l.b2, 0.3),
        (l.wo, 1.0),
        (l.bo, 0.1),
    ] {
        for v in &mut p[r] {
            *v = rng.sym_f32(s);
        }
    }
    p
}

/// The binary adder's shape (4 inputs, 16 hidden, 64 features, 2 outputs, replace update,
/// zero boundary) in `dims` dimensions: the benchmarks' model, on both backends.
pub fn bench_spec(dims: usize) -> Spec {
    Spec {
        dims,
        c_in: 4,
        c_h: 16,
        features: 64,
        c_out: 2,
        update: Update::Replace,
        boundary: Boundary::Zero,
        quantize: Quantize::None,
    }
}

/// The shipped multiplication model's shape (models/multiplication-base2.json: 2D, 4 inputs,
/// 16 hidden, 64 features, 2 outputs, replace update, zero boundary): the benchmarks' 2D
/// model.
pub fn mul_spec() -> Spec {
    bench_spec(2)
}

/// A small 1D model with odd channel counts (3 inputs, 5 hidden, 12 features, 3 outputs):
/// several cells fit a kernel block or a GPU tile, and no count is a multiple of AVX2's 8 lanes.
pub fn small_spec_1d(update: Update, boundary: Boundary) -> Spec {
    Spec {
        dims: 1,
        c_in: 3,
        c_h: 5,
        features: 12,
        c_out: 3,
        update,
        boundary,
        quantize: Quantize::None,
    }
}

/// A 1D model of one input channel, one hidden channel, one feature and two outputs (replace
/// update): small enough to set every weight by hand.
pub fn scalar_spec(boundary: Boundary) -> Spec {
    Spec {
        dims: 1,
        c_in: 1,
        c_h: 1,
        features: 1,
        c_out: 2,
        update: Update::Replace,
        boundary,
        quantize: Quantize::None,
    }
}

/// Parameters of `scalar_spec` for h' = tanh(x + 0.5 h) (x >= 0): from h = 0 the state creeps
/// towards its fixed point by ever smaller steps. Output 1's logit is h.
pub fn creeping_params(spec: &Spec) -> Vec<f32> {
    let l = spec.layout();
    let mut p = vec![0.0f32; spec.param_count()];
    p[l.w1.start + 2] = 1.0; // centre neighbour, channel x
    p[l.w1.start + 3] = 0.5; // centre neighbour, channel h
    p[l.w2.start] = 1.0;
    p[l.wo.start + 1] = 1.0;
    p
}

/// One-hot inputs for `cells` cells (a random channel of each set to 1), as the tasks encode
/// digits.
pub fn one_hot_x(spec: &Spec, cells: usize, rng: &mut Lcg) -> Vec<f32> {
    let mut x = vec![0.0f32; cells * spec.c_in];
    for cell in x.chunks_exact_mut(spec.c_in) {
        cell[rng.below(spec.c_in)] = 1.0;
    }
    x
}

/// The largest |a[i] - b[i]| of two vectors of one length (0 for empty ones): how far two
/// runs' (two backends', two kernels') states are apart.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Sets the update's biases (b2) to -12 or +12 at random: they drive most hidden channels to
/// tanh's exact +-1, where states stop changing.
pub fn saturate(spec: &Spec, p: &mut [f32], rng: &mut Lcg) {
    for v in &mut p[spec.layout().b2] {
        *v = if rng.next() < 0.5 { -12.0 } else { 12.0 };
    }
}

/// `p` with new biases: bo + 3 (which flips the outputs of kept states too) and b1 + 0.25.
pub fn new_biases(spec: &Spec, p: &[f32]) -> Vec<f32> {
    let mut p2 = p.to_vec();
    p2[spec.layout().bo.start] += 3.0;
    p2[spec.layout().b1.start] += 0.25;
    p2
}

/// A class for each of `cells` cells, or -1 (not supervised) for about one in five.
pub fn partly_supervised(spec: &Spec, cells: usize, rng: &mut Lcg) -> Vec<i32> {
    (0..cells)
        .map(|_| {
            if rng.next() < 0.2 {
                -1
            } else {
                rng.below(spec.c_out) as i32
            }
        })
        .collect()
}

/// A model, its parameters, a grid and the grid's inputs: one case, to run on either backend.
pub struct Case {
    pub spec: Spec,
    pub params: Vec<f32>,
    pub grid: Grid,
    pub x: Vec<f32>,
}

/// `creeping_params` on one row of 4 cells whose inputs are all 1: every cell creeps
/// towards the same fixed point by ever smaller steps.
pub fn creeping_row() -> Case {
    let spec = scalar_spec(Boundary::Zero);
    Case {
        spec,
        params: creeping_params(&spec),
        grid: Grid {
            batch: 1,
            height: 1,
            width: 4,
        },
        x: vec![1.0; 4],
    }
}

/// `scalar_spec` (zero boundary) with h' = tanh(0.5 relu(x)), constant after the first
/// step, on 2 samples of 5 cells: sample 0's inputs are all 0, so its outputs never change;
/// sample 1's are all 1, so its outputs flip from class 0 to class 1 on step 1.
pub fn settling_case() -> Case {
    let spec = scalar_spec(Boundary::Zero);
    let l = spec.layout();
    let mut params = vec![0.0f32; spec.param_count()];
    params[l.w1.start + spec.c()] = 1.0; // centre neighbour, channel x
    params[l.w2.start] = 0.5;
    params[l.wo.start + 1] = 1.0; // class 1 when h > 0
    Case {
        spec,
        params,
        grid: Grid {
            batch: 2,
            height: 1,
            width: 5,
        },
        x: [[0.0; 5], [1.0; 5]].concat(),
    }
}

/// How `settling_case` is converged: settled after 3 quiet steps (|h' - h| < 1e-6), at most
/// 100 steps.
pub const SETTLING_OPTIONS: ConvergeOptions = ConvergeOptions {
    patience: 3,
    tol: 1e-6,
    max_steps: 100,
};

/// The training benchmarks' batch on both backends, owned: fan-in parameters, one-hot inputs
/// and a random class for every cell (seed 11), the loss on the last 4 of `t` steps (as the
/// stability loss does), noise 0.05.
pub struct BenchTrain {
    pub params: Vec<f32>,
    pub grid: Grid,
    pub x: Vec<f32>,
    pub target: Vec<i32>,
    pub step_weights: Vec<f32>,
}

impl BenchTrain {
    pub fn new(spec: &Spec, grid: Grid, t: usize) -> Self {
        let mut rng = Lcg(11);
        let params = fan_in_params(spec, &mut rng);
        let x = one_hot_x(spec, grid.cells(), &mut rng);
        let target = (0..grid.cells())
            .map(|_| rng.below(spec.c_out) as i32)
            .collect();
        let mut step_weights = vec![0.0f32; t];
        for w in step_weights.iter_mut().skip(t.saturating_sub(4)) {
            *w = 0.25;
        }
        BenchTrain {
            params,
            grid,
            x,
            target,
            step_weights,
        }
    }

    /// The batch to train on.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            grid: self.grid,
            x: &self.x,
            target: &self.target,
            step_weights: &self.step_weights,
            noise_std: 0.05,
            noise_seed: 3,
            settle_weight: 0.0,
            h0: None,
        }
    }
}
