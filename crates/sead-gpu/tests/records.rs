//! The host's records and constants against the WGSL: each Rust struct in
//! `sead_gpu::records` must have its WGSL struct's size and, member for member, its names,
//! scalar types and offsets, as naga lays out the modules the host builds (common.wgsl and
//! then step.wgsl or train.wgsl); and every constant `build.rs` read out of the WGSL text
//! must have the value naga gives it. No GPU needed.

use sead_gpu::kernels::{step_source, train_source};
use sead_gpu::records::{
    consts, ConvInfo, GroupInfo, Rec, Record, SampleState, Slot, StepStat, TileDispatch, TrainInfo,
    WgslValue,
};
use std::mem::{offset_of, size_of};
use wgpu::naga;

fn parse(name: &str, src: &str) -> naga::Module {
    naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)))
}

fn scalar_name(module: &naga::Module, ty: naga::Handle<naga::Type>) -> String {
    match module.types[ty].inner {
        naga::TypeInner::Scalar(naga::Scalar { kind, width: 4 }) => match kind {
            naga::ScalarKind::Uint => "u32".into(),
            naga::ScalarKind::Sint => "i32".into(),
            naga::ScalarKind::Float => "f32".into(),
            k => format!("{k:?}"),
        },
        ref other => format!("{other:?}"),
    }
}

/// The item called `name` among `items` (an arena's `iter()`; `name_of` reads an item's
/// name), or a panic that says `missing`.
fn named<'a, T: 'a>(
    items: impl IntoIterator<Item = (naga::Handle<T>, &'a T)>,
    name_of: fn(&T) -> &Option<String>,
    name: &str,
    missing: impl FnOnce() -> String,
) -> &'a T {
    match items
        .into_iter()
        .find(|(_, t)| name_of(t).as_deref() == Some(name))
    {
        Some((_, t)) => t,
        None => panic!("{}", missing()),
    }
}

/// `R` against the WGSL struct of its name in `module`.
fn check_record<R: Record>(module: &naga::Module, file: &str) {
    let name = R::WGSL_NAME;
    let ty = named(
        module.types.iter(),
        |t| &t.name,
        name,
        || format!("{file} has no struct {name}"),
    );
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("{name} in {file} is not a struct");
    };
    assert_eq!(
        *span as usize,
        size_of::<R>(),
        "{name}: the WGSL struct's size (left) against the Rust struct's"
    );
    let wgsl: Vec<(String, usize, String)> = members
        .iter()
        .map(|m| {
            let member = m.name.clone().unwrap_or_default();
            (member, m.offset as usize, scalar_name(module, m.ty))
        })
        .collect();
    let rust: Vec<(String, usize, String)> = R::MEMBERS
        .iter()
        .map(|m| (m.name.to_string(), m.offset, m.scalar.to_string()))
        .collect();
    assert_eq!(
        wgsl, rust,
        "{name}: the WGSL members (left) against the Rust fields"
    );
}

#[test]
fn records_match_the_wgsl_structs() {
    let step = parse("step.wgsl", &step_source());
    check_record::<GroupInfo>(&step, "step.wgsl");
    check_record::<SampleState>(&step, "step.wgsl");
    check_record::<Slot>(&step, "step.wgsl");
    check_record::<ConvInfo>(&step, "step.wgsl");
    let train = parse("train.wgsl", &train_source());
    check_record::<TrainInfo>(&train, "train.wgsl");
    check_record::<Rec>(&train, "train.wgsl");
}

#[test]
fn word_arrays_match_their_wgsl_constants() {
    // step.wgsl's `stats`: STAT_WORDS words per sample and step.
    assert_eq!(size_of::<StepStat>(), 4 * consts::step::STAT_WORDS as usize);
    // step.wgsl's `tile_dispatch`: DISPATCH_WORDS words per step parity, x y z first, as an
    // indirect dispatch reads them.
    assert_eq!(
        size_of::<TileDispatch>(),
        4 * consts::step::DISPATCH_WORDS as usize
    );
    type Args = wgpu::util::DispatchIndirectArgs;
    assert_eq!(offset_of!(TileDispatch, x), offset_of!(Args, x));
    assert_eq!(offset_of!(TileDispatch, y), offset_of!(Args, y));
    assert_eq!(offset_of!(TileDispatch, z), offset_of!(Args, z));
    // step.wgsl's `tile_queue`: the two parities' counts, then the list.
    const { assert!(consts::step::QUEUE_COUNT_AT + 2 <= consts::step::QUEUE_AT) };
}

/// A constant expression naga folded to a literal (or its negation).
fn literal(module: &naga::Module, e: naga::Handle<naga::Expression>) -> WgslValue {
    use naga::{Expression, Literal};
    match module.global_expressions[e] {
        Expression::Literal(Literal::U32(v)) => WgslValue::U32(v),
        Expression::Literal(Literal::I32(v)) => WgslValue::I32(v),
        Expression::Literal(Literal::F32(v)) => WgslValue::F32(v),
        Expression::Literal(Literal::Bool(v)) => WgslValue::Bool(v),
        Expression::Unary {
            op: naga::UnaryOperator::Negate,
            expr,
        } => match literal(module, expr) {
            WgslValue::F32(v) => WgslValue::F32(-v),
            WgslValue::I32(v) => WgslValue::I32(-v),
            other => panic!("negated {other:?}"),
        },
        ref other => panic!("not a literal: {other:?}"),
    }
}

/// Bits, so that -0.0 and 0.0 differ and a NaN equals itself.
fn bits(v: WgslValue) -> (u8, u64) {
    match v {
        WgslValue::U32(v) => (0, v as u64),
        WgslValue::I32(v) => (1, v as u32 as u64),
        WgslValue::F32(v) => (2, v.to_bits() as u64),
        WgslValue::Bool(v) => (3, v as u64),
    }
}

fn check_constants(
    module: &naga::Module,
    file: &str,
    consts: &[(&str, WgslValue)],
    defaults: &[(&str, WgslValue)],
) {
    assert!(
        !consts.is_empty() || !defaults.is_empty(),
        "{file}: none read"
    );
    for &(name, value) in consts {
        let c = named(
            module.constants.iter(),
            |c| &c.name,
            name,
            || format!("{file}: naga has no const {name}"),
        );
        let naga_value = literal(module, c.init);
        assert_eq!(bits(naga_value), bits(value), "{file}: const {name}");
    }
    for &(name, value) in defaults {
        let o = named(
            module.overrides.iter(),
            |o| &o.name,
            name,
            || format!("{file}: naga has no override {name}"),
        );
        let init = o
            .init
            .unwrap_or_else(|| panic!("{file}: override {name} has no default"));
        let naga_value = literal(module, init);
        assert_eq!(bits(naga_value), bits(value), "{file}: override {name}");
    }
}

#[test]
fn constants_read_by_build_rs_are_the_wgsl_values() {
    let step = parse("step.wgsl", &step_source());
    let train = parse("train.wgsl", &train_source());
    let common = &consts::common::ALL;
    check_constants(&step, "common.wgsl", common, consts::common::overrides::ALL);
    check_constants(
        &step,
        "step.wgsl",
        consts::step::ALL,
        consts::step::overrides::ALL,
    );
    check_constants(
        &train,
        "train.wgsl",
        consts::train::ALL,
        consts::train::overrides::ALL,
    );
    // The host's uses, by name.
    assert_eq!(consts::common::overrides::WG, 128);
    assert_eq!(consts::common::WG_FLAT, 64);
    assert_eq!(consts::step::STAT_WORDS, 3);
}

/// The WGSL tanh is sead-core's `tanh_f32`: the same coefficients, bit for bit.
#[test]
fn tanh_coefficients_are_sead_cores() {
    use consts::common as w;
    use sead_core::real::tanh_coef as c;
    let pairs = [
        ("CLAMP", w::TANH_CLAMP, c::CLAMP),
        ("SATURATE", w::TANH_SATURATE, c::SATURATE),
        ("A1", w::TANH_A1, c::A1),
        ("A3", w::TANH_A3, c::A3),
        ("A5", w::TANH_A5, c::A5),
        ("A7", w::TANH_A7, c::A7),
        ("A9", w::TANH_A9, c::A9),
        ("A11", w::TANH_A11, c::A11),
        ("A13", w::TANH_A13, c::A13),
        ("B0", w::TANH_B0, c::B0),
        ("B2", w::TANH_B2, c::B2),
        ("B4", w::TANH_B4, c::B4),
        ("B6", w::TANH_B6, c::B6),
    ];
    for (name, wgsl, rust) in pairs {
        assert_eq!(
            wgsl.to_bits(),
            rust.to_bits(),
            "TANH_{name}: {wgsl} vs {rust}"
        );
    }
}
