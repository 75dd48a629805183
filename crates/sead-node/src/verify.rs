//! The binding of `sead_core::verify`: the arguments re-checked and copied on the JS thread,
//! the search off it (it can take seconds to minutes), panics turned into errors.

use crate::{
    core_err, flag_of, guard, invalid, on_threads, owned_params, spec_arg, threads_arg, whole,
    CancelToken, OffThread, SpecInput, MAX_SAFE_INTEGER,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use sead_core::verify::{self, Budget, Dfa, Problem, Property, Report, Row};
use sead_core::Spec;

/// A deterministic automaton: `next[state * symbols + symbol]` is the next state, -1 dead.
#[napi(object)]
pub struct DfaInput {
    pub symbols: f64,
    pub start: f64,
    pub accept: Vec<bool>,
    pub next: Int32Array,
}

fn dfa_arg(name: &str, d: &DfaInput) -> Result<Dfa> {
    let limit = (1u64 << 32) as f64;
    Ok(Dfa {
        symbols: whole(&format!("{name}.symbols"), d.symbols, 1.0, limit)?,
        start: whole(&format!("{name}.start"), d.start, 0.0, limit)? as u32,
        accept: d.accept.clone(),
        next: d.next.to_vec(),
    })
}

/// The limits of `sead_core::verify::Budget`; each left out keeps its default.
#[napi(object)]
pub struct VerifyBudget {
    pub evaluations: Option<f64>,
    pub pairs: Option<f64>,
    pub states: Option<f64>,
}

fn budget_arg(b: Option<&VerifyBudget>) -> Result<Budget> {
    let d = Budget::default();
    let Some(b) = b else { return Ok(d) };
    let pick = |name: &str, v: Option<f64>, def: u64| -> Result<u64> {
        v.map_or(Ok(def), |v| {
            whole(name, v, 1.0, MAX_SAFE_INTEGER).map(|n| n as u64)
        })
    };
    Ok(Budget {
        evaluations: pick("budget.evaluations", b.evaluations, d.evaluations)?,
        pairs: pick("budget.pairs", b.pairs, d.pairs)?,
        states: pick("budget.states", b.states, d.states)?,
    })
}

/// A row of cells: input symbol indices, hidden states (`[cell][C_h]`, each -1, 0 or 1) and
/// each cell's output class.
#[napi(object, object_from_js = false)]
pub struct VerifyRow {
    pub input: Vec<u32>,
    pub hidden: Int32Array,
    pub outputs: Vec<u32>,
}

#[napi(object, object_from_js = false)]
pub struct VerifyProperty {
    pub holds: bool,
    /// Product or subset states explored.
    pub states: f64,
    pub counterexample: Option<VerifyRow>,
    /// Uniqueness: the second fixed point of the same input.
    pub other: Option<VerifyRow>,
}

#[napi(object, object_from_js = false)]
pub struct VerifyReport {
    /// |Σ|: input symbols x 3^C_h.
    pub cells: f64,
    /// Exact checks of a cell.
    pub evaluations: f64,
    /// Bound checks of the pruned search.
    pub bound_checks: f64,
    pub pairs_reachable: f64,
    pub pairs_trimmed: f64,
    pub edges_trimmed: f64,
    pub correct: VerifyProperty,
    pub unique: VerifyProperty,
    pub exists: VerifyProperty,
    /// With fromZero: the cell states a run from h = 0 can reach (out of `cells`), and the
    /// adjacent pairs of them the search was restricted to.
    pub reachable_cells: Option<f64>,
    pub reachable_pairs: Option<f64>,
    pub seconds: f64,
}

fn row_js(r: Row) -> VerifyRow {
    VerifyRow {
        input: r.input,
        hidden: Int32Array::new(r.hidden.iter().flatten().map(|&v| v as i32).collect()),
        outputs: r.outputs.into_iter().map(u32::from).collect(),
    }
}

fn property_js(p: Property) -> VerifyProperty {
    VerifyProperty {
        holds: p.holds,
        states: p.states as f64,
        counterexample: p.counterexample.map(row_js),
        other: p.other.map(row_js),
    }
}

fn report_js(r: Report) -> VerifyReport {
    VerifyReport {
        cells: r.cells as f64,
        evaluations: r.evaluations as f64,
        bound_checks: r.bound_checks as f64,
        pairs_reachable: r.pairs_reachable as f64,
        pairs_trimmed: r.pairs_trimmed as f64,
        edges_trimmed: r.edges_trimmed as f64,
        correct: property_js(r.correct),
        unique: property_js(r.unique),
        exists: property_js(r.exists),
        reachable_cells: r.reachable_cells.map(|n| n as f64),
        reachable_pairs: r.reachable_pairs.map(|n| n as f64),
        seconds: r.seconds,
    }
}

/// The spec, checked, of a model `verify` decides (a quantized 1D rule; else the error says
/// why not).
fn verifiable_spec_arg(s: &SpecInput) -> Result<Spec> {
    let spec = spec_arg(s)?;
    if let Some(why) = verify::unsupported(&spec) {
        return Err(invalid(why));
    }
    Ok(spec)
}

/// `symbols` vectors of C_in floats from a flat array.
fn alphabet_arg(spec: &Spec, alphabet: &[f32]) -> Result<Vec<Vec<f32>>> {
    if spec.c_in == 0 {
        return Err(invalid(
            "spec.cIn is 0: a model with no inputs has nothing to verify against a task",
        ));
    }
    if alphabet.is_empty() || !alphabet.len().is_multiple_of(spec.c_in) {
        return Err(invalid(format!(
            "alphabet has {} floats: it must be one or more symbols of spec.cIn = {} each",
            alphabet.len(),
            spec.c_in
        )));
    }
    Ok(alphabet.chunks(spec.c_in).map(<[f32]>::to_vec).collect())
}

/// Decides a quantized 1D rule's fixed points against a task's regular relation
/// (docs/verify.md), off the JavaScript thread. `alphabet` is `[symbol][cIn]`; with
/// `fromZero`, over the cell states a run from h = 0 can reach.
#[napi(ts_return_type = "Promise<VerifyReport>")]
#[allow(clippy::too_many_arguments)]
pub fn verify_rule_async(
    spec: SpecInput,
    params: Float32Array,
    alphabet: Float32Array,
    domain: DfaInput,
    relation: DfaInput,
    budget: Option<VerifyBudget>,
    from_zero: Option<bool>,
    threads: Option<f64>,
    cancel: Option<&CancelToken>,
) -> Result<AsyncTask<OffThread<VerifyReport>>> {
    guard(|| {
        let spec = verifiable_spec_arg(&spec)?;
        let params = owned_params(&spec, &params)?;
        let alphabet = alphabet_arg(&spec, &alphabet)?;
        let domain = dfa_arg("domain", &domain)?;
        let relation = dfa_arg("relation", &relation)?;
        let budget = budget_arg(budget.as_ref())?;
        let from_zero = from_zero.unwrap_or(false);
        let threads = threads_arg(threads)?;
        let cancel = flag_of(cancel);
        Ok(OffThread::new(move || {
            let pb = Problem {
                spec: &spec,
                params: &params,
                alphabet: &alphabet,
                domain: &domain,
                relation: &relation,
                from_zero,
            };
            on_threads(threads, || {
                verify::verify(&pb, &budget, &cancel).map_err(core_err)
            })
            .map(report_js)
        }))
    })
}

/// One step of the rule on a row with zero ends (`x` is `[cell][cIn]`, `hidden`
/// `[cell][cH]` of -1, 0, 1), computed as `verifyRuleAsync` computes it: a fixed point is a
/// row this returns unchanged.
#[napi]
pub fn verify_step_row(
    spec: SpecInput,
    params: Float32Array,
    x: Float32Array,
    hidden: Int32Array,
) -> Result<Int32Array> {
    guard(|| {
        let spec = verifiable_spec_arg(&spec)?;
        spec.check_params(&params).map_err(core_err)?;
        let xs = alphabet_arg(&spec, &x)?;
        if hidden.len() != xs.len() * spec.c_h {
            return Err(invalid(format!(
                "hidden has {} values but {} cells of spec.cH = {} need {}",
                hidden.len(),
                xs.len(),
                spec.c_h,
                xs.len() * spec.c_h
            )));
        }
        if let Some(i) = hidden.iter().position(|v| !(-1..=1).contains(v)) {
            return Err(invalid(format!(
                "hidden[{i}] is {}: a ternary state is -1, 0 or 1",
                hidden[i]
            )));
        }
        let h: Vec<Vec<i8>> = hidden
            .chunks(spec.c_h)
            .map(|c| c.iter().map(|&v| v as i8).collect())
            .collect();
        let next = verify::step_row(&spec, &params, &xs, &h);
        Ok(Int32Array::new(
            next.iter().flatten().map(|&v| v as i32).collect(),
        ))
    })
}
