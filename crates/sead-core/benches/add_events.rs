//! Event-driven stepping of a quantized adder (issue 16): a random 1,000,000-digit binary
//! addition and the 100,000-digit carry chain 1...1 + 0...01, each run to convergence on
//! the CPU, timed, beside the same run computing every cell.
//!
//!     SEAD_MODEL=models/<quantized addition model>.json cargo bench -p sead-core --bench add_events
//!     SEAD_MODEL=random cargo bench -p sead-core --bench add_events
//!     SEAD_MODEL=handmade cargo bench -p sead-core --bench add_events
//!
//! `SEAD_MODEL` is a sead checkpoint or model file (`models/*.json`) of a quantized
//! (`spec.quantize` "ternary") addition model. Two stand-ins of the trained binary adder's
//! shape (4 inputs, 16 hidden, 64 features, 2 outputs) are written to a temporary file and
//! read back: `random`, random parameters (its sums are wrong and its states may never
//! settle, so its runs stop at 100 steps unless `SEAD_MAX_STEPS` says otherwise), and
//! `handmade`, weights set by hand to an exact adder (a carry channel and a sum channel:
//! the carry moves one digit a step, as a trained model's must).
//!
//! Targets, on 2 threads: the 1,000,000-digit addition under 0.5 s, the 100,000-digit
//! carry chain under 0.3 s. Timed per run: `Session::new` (the upload of the encoded
//! inputs), `converge` with the CLI's rule (outputs unchanged for 4 steps and max |h' - h| <
//! 1e-3, at most 2 W + 66 steps) and reading the outputs; not timed: drawing and encoding
//! the operands, and the check against schoolbook addition.
//!
//! Every-cell stepping (`Session::set_event_driven(false)`) takes a step's full cost every
//! step, so it runs at most `SEAD_EVERY_CELL_STEPS` steps (default 64): when the event-driven
//! run took no more, both must end in the same outputs after the same steps (the bench
//! fails otherwise); when it took more, the every-cell time is extrapolated from its
//! per-step time and marked "est.".
//!
//! `SEAD_THREADS` (default 2), `SEAD_ADD_DIGITS` (1,000,000), `SEAD_CHAIN_DIGITS`
//! (100,000), `SEAD_MAX_STEPS` and `SEAD_ADD_SEED` change the runs.

#[path = "../../sead-gpu/benches/support/addition.rs"]
mod addition;

use addition::{encode_into, exact_sum, load_model, random_digits, width, Lcg, ModelFile};
use base64::Engine;
use sead_core::testdata::fan_in_params;
use sead_core::{
    infer::DEFAULT_MAX_BYTES, pool, ConvergeOptions, Grid, Quantize, Session, Simd, Spec,
};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

/// The binary adder's quantized shape.
fn adder_spec() -> Spec {
    Spec {
        quantize: Quantize::Ternary,
        ..sead_core::testdata::bench_spec(1)
    }
}

/// Exact binary addition in `adder_spec`'s shape. Inputs per cell: a = 0, a = 1, b = 0,
/// b = 1 (one-hot). Hidden channel 0 is the carry into the cell: 1 when the left cell
/// (the next less significant digit) holds at least two of its a, b and carry. Channel 1
/// is the sum digit, +1 or -1 from the parity of the cell's own a + b + carry (ReLU
/// features relu(s - k), k = 0..3, weighted 1, -2, 2, -2). Output 1 where channel 1 is +1.
fn handmade_params(spec: &Spec) -> Vec<f32> {
    let l = spec.layout();
    let (c, f, ch) = (spec.c(), spec.features, spec.c_h);
    let mut p = vec![0.0f32; l.total];
    let w1 = |k: usize, ch_in: usize, feat: usize| l.w1.start + (k * c + ch_in) * f + feat;
    let (a1, b1, carry) = (1, 3, spec.c_in);
    // Feature 0: the left cell's a + b + carry - 1.5 (k = 0 is the left neighbour).
    for ch_in in [a1, b1, carry] {
        p[w1(0, ch_in, 0)] = 1.0;
    }
    p[l.b1.start] = -1.5;
    p[l.w2.start] = 10.0; // carry: tanh(10 x 0.5) rounds to 1, tanh(0) to 0
                          // Features 1..4: relu(s - k) of the cell's own s = a + b + carry (k = 1, the centre).
    for (k, weight) in [1.0f32, -2.0, 2.0, -2.0].into_iter().enumerate() {
        for ch_in in [a1, b1, carry] {
            p[w1(1, ch_in, 1 + k)] = 1.0;
        }
        p[l.b1.start + 1 + k] = -(k as f32);
        p[l.w2.start + (1 + k) * ch + 1] = 10.0 * weight;
    }
    p[l.b2.start + 1] = -5.0; // sum: tanh(10 x parity - 5) rounds to +-1
    p[l.wo.start + spec.c_out + 1] = 1.0; // class 1's logit is channel 1
    p
}

/// A base-2 quantized addition model (`random` or `handmade` parameters), written as a
/// model file.
fn write_model(which: &str) -> PathBuf {
    let spec = adder_spec();
    let params = if which == "random" {
        fan_in_params(&spec, &mut Lcg(16))
    } else {
        handmade_params(&spec)
    };
    let bytes: Vec<u8> = params.iter().flat_map(|v| v.to_le_bytes()).collect();
    let doc = serde_json::json!({
        "format": "sead-checkpoint",
        "spec": {
            "dims": spec.dims, "cIn": spec.c_in, "cH": spec.c_h, "features": spec.features,
            "cOut": spec.c_out, "update": "replace", "boundary": "zero", "quantize": "ternary",
        },
        "params": {
            "dtype": "float32",
            "encoding": "base64-le",
            "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        },
        "task": { "name": "addition", "base": 2 },
    });
    let name = format!("sead-{which}-ternary-{}.json", std::process::id());
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, doc.to_string()).expect("writing the stand-in model");
    path
}

/// One run: seconds end to end, steps, cells computed, and the outputs.
struct Run {
    secs: f64,
    steps: u64,
    cells: u64,
    converged: bool,
    outputs: Vec<u8>,
}

fn run(model: &ModelFile, x: &[f32], width: usize, max_steps: u64, events: bool) -> Run {
    let grid = Grid {
        batch: 1,
        height: 1,
        width,
    };
    let opts = ConvergeOptions {
        patience: 4,
        tol: 1e-3,
        max_steps,
    };
    let never = AtomicBool::new(false);
    let start = Instant::now();
    let mut s = Session::new(model.spec, grid, x, Simd::detect(), DEFAULT_MAX_BYTES)
        .expect("making the session");
    s.set_event_driven(events);
    let r = s.converge(&model.params, opts, &never).expect("converging")[0];
    let outputs = s.outputs();
    Run {
        secs: start.elapsed().as_secs_f64(),
        steps: r.steps,
        cells: s.cells_computed()[0],
        converged: r.converged,
        outputs,
    }
}

fn case(model: &ModelFile, name: &str, a: &[u8], b: &[u8], target_s: f64, random: bool) {
    let base = model.base.unwrap_or(2);
    let w = width(a, b);
    let mut x = Vec::new();
    encode_into(&mut x, a, b, base, w);
    let cli_steps = 2 * w as u64 + 66;
    let max_steps = env_usize(
        "SEAD_MAX_STEPS",
        if random { 100 } else { cli_steps as usize },
    ) as u64;
    let ev = run(model, &x, w, max_steps, true);
    let wrong = ev
        .outputs
        .iter()
        .zip(exact_sum(a, b, base, w))
        .filter(|(o, e)| **o != *e)
        .count();
    println!(
        "{name}: event-driven {:.3} s, {} steps ({}), {} cells computed ({:.1} per step), \
         {} -- target < {target_s} s: {}",
        ev.secs,
        ev.steps,
        if ev.converged {
            "settled"
        } else {
            "not settled"
        },
        ev.cells,
        ev.cells as f64 / ev.steps.max(1) as f64,
        if wrong == 0 {
            "sum correct".to_string()
        } else {
            format!("{wrong} of {w} digits wrong")
        },
        if ev.secs < target_s { "met" } else { "missed" },
    );
    let cap = env_usize("SEAD_EVERY_CELL_STEPS", 64) as u64;
    let every = run(model, &x, w, ev.steps.min(cap), false);
    if ev.steps <= cap {
        assert_eq!(every.steps, ev.steps, "{name}: every-cell steps");
        assert!(
            every.outputs == ev.outputs,
            "{name}: every-cell outputs differ"
        );
        println!(
            "{name}: every cell   {:.3} s, {} steps, {} cells computed (same outputs) -- {:.1}x",
            every.secs,
            every.steps,
            every.cells,
            every.secs / ev.secs
        );
    } else {
        let est = every.secs / every.steps.max(1) as f64 * ev.steps as f64;
        println!(
            "{name}: every cell   {:.3} s for its first {} steps, est. {est:.1} s for {} -- \
             est. {:.0}x",
            every.secs,
            every.steps,
            ev.steps,
            est / ev.secs
        );
    }
}

fn main() {
    let Ok(which) = std::env::var("SEAD_MODEL") else {
        eprintln!(
            "add_events: set SEAD_MODEL to a quantized addition model file, or to \"random\" \
             (see the header of crates/sead-core/benches/add_events.rs)"
        );
        std::process::exit(2);
    };
    let random = which == "random";
    let written = random || which == "handmade";
    let path = if written {
        write_model(&which)
    } else {
        PathBuf::from(&which)
    };
    let model = load_model(&path).unwrap_or_else(|e| panic!("{e}"));
    if written {
        let _ = std::fs::remove_file(&path);
    }
    assert!(
        model.task == "addition",
        "{}: a {:?} model, not an addition model",
        path.display(),
        model.task
    );
    assert!(
        model.spec.quantize == Quantize::Ternary,
        "{}: not quantized (spec.quantize must be \"ternary\"): event-driven stepping is \
         for quantized models",
        path.display()
    );
    let base = model.base.unwrap_or(2);
    let threads = env_usize("SEAD_THREADS", 2);
    println!(
        "model {} ({}base {base}, C_h {}, F {}), {threads} threads, {} kernel",
        path.display(),
        if written { "stand-in, " } else { "" },
        model.spec.c_h,
        model.spec.features,
        Simd::detect().name()
    );
    pool::with_threads(threads, || {
        let digits = env_usize("SEAD_ADD_DIGITS", 1_000_000);
        let mut rng = Lcg(env_usize("SEAD_ADD_SEED", 1) as u64);
        let (a, b) = (
            random_digits(&mut rng, base, digits),
            random_digits(&mut rng, base, digits),
        );
        case(
            &model,
            &format!("{digits}-digit random sum"),
            &a,
            &b,
            0.5,
            random,
        );
        let digits = env_usize("SEAD_CHAIN_DIGITS", 100_000);
        let mut one = vec![0u8; digits];
        one[0] = 1;
        let all = vec![base as u8 - 1; digits];
        case(
            &model,
            &format!("{digits}-digit carry chain"),
            &all,
            &one,
            0.3,
            random,
        );
    })
    .expect("starting the threads");
}
