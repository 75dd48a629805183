//! Shared by the `add_million` bench and the `addition_search` example: reading a shipped
//! model file (`models/*.json`, the format `src/model/checkpoint.ts` writes) and the
//! addition task's encoding (`src/tasks/addition.ts`), with an exact schoolbook reference.
//!
//! Encoding, as in the TypeScript task: least significant digit at cell 0, one extra cell
//! for the final carry (all inputs zero); per cell the one-hot digit of a (channels
//! 0..base-1), then the one-hot digit of b (channels base..2 base-1). Output per cell: the
//! digit of the sum.

#![allow(dead_code)] // each user takes a different subset

use base64::Engine;
pub use sead_core::testdata::Lcg;
use sead_core::{Boundary, Quantize, Spec, Update};
use std::path::{Path, PathBuf};

/// A shipped model: its shape, parameters and (for addition models) its base.
pub struct ModelFile {
    pub spec: Spec,
    pub params: Vec<f32>,
    pub task: String,
    pub base: Option<u32>,
}

/// `models/<name>.json` of this repository: found from the crate's folder, or (for a
/// binary copied elsewhere) from the working directory.
pub fn shipped(name: &str) -> PathBuf {
    let file = format!("{name}.json");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    if repo.is_dir() {
        repo.join(file)
    } else {
        Path::new("models").join(file)
    }
}

/// Reads a model or checkpoint file; the error names the file and what is wrong.
pub fn load_model(path: &Path) -> Result<ModelFile, String> {
    let at = |m: String| format!("{}: {m}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| at(e.to_string()))?;
    let field = |v: &serde_json::Value, k: &str| -> Result<u64, String> {
        v.get(k)
            .and_then(|x| x.as_u64())
            .ok_or_else(|| at(format!("missing or bad spec.{k}")))
    };
    let s = &doc["spec"];
    let spec = Spec {
        dims: field(s, "dims")? as usize,
        c_in: field(s, "cIn")? as usize,
        c_h: field(s, "cH")? as usize,
        features: field(s, "features")? as usize,
        c_out: field(s, "cOut")? as usize,
        update: match s["update"].as_str() {
            Some("replace") => Update::Replace,
            Some("residual") => Update::Residual,
            other => return Err(at(format!("bad spec.update {other:?}"))),
        },
        boundary: match s["boundary"].as_str() {
            Some("zero") => Boundary::Zero,
            Some("periodic") => Boundary::Periodic,
            other => return Err(at(format!("bad spec.boundary {other:?}"))),
        },
        quantize: match s["quantize"].as_str() {
            None | Some("none") => Quantize::None,
            Some("ternary") => Quantize::Ternary,
            other => return Err(at(format!("bad spec.quantize {other:?}"))),
        },
    };
    let p = &doc["params"];
    if p["dtype"] != "float32" || p["encoding"] != "base64-le" {
        return Err(at("params must be float32 in base64-le".into()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(p["data"].as_str().unwrap_or(""))
        .map_err(|e| at(format!("params.data: {e}")))?;
    let params: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if params.len() != spec.layout().total || bytes.len() % 4 != 0 {
        return Err(at(format!(
            "{} parameters, the spec needs {}",
            params.len(),
            spec.layout().total
        )));
    }
    Ok(ModelFile {
        spec,
        params,
        task: doc["task"]["name"].as_str().unwrap_or("").to_string(),
        base: doc["task"]["base"].as_u64().map(|b| b as u32),
    })
}

/// `len` random digits of `base`, least significant first, the top digit nonzero.
pub fn random_digits(rng: &mut Lcg, base: u32, len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len).map(|_| rng.below(base as usize) as u8).collect();
    if let Some(top) = d.last_mut() {
        *top = 1 + rng.below(base as usize - 1) as u8;
    }
    d
}

/// Cells of one sample: the longer operand's digits plus the carry cell.
pub fn width(a: &[u8], b: &[u8]) -> usize {
    a.len().max(b.len()) + 1
}

/// Appends one sample's inputs (`width` cells of 2 base channels) to `x`.
pub fn encode_into(x: &mut Vec<f32>, a: &[u8], b: &[u8], base: u32, width: usize) {
    let base = base as usize;
    let start = x.len();
    x.resize(start + width * 2 * base, 0.0);
    let cells = &mut x[start..];
    for (i, &d) in a.iter().enumerate() {
        cells[i * 2 * base + d as usize] = 1.0;
    }
    for (i, &d) in b.iter().enumerate() {
        cells[i * 2 * base + base + d as usize] = 1.0;
    }
}

/// The exact sum's digits (`width` of them, least significant first).
pub fn exact_sum(a: &[u8], b: &[u8], base: u32, width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(width);
    let mut carry = 0u32;
    for i in 0..width {
        let s = *a.get(i).unwrap_or(&0) as u32 + *b.get(i).unwrap_or(&0) as u32 + carry;
        out.push((s % base) as u8);
        carry = s / base;
    }
    out
}

/// Digits of `v` in `base`, least significant first, padded with zeros to `len`.
pub fn digits_of(mut v: u64, base: u32, len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    for slot in d.iter_mut() {
        *slot = (v % base as u64) as u8;
        v /= base as u64;
    }
    d
}

/// Most significant digit first, as a person writes the number.
pub fn show(d: &[u8]) -> String {
    let s: String = d
        .iter()
        .rev()
        .map(|&v| char::from_digit(v as u32, 16).unwrap_or('?'))
        .collect();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}
