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
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// Limits, checked before any work (worst cases) and during the searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Rule evaluations: the NFA's construction needs at most (|Σ|² + |Σ|)(|Σ| + 1).
    pub evaluations: u64,
    /// Pair states of the fixed-point NFA: at most |Σ|² + |Σ|.
    pub pairs: u64,
    /// States of each product or subset search, and edges of the NFA.
    pub states: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            evaluations: 1 << 30,
            pairs: 1 << 26,
            states: 1 << 24,
        }
    }
}

/// The sizes a problem needs in the worst case, before any search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Needs {
    /// |Σ| = input symbols x 3^C_h (as f64: it can be astronomically large).
    pub cells: f64,
    pub pairs: f64,
    pub evaluations: f64,
}

/// Worst-case sizes: |Σ|, the pairs and the rule evaluations.
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

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// |Σ|.
    pub cells: u64,
    pub evaluations: u64,
    /// Pair states reachable from the left boundary, and those that also reach the right one.
    pub pairs_reachable: u64,
    pub pairs_trimmed: u64,
    pub edges_trimmed: u64,
    pub correct: Property,
    pub unique: Property,
    pub exists: Property,
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
    /// Floats of every cell of Σ, then the boundary cell (all zero): C each.
    cells: Vec<f32>,
    /// Readout class of each hidden code.
    class: Vec<u8>,
    /// The boundary's cell id (= |Σ|).
    boundary: u32,
}

impl<'a> Rule<'a> {
    fn new(spec: &'a Spec, params: &'a [f32], alphabet: &[Vec<f32>]) -> Rule<'a> {
        let c = spec.c();
        let hs = 3usize.pow(spec.c_h as u32);
        let n = alphabet.len() * hs;
        let mut cells = vec![0.0f32; (n + 1) * c];
        for (x, symbol) in alphabet.iter().enumerate() {
            for code in 0..hs {
                let cell = &mut cells[(x * hs + code) * c..(x * hs + code + 1) * c];
                cell[..spec.c_in].copy_from_slice(symbol);
                decode_hidden(code, &mut cell[spec.c_in..]);
            }
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
        Rule {
            spec,
            p,
            hs,
            cells,
            class,
            boundary: n as u32,
        }
    }

    fn cell(&self, id: u32) -> &[f32] {
        let c = self.spec.c();
        &self.cells[id as usize * c..(id as usize + 1) * c]
    }

    fn symbol(&self, id: u32) -> usize {
        id as usize / self.hs
    }

    fn class(&self, id: u32) -> u8 {
        self.class[id as usize % self.hs]
    }

    fn hidden(&self, id: u32) -> Vec<i8> {
        self.cell(id)[self.spec.c_in..]
            .iter()
            .map(|&v| v as i8)
            .collect()
    }

    /// z after the left and centre neighbours: the first two thirds of `perceive`.
    fn prefix(&self, left: u32, centre: u32, z: &mut [f32]) {
        let c = self.spec.c();
        let f = self.spec.features;
        z.copy_from_slice(self.p.b1);
        accumulate(self.cell(left), &self.p.w1[..c * f], z);
        accumulate(self.cell(centre), &self.p.w1[c * f..2 * c * f], z);
    }

    /// Whether `centre` is its own next state with `right` on its right, from `prefix`'s z:
    /// the rest of `perceive`, then `mix_update` and `quantize`, as `forward_tile` does.
    fn fixed(&self, centre: u32, right: u32, zlc: &[f32], z: &mut [f32], h: &mut [f32]) -> bool {
        let c = self.spec.c();
        let f = self.spec.features;
        z.copy_from_slice(zlc);
        accumulate(self.cell(right), &self.p.w1[2 * c * f..3 * c * f], z);
        let old = &self.cell(centre)[self.spec.c_in..];
        mix_update(self.spec, &self.p, z, old, h);
        quantize(self.spec, h);
        h == old
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
}

fn too_large(what: &str, limit: u64) -> Error {
    Error::TooLarge(format!(
        "the verification needs more than {limit} {what} (the budget); raise the budget or \
         verify a smaller model"
    ))
}

fn cancelled(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

fn build_nfa(rule: &Rule, budget: &Budget, cancel: &AtomicBool) -> Result<Nfa> {
    let n = rule.boundary;
    let mut index: HashMap<(u32, u32), u32> = HashMap::new();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for s in 0..n {
        index.insert((rule.boundary, s), s);
        pairs.push((rule.boundary, s));
    }
    let mut next: Vec<Vec<u32>> = Vec::new();
    let mut end: Vec<bool> = Vec::new();
    let mut edges = 0u64;
    let mut evaluations = 0u64;
    let f = rule.spec.features;
    let ch = rule.spec.c_h;
    // Breadth-first by layers, each layer's rule evaluations in parallel; merged in order, so
    // the numbering (and every counterexample) does not depend on the thread count.
    let mut done = 0usize;
    while done < pairs.len() {
        cancelled(cancel)?;
        let layer = pairs[done..].to_vec();
        evaluations += layer.len() as u64 * (n as u64 + 1);
        if evaluations > budget.evaluations {
            return Err(too_large("rule evaluations", budget.evaluations));
        }
        let expanded: Vec<(Vec<u32>, bool)> = layer
            .par_iter()
            .map_init(
                || (vec![0.0f32; f], vec![0.0f32; f], vec![0.0f32; ch]),
                |(zlc, z, h), &(prev, cur)| {
                    rule.prefix(prev, cur, zlc);
                    let succ = (0..n).filter(|&s| rule.fixed(cur, s, zlc, z, h)).collect();
                    (succ, rule.fixed(cur, rule.boundary, zlc, z, h))
                },
            )
            .collect();
        done = pairs.len();
        for (&(_, cur), (succ, at_end)) in layer.iter().zip(expanded) {
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

/// (a) Every fixed point of a valid input reads out an answer the relation accepts.
fn check_correct(
    rule: &Rule,
    nfa: &Nfa,
    pb: &Problem,
    budget: &Budget,
    cancel: &AtomicBool,
) -> Result<Property> {
    let dead = pb.relation.states() as u32;
    let dlive = pb.domain.live();
    let co = rule.spec.c_out;
    // (pair, relation state before the pair's current cell, domain state before it)
    let mut s: Search<(u32, u32, u32)> = Search::new(budget.states);
    for &p in &nfa.starts {
        s.add((p, pb.relation.start, pb.domain.start), ROOT)?;
    }
    let mut i = 0usize;
    while i < s.keys.len() {
        if i.is_multiple_of(4096) {
            cancelled(cancel)?;
        }
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
                return Ok(Property {
                    holds: false,
                    states: s.keys.len() as u64,
                    counterexample: Some(row_of(rule, &cells)),
                    other: None,
                });
            }
            for &q in &nfa.next[p as usize] {
                s.add((q, r2, d2), i as u32)?;
            }
        }
        i += 1;
    }
    Ok(Property {
        holds: true,
        states: s.keys.len() as u64,
        counterexample: None,
        other: None,
    })
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

/// (b) No valid input has two fixed points: pairs of NFA runs on the same inputs, with a flag
/// set once they differ.
fn check_unique(
    rule: &Rule,
    nfa: &Nfa,
    pb: &Problem,
    budget: &Budget,
    cancel: &AtomicBool,
) -> Result<Property> {
    let dlive = pb.domain.live();
    // (pair 1, pair 2, domain state before the current cell, differed)
    let mut s: Search<(u32, u32, u32, bool)> = Search::new(budget.states);
    for &p in &nfa.starts {
        for &q in &nfa.starts {
            let (a, b) = (nfa.pairs[p as usize].1, nfa.pairs[q as usize].1);
            if rule.symbol(a) == rule.symbol(b) {
                s.add((p, q, pb.domain.start, a != b), ROOT)?;
            }
        }
    }
    let mut i = 0usize;
    while i < s.keys.len() {
        if i.is_multiple_of(4096) {
            cancelled(cancel)?;
        }
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
                return Ok(Property {
                    holds: false,
                    states: s.keys.len() as u64,
                    counterexample: Some(row_of(rule, &one)),
                    other: Some(row_of(rule, &two)),
                });
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
        i += 1;
    }
    Ok(Property {
        holds: true,
        states: s.keys.len() as u64,
        counterexample: None,
        other: None,
    })
}

/// (b) Every valid input has a fixed point: the subset construction of the NFA read on input
/// symbols, with the domain DFA alongside.
fn check_exists(
    rule: &Rule,
    nfa: &Nfa,
    pb: &Problem,
    budget: &Budget,
    cancel: &AtomicBool,
) -> Result<Property> {
    let dlive = pb.domain.live();
    let symbols = pb.alphabet.len();
    // (the pairs whose current cell is the last cell read, domain state after it, last symbol)
    let mut s: Search<(Vec<u32>, u32, u32)> = Search::new(budget.states);
    for x in 0..symbols {
        if let Some(d) = pb
            .domain
            .step(pb.domain.start, x)
            .filter(|&d| dlive[d as usize])
        {
            let set: Vec<u32> = nfa
                .starts
                .iter()
                .copied()
                .filter(|&p| rule.symbol(nfa.pairs[p as usize].1) == x)
                .collect();
            s.add((set, d, x as u32), ROOT)?;
        }
    }
    let mut i = 0usize;
    while i < s.keys.len() {
        if i.is_multiple_of(1024) {
            cancelled(cancel)?;
        }
        let (set, d, _) = s.keys[i].clone();
        if pb.domain.accept[d as usize] && !set.iter().any(|&p| nfa.end[p as usize]) {
            let input = s.path(i as u32).iter().map(|k| k.2).collect();
            return Ok(Property {
                holds: false,
                states: s.keys.len() as u64,
                counterexample: Some(Row {
                    input,
                    hidden: Vec::new(),
                    outputs: Vec::new(),
                }),
                other: None,
            });
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
        i += 1;
    }
    Ok(Property {
        holds: true,
        states: s.keys.len() as u64,
        counterexample: None,
        other: None,
    })
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

/// The budget check made before any work: the worst cases of the NFA's construction.
pub fn check_budget(spec: &Spec, symbols: usize, budget: &Budget) -> Result<Needs> {
    let need = needs(spec, symbols);
    let over = |what: &str, n: f64, limit: u64| {
        Error::TooLarge(format!(
            "verifying this model needs up to {n:.3e} {what} (|Σ| = {symbols} input symbols x \
             3^{} hidden states = {:.3e} cells), over the budget of {limit}; raise the budget \
             or verify a model with fewer hidden channels",
            spec.c_h, need.cells
        ))
    };
    if need.pairs > budget.pairs as f64 {
        return Err(over("NFA pair states", need.pairs, budget.pairs));
    }
    if need.evaluations > budget.evaluations as f64 {
        return Err(over(
            "rule evaluations",
            need.evaluations,
            budget.evaluations,
        ));
    }
    Ok(need)
}

/// Decides the three properties (docs/verify.md). Refuses up front, naming the reason, a
/// model that is not 1D, zero-boundary and ternary, or one whose worst case is over `budget`.
pub fn verify(pb: &Problem, budget: &Budget, cancel: &AtomicBool) -> Result<Report> {
    check_problem(pb)?;
    check_budget(pb.spec, pb.alphabet.len(), budget)?;
    let t0 = Instant::now();
    let rule = Rule::new(pb.spec, pb.params, pb.alphabet);
    let nfa = build_nfa(&rule, budget, cancel)?;
    let correct = check_correct(&rule, &nfa, pb, budget, cancel)?;
    let unique = check_unique(&rule, &nfa, pb, budget, cancel)?;
    let exists = check_exists(&rule, &nfa, pb, budget, cancel)?;
    Ok(Report {
        cells: rule.boundary as u64,
        evaluations: nfa.evaluations,
        pairs_reachable: nfa.reachable,
        pairs_trimmed: nfa.pairs.len() as u64,
        edges_trimmed: nfa.next.iter().map(|s| s.len() as u64).sum(),
        correct,
        unique,
        exists,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
