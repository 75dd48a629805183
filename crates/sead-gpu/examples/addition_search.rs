//! Searches for additions an addition model gets wrong, on the GPU, in large batches.
//!
//!     cargo run --release -p sead-gpu --example addition_search -- MODEL MODE ARGS
//!
//! MODE:
//!   exhaustive L       every pair of L-digit operands (leading zeros allowed): base^(2L) sums
//!   random L COUNT     COUNT random pairs of L-digit operands (seed: SEAD_SEED, default 1)
//!   chains L           the adversarial cases at length L: carry chain (max..max + 1),
//!                      all max, all zeros, no-carry run (max..max + 0..0)
//!
//! Every sum is checked digit for digit against schoolbook addition. The convergence rule is
//! the CLI's (outputs unchanged for 4 steps, max |h' - h| < 1e-3), with at most 2 W + 66
//! steps unless SEAD_MAX_STEPS says otherwise. Prints each wrong or unsettled sum (the first
//! 50), the counts, the steps (mean, max) and the time. MODEL is a path or a shipped name
//! (`addition-base10`). SEAD_BATCH sets the samples per session (default 1,048,576),
//! SEAD_CHECK_EVERY the steps per submission, SEAD_PACK=0 tiles each row alone instead of
//! packing the short rows end to end. SEAD_SEARCH_CPU=1 runs the same search on the
//! CPU backend (sead-core), which gives the same answers (the agreement tests hold the two
//! to each other).

#[path = "../benches/support/addition.rs"]
mod addition;

use addition::{digits_of, encode_into, exact_sum, load_model, random_digits, shipped, show, Lcg};
use sead_core::Stepper;
use sead_core::{ConvergeOptions, Grid, Session, Simd};
use sead_gpu::{GpuContext, GpuOptions, GpuSession, SessionOptions, DEFAULT_CHECK_EVERY};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    sums: u64,
    wrong: u64,
    unsettled: u64,
    steps: u64,
    max_steps: u64,
    shown: u32,
}

/// Runs one batch of operand pairs (all of the same length) and tallies the results.
fn run_batch(
    ctx: Option<&Arc<GpuContext>>,
    m: &addition::ModelFile,
    base: u32,
    pairs: &[(Vec<u8>, Vec<u8>)],
    tally: &mut Tally,
) {
    let w = pairs[0].0.len().max(pairs[0].1.len()) + 1;
    let mut x = Vec::with_capacity(pairs.len() * w * 2 * base as usize);
    for (a, b) in pairs {
        encode_into(&mut x, a, b, base, w);
    }
    let grid = Grid {
        batch: pairs.len(),
        height: 1,
        width: w,
    };
    let opts = SessionOptions {
        check_every: env_u64("SEAD_CHECK_EVERY", DEFAULT_CHECK_EVERY as u64) as u32,
        max_bytes: usize::MAX,
        pack_short_rows: env_u64("SEAD_PACK", 1) != 0,
        ..Default::default()
    };
    let conv = ConvergeOptions {
        patience: 4,
        tol: 1e-3,
        max_steps: env_u64("SEAD_MAX_STEPS", 2 * (w as u64 + 1) + 64),
    };
    let never = AtomicBool::new(false);
    let (r, out) = match ctx {
        Some(ctx) => {
            let mut s = GpuSession::new(ctx.clone(), m.spec, grid, &x, &opts).expect("session");
            let r = s.converge(&m.params, conv, &never).expect("converge");
            (r, s.outputs().expect("outputs"))
        }
        None => {
            let mut s =
                Session::new(m.spec, grid, &x, Simd::detect(), usize::MAX).expect("session");
            let r = s.converge(&m.params, conv, &never).expect("converge");
            (r, s.outputs())
        }
    };
    for (i, (a, b)) in pairs.iter().enumerate() {
        let want = exact_sum(a, b, base, w);
        let got = &out[i * w..(i + 1) * w];
        let res = &r[i];
        tally.sums += 1;
        tally.steps += res.steps;
        tally.max_steps = tally.max_steps.max(res.steps);
        let wrong = got != want.as_slice();
        if !res.converged {
            tally.unsettled += 1;
        }
        if wrong {
            tally.wrong += 1;
        }
        if (wrong || !res.converged) && tally.shown < 50 {
            tally.shown += 1;
            println!(
                "{} {} + {} = {} (model: {}, {} steps)",
                if res.converged { "WRONG" } else { "UNSETTLED" },
                show(a),
                show(b),
                show(&want),
                show(got),
                res.steps
            );
        }
    }
}

/// One line about every 10% of a long search.
fn progress(t: &Tally, total: u64, t0: &Instant) {
    let tenth = (total / 10).max(1);
    if total > 0 && t.sums < total && t.sums / tenth != (t.sums - 1) / tenth {
        eprintln!(
            "  {} of {total} sums: {} wrong, {} unsettled, {:.0} s",
            t.sums,
            t.wrong,
            t.unsettled,
            t0.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: addition_search MODEL (exhaustive L | random L COUNT | chains L)";
    if args.len() < 3 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let path = if args[0].ends_with(".json") {
        PathBuf::from(&args[0])
    } else {
        shipped(&args[0])
    };
    let m = load_model(&path).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let Some(base) = m.base.filter(|_| m.task == "addition") else {
        eprintln!("{}: not an addition model", path.display());
        std::process::exit(2)
    };
    let num = |i: usize| -> u64 {
        args.get(i).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("{usage}");
            std::process::exit(2)
        })
    };
    let len = num(2) as usize;
    let ctx = if std::env::var("SEAD_SEARCH_CPU").is_ok_and(|v| v == "1") {
        None
    } else {
        Some(Arc::new(
            GpuContext::new(&GpuOptions {
                adapter: std::env::var("SEAD_GPU_ADAPTER").ok(),
                ..Default::default()
            })
            .unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            }),
        ))
    };
    let on = match &ctx {
        Some(c) => c.adapter_info().describe(),
        None => format!("the CPU ({:?})", Simd::detect()),
    };
    println!(
        "{} {} on {on}: base {base}, L = {len}",
        path.display(),
        args[1]
    );
    let ctx = ctx.as_ref();
    let batch = env_u64("SEAD_BATCH", 1 << 20).max(1) as usize;
    let mut tally = Tally::default();
    let t0 = Instant::now();
    match args[1].as_str() {
        "exhaustive" => {
            let per = (base as u64).checked_pow(len as u32).expect("L too large");
            let total = per.checked_mul(per).expect("L too large");
            let mut i = 0u64;
            while i < total {
                let n = (total - i).min(batch as u64);
                let pairs: Vec<_> = (i..i + n)
                    .map(|k| (digits_of(k / per, base, len), digits_of(k % per, base, len)))
                    .collect();
                run_batch(ctx, &m, base, &pairs, &mut tally);
                i += n;
                progress(&tally, total, &t0);
            }
        }
        "random" => {
            let count = num(3);
            let mut rng = Lcg(env_u64("SEAD_SEED", 1));
            let mut done = 0u64;
            while done < count {
                let n = (count - done).min(batch as u64);
                let pairs: Vec<_> = (0..n)
                    .map(|_| {
                        (
                            random_digits(&mut rng, base, len),
                            random_digits(&mut rng, base, len),
                        )
                    })
                    .collect();
                run_batch(ctx, &m, base, &pairs, &mut tally);
                done += n;
                progress(&tally, count, &t0);
            }
        }
        "chains" => {
            let max = (base - 1) as u8;
            let mut one = vec![0u8; len];
            one[0] = 1;
            for (name, a, b) in [
                ("carry chain", vec![max; len], one),
                ("all max", vec![max; len], vec![max; len]),
                ("all zeros", vec![0; len], vec![0; len]),
                ("no-carry run", vec![max; len], vec![0; len]),
            ] {
                let before = (tally.wrong, tally.unsettled, tally.steps);
                let t = Instant::now();
                run_batch(ctx, &m, base, &[(a, b)], &mut tally);
                println!(
                    "{name}: {} in {} steps, {:.1} s",
                    if (tally.wrong, tally.unsettled) == (before.0, before.1) {
                        "exact"
                    } else {
                        "NOT exact"
                    },
                    tally.steps - before.2,
                    t.elapsed().as_secs_f64()
                );
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
    println!(
        "{} sums: {} wrong, {} unsettled; steps mean {:.1}, max {}; {:.1} s",
        tally.sums,
        tally.wrong,
        tally.unsettled,
        tally.steps as f64 / tally.sums.max(1) as f64,
        tally.max_steps,
        t0.elapsed().as_secs_f64()
    );
}
