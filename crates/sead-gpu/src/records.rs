//! The records the host writes to or reads from the kernels, as Rust structs that match the
//! WGSL structs field for field (`tests/records.rs` parses the WGSL with naga and checks
//! every size, member name, type and offset), and the constants shared with the WGSL, read
//! out of the `.wgsl` files by `build.rs` so each number is written once, in the WGSL.

use bytemuck::{Pod, Zeroable};

/// Constants of the WGSL files: `consts::step::QUEUE_AT` is `const QUEUE_AT` in
/// step.wgsl, `consts::common::overrides::WG` the default of `override WG` in common.wgsl.
pub mod consts {
    include!(concat!(env!("OUT_DIR"), "/wgsl_consts.rs"));
}

/// A constant's value as the WGSL declares it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WgslValue {
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
}

/// One member of a record: its name, byte offset and WGSL scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: &'static str,
    pub offset: usize,
    pub scalar: &'static str,
}

/// A Rust struct laid out as a WGSL struct of the same name.
pub trait Record: Pod {
    /// The WGSL struct's name.
    const WGSL_NAME: &'static str;
    /// The members, in order.
    const MEMBERS: &'static [Member];
}

/// The WGSL name of a member's Rust type.
pub trait Scalar {
    const WGSL: &'static str;
}
impl Scalar for u32 {
    const WGSL: &'static str = "u32";
}
impl Scalar for f32 {
    const WGSL: &'static str = "f32";
}

/// Declares a record: the `#[repr(C)]` Pod struct and its member table (one list of fields,
/// so the table cannot drift from the struct).
macro_rules! record {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }
        impl Record for $name {
            const WGSL_NAME: &'static str = stringify!($name);
            const MEMBERS: &'static [Member] = &[$(Member {
                name: stringify!($field),
                offset: std::mem::offset_of!($name, $field),
                scalar: <$ty as Scalar>::WGSL,
            },)*];
        }
    };
}

record! {
    /// `GroupInfo` in step.wgsl: one sample group's shape and window (uniform, binding 7).
    GroupInfo {
        width: u32,
        height: u32,
        /// Cells per sample.
        cells: u32,
        tiles_per_row: u32,
        tiles_per_sample: u32,
        /// Entries of `active_list` this window uses.
        n_active: u32,
        /// Global index of the group's first sample.
        group_start: u32,
        /// Samples in the group.
        group_len: u32,
        /// Floats in one copy of the group's hidden state.
        half: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

record! {
    /// `SampleState` in step.wgsl: one sample's progress in a call (storage, binding 4).
    SampleState {
        /// 1: steps in this call.
        live: u32,
        /// Parity of the current copy of h = clock & 1.
        clock: u32,
        /// Steps taken in this call.
        taken: u32,
        /// Steps in a row with no output change.
        quiet: u32,
        /// Steps this call may take.
        budget: u32,
        converged: u32,
        /// The last step's max |h' - h|.
        last_delta: f32,
        /// The last step's changed outputs.
        last_changed: u32,
        /// Cell updates computed in this call (with FREEZE >= 0): low and high words.
        computed_lo: u32,
        computed_hi: u32,
    }
}

impl SampleState {
    /// Cell updates computed in this call (the kernel carries into the high word).
    pub fn computed(&self) -> u64 {
        self.computed_lo as u64 | (self.computed_hi as u64) << 32
    }
}

record! {
    /// `Slot` in step.wgsl: which row of the stats buffer a step writes (uniform at a
    /// dynamic offset, binding 8).
    Slot {
        slot: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

record! {
    /// `ConvInfo` in step.wgsl: the call's mode and settle test (uniform, binding 9).
    ConvInfo {
        batch: u32,
        /// 0: plain steps; 1: converge.
        mode: u32,
        patience: u32,
        tol: f32,
    }
}

record! {
    /// `TrainInfo` in train.wgsl: one chunk of a training batch (uniform, binding 14).
    TrainInfo {
        width: u32,
        height: u32,
        /// Cells per sample.
        cells: u32,
        /// Samples in this chunk.
        nb: u32,
        /// nb * cells.
        nbc: u32,
        tiles_per_row: u32,
        tiles_per_sample: u32,
        /// T, the unroll length.
        steps: u32,
        noise_std: f32,
        /// T * nbc rows of the gradient reductions.
        n_total: u32,
        /// Rows per reduction chunk (a multiple of GB).
        nchunk: u32,
        n_chunks: u32,
        /// Parameter count.
        p: u32,
        /// grad_sum: 1 = add to grad (later chunks of the batch).
        accumulate: u32,
        /// 1: step t reads the noisy input I_t.
        noisy: u32,
        _pad1: u32,
    }
}

record! {
    /// `Rec` in train.wgsl: one step's, or one layer's gradient reduction's, parameters
    /// (uniform at a dynamic offset, binding 15).
    Rec {
        /// Step (1 .. T).
        t: u32,
        /// Loss weight of step t.
        weight: f32,
        /// weight / supervised cells.
        scale: f32,
        /// 1 at t = T.
        last: u32,
        /// grad_outer: 0 W1/b1, 1 W2/b2, 2 Wo/bo.
        mode: u32,
        /// grad_outer: rows of the augmented input (+1 for the bias).
        rows: u32,
        cols: u32,
        /// Where the block starts in the flat gradient.
        off: u32,
        tiles_r: u32,
        tiles_c: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

/// One sample's statistics of one step in step.wgsl's `stats` (an array of atomic words,
/// STAT_WORDS per sample and step, so no WGSL struct).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepStat {
    /// Max |h' - h| (the kernel takes the max of its bits: non-negative floats order as
    /// their bits).
    pub max_delta: f32,
    /// Outputs changed.
    pub changed: u32,
    /// Cells computed (with FREEZE >= 0).
    pub computed: u32,
}

/// One step parity's indirect dispatch size of `step_forward` in step.wgsl's
/// `tile_dispatch` (DISPATCH_WORDS words: x, y, z and padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct TileDispatch {
    /// Workgroups per row, counted by `queue_tiles`.
    pub x: u32,
    /// Rows the dispatch is folded into.
    pub y: u32,
    pub z: u32,
    pub _pad: u32,
}

/// Byte offset of a word index in an array of u32 (the WGSL constants count words).
pub(crate) const fn word_offset(words: u32) -> u64 {
    4 * words as u64
}

/// The size of a record type in bytes, as buffer sizes take it.
pub(crate) const fn bytes_of<T>() -> u64 {
    std::mem::size_of::<T>() as u64
}
