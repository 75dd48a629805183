//! sead-core: the SEAD neural cellular automaton on the CPU.
//!
//! The model (docs/DESIGN.md, "The model"): every cell holds clamped inputs x and hidden
//! channels h; one
//! step reads each cell's 3 (1D) or 3x3 (2D) neighbourhood, `perceive`s it with W1, mixes
//! the ReLU features with W2, and writes h' = tanh(...). `infer` steps batches until they
//! settle; `train` unrolls and back-propagates through time. No Node types in here.

pub mod error;
pub mod infer;
pub mod kernel;
pub mod noise;
pub mod pool;
pub mod real;
pub mod spec;
pub mod stepper;
pub mod testdata;
pub mod train;
pub mod verify;

pub use error::{format_bytes, Error, Result};
pub use infer::{ConvergeOptions, SampleResult, Session, StepStats};
pub use kernel::Simd;
pub use spec::{Boundary, Grid, Layout, Params, Quantize, Spec, Update};
pub use stepper::{Settle, Stepper};
pub use train::{train_step, train_step_with_simd, Batch, TrainOutput};
