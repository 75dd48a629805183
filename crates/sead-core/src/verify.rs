//! Exact verification of a quantized 1D rule (docs/verify.md).
//!
//! With `Quantize::Ternary`, a cell is (input symbol, h in {-1,0,1}^C_h): a finite alphabet Σ.
//! The rule R(left, centre, right) -> centre's next h is then a finite function, computed here
//! by the portable f32 kernel's own functions (`accumulate` = `perceive`'s loop, `mix_update`,
//! `quantize`, `readout`, `argmax`), so what is proven is about the rule inference computes.
//!
//! A row of n cells is a fixed point iff every cell is fixed given its neighbours (the zero
//! cell beyond each end). That is a local condition on consecutive triples, so the fixed points
//! of every length form a regular language over Σ, recognized by an NFA whose states are pairs
//! (previous cell, current cell). Against it we decide, for all lengths at once:
//!
//! - correct: every fixed point of a valid input reads out an answer the task's relation accepts;
//! - unique: no valid input has two fixed points (a product of the NFA with itself);
//! - exists: every valid input has a fixed point (a subset construction).
//!
//! Each search is breadth-first, so a counterexample found is a shortest one.

use crate::error::{Error, Result};
use crate::kernel::portable::{accumulate, argmax, mix_update, quantize, readout};
use crate::spec::{Boundary, Params, Quantize, Spec};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// A deterministic automaton over symbols `0..symbols`. `next[state * symbols + symbol]` is the
/// next state, or -1 for a dead transition (the word is rejected whatever follows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dfa {
    pub symbols: usize,
    pub start: u32,
    pub accept: Vec<bool>,
    pub next: Vec<i32>,
}

impl Dfa {
    fn states(&self) -> usize {
        self.accept.len()
    }

    fn check(&self, name: &str, symbols: usize) -> Result<()> {
        let n = self.states();
        if self.symbols != symbols {
            return Err(Error::invalid(format!(
                "{name} DFA reads {} symbols but must read {symbols}",
                self.symbols
            )));
        }
        if n == 0 || self.start as usize >= n {
            return Err(Error::invalid(format!(
                "{name} DFA has {n} states and start state {}: the start must be one of them",
                self.start
            )));
        }
        if self.next.len() != n * symbols {
            return Err(Error::invalid(format!(
                "{name} DFA's transition table has {} entries but {n} states x {symbols} symbols \
                 need {}",
                self.next.len(),
                n * symbols
            )));
        }
        if let Some(i) = self.next.iter().position(|&t| t < -1 || t >= n as i32) {
            return Err(Error::invalid(format!(
                "{name} DFA's transition {i} goes to state {}, not -1 (dead) or 0..{n}",
                self.next[i]
            )));
        }
        Ok(())
    }

    /// The state after `symbol`, or None when dead.
    #[inline]
    fn step(&self, state: u32, symbol: usize) -> Option<u32> {
        let t = self.next[state as usize * self.symbols + symbol];
        (t >= 0).then_some(t as u32)
    }

    /// Whether this state can still reach an accepting state: states that cannot are pruned.
    fn live(&self) -> Vec<bool> {
        let n = self.states();
        let mut live = self.accept.clone();
        let mut changed = true;
        while changed {
            changed = false;
            for s in 0..n {
                if !live[s]
                    && (0..self.symbols)
                        .any(|a| self.step(s as u32, a).is_some_and(|t| live[t as usize]))
                {
                    live[s] = true;
                    changed = true;
                }
            }
        }
        live
    }
}

/// What to verify: a model and a task's regular description.
pub struct Problem<'a> {
    pub spec: &'a Spec,
    pub params: &'a [f32],
    /// The task's input symbols, each C_in floats as the task's encoder writes one cell.
    pub alphabet: &'a [Vec<f32>],
    /// Valid inputs, over input symbol indices.
    pub domain: &'a Dfa,
    /// The task's input/output relation over (input symbol, output class) pairs, symbol
    /// `input * C_out + class`, one cell at a time from the left; it accepts any class on an
    /// unsupervised cell.
    pub relation: &'a Dfa,
    /// Restrict the search to the adjacent pairs of cell states a run from h = 0 can show
    /// (`reachable_pairs`):
    /// the properties then speak of the fixed points such a run can end in.
    pub from_zero: bool,
}

/// Limits, checked before any work (what the search needs at least) and during the searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Rule evaluations while building the fixed-point NFA: exact checks of a cell, and (the
    /// pruned search) bound checks, which cost about as much. The exhaustive search needs
    /// (|Σ|² + |Σ|)(|Σ| + 1) in the worst case; the pruned one at least |Σ|.
    pub evaluations: u64,
    /// Pair states of the fixed-point NFA: at least |Σ| (the pairs (left end, cell)), at most
    /// |Σ|² + |Σ|. About 40 bytes each.
    pub pairs: u64,
    /// States of each product or subset search, and edges of the NFA.
    pub states: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            evaluations: 1 << 30,
            pairs: 1 << 24,
            states: 1 << 24,
        }
    }
}

/// The sizes a problem needs, before any search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Needs {
    /// |Σ| = input symbols x 3^C_h (as f64: it can be astronomically large).
    pub cells: f64,
    /// Worst cases: every pair reachable, every right neighbour checked exactly.
    pub pairs: f64,
    pub evaluations: f64,
}

/// |Σ| and the worst cases.
pub fn needs(spec: &Spec, symbols: usize) -> Needs {
    let cells = symbols as f64 * 3f64.powi(spec.c_h as i32);
    let pairs = cells * cells + cells;
    Needs {
        cells,
        pairs,
        evaluations: pairs * (cells + 1.0),
    }
}

/// A row of cells: input symbols, hidden states, and the readout of each cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub input: Vec<u32>,
    pub hidden: Vec<Vec<i8>>,
    pub outputs: Vec<u8>,
}

/// The verdict on one property, with a shortest counterexample when it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub holds: bool,
    /// Product or subset states explored.
    pub states: u64,
    /// Correct: the bad fixed point. Unique: the first of two fixed points. Exists: the
    /// input only (no hidden states: it has no fixed point).
    pub counterexample: Option<Row>,
    /// Unique: the second fixed point of the same input.
    pub other: Option<Row>,
}

impl Property {
    fn proven(states: usize) -> Self {
        Property {
            holds: true,
            states: states as u64,
            counterexample: None,
            other: None,
        }
    }

    fn fails(states: usize, counterexample: Row, other: Option<Row>) -> Self {
        Property {
            holds: false,
            states: states as u64,
            counterexample: Some(counterexample),
            other,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// |Σ|.
    pub cells: u64,
    /// Exact checks of a cell, and bound checks of the pruned search.
    pub evaluations: u64,
    pub bound_checks: u64,
    /// Pair states reachable from the left boundary, and those that also reach the right one.
    pub pairs_reachable: u64,
    pub pairs_trimmed: u64,
    pub edges_trimmed: u64,
    pub correct: Property,
    pub unique: Property,
    pub exists: Property,
    /// With `from_zero`: the cell states reachable from h = 0 (out of |Σ|), and the adjacent
    /// pairs of them (ends included) the search was restricted to.
    pub reachable_cells: Option<u64>,
    pub reachable_pairs: Option<u64>,
    pub seconds: f64,
}

/// Why a model cannot be verified, or None when it can: one sentence naming the field.
pub fn unsupported(spec: &Spec) -> Option<String> {
    if spec.dims != 1 {
        return Some(format!(
            "spec.dims is {}: only 1D rules are verified (the fixed points of a 1D rule form a \
             regular language; for 2D grids the question is a tiling problem, undecidable in \
             general)",
            spec.dims
        ));
    }
    if spec.boundary != Boundary::Zero {
        return Some(
            "spec.boundary is \"periodic\": only the zero boundary is verified (a row is read \
             left to right from one zero end to the other; a ring has no ends)"
                .into(),
        );
    }
    if spec.quantize != Quantize::Ternary {
        return Some(
            "spec.quantize is \"none\": the model is continuous, its cell states are not a \
             finite set, so its fixed points cannot be enumerated (train with quantize \
             \"ternary\")"
                .into(),
        );
    }
    None
}

/// Σ and the rule on it.
struct Rule<'a> {
    spec: &'a Spec,
    p: Params<'a, f32>,
    /// 3^C_h.
    hs: usize,
    /// Each input symbol's C_in floats, then the boundary's (all zero).
    xs: Vec<Vec<f32>>,
    /// Each hidden code's C_h floats, then the boundary's (all zero).
    hvals: Vec<f32>,
    /// Readout class of each hidden code.
    class: Vec<u8>,
    /// The boundary's cell id (= |Σ|).
    boundary: u32,
    /// Pruning bounds, f64 (see `feasible`): `rest[k * F + f]` = sum over hidden channels
    /// j >= k of |W1[right][C_in + j][f]|, the most those channels can still move z_f.
    rest: Vec<f64>,
    /// Per feature, a margin far above the f32 rounding of z_f (1e-4 of its largest size).
    z_margin: Vec<f64>,
    /// W2's positive and negative parts, f64, transposed to `[j][f]` for `feasible`'s loop.
    w2_pos: Vec<f64>,
    w2_neg: Vec<f64>,
}

/// atanh(1/2): tanh(u) > 1/2 iff u > this. The pruning keeps a margin of 1e-3 around it, far
/// above `tanh_f32`'s error, so it never drops a state the exact check would keep.
const TERNARY_U: f64 = 0.549_306_144_334_054_8;
const U_SLACK: f64 = 1e-3;
/// Relative margin of the bounds: 1e-4, or more where the sums are long enough that f32
/// rounding (at most terms x 2^-24 of the sum of magnitudes) could approach it.
const REL_MARGIN: f64 = 1e-4;

fn rel_margin(terms: usize) -> f64 {
    REL_MARGIN.max(4.0 * terms as f64 * f64::powi(2.0, -24))
}

/// How the fixed-point NFA's successors are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enumerate {
    /// Branch and bound over the right neighbour's hidden channels, pruned by interval
    /// bounds with margins; every state kept is checked exactly. The default.
    Pruned,
    /// Every right neighbour checked exactly (the reference the pruned search is tested against).
    Exhaustive,
}

impl<'a> Rule<'a> {
    fn new(spec: &'a Spec, params: &'a [f32], alphabet: &[Vec<f32>]) -> Rule<'a> {
        let hs = 3usize.pow(spec.c_h as u32);
        let n = alphabet.len() * hs;
        let mut xs = alphabet.to_vec();
        xs.push(vec![0.0; spec.c_in]);
        let mut hvals = vec![0.0f32; (hs + 1) * spec.c_h];
        for (code, h) in hvals.chunks_exact_mut(spec.c_h).take(hs).enumerate() {
            decode_hidden(code, h);
        }
        let p = Params::split(spec, params);
        let mut h = vec![0.0f32; spec.c_h];
        let mut logits = vec![0.0f32; spec.c_out];
        let class = (0..hs)
            .map(|code| {
                decode_hidden(code, &mut h);
                readout(spec, &p, &h, &mut logits);
                argmax(&logits) as u8
            })
            .collect();
        let (c, f, ch, ci) = (spec.c(), spec.features, spec.c_h, spec.c_in);
        let right = &p.w1[2 * c * f..3 * c * f];
        let mut rest = vec![0.0f64; (ch + 1) * f];
        for k in (0..ch).rev() {
            for ff in 0..f {
                rest[k * f + ff] = rest[(k + 1) * f + ff] + (right[(ci + k) * f + ff] as f64).abs();
            }
        }
        let xmax = alphabet
            .iter()
            .flatten()
            .fold(1.0f64, |m, &v| m.max((v as f64).abs()));
        let z_margin = (0..f)
            .map(|ff| {
                let w: f64 = (0..3 * c)
                    .map(|row| (p.w1[row * f + ff] as f64).abs())
                    .sum();
                rel_margin(3 * c + 1) * ((p.b1[ff] as f64).abs() + xmax * w) + 1e-30
            })
            .collect();
        Rule {
            spec,
            p,
            hs,
            xs,
            hvals,
            class,
            boundary: n as u32,
            rest,
            z_margin,
            w2_pos: (0..ch * f)
                .map(|i| (p.w2[(i % f) * ch + i / f] as f64).max(0.0))
                .collect(),
            w2_neg: (0..ch * f)
                .map(|i| (p.w2[(i % f) * ch + i / f] as f64).min(0.0))
                .collect(),
        }
    }

    /// False only when no completion of the right neighbour's hidden channels k.. can make
    /// `centre` fixed: z's remaining moves bounded by `rest`, ReLU and W2 by interval
    /// arithmetic in f64, each bound widened by a margin far above f32 rounding, and the
    /// ternary threshold by `U_SLACK`. Soundness needs only that the margins cover rounding.
    fn feasible(&self, centre: u32, z: &[f32], k: usize, lo: &mut [f64], hi: &mut [f64]) -> bool {
        let f = self.spec.features;
        let rest = &self.rest[k * f..(k + 1) * f];
        for ff in 0..f {
            let zp = z[ff] as f64;
            let m = rest[ff] + self.z_margin[ff];
            lo[ff] = (zp - m).max(0.0);
            hi[ff] = (zp + m).max(0.0);
        }
        let old = self.cell(centre).1;
        for (j, &target) in old.iter().enumerate() {
            let mut base = self.p.b2[j] as f64;
            if self.spec.update == crate::spec::Update::Residual {
                base += target as f64;
            }
            let (pos, neg) = (
                &self.w2_pos[j * f..(j + 1) * f],
                &self.w2_neg[j * f..(j + 1) * f],
            );
            let (mut ulo, mut uhi, mut size) = (base, base, base.abs() + 1.0);
            for ff in 0..f {
                ulo += pos[ff] * lo[ff] + neg[ff] * hi[ff];
                uhi += pos[ff] * hi[ff] + neg[ff] * lo[ff];
                size += (pos[ff] - neg[ff]) * hi[ff];
            }
            let m = rel_margin(f + 2) * size;
            let (ulo, uhi) = (ulo - m, uhi + m);
            let possible = if target > 0.0 {
                uhi > TERNARY_U - U_SLACK
            } else if target < 0.0 {
                ulo < -(TERNARY_U - U_SLACK)
            } else {
                ulo <= TERNARY_U + U_SLACK && uhi >= -(TERNARY_U + U_SLACK)
            };
            if !possible {
                return false;
            }
        }
        true
    }

    /// Every right neighbour (not the boundary) with which `centre` is fixed, in order of
    /// input symbol, from `prefix`'s z. Returns (exact checks, bound checks) made.
    fn successors(
        &self,
        centre: u32,
        zlc: &[f32],
        how: Enumerate,
        sc: &mut Scratch,
        out: &mut Vec<u32>,
    ) -> (u64, u64) {
        let n = self.boundary;
        if how == Enumerate::Exhaustive {
            out.extend((0..n).filter(|&s| self.fixed(centre, s, zlc, &mut sc.z, &mut sc.h)));
            return (n as u64, 0);
        }
        let (c, f, ci) = (self.spec.c(), self.spec.features, self.spec.c_in);
        let right = &self.p.w1[2 * c * f..3 * c * f];
        let mut counts = (0u64, 0u64);
        for x in 0..n as usize / self.hs {
            let first = (x * self.hs) as u32;
            sc.depth[0].copy_from_slice(zlc);
            // The right cell's inputs, then its hidden channels one at a time: the order
            // `perceive` adds them in, so a leaf's z is the kernel's z bit for bit.
            accumulate(self.cell(first).0, &right[..ci * f], &mut sc.depth[0]);
            self.branch(centre, first, 0, 0, right, sc, out, &mut counts);
        }
        // In order of cell id, as the exhaustive search finds them, so both searches number
        // the NFA, and find counterexamples, the same way.
        out.sort_unstable();
        counts
    }

    #[allow(clippy::too_many_arguments)]
    fn branch(
        &self,
        centre: u32,
        first: u32,
        k: usize,
        code: usize,
        right: &[f32],
        sc: &mut Scratch,
        out: &mut Vec<u32>,
        counts: &mut (u64, u64),
    ) {
        let (f, ch, ci) = (self.spec.features, self.spec.c_h, self.spec.c_in);
        if k == ch {
            counts.0 += 1;
            sc.z.copy_from_slice(&sc.depth[k]);
            let old = self.cell(centre).1;
            mix_update(self.spec, &self.p, &mut sc.z, old, &mut sc.h);
            quantize(self.spec, &mut sc.h);
            if sc.h == old {
                out.push(first + code as u32);
            }
            return;
        }
        counts.1 += 1;
        if !self.feasible(centre, &sc.depth[k], k, &mut sc.lo, &mut sc.hi) {
            return;
        }
        let row = &right[(ci + k) * f..(ci + k + 1) * f];
        for v in [-1.0f32, 0.0, 1.0] {
            let (done, todo) = sc.depth.split_at_mut(k + 1);
            todo[0].copy_from_slice(&done[k]);
            accumulate(&[v], row, &mut todo[0]);
            let digit = (v + 1.0) as usize * 3usize.pow(k as u32);
            self.branch(centre, first, k + 1, code + digit, right, sc, out, counts);
        }
    }

    /// A cell's inputs and hidden state (the boundary: zeros).
    fn cell(&self, id: u32) -> (&[f32], &[f32]) {
        let ch = self.spec.c_h;
        if id == self.boundary {
            let hb = self.hs * ch;
            return (&self.xs[self.xs.len() - 1], &self.hvals[hb..hb + ch]);
        }
        let code = id as usize % self.hs;
        (
            &self.xs[id as usize / self.hs],
            &self.hvals[code * ch..(code + 1) * ch],
        )
    }

    /// z += one neighbour's contribution (rows `k` of W1): its inputs, then its hidden
    /// channels, the order `perceive` reads a cell's C floats in.
    fn add_cell(&self, id: u32, k: usize, z: &mut [f32]) {
        let (c, f, ci) = (self.spec.c(), self.spec.features, self.spec.c_in);
        let w = &self.p.w1[k * c * f..(k + 1) * c * f];
        let (x, h) = self.cell(id);
        accumulate(x, &w[..ci * f], z);
        accumulate(h, &w[ci * f..], z);
    }

    fn symbol(&self, id: u32) -> usize {
        id as usize / self.hs
    }

    fn class(&self, id: u32) -> u8 {
        self.class[id as usize % self.hs]
    }

    fn hidden(&self, id: u32) -> Vec<i8> {
        self.cell(id).1.iter().map(|&v| v as i8).collect()
    }

    /// z after the left and centre neighbours: the first two thirds of `perceive`.
    fn prefix(&self, left: u32, centre: u32, z: &mut [f32]) {
        z.copy_from_slice(self.p.b1);
        self.add_cell(left, 0, z);
        self.add_cell(centre, 1, z);
    }

    /// Whether `centre` is its own next state with `right` on its right, from `prefix`'s z:
    /// the rest of `perceive`, then `mix_update` and `quantize`, as `forward_tile` does.
    fn fixed(&self, centre: u32, right: u32, zlc: &[f32], z: &mut [f32], h: &mut [f32]) -> bool {
        z.copy_from_slice(zlc);
        self.add_cell(right, 2, z);
        let old = self.cell(centre).1;
        mix_update(self.spec, &self.p, z, old, h);
        quantize(self.spec, h);
        h == old
    }
}

/// One thread's buffers for the NFA's construction.
struct Scratch {
    zlc: Vec<f32>,
    z: Vec<f32>,
    h: Vec<f32>,
    /// z after the right cell's inputs and its first k hidden channels, k = 0..=C_h.
    depth: Vec<Vec<f32>>,
    lo: Vec<f64>,
    hi: Vec<f64>,
}

impl Scratch {
    fn new(spec: &Spec) -> Self {
        let f = spec.features;
        Scratch {
            zlc: vec![0.0; f],
            z: vec![0.0; f],
            h: vec![0.0; spec.c_h],
            depth: vec![vec![0.0; f]; spec.c_h + 1],
            lo: vec![0.0; f],
            hi: vec![0.0; f],
        }
    }
}

/// Hidden code -> h: digit j of the code in base 3, minus 1.
fn decode_hidden(mut code: usize, h: &mut [f32]) {
    for v in h.iter_mut() {
        *v = (code % 3) as f32 - 1.0;
        code /= 3;
    }
}

/// One step of the rule on a whole row with zero ends, on the same functions: the test of a
/// counterexample that needs no session (`h` is n x C_h, each -1, 0 or 1).
pub fn step_row(spec: &Spec, params: &[f32], x: &[Vec<f32>], h: &[Vec<i8>]) -> Vec<Vec<i8>> {
    let c = spec.c();
    let n = x.len();
    let mut buf = vec![0.0f32; (n + 2) * c];
    for i in 0..n {
        let cell = &mut buf[(i + 1) * c..(i + 2) * c];
        cell[..spec.c_in].copy_from_slice(&x[i]);
        for (d, &v) in cell[spec.c_in..].iter_mut().zip(&h[i]) {
            *d = v as f32;
        }
    }
    let p = Params::split(spec, params);
    let mut z = vec![0.0f32; spec.features];
    let mut out = vec![0.0f32; spec.c_h];
    (0..n)
        .map(|i| {
            crate::kernel::portable::perceive(spec, &p, &buf, &[i * c], &mut z);
            mix_update(
                spec,
                &p,
                &mut z,
                &buf[(i + 1) * c + spec.c_in..(i + 2) * c],
                &mut out,
            );
            quantize(spec, &mut out);
            out.iter().map(|&v| v as i8).collect()
        })
        .collect()
}

/// The fixed-point NFA, trimmed: pair states (previous cell, current cell) that lie on some
/// fixed point, from the left boundary to the right one.
struct Nfa {
    /// (previous, current) cell ids; previous = the boundary for start states.
    pairs: Vec<(u32, u32)>,
    /// Successor pairs, sorted by their current cell (so grouped by input symbol).
    next: Vec<Vec<u32>>,
    /// The current cell is fixed with the boundary on its right.
    end: Vec<bool>,
    starts: Vec<u32>,
    reachable: u64,
    evaluations: u64,
    bounds: u64,
}

fn too_large(what: &str, limit: u64) -> Error {
    Error::TooLarge(format!(
        "the verification needs more than {limit} {what} (the budget); raise the budget or \
         verify a smaller model"
    ))
}

fn past_budget(budget: &Budget, pairs: usize, n: u32) -> Error {
    Error::TooLarge(format!(
        "the verification ran past its budget of {} rule evaluations (exact checks and bound \
         checks) after {pairs} pairs of the fixed-point NFA (at most {:.3e}); raise the budget \
         or verify a model with fewer hidden channels",
        budget.evaluations,
        (n as f64) * (n as f64) + n as f64
    ))
}

fn cancelled(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// The adjacent pairs of cell states (left, right; either may be the boundary) that a run from
/// h = 0 can ever show, over-approximated: start from every pair of input symbols with h = 0
/// (and each symbol beside an end), then, for every pair (a, b) found and every left neighbour
/// l of a and right neighbour r of b that found pairs allow, add (R(l, a, b), R(a, b, r)),
/// until nothing new appears. By induction over steps, every adjacent pair of every real run is
/// in the set (its 4-cell window was made of pairs in the set), so a fixed point such a run
/// ends in is made of these pairs. Tighter than closing single cells: neighbours that never
/// meet are not combined.
fn reachable_pairs(
    rule: &Rule,
    budget: &Budget,
    cancel: &AtomicBool,
) -> Result<HashSet<(u32, u32)>> {
    let hs = rule.hs;
    let bd = rule.boundary;
    let zero_code = (hs - 1) / 2; // every digit 1: h_j = 0
    let starts: Vec<u32> = (0..bd as usize / hs)
        .map(|x| (x * hs + zero_code) as u32)
        .collect();
    let mut set: HashSet<(u32, u32)> = HashSet::new();
    let mut list: Vec<(u32, u32)> = Vec::new();
    let add = |pair: (u32, u32), set: &mut HashSet<(u32, u32)>, list: &mut Vec<(u32, u32)>| {
        if set.insert(pair) {
            list.push(pair);
        }
    };
    for &a in &starts {
        add((bd, a), &mut set, &mut list);
        add((a, bd), &mut set, &mut list);
        for &b in &starts {
            add((a, b), &mut set, &mut list);
        }
    }
    let mut sc = Scratch::new(rule.spec);
    let mut zlc = vec![0.0f32; rule.spec.features];
    let mut evaluations = 0u64;
    // Next state of `centre` between `left` and `right`, as a cell id. Every round revisits
    // the windows of earlier rounds, so each triple's result is kept and evaluated once.
    let mut seen: HashMap<(u32, u32, u32), u32> = HashMap::new();
    let mut next = |left: u32, centre: u32, right: u32, evaluations: &mut u64| -> u32 {
        if centre == bd {
            return bd;
        }
        if let Some(&id) = seen.get(&(left, centre, right)) {
            return id;
        }
        *evaluations += 1;
        rule.prefix(left, centre, &mut zlc);
        sc.z.copy_from_slice(&zlc);
        rule.add_cell(right, 2, &mut sc.z);
        mix_update(
            rule.spec,
            &rule.p,
            &mut sc.z,
            rule.cell(centre).1,
            &mut sc.h,
        );
        quantize(rule.spec, &mut sc.h);
        let code =
            sc.h.iter()
                .rev()
                .fold(0usize, |a, &v| a * 3 + (v + 1.0) as usize);
        let id = (rule.symbol(centre) * hs + code) as u32;
        seen.insert((left, centre, right), id);
        id
    };
    loop {
        cancelled(cancel)?;
        // Neighbours by the pairs found so far.
        let mut lefts: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut rights: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(a, b) in &list {
            rights.entry(a).or_default().push(b);
            lefts.entry(b).or_default().push(a);
        }
        let before = list.len();
        let mut fresh = Vec::new();
        for &(a, b) in &list {
            let mut new_a: Vec<u32> = Vec::new();
            let mut new_b: Vec<u32> = Vec::new();
            if a == bd {
                new_a.push(bd);
            } else {
                for &l in lefts.get(&a).map_or(&[][..], |v| &v[..]) {
                    new_a.push(next(l, a, b, &mut evaluations));
                }
            }
            if b == bd {
                new_b.push(bd);
            } else {
                for &r in rights.get(&b).map_or(&[][..], |v| &v[..]) {
                    new_b.push(next(a, b, r, &mut evaluations));
                }
            }
            new_a.sort_unstable();
            new_a.dedup();
            new_b.sort_unstable();
            new_b.dedup();
            for &x in &new_a {
                for &y in &new_b {
                    if !set.contains(&(x, y)) {
                        fresh.push((x, y));
                    }
                }
            }
            if evaluations > budget.evaluations {
                return Err(Error::TooLarge(format!(
                    "the pairs reachable from h = 0 ran past the budget of {} rule evaluations \
                     ({} pairs found so far); raise the budget",
                    budget.evaluations,
                    set.len()
                )));
            }
            if set.len() as u64 + fresh.len() as u64 > budget.pairs {
                return Err(too_large("pairs reachable from h = 0", budget.pairs));
            }
        }
        for pair in fresh {
            add(pair, &mut set, &mut list);
        }
        if list.len() == before {
            return Ok(set);
        }
    }
}

fn build_nfa(
    rule: &Rule,
    budget: &Budget,
    how: Enumerate,
    allowed: Option<&HashSet<(u32, u32)>>,
    cancel: &AtomicBool,
) -> Result<Nfa> {
    let ok = |pair: (u32, u32)| allowed.is_none_or(|a| a.contains(&pair));
    let n = rule.boundary;
    // Start pairs (boundary, cell) are numbered by their cell; no transition leads to one,
    // so only the other pairs need the index.
    let mut index: HashMap<(u32, u32), u32> = HashMap::new();
    let mut pairs: Vec<(u32, u32)> = (0..n)
        .filter(|&s| ok((rule.boundary, s)))
        .map(|s| (rule.boundary, s))
        .collect();
    let mut next: Vec<Vec<u32>> = Vec::new();
    let mut end: Vec<bool> = Vec::new();
    let mut edges = 0u64;
    let (mut evaluations, mut bounds) = (0u64, 0u64);
    // Breadth-first by layers, each layer's rule evaluations in parallel; merged in order, so
    // the numbering (and every counterexample) does not depend on the thread count.
    let mut done = 0usize;
    while done < pairs.len() {
        cancelled(cancel)?;
        let layer = pairs[done..].to_vec();
        // Checked inside the layer too (the first one has |Σ| pairs): once cancelled or past
        // the budget, the rest of the layer is skipped and the layer reports the error.
        let spent = AtomicU64::new(evaluations + bounds);
        let expanded: Vec<(Vec<u32>, bool, (u64, u64))> = layer
            .par_iter()
            .map_init(
                || Scratch::new(rule.spec),
                |sc, &(prev, cur)| {
                    if cancel.load(Ordering::Relaxed)
                        || spent.load(Ordering::Relaxed) > budget.evaluations
                    {
                        return (Vec::new(), false, (0, 0));
                    }
                    let mut zlc = std::mem::take(&mut sc.zlc);
                    rule.prefix(prev, cur, &mut zlc);
                    let mut succ = Vec::new();
                    let counts = rule.successors(cur, &zlc, how, sc, &mut succ);
                    succ.retain(|&s| ok((cur, s)));
                    let at_end = ok((cur, rule.boundary))
                        && rule.fixed(cur, rule.boundary, &zlc, &mut sc.z, &mut sc.h);
                    sc.zlc = zlc;
                    spent.fetch_add(counts.0 + 1 + counts.1, Ordering::Relaxed);
                    (succ, at_end, (counts.0 + 1, counts.1))
                },
            )
            .collect();
        cancelled(cancel)?;
        if spent.load(Ordering::Relaxed) > budget.evaluations {
            return Err(past_budget(budget, pairs.len(), n));
        }
        done = pairs.len();
        for (&(_, cur), (succ, at_end, counts)) in layer.iter().zip(expanded) {
            evaluations += counts.0;
            bounds += counts.1;
            edges += succ.len() as u64;
            if edges > budget.states {
                return Err(too_large("NFA edges", budget.states));
            }
            let ids = succ
                .into_iter()
                .map(|s| {
                    *index.entry((cur, s)).or_insert_with(|| {
                        pairs.push((cur, s));
                        pairs.len() as u32 - 1
                    })
                })
                .collect();
            next.push(ids);
            end.push(at_end);
        }
        if evaluations + bounds > budget.evaluations {
            return Err(past_budget(budget, pairs.len(), n));
        }
        if pairs.len() as u64 > budget.pairs {
            return Err(too_large("NFA pair states", budget.pairs));
        }
    }
    // Trim: keep the pairs from which the right boundary can be reached.
    let mut back: Vec<Vec<u32>> = vec![Vec::new(); pairs.len()];
    for (i, succ) in next.iter().enumerate() {
        for &s in succ {
            back[s as usize].push(i as u32);
        }
    }
    let mut live = end.clone();
    let mut queue: VecDeque<u32> = (0..pairs.len() as u32)
        .filter(|&i| end[i as usize])
        .collect();
    while let Some(i) = queue.pop_front() {
        for &b in &back[i as usize] {
            if !live[b as usize] {
                live[b as usize] = true;
                queue.push_back(b);
            }
        }
    }
    let mut renumber = vec![u32::MAX; pairs.len()];
    let mut kept = 0u32;
    for (i, &l) in live.iter().enumerate() {
        if l {
            renumber[i] = kept;
            kept += 1;
        }
    }
    let keep = |i: usize| live[i];
    let t_pairs: Vec<(u32, u32)> = (0..pairs.len())
        .filter(|&i| keep(i))
        .map(|i| pairs[i])
        .collect();
    let t_next: Vec<Vec<u32>> = (0..pairs.len())
        .filter(|&i| keep(i))
        .map(|i| {
            // Kept in order of the successor's cell id, as found: grouped by input symbol.
            next[i]
                .iter()
                .filter(|&&s| live[s as usize])
                .map(|&s| renumber[s as usize])
                .collect()
        })
        .collect();
    let t_end: Vec<bool> = (0..pairs.len())
        .filter(|&i| keep(i))
        .map(|i| end[i])
        .collect();
    let starts = (0..t_pairs.len() as u32)
        .filter(|&i| t_pairs[i as usize].0 == rule.boundary)
        .collect();
    Ok(Nfa {
        reachable: pairs.len() as u64,
        pairs: t_pairs,
        next: t_next,
        end: t_end,
        starts,
        evaluations,
        bounds,
    })
}

/// Breadth-first search bookkeeping: states in discovery order, each with its parent.
struct Search<K> {
    index: HashMap<K, u32>,
    keys: Vec<K>,
    parent: Vec<u32>,
    limit: u64,
}

impl<K: std::hash::Hash + Eq + Clone> Search<K> {
    fn new(limit: u64) -> Self {
        Search {
            index: HashMap::new(),
            keys: Vec::new(),
            parent: Vec::new(),
            limit,
        }
    }

    fn add(&mut self, key: K, parent: u32) -> Result<()> {
        if self.index.contains_key(&key) {
            return Ok(());
        }
        if self.keys.len() as u64 >= self.limit {
            return Err(too_large("product or subset states", self.limit));
        }
        self.index.insert(key.clone(), self.keys.len() as u32);
        self.keys.push(key);
        self.parent.push(parent);
        Ok(())
    }

    /// The path of states from a root to `i`.
    fn path(&self, mut i: u32) -> Vec<&K> {
        let mut out = vec![&self.keys[i as usize]];
        while self.parent[i as usize] != u32::MAX {
            i = self.parent[i as usize];
            out.push(&self.keys[i as usize]);
        }
        out.reverse();
        out
    }
}

const ROOT: u32 = u32::MAX;

fn row_of(rule: &Rule, cells: &[u32]) -> Row {
    Row {
        input: cells.iter().map(|&c| rule.symbol(c) as u32).collect(),
        hidden: cells.iter().map(|&c| rule.hidden(c)).collect(),
        outputs: cells.iter().map(|&c| rule.class(c)).collect(),
    }
}

/// Successors of `p` grouped by input symbol: (symbol, range in `nfa.next[p]`).
fn groups(rule: &Rule, succ: &[u32], nfa: &Nfa) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut a = 0;
    while a < succ.len() {
        let x = rule.symbol(nfa.pairs[succ[a] as usize].1);
        let mut b = a + 1;
        while b < succ.len() && rule.symbol(nfa.pairs[succ[b] as usize].1) == x {
            b += 1;
        }
        out.push((x, a, b));
        a = b;
    }
    out
}

/// A counterexample: a fixed point, and (uniqueness) a second one of the same input.
type Found = (Row, Option<Row>);

/// What the three property searches read: the rule, its fixed-point NFA and the problem, with
/// the budget and the cancel flag.
struct Checks<'a> {
    rule: &'a Rule<'a>,
    nfa: &'a Nfa,
    pb: &'a Problem<'a>,
    budget: &'a Budget,
    cancel: &'a AtomicBool,
}

impl Checks<'_> {
    /// Breadth-first search from `roots`: `visit` looks at state i (adding its successors)
    /// and returns a counterexample if it is one. The first found fails the property; none
    /// proves it. `cancel` is looked at every `every` states.
    fn search<K: std::hash::Hash + Eq + Clone>(
        &self,
        every: usize,
        roots: impl IntoIterator<Item = K>,
        mut visit: impl FnMut(&mut Search<K>, usize) -> Result<Option<Found>>,
    ) -> Result<Property> {
        let mut s = Search::new(self.budget.states);
        for key in roots {
            s.add(key, ROOT)?;
        }
        let mut i = 0usize;
        while i < s.keys.len() {
            if i.is_multiple_of(every) {
                cancelled(self.cancel)?;
            }
            if let Some((row, other)) = visit(&mut s, i)? {
                return Ok(Property::fails(s.keys.len(), row, other));
            }
            i += 1;
        }
        Ok(Property::proven(s.keys.len()))
    }

    /// (a) Every fixed point of a valid input reads out an answer the relation accepts.
    fn correct(&self) -> Result<Property> {
        let Checks { rule, nfa, pb, .. } = *self;
        let dead = pb.relation.states() as u32;
        let dlive = pb.domain.live();
        let co = rule.spec.c_out;
        // (pair, relation state before the pair's current cell, domain state before it)
        let roots = (nfa.starts.iter()).map(|&p| (p, pb.relation.start, pb.domain.start));
        self.search(4096, roots, |s, i| {
            let (p, r, d) = s.keys[i];
            let cur = nfa.pairs[p as usize].1;
            let x = rule.symbol(cur);
            if let Some(d2) = pb.domain.step(d, x).filter(|&d2| dlive[d2 as usize]) {
                let r2 = if r == dead {
                    dead
                } else {
                    pb.relation
                        .step(r, x * co + rule.class(cur) as usize)
                        .unwrap_or(dead)
                };
                if nfa.end[p as usize]
                    && pb.domain.accept[d2 as usize]
                    && (r2 == dead || !pb.relation.accept[r2 as usize])
                {
                    let cells: Vec<u32> = s
                        .path(i as u32)
                        .iter()
                        .map(|k| nfa.pairs[k.0 as usize].1)
                        .collect();
                    return Ok(Some((row_of(rule, &cells), None)));
                }
                for &q in &nfa.next[p as usize] {
                    s.add((q, r2, d2), i as u32)?;
                }
            }
            Ok(None)
        })
    }

    /// (b) No valid input has two fixed points: pairs of NFA runs on the same inputs, with a
    /// flag set once they differ.
    fn unique(&self) -> Result<Property> {
        let Checks { rule, nfa, pb, .. } = *self;
        let dlive = pb.domain.live();
        // (pair 1, pair 2, domain state before the current cell, differed)
        let mut roots = Vec::new();
        for &p in &nfa.starts {
            for &q in &nfa.starts {
                let (a, b) = (nfa.pairs[p as usize].1, nfa.pairs[q as usize].1);
                if rule.symbol(a) == rule.symbol(b) {
                    roots.push((p, q, pb.domain.start, a != b));
                }
            }
        }
        self.search(4096, roots, |s, i| {
            let (p, q, d, differed) = s.keys[i];
            let x = rule.symbol(nfa.pairs[p as usize].1);
            if let Some(d2) = pb.domain.step(d, x).filter(|&d2| dlive[d2 as usize]) {
                if differed
                    && nfa.end[p as usize]
                    && nfa.end[q as usize]
                    && pb.domain.accept[d2 as usize]
                {
                    let path = s.path(i as u32);
                    let one: Vec<u32> = path.iter().map(|k| nfa.pairs[k.0 as usize].1).collect();
                    let two: Vec<u32> = path.iter().map(|k| nfa.pairs[k.1 as usize].1).collect();
                    return Ok(Some((row_of(rule, &one), Some(row_of(rule, &two)))));
                }
                let (sp, sq) = (&nfa.next[p as usize], &nfa.next[q as usize]);
                let (gp, gq) = (groups(rule, sp, nfa), groups(rule, sq, nfa));
                for &(x1, a1, b1) in &gp {
                    for &(_, a2, b2) in gq.iter().filter(|g| g.0 == x1) {
                        for &p2 in &sp[a1..b1] {
                            for &q2 in &sq[a2..b2] {
                                let c1 = nfa.pairs[p2 as usize].1;
                                let c2 = nfa.pairs[q2 as usize].1;
                                s.add((p2, q2, d2, differed || c1 != c2), i as u32)?;
                            }
                        }
                    }
                }
            }
            Ok(None)
        })
    }

    /// (b) Every valid input has a fixed point: the subset construction of the NFA read on
    /// input symbols, with the domain DFA alongside.
    fn exists(&self) -> Result<Property> {
        let Checks { rule, nfa, pb, .. } = *self;
        let dlive = pb.domain.live();
        let symbols = pb.alphabet.len();
        // (the pairs whose current cell is the last cell read, domain state after it, last
        // symbol)
        let roots = (0..symbols).filter_map(|x| {
            let d = pb.domain.step(pb.domain.start, x);
            let d = d.filter(|&d| dlive[d as usize])?;
            let set: Vec<u32> = nfa
                .starts
                .iter()
                .copied()
                .filter(|&p| rule.symbol(nfa.pairs[p as usize].1) == x)
                .collect();
            Some((set, d, x as u32))
        });
        self.search(1024, roots, |s, i| {
            let (set, d, _) = s.keys[i].clone();
            if pb.domain.accept[d as usize] && !set.iter().any(|&p| nfa.end[p as usize]) {
                let input = s.path(i as u32).iter().map(|k| k.2).collect();
                // The input alone: it has no fixed point.
                let row = Row {
                    input,
                    hidden: Vec::new(),
                    outputs: Vec::new(),
                };
                return Ok(Some((row, None)));
            }
            let mut by_symbol: Vec<Vec<u32>> = vec![Vec::new(); symbols];
            for &p in &set {
                for &q in &nfa.next[p as usize] {
                    by_symbol[rule.symbol(nfa.pairs[q as usize].1)].push(q);
                }
            }
            for (x, mut next) in by_symbol.into_iter().enumerate() {
                if let Some(d2) = pb.domain.step(d, x).filter(|&d2| dlive[d2 as usize]) {
                    next.sort_unstable();
                    next.dedup();
                    s.add((next, d2, x as u32), i as u32)?;
                }
            }
            Ok(None)
        })
    }
}

/// Checks the problem's arguments; the error names the one at fault.
fn check_problem(pb: &Problem) -> Result<()> {
    pb.spec.validate()?;
    if let Some(why) = unsupported(pb.spec) {
        return Err(Error::invalid(why));
    }
    pb.spec.check_params(pb.params)?;
    if pb.alphabet.is_empty() {
        return Err(Error::invalid("the input alphabet is empty"));
    }
    for (i, symbol) in pb.alphabet.iter().enumerate() {
        if symbol.len() != pb.spec.c_in {
            return Err(Error::invalid(format!(
                "input symbol {i} has {} channels but the model's spec.cIn is {}",
                symbol.len(),
                pb.spec.c_in
            )));
        }
        if let Some(j) = symbol.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "input symbol {i}'s channel {j} is not finite"
            )));
        }
    }
    pb.domain.check("the domain", pb.alphabet.len())?;
    pb.relation
        .check("the relation", pb.alphabet.len() * pb.spec.c_out)
}

/// The budget check made before any work. The exhaustive search is refused when its worst
/// case is over the budget; the pruned one when what it needs at least is (|Σ| start pairs,
/// each expanded once), and it stops with an error naming the budget when it runs past it.
pub fn check_budget(spec: &Spec, symbols: usize, budget: &Budget, how: Enumerate) -> Result<Needs> {
    let need = needs(spec, symbols);
    let over = |what: &str, n: f64, limit: u64| {
        Error::TooLarge(format!(
            "the model needs {} {n:.3e} {what} (|Σ| = {symbols} input symbols x \
             3^{} hidden states = {:.3e} cells), over the budget of {limit}; raise the budget \
             or verify a model with fewer hidden channels",
            if how == Enumerate::Pruned {
                "at least"
            } else {
                "up to"
            },
            spec.c_h,
            need.cells
        ))
    };
    // Cell ids are u32, the boundary one more.
    if need.cells >= u32::MAX as f64 {
        return Err(over("cells", need.cells, u32::MAX as u64 - 1));
    }
    let (pairs, evaluations) = match how {
        Enumerate::Pruned => (need.cells, need.cells),
        Enumerate::Exhaustive => (need.pairs, need.evaluations),
    };
    if pairs > budget.pairs as f64 {
        return Err(over("NFA pair states", pairs, budget.pairs));
    }
    if evaluations > budget.evaluations as f64 {
        return Err(over("rule evaluations", evaluations, budget.evaluations));
    }
    Ok(need)
}

/// The cell states a run from h = 0 can reach (those in `from_zero`'s pairs, whatever
/// `pb.from_zero` says), indexed by cell id: input symbol x 3^C_h + hidden code (digit j of the code, base 3,
/// is h_j + 1).
pub fn reachable(pb: &Problem, budget: &Budget, cancel: &AtomicBool) -> Result<Vec<bool>> {
    check_problem(pb)?;
    check_budget(pb.spec, pb.alphabet.len(), budget, Enumerate::Pruned)?;
    let rule = Rule::new(pb.spec, pb.params, pb.alphabet);
    Ok(cells_of(
        &reachable_pairs(&rule, budget, cancel)?,
        rule.boundary,
    ))
}

/// The cell states that appear in some pair, indexed by cell id (the boundary left out).
fn cells_of(pairs: &HashSet<(u32, u32)>, boundary: u32) -> Vec<bool> {
    let mut cells = vec![false; boundary as usize];
    for &(a, b) in pairs {
        for id in [a, b] {
            if id != boundary {
                cells[id as usize] = true;
            }
        }
    }
    cells
}

/// Decides the three properties (docs/verify.md) with the pruned search. Refuses up front,
/// naming the reason, a model that is not 1D, zero-boundary and ternary, or one that needs
/// more than `budget` at least.
pub fn verify(pb: &Problem, budget: &Budget, cancel: &AtomicBool) -> Result<Report> {
    verify_with(pb, budget, Enumerate::Pruned, cancel)
}

/// `verify` with a choice of search (the exhaustive one is the pruned one's reference).
pub fn verify_with(
    pb: &Problem,
    budget: &Budget,
    how: Enumerate,
    cancel: &AtomicBool,
) -> Result<Report> {
    check_problem(pb)?;
    check_budget(pb.spec, pb.alphabet.len(), budget, how)?;
    let t0 = Instant::now();
    let rule = Rule::new(pb.spec, pb.params, pb.alphabet);
    let allowed = if pb.from_zero {
        Some(reachable_pairs(&rule, budget, cancel)?)
    } else {
        None
    };
    let nfa = build_nfa(&rule, budget, how, allowed.as_ref(), cancel)?;
    let checks = Checks {
        rule: &rule,
        nfa: &nfa,
        pb,
        budget,
        cancel,
    };
    let (correct, unique, exists) = (checks.correct()?, checks.unique()?, checks.exists()?);
    Ok(Report {
        cells: rule.boundary as u64,
        evaluations: nfa.evaluations,
        bound_checks: nfa.bounds,
        pairs_reachable: nfa.reachable,
        pairs_trimmed: nfa.pairs.len() as u64,
        edges_trimmed: nfa.next.iter().map(|s| s.len() as u64).sum(),
        correct,
        unique,
        exists,
        reachable_cells: allowed
            .as_ref()
            .map(|a| cells_of(a, rule.boundary).iter().filter(|&&v| v).count() as u64),
        reachable_pairs: allowed.map(|a| a.len() as u64),
        seconds: t0.elapsed().as_secs_f64(),
    })
}
