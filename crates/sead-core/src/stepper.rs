//! What every inference backend offers: `Stepper`, the trait sead-core's `Session` and
//! sead-gpu's `GpuSession` implement (as candle keeps its backend traits in its core crate),
//! so that code above them (the Node binding, tests, benches) is written once; and the
//! settle rule `converge` applies to each sample after each step, defined here once.
//! sead-gpu's `sample_update` kernel (wgsl/step.wgsl) applies the same rule on the GPU;
//! sead-gpu's tests/settle_rule.rs holds the two together.

use crate::error::Error;
use crate::infer::{ConvergeOptions, SampleResult, Session, StepStats};
use crate::spec::{Grid, Spec};
use std::sync::atomic::AtomicBool;

/// A batch of grids with their state, stepped in place: what sead-core's `Session` (CPU) and
/// sead-gpu's `GpuSession` both are. The methods behave alike on every backend; states agree
/// within float rounding.
pub trait Stepper {
    /// The backend's error. Every backend takes sead-core's errors (argument checks).
    type Error: std::error::Error + From<Error> + Send + Sync + 'static;

    /// Memory a session of this shape holds, in bytes (on the device, for a GPU backend).
    fn bytes_needed(spec: &Spec, grid: &Grid) -> usize
    where
        Self: Sized;

    fn spec(&self) -> &Spec;

    fn grid(&self) -> &Grid;

    /// Samples in the batch.
    fn batch(&self) -> usize {
        self.grid().batch
    }

    /// Switches settled-cell skipping on (`Some(freeze)`) or off: a cell whose every hidden
    /// channel would move by at most `freeze` keeps its state, and cells (CPU) or tiles (GPU)
    /// whose neighbourhood did not change are not computed.
    fn set_freeze(&mut self, freeze: Option<f32>) -> Result<(), Self::Error>;

    /// Runs `n` steps on the samples marked active (all when `active` is None) and writes
    /// each step's per-sample stats to `stats[step * batch + sample]` (inactive: zeros).
    fn step(
        &mut self,
        params: &[f32],
        n: usize,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
        cancel: &AtomicBool,
    ) -> Result<(), Self::Error>;

    /// Steps every unsettled sample until it settles (`ConvergeOptions::settle`) or reaches
    /// `max_steps`.
    fn converge(
        &mut self,
        params: &[f32],
        opts: ConvergeOptions,
        cancel: &AtomicBool,
    ) -> Result<Vec<SampleResult>, Self::Error>;

    /// The argmax output of every cell, `[batch][height][width]`.
    fn outputs(&self) -> Result<Vec<u8>, Self::Error>;

    /// The hidden state, `[batch][height][width][C_h]`.
    fn hidden(&self) -> Result<Vec<f32>, Self::Error>;

    /// The logits of every cell, `[batch][height][width][C_out]`.
    fn logits(&self, params: &[f32]) -> Result<Vec<f32>, Self::Error>;

    /// Steps taken by each sample.
    fn steps(&self) -> Vec<u64>;

    /// Cell updates each sample has computed (with skipping on, fewer than steps x cells).
    fn cells_computed(&self) -> Vec<u64>;

    /// Recomputes every output from the current hidden state with these parameters.
    fn refresh_outputs(&mut self, params: &[f32]) -> Result<(), Self::Error>;
}

/// Where a sample stands after a step of `converge` (`ConvergeOptions::settle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Steps on.
    Running,
    /// Settled: stops, converged.
    Converged,
    /// Reached `max_steps` unsettled: stops, not converged.
    OutOfSteps,
}

impl ConvergeOptions {
    /// The settle rule, for one sample after one step. `quiet` counts the steps in a row
    /// with no output change (0 when `converge` starts; updated here), `stats` are the step's,
    /// and `steps` is the sample's total after it. The sample has settled when its outputs
    /// have not changed for `patience` steps and the step's max |h' - h| is below `tol`;
    /// else it stops, unsettled, at `max_steps`.
    ///
    /// `sample_update` in sead-gpu's step.wgsl is this function on the GPU (its u32 quiet
    /// count wraps, as here; its step budget is `max_steps` minus the steps before the call).
    pub fn settle(&self, quiet: &mut u32, stats: StepStats, steps: u64) -> Settle {
        *quiet = if stats.changed == 0 {
            quiet.wrapping_add(1)
        } else {
            0
        };
        if *quiet >= self.patience && stats.max_delta < self.tol {
            Settle::Converged
        } else if steps >= self.max_steps {
            Settle::OutOfSteps
        } else {
            Settle::Running
        }
    }
}

impl Stepper for Session {
    type Error = Error;

    fn bytes_needed(spec: &Spec, grid: &Grid) -> usize {
        Session::bytes_needed(spec, grid)
    }
    fn spec(&self) -> &Spec {
        Session::spec(self)
    }
    fn grid(&self) -> &Grid {
        Session::grid(self)
    }
    fn set_freeze(&mut self, freeze: Option<f32>) -> Result<(), Error> {
        Session::set_freeze(self, freeze)
    }
    fn step(
        &mut self,
        params: &[f32],
        n: usize,
        active: Option<&[bool]>,
        stats: &mut [StepStats],
        cancel: &AtomicBool,
    ) -> Result<(), Error> {
        Session::step(self, params, n, active, stats, cancel)
    }
    fn converge(
        &mut self,
        params: &[f32],
        opts: ConvergeOptions,
        cancel: &AtomicBool,
    ) -> Result<Vec<SampleResult>, Error> {
        Session::converge(self, params, opts, cancel)
    }
    fn outputs(&self) -> Result<Vec<u8>, Error> {
        Ok(Session::outputs(self))
    }
    fn hidden(&self) -> Result<Vec<f32>, Error> {
        Ok(Session::hidden(self))
    }
    fn logits(&self, params: &[f32]) -> Result<Vec<f32>, Error> {
        Session::logits(self, params)
    }
    fn steps(&self) -> Vec<u64> {
        Session::steps(self)
    }
    fn cells_computed(&self) -> Vec<u64> {
        Session::cells_computed(self)
    }
    fn refresh_outputs(&mut self, params: &[f32]) -> Result<(), Error> {
        Session::refresh_outputs(self, params)
    }
}

#[cfg(test)]
mod tests {
    use super::{Settle, Stepper};
    use crate::infer::{ConvergeOptions, Session, StepStats, DEFAULT_MAX_BYTES};
    use crate::spec::{Boundary, Grid};
    use crate::testdata::{creeping_params, scalar_spec};
    use crate::Simd;
    use std::sync::atomic::AtomicBool;

    fn stats(max_delta: f32, changed: u64) -> StepStats {
        StepStats { max_delta, changed }
    }

    #[test]
    fn settle_needs_patience_quiet_steps_and_a_small_delta() {
        let opts = ConvergeOptions {
            patience: 2,
            tol: 0.01,
            max_steps: 10,
        };
        let mut quiet = 0;
        assert_eq!(opts.settle(&mut quiet, stats(0.0, 0), 1), Settle::Running);
        assert_eq!(quiet, 1);
        // A change resets the count.
        assert_eq!(opts.settle(&mut quiet, stats(0.0, 3), 2), Settle::Running);
        assert_eq!(quiet, 0);
        assert_eq!(opts.settle(&mut quiet, stats(0.0, 0), 3), Settle::Running);
        // Quiet long enough, but the state still moves by tol: not settled.
        assert_eq!(opts.settle(&mut quiet, stats(0.01, 0), 4), Settle::Running);
        assert_eq!(quiet, 2);
        assert_eq!(
            opts.settle(&mut quiet, stats(0.009, 0), 5),
            Settle::Converged
        );
        // Settling wins over running out of steps at the same step.
        let mut quiet = 1;
        assert_eq!(
            opts.settle(&mut quiet, stats(0.0, 0), 10),
            Settle::Converged
        );
        let mut quiet = 0;
        assert_eq!(
            opts.settle(&mut quiet, stats(0.0, 0), 10),
            Settle::OutOfSteps
        );
        assert_eq!(
            opts.settle(&mut quiet, stats(0.0, 1), 11),
            Settle::OutOfSteps
        );
    }

    /// `converge` through the trait is `Session::converge`, and it stops where stepping one
    /// step at a time under `settle` stops.
    #[test]
    fn converge_is_stepping_under_the_settle_rule() {
        let spec = scalar_spec(Boundary::Zero);
        let p = creeping_params(&spec);
        let grid = Grid {
            batch: 3,
            height: 1,
            width: 4,
        };
        let x = [
            0.0, 0.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.2, 1.0, 0.5, 0.0, 1.0f32,
        ];
        let opts = ConvergeOptions {
            patience: 2,
            tol: 1e-3,
            max_steps: 12,
        };
        let never = AtomicBool::new(false);
        let new = || Session::new(spec, grid, &x, Simd::Portable, DEFAULT_MAX_BYTES).unwrap();
        let mut a = new();
        let r = Stepper::converge(&mut a, &p, opts, &never).unwrap();

        let mut b = new();
        Stepper::refresh_outputs(&mut b, &p).unwrap();
        let mut quiet = vec![0; grid.batch];
        let mut active = vec![true; grid.batch];
        let mut st = vec![StepStats::default(); grid.batch];
        let mut converged = vec![false; grid.batch];
        while active.iter().any(|&a| a) {
            Stepper::step(&mut b, &p, 1, Some(&active), &mut st, &never).unwrap();
            let steps = Stepper::steps(&b);
            for i in 0..grid.batch {
                if active[i] {
                    match opts.settle(&mut quiet[i], st[i], steps[i]) {
                        Settle::Running => {}
                        v => {
                            converged[i] = v == Settle::Converged;
                            active[i] = false;
                        }
                    }
                }
            }
        }
        assert_eq!(r.iter().map(|s| s.steps).collect::<Vec<_>>(), b.steps());
        assert_eq!(r.iter().map(|s| s.converged).collect::<Vec<_>>(), converged);
        assert_eq!(Stepper::hidden(&a).unwrap(), Stepper::hidden(&b).unwrap());
        assert_eq!(Stepper::outputs(&a).unwrap(), Stepper::outputs(&b).unwrap());
        assert!(converged.iter().any(|&c| c), "{r:?}");
    }
}
