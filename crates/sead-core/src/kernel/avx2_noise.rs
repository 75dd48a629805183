//! Box-Muller on AVX2 + FMA, four pairs at a time in f64: the same formula as
//! `NoiseStream::normal` (r = sqrt(-2 ln u1), th = 2 pi u2, r cos th then r sin th, each
//! rounded to f32), with vectorised ln, sin and cos in the style of fdlibm (each within
//! about an ulp of f64, as the C library's are). The f32 results therefore equal the scalar
//! ones except when an f64 intermediate lands within an ulp or two of an f32 rounding
//! boundary, about one value in 10^8, and then by one f32 ulp.

#![allow(clippy::excessive_precision)] // fdlibm's constants, kept digit for digit

use std::arch::x86_64::*;

/// True when this CPU runs AVX2 and FMA.
pub fn available() -> bool {
    super::avx2::available()
}

/// Fills `out` (a multiple of 16 long) with Box-Muller normals from the uniforms `uniform`
/// yields: pair k takes u1 then u2 and writes `r cos th` to `out[2k]`, `r sin th` to
/// `out[2k + 1]`, as `NoiseStream::normal` orders them. Panics if the CPU lacks AVX2/FMA
/// (callers check `available()`) or the length is not a multiple of 16.
pub fn fill_pairs(out: &mut [f32], uniform: impl FnMut() -> f64) {
    assert!(available(), "fill_pairs needs AVX2 and FMA");
    assert!(
        out.len().is_multiple_of(16),
        "fill_pairs fills whole blocks of 16"
    );
    // SAFETY: AVX2 and FMA are present (asserted above).
    unsafe { fill_impl(out, uniform) }
}

#[target_feature(enable = "avx2,fma")]
fn fill_impl(out: &mut [f32], mut uniform: impl FnMut() -> f64) {
    for chunk in out.chunks_exact_mut(16) {
        let (mut u1, mut u2) = ([0.0f64; 8], [0.0f64; 8]);
        for k in 0..8 {
            u1[k] = uniform();
            u2[k] = uniform();
        }
        // SAFETY: the loads read the 8-element local arrays in two halves of 4; the
        // stores write 4 floats each at offsets 0, 4, 8, 12 of the 16-float chunk.
        unsafe {
            let (c0, s0) = bm(_mm256_loadu_pd(u1.as_ptr()), _mm256_loadu_pd(u2.as_ptr()));
            let (c1, s1) = bm(
                _mm256_loadu_pd(u1.as_ptr().add(4)),
                _mm256_loadu_pd(u2.as_ptr().add(4)),
            );
            let p = chunk.as_mut_ptr();
            _mm_storeu_ps(p, _mm_unpacklo_ps(c0, s0));
            _mm_storeu_ps(p.add(4), _mm_unpackhi_ps(c0, s0));
            _mm_storeu_ps(p.add(8), _mm_unpacklo_ps(c1, s1));
            _mm_storeu_ps(p.add(12), _mm_unpackhi_ps(c1, s1));
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn bm(u1: __m256d, u2: __m256d) -> (__m128, __m128) {
    let r = _mm256_sqrt_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), ln(u1)));
    let th = _mm256_mul_pd(_mm256_set1_pd(std::f64::consts::TAU), u2);
    let (sin, cos) = sincos(th);
    (
        _mm256_cvtpd_ps(_mm256_mul_pd(r, cos)),
        _mm256_cvtpd_ps(_mm256_mul_pd(r, sin)),
    )
}

/// Small signed integers in the 64-bit lanes to f64 (|k| < 2^51).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn i64_to_f64(k: __m256i) -> __m256d {
    let magic = _mm256_set1_pd(6755399441055744.0); // 1.5 * 2^52
    let bits = _mm256_add_epi64(k, _mm256_castpd_si256(magic));
    _mm256_sub_pd(_mm256_castsi256_pd(bits), magic)
}

/// Natural log of positive normal doubles (fdlibm's e_log.c, branch-free: x = 2^k (1+f)
/// with 1+f in [sqrt(2)/2, sqrt(2)), log(1+f) from s = f/(2+f)).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ln(x: __m256d) -> __m256d {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const LG1: f64 = 6.666_666_666_666_735_130e-1;
    const LG2: f64 = 3.999_999_999_940_941_908e-1;
    const LG3: f64 = 2.857_142_874_366_239_149e-1;
    const LG4: f64 = 2.222_219_843_214_978_396e-1;
    const LG5: f64 = 1.818_357_216_161_805_012e-1;
    const LG6: f64 = 1.531_383_769_920_937_332e-1;
    const LG7: f64 = 1.479_819_860_511_658_591e-1;
    let s = _mm256_set1_pd;
    let bits = _mm256_castpd_si256(x);
    let hx = _mm256_srli_epi64::<32>(bits);
    let low = _mm256_and_si256(bits, _mm256_set1_epi64x(0xffff_ffff));
    let mut k = _mm256_sub_epi64(_mm256_srli_epi64::<20>(hx), _mm256_set1_epi64x(1023));
    let hm = _mm256_and_si256(hx, _mm256_set1_epi64x(0x000f_ffff));
    let i = _mm256_and_si256(
        _mm256_add_epi64(hm, _mm256_set1_epi64x(0x95f64)),
        _mm256_set1_epi64x(0x10_0000),
    );
    let new_hi = _mm256_or_si256(hm, _mm256_xor_si256(i, _mm256_set1_epi64x(0x3ff0_0000)));
    k = _mm256_add_epi64(k, _mm256_srli_epi64::<20>(i));
    let xn = _mm256_castsi256_pd(_mm256_or_si256(_mm256_slli_epi64::<32>(new_hi), low));
    let f = _mm256_sub_pd(xn, s(1.0));
    let dk = i64_to_f64(k);
    let hfsq = _mm256_mul_pd(s(0.5), _mm256_mul_pd(f, f));
    let sv = _mm256_div_pd(f, _mm256_add_pd(s(2.0), f));
    let z = _mm256_mul_pd(sv, sv);
    let w = _mm256_mul_pd(z, z);
    let t1 = _mm256_mul_pd(
        w,
        _mm256_fmadd_pd(w, _mm256_fmadd_pd(w, s(LG6), s(LG4)), s(LG2)),
    );
    let t2 = _mm256_mul_pd(
        z,
        _mm256_fmadd_pd(
            w,
            _mm256_fmadd_pd(w, _mm256_fmadd_pd(w, s(LG7), s(LG5)), s(LG3)),
            s(LG1),
        ),
    );
    let r = _mm256_add_pd(t2, t1);
    // k*ln2_hi - ((hfsq - (s*(hfsq+R) + k*ln2_lo)) - f)
    let inner = _mm256_add_pd(
        _mm256_mul_pd(sv, _mm256_add_pd(hfsq, r)),
        _mm256_mul_pd(dk, s(LN2_LO)),
    );
    _mm256_sub_pd(
        _mm256_mul_pd(dk, s(LN2_HI)),
        _mm256_sub_pd(_mm256_sub_pd(hfsq, inner), f),
    )
}

/// (sin x, cos x) for 0 <= x <= 2 pi: reduction by pi/2 in three parts (fdlibm's
/// constants, exact products for these small quotients), then fdlibm's kernels.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sincos(x: __m256d) -> (__m256d, __m256d) {
    const PIO2_1: f64 = 1.570_796_326_734_125_614_17;
    const PIO2_2: f64 = 6.077_100_506_303_965_976_60e-11;
    const PIO2_3: f64 = 2.022_266_248_711_166_455_80e-21;
    // fdlibm's S1..S6 and C1..C6.
    const SIN: [f64; 6] = [
        -1.666_666_666_666_663_243_48e-1,
        8.333_333_333_322_489_461_24e-3,
        -1.984_126_982_985_794_931_34e-4,
        2.755_731_370_707_006_767_89e-6,
        -2.505_076_025_340_686_341_95e-8,
        1.589_690_995_211_550_102_21e-10,
    ];
    const COS: [f64; 6] = [
        4.166_666_666_666_660_190_37e-2,
        -1.388_888_888_887_410_957_49e-3,
        2.480_158_728_947_672_941_78e-5,
        -2.755_731_435_139_066_330_35e-7,
        2.087_572_321_298_174_827_90e-9,
        -1.135_964_755_778_819_482_65e-11,
    ];
    let s = _mm256_set1_pd;
    let magic = s(6755399441055744.0); // 1.5 * 2^52: adding it rounds to an integer
    let t = _mm256_add_pd(_mm256_mul_pd(x, s(std::f64::consts::FRAC_2_PI)), magic);
    let n = _mm256_sub_pd(t, magic);
    let q = _mm256_castpd_si256(t); // low bits: the quadrant
    let mut r = _mm256_fnmadd_pd(n, s(PIO2_1), x);
    r = _mm256_fnmadd_pd(n, s(PIO2_2), r);
    r = _mm256_fnmadd_pd(n, s(PIO2_3), r);
    let z = _mm256_mul_pd(r, r);
    // sin: r + r^3 (S1 + z (S2 + z (S3 + z (S4 + z (S5 + z S6)))))
    let v = _mm256_mul_pd(z, r);
    let sin_r = _mm256_add_pd(r, _mm256_mul_pd(v, horner(z, &SIN)));
    // cos: w + (((1 - w) - z/2) + z * z (C1 + ...)), w = 1 - z/2
    let rc = _mm256_mul_pd(z, horner(z, &COS));
    let hz = _mm256_mul_pd(s(0.5), z);
    let w = _mm256_sub_pd(s(1.0), hz);
    let cos_r = _mm256_add_pd(
        w,
        _mm256_add_pd(
            _mm256_sub_pd(_mm256_sub_pd(s(1.0), w), hz),
            _mm256_mul_pd(z, rc),
        ),
    );
    // Quadrant q: sin x = [S, C, -S, -C][q], cos x = [C, -S, -C, S][q].
    let one = _mm256_set1_epi64x(1);
    let two = _mm256_set1_epi64x(2);
    let swap = _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(q, one), one));
    let sin_neg = _mm256_cmpeq_epi64(_mm256_and_si256(q, two), two);
    let cos_neg = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_add_epi64(q, one), two), two);
    let sign = s(-0.0);
    let sin_x = _mm256_blendv_pd(sin_r, cos_r, swap);
    let cos_x = _mm256_blendv_pd(cos_r, sin_r, swap);
    let sin_x = _mm256_xor_pd(sin_x, _mm256_and_pd(_mm256_castsi256_pd(sin_neg), sign));
    let cos_x = _mm256_xor_pd(cos_x, _mm256_and_pd(_mm256_castsi256_pd(cos_neg), sign));
    (sin_x, cos_x)
}

/// c[0] + z (c[1] + z (c[2] + ...)), one FMA a coefficient from the highest.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn horner(z: __m256d, c: &[f64]) -> __m256d {
    let (last, rest) = c.split_last().expect("a polynomial has a coefficient");
    let mut p = _mm256_set1_pd(*last);
    for &k in rest.iter().rev() {
        p = _mm256_fmadd_pd(z, p, _mm256_set1_pd(k));
    }
    p
}
