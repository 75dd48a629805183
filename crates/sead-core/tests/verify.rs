//! `verify`: hand-built ternary rules (a running-parity rule and a binary adder, whose weights
//! are written here so the rule computes the answer exactly) are proven correct, unique and
//! existing; mutated copies fail, each with a shortest counterexample that is checked by
//! stepping the row (a fixed point) and by a plain session run from h = 0.

use sead_core::infer::DEFAULT_MAX_BYTES;
use sead_core::verify::{self, Budget, Dfa, Problem, Report};
use sead_core::{Boundary, ConvergeOptions, Grid, Quantize, Session, Simd, Spec, Update};
use std::sync::atomic::AtomicBool;

fn spec(c_in: usize, c_h: usize, features: usize, c_out: usize) -> Spec {
    Spec {
        dims: 1,
        c_in,
        c_h,
        features,
        c_out,
        update: Update::Replace,
        boundary: Boundary::Zero,
        quantize: Quantize::Ternary,
    }
}

/// Sets W1[k][c][f] (k: 0 left, 1 centre, 2 right).
fn w1(s: &Spec, p: &mut [f32], k: usize, c: usize, f: usize, v: f32) {
    p[s.layout().w1.start + (k * s.c() + c) * s.features + f] = v;
}
fn w2(s: &Spec, p: &mut [f32], f: usize, j: usize, v: f32) {
    p[s.layout().w2.start + f * s.c_h + j] = v;
}
/// The readout of both rules: output 1 when h0 > 0, output 0 when h0 < 0 (logits -h0, h0).
fn sign_readout(s: &Spec, p: &mut [f32]) {
    let wo = s.layout().wo.start;
    p[wo] = -1.0;
    p[wo + 1] = 1.0;
}

/// Running parity, C_in 2 (one-hot bit), C_h 1: h = +1 when the parity so far is 1, -1 when 0.
/// The left neighbour's parity is a = relu(h_left) (the zero boundary reads as 0), the bit is
/// b = x1; features a, ab = relu(h_left + x1 - 1), b, and a spare feature relu(h_self) whose
/// W2 row is 0 (the mutations use it); u = 8 (a + b - 2ab) - 4, so h' = ternary(tanh(±4)) = ±1.
fn parity() -> (Spec, Vec<f32>) {
    let s = spec(2, 1, 4, 2);
    let mut p = vec![0.0f32; s.param_count()];
    let h = 2; // the hidden channel's index in a cell
    w1(&s, &mut p, 0, h, 0, 1.0);
    w1(&s, &mut p, 0, h, 1, 1.0);
    w1(&s, &mut p, 1, 1, 1, 1.0);
    p[s.layout().b1.start + 1] = -1.0;
    w1(&s, &mut p, 1, 1, 2, 1.0);
    w1(&s, &mut p, 1, h, 3, 1.0);
    w2(&s, &mut p, 0, 0, 8.0);
    w2(&s, &mut p, 1, 0, -16.0);
    w2(&s, &mut p, 2, 0, 8.0);
    p[s.layout().b2.start] = -4.0;
    sign_readout(&s, &mut p);
    (s, p)
}

/// A task's alphabet, domain and relation.
type Automata = (Vec<Vec<f32>>, Dfa, Dfa);

/// Parity's alphabet (bit 0, bit 1), any bit string of length >= 1, and the relation
/// "output i = parity of bits 0..=i" (state = parity so far).
fn parity_automata() -> Automata {
    let alphabet = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
    // domain: 0 = empty, 1 = non-empty
    let domain = Dfa {
        symbols: 2,
        start: 0,
        accept: vec![false, true],
        next: vec![1, 1, 1, 1],
    };
    // relation symbol = bit * 2 + output
    let mut next = vec![-1i32; 2 * 4];
    for p in 0..2 {
        for bit in 0..2 {
            let q = p ^ bit;
            next[p * 4 + bit * 2 + q] = q as i32;
        }
    }
    let relation = Dfa {
        symbols: 4,
        start: 0,
        accept: vec![true, true],
        next,
    };
    (alphabet, domain, relation)
}

/// Binary addition, C_in 4 (one-hot a, one-hot b; the carry-out cell all zero), C_h 2: h0 = ±1
/// the sum digit, h1 = the carry out as 0 or 1. With t = a + b + c (c = h1 of the left
/// neighbour, 0 at the boundary): features relu(t-1), relu(t-2), relu(t) and a spare
/// relu(h0_self); carry = f0 - f1, sum = f2 - 2 carry; u0 = 4 (2 sum - 1), u1 = 4 carry.
fn adder() -> (Spec, Vec<f32>) {
    let s = spec(4, 2, 4, 2);
    let mut p = vec![0.0f32; s.param_count()];
    let (h0, h1) = (4, 5);
    for f in 0..3 {
        w1(&s, &mut p, 0, h1, f, 1.0);
        w1(&s, &mut p, 1, 1, f, 1.0);
        w1(&s, &mut p, 1, 3, f, 1.0);
    }
    let b1 = s.layout().b1.start;
    p[b1] = -1.0;
    p[b1 + 1] = -2.0;
    w1(&s, &mut p, 1, h0, 3, 1.0);
    // u0 = -4 + 8 f2 - 16 f0 + 16 f1; u1 = 4 f0 - 4 f1
    w2(&s, &mut p, 2, 0, 8.0);
    w2(&s, &mut p, 0, 0, -16.0);
    w2(&s, &mut p, 1, 0, 16.0);
    w2(&s, &mut p, 0, 1, 4.0);
    w2(&s, &mut p, 1, 1, -4.0);
    p[s.layout().b2.start] = -4.0;
    sign_readout(&s, &mut p);
    (s, p)
}

/// Addition's alphabet (symbol a*2 + b: one-hot a then one-hot b; symbol 4: the carry-out cell,
/// all zero), the domain pairs+ then the carry cell, and the relation (state = carry).
fn adder_automata() -> Automata {
    let mut alphabet = Vec::new();
    for a in 0..2 {
        for b in 0..2 {
            let mut x = vec![0.0f32; 4];
            x[a] = 1.0;
            x[2 + b] = 1.0;
            alphabet.push(x);
        }
    }
    alphabet.push(vec![0.0; 4]);
    // domain: 0 start, 1 after a pair, 2 after the carry cell
    let mut dn = vec![-1i32; 3 * 5];
    for sym in 0..4 {
        dn[sym] = 1;
        dn[5 + sym] = 1;
    }
    dn[5 + 4] = 2;
    let domain = Dfa {
        symbols: 5,
        start: 0,
        accept: vec![false, false, true],
        next: dn,
    };
    // relation: states carry 0, carry 1, done; symbol = input * 2 + output
    let mut rn = vec![-1i32; 3 * 10];
    for c in 0..2 {
        for a in 0..2 {
            for b in 0..2 {
                let t = a + b + c;
                rn[c * 10 + (a * 2 + b) * 2 + t % 2] = (t / 2) as i32;
            }
        }
        rn[c * 10 + 4 * 2 + c] = 2;
    }
    let relation = Dfa {
        symbols: 10,
        start: 0,
        accept: vec![false, false, true],
        next: rn,
    };
    (alphabet, domain, relation)
}

/// The question "does the rule (`s`, `p`) compute the task `automata`?".
fn problem<'a>(s: &'a Spec, p: &'a [f32], automata: &'a Automata, from_zero: bool) -> Problem<'a> {
    let (alphabet, domain, relation) = automata;
    Problem {
        spec: s,
        params: p,
        alphabet,
        domain,
        relation,
        from_zero,
    }
}

fn run(s: &Spec, p: &[f32], automata: &Automata) -> Report {
    let pb = problem(s, p, automata, false);
    verify::verify(&pb, &Budget::default(), &AtomicBool::new(false)).unwrap()
}

/// The report's verdicts: (correct, unique, exists).
fn verdicts(r: &Report) -> (bool, bool, bool) {
    (r.correct.holds, r.unique.holds, r.exists.holds)
}

/// The row of a counterexample's input symbols.
fn xs(alphabet: &[Vec<f32>], input: &[u32]) -> Vec<Vec<f32>> {
    input
        .iter()
        .map(|&i| alphabet[i as usize].clone())
        .collect()
}

/// A session (portable kernel) of one sample, the row `x`, from h = 0.
fn row_session(s: &Spec, x: &[Vec<f32>]) -> Session {
    let grid = Grid {
        batch: 1,
        height: 1,
        width: x.len(),
    };
    Session::new(*s, grid, &x.concat(), Simd::Portable, DEFAULT_MAX_BYTES).unwrap()
}

/// A plain session (portable kernel) from h = 0 until it settles: the outputs per cell.
fn plain_run(s: &Spec, p: &[f32], x: &[Vec<f32>]) -> Vec<u8> {
    let mut session = row_session(s, x);
    let opts = ConvergeOptions {
        patience: 4,
        tol: 1e-3,
        max_steps: 2 * x.len() as u64 + 64,
    };
    session.converge(p, opts, &AtomicBool::new(false)).unwrap();
    session.outputs()
}

#[test]
fn hand_built_parity_and_adder_are_proven() {
    let (s, p) = parity();
    let r = run(&s, &p, &parity_automata());
    assert_eq!(r.cells, 6);
    assert_eq!(verdicts(&r), (true, true, true), "{r:?}");
    assert!(r.pairs_trimmed > 0 && r.pairs_trimmed <= r.pairs_reachable);
    let (s, p) = adder();
    let r = run(&s, &p, &adder_automata());
    assert_eq!(r.cells, 5 * 9);
    assert_eq!(verdicts(&r), (true, true, true), "{r:?}");
}

#[test]
fn a_wrong_bias_fails_correctness_and_the_plain_run_is_wrong_too() {
    let (s, mut p) = parity();
    p[s.layout().b2.start] = 4.0; // every cell reads 1
    let automata = parity_automata();
    let r = run(&s, &p, &automata);
    assert_eq!(verdicts(&r), (false, true, true), "{r:?}");
    let bad = r.correct.counterexample.unwrap();
    assert_eq!(bad.input, vec![0], "the shortest: one 0 bit");
    assert_eq!(bad.outputs, vec![1]);
    let x = xs(&automata.0, &bad.input);
    assert_eq!(
        verify::step_row(&s, &p, &x, &bad.hidden),
        bad.hidden,
        "a fixed point"
    );
    assert_eq!(plain_run(&s, &p, &x), vec![1]);
}

#[test]
fn a_self_loop_gives_a_second_fixed_point_the_run_from_zero_does_not_reach() {
    let (s, mut p) = parity();
    p[s.layout().w2.start + 3] = 8.0; // h = +1 keeps itself: "0" also has h = +1
    let automata = parity_automata();
    let r = run(&s, &p, &automata);
    assert_eq!(verdicts(&r), (false, false, true), "{r:?}");
    let (one, two) = (r.unique.counterexample.unwrap(), r.unique.other.unwrap());
    assert_eq!(one.input, two.input);
    assert_eq!(one.input.len(), 1);
    assert_ne!(one.hidden, two.hidden);
    let x = xs(&automata.0, &one.input);
    for fp in [&one, &two] {
        assert_eq!(verify::step_row(&s, &p, &x, &fp.hidden), fp.hidden);
    }
    let bad = r.correct.counterexample.unwrap();
    assert_eq!((bad.input.clone(), bad.outputs.clone()), (vec![0], vec![1]));
    // The run from h = 0 finds the right fixed point: the wrong one is not reached.
    assert_eq!(plain_run(&s, &p, &xs(&automata.0, &bad.input)), vec![0]);
}

#[test]
fn an_oscillating_cell_has_no_fixed_point() {
    let (s, mut p) = parity();
    p[s.layout().w2.start + 3] = -40.0; // h = +1 flips to -1, which flips back where a xor b = 1
    let automata = parity_automata();
    let r = run(&s, &p, &automata);
    assert_eq!(verdicts(&r), (true, true, false), "{r:?}");
    let none = r.exists.counterexample.unwrap();
    assert_eq!(none.input, vec![1], "the shortest: one 1 bit");
    // No state of the one cell is fixed.
    let x = xs(&automata.0, &none.input);
    for h in [-1i8, 0, 1] {
        assert_ne!(verify::step_row(&s, &p, &x, &[vec![h]]), vec![vec![h]]);
    }
}

#[test]
fn a_changed_adder_weight_gives_a_shortest_wrong_sum() {
    let (s, mut p) = adder();
    // The carry no longer reaches the sum digit when a + b + c = 3 (f1 drops out of u0).
    p[s.layout().w2.start + s.c_h] = 0.0;
    let automata = adder_automata();
    let r = run(&s, &p, &automata);
    assert_eq!(verdicts(&r), (false, true, true), "{r:?}");
    let bad = r.correct.counterexample.unwrap();
    // 1 + 1 then 1 + 1 with the carry: three cells and the carry-out cell.
    assert_eq!(bad.input, vec![3, 3, 4]);
    let x = xs(&automata.0, &bad.input);
    assert_eq!(verify::step_row(&s, &p, &x, &bad.hidden), bad.hidden);
    assert_eq!(
        plain_run(&s, &p, &x),
        bad.outputs,
        "the plain run is wrong the same way"
    );
}

#[test]
fn step_row_is_the_session_step() {
    let (s, p) = adder();
    let automata = adder_automata();
    let input = [3u32, 1, 2, 3, 0, 3, 4];
    let x = xs(&automata.0, &input);
    let mut session = row_session(&s, &x);
    let mut stats = vec![Default::default(); 1];
    let never = AtomicBool::new(false);
    // The session's ternary hidden state, a row of cells as `step_row` takes it.
    let row = |session: &Session| -> Vec<Vec<i8>> {
        session
            .hidden()
            .chunks(s.c_h)
            .map(|c| c.iter().map(|&v| v as i8).collect())
            .collect()
    };
    for _ in 0..x.len() + 2 {
        let want = verify::step_row(&s, &p, &x, &row(&session));
        session.step(&p, 1, None, &mut stats, &never).unwrap();
        assert_eq!(row(&session), want);
    }
}

#[test]
fn unsupported_models_and_budgets_are_refused_with_the_reason() {
    let (s, p) = parity();
    let automata = parity_automata();
    let try_with = |s: Spec, budget: Budget| {
        let pb = problem(&s, &p, &automata, false);
        verify::verify(&pb, &budget, &AtomicBool::new(false))
            .unwrap_err()
            .to_string()
    };
    // (model, budget, what the error must say)
    let cases: [(Spec, Budget, &[&str]); 4] = [
        (
            Spec {
                quantize: Quantize::None,
                ..s
            },
            Budget::default(),
            &["spec.quantize is \"none\""],
        ),
        (
            Spec {
                boundary: Boundary::Periodic,
                ..s
            },
            Budget::default(),
            &["periodic"],
        ),
        // |Σ| = 6: the pruned search needs at least one evaluation per start pair (left end,
        // cell).
        (
            s,
            Budget {
                evaluations: 5,
                ..Budget::default()
            },
            &["needs at least 6.000e0 rule evaluations", "budget of 5"],
        ),
        // Past the up-front check, the search itself stops at the budget.
        (
            s,
            Budget {
                evaluations: 8,
                ..Budget::default()
            },
            &["ran past its budget of 8 rule evaluations"],
        ),
    ];
    for (s, budget, says) in cases {
        let e = try_with(s, budget);
        assert!(says.iter().all(|w| e.contains(w)), "{e}");
    }
}

/// The pruned search against the exhaustive one on random ternary rules (both update rules):
/// the same NFA sizes, verdicts and counterexamples, so the pruning dropped nothing.
#[test]
fn the_pruned_search_finds_what_the_exhaustive_one_finds() {
    use sead_core::testdata::Lcg;
    use sead_core::verify::Enumerate;
    let mut rng = Lcg(7);
    let mut pruned_away = 0u64;
    let mut some_fixed = 0;
    for seed in 0..40 {
        let update = if seed % 2 == 0 {
            Update::Replace
        } else {
            Update::Residual
        };
        let (automata, s) = if seed % 4 < 2 {
            (
                parity_automata(),
                Spec {
                    update,
                    ..spec(2, 3, 6, 2)
                },
            )
        } else {
            (
                adder_automata(),
                Spec {
                    update,
                    ..spec(4, 2, 5, 2)
                },
            )
        };
        // Weights large enough that tanh saturates often, so rules have fixed points.
        let p: Vec<f32> = (0..s.param_count()).map(|_| rng.sym(3.0) as f32).collect();
        let pb = problem(&s, &p, &automata, false);
        let never = AtomicBool::new(false);
        let a = verify::verify_with(&pb, &Budget::default(), Enumerate::Pruned, &never).unwrap();
        let b =
            verify::verify_with(&pb, &Budget::default(), Enumerate::Exhaustive, &never).unwrap();
        assert_eq!(
            (a.pairs_reachable, a.pairs_trimmed, a.edges_trimmed),
            (b.pairs_reachable, b.pairs_trimmed, b.edges_trimmed),
            "seed {seed}"
        );
        assert_eq!(
            (&a.correct, &a.unique, &a.exists),
            (&b.correct, &b.unique, &b.exists),
            "seed {seed}"
        );
        pruned_away += b.evaluations - a.evaluations;
        some_fixed += (a.pairs_trimmed > 0) as usize;
    }
    assert!(
        pruned_away > 0,
        "the pruning pruned nothing: the test would not see a bad bound"
    );
    assert!(
        some_fixed >= 10,
        "only {some_fixed} of 40 random rules have fixed points"
    );
}

/// `--from-zero`'s set of cell states holds every state a run from h = 0 visits (it is an
/// over-approximation, so it may hold more), for the hand-built adder and a random ternary
/// rule; over it the hand-built adder is still proven.
#[test]
fn states_reachable_from_zero_cover_every_run() {
    let automata = adder_automata();
    let alphabet = &automata.0;
    let mut lcg = sead_core::testdata::Lcg(5);
    let (s, hand) = adder();
    let random: Vec<f32> = (0..s.param_count()).map(|_| lcg.sym(1.5) as f32).collect();
    for (what, p) in [("hand-built adder", hand), ("random rule", random)] {
        let pb = problem(&s, &p, &automata, true);
        let never = AtomicBool::new(false);
        let reachable = verify::reachable(&pb, &Budget::default(), &never).unwrap();
        let hs = 3usize.pow(s.c_h as u32);
        for len in [1usize, 2, 5, 12] {
            for _ in 0..20 {
                // Random digit pairs, then the carry-out cell.
                let input: Vec<u32> = (0..len).map(|_| lcg.below(4) as u32).chain([4]).collect();
                let x = xs(alphabet, &input);
                let mut session = row_session(&s, &x);
                let mut stats = vec![sead_core::StepStats::default(); 1];
                for step in 0..3 * x.len() + 8 {
                    let h = session.hidden();
                    for (cell, &sym) in input.iter().enumerate() {
                        let code = h[cell * s.c_h..(cell + 1) * s.c_h]
                            .iter()
                            .rev()
                            .fold(0usize, |a, &v| a * 3 + (v + 1.0) as usize);
                        assert!(
                            reachable[sym as usize * hs + code],
                            "{what}: cell {cell} of {input:?} at step {step} is outside the set"
                        );
                    }
                    session.step(&p, 1, None, &mut stats, &never).unwrap();
                }
            }
        }
        let r = verify::verify(&pb, &Budget::default(), &never).unwrap();
        let n = r.reachable_cells.unwrap();
        assert!(n >= 1 && n <= r.cells, "{what}: {n} of {}", r.cells);
        if what == "hand-built adder" {
            assert!(r.correct.holds && r.unique.holds && r.exists.holds);
        }
    }
}
