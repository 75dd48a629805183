//! The scalar type the portable kernels are generic over: f32 for real work, f64 for the
//! finite-difference gradient checks.

use std::ops::{Add, AddAssign, Mul, Sub};

/// Where `ternary` splits: |t| > 1/2 rounds to ±1, anything nearer 0 to 0 (round to nearest,
/// with the halfway points going to 0 so the rule is symmetric about 0).
pub const TERNARY_HALF: f32 = 0.5;

/// The ternary quantizer: tanh's output t rounded to -1, 0 or +1 (`Quantize::Ternary`).
#[inline]
pub fn ternary<T: Real>(t: T) -> T {
    let half = T::from_f32(TERNARY_HALF);
    if t > half {
        T::ONE
    } else if t < T::ZERO - half {
        T::ZERO - T::ONE
    } else {
        T::ZERO
    }
}

pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f32(v: f32) -> Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn tanh(self) -> Self;
    fn exp(self) -> Self;
    fn abs(self) -> Self;
    /// The slice as f32 when `Self` is f32 (lets generic code pick an f32-only kernel).
    fn as_f32_slice(v: &[Self]) -> Option<&[f32]>;
    /// A vector of f32 as `Self` (no copy when `Self` is f32).
    fn vec_from_f32(v: Vec<f32>) -> Vec<Self>;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn tanh(self) -> Self {
        tanh_f32(self)
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn as_f32_slice(v: &[Self]) -> Option<&[f32]> {
        Some(v)
    }
    fn vec_from_f32(v: Vec<f32>) -> Vec<Self> {
        v
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn as_f32_slice(_: &[Self]) -> Option<&[f32]> {
        None
    }
    fn vec_from_f32(v: Vec<f32>) -> Vec<Self> {
        v.into_iter().map(|x| x as f64).collect()
    }
}

/// Coefficients of the rational tanh approximation every f32 kernel uses (the same
/// polynomial as Eigen's float tanh; a few ulp from the true value on the whole line).
/// One formula for the portable and the SIMD paths keeps them within float rounding.
// The digits are Eigen's, as published, and the WGSL kernels carry the same text: rounding
// them to what an f32 holds would make the two sources look different.
#[allow(clippy::excessive_precision)]
pub mod tanh_coef {
    pub const CLAMP: f32 = 7.904_581_5;
    pub const SATURATE: f32 = 9.0;
    pub const A1: f32 = 4.893_524_6e-3;
    pub const A3: f32 = 6.372_619_3e-4;
    pub const A5: f32 = 1.485_722_4e-5;
    pub const A7: f32 = 5.122_297e-8;
    pub const A9: f32 = -8.604_671_5e-11;
    pub const A11: f32 = 2.000_188e-13;
    pub const A13: f32 = -2.760_768_5e-16;
    pub const B0: f32 = 4.893_525_2e-3;
    pub const B2: f32 = 2.268_434_6e-3;
    pub const B4: f32 = 1.185_347e-4;
    pub const B6: f32 = 1.198_258_4e-6;
}

/// tanh for f32 kernels: the rational approximation above, exactly +-1 beyond +-SATURATE
/// (where the true tanh rounds to 1 in f32), so saturated states are bit-stable.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    use tanh_coef::*;
    if x.abs() >= SATURATE {
        return if x > 0.0 { 1.0 } else { -1.0 };
    }
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = x2 * A13 + A11;
    p = x2 * p + A9;
    p = x2 * p + A7;
    p = x2 * p + A5;
    p = x2 * p + A3;
    p = x2 * p + A1;
    p *= x;
    let mut q = x2 * B6 + B4;
    q = x2 * q + B2;
    q = x2 * q + B0;
    (p / q).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_f32_is_close_to_std() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let err = (tanh_f32(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
            x += 0.001;
        }
        assert!(worst < 5e-7, "worst abs error {worst}");
        assert_eq!(tanh_f32(20.0), 1.0);
        assert_eq!(tanh_f32(-20.0), -1.0);
        assert_eq!(tanh_f32(0.0), 0.0);
    }
}
