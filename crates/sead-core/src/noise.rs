//! Seeded Gaussian noise for the hidden state during training. One stream per sample,
//! derived from (seed, sample index), so the noise does not depend on the thread count.

/// SplitMix64: tiny, fast, and good enough to feed Box-Muller.
pub struct NoiseStream {
    state: u64,
    spare: Option<f32>,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl NoiseStream {
    pub fn new(seed: u64, stream: u64) -> Self {
        NoiseStream {
            state: mix(seed ^ mix(stream.wrapping_add(0x9E37_79B9_7F4A_7C15))),
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in (0, 1], never 0 so the logarithm below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Fills `out` with the next `out.len()` standard normals: the values `normal()` would
    /// return one by one, and the stream ends in the same state. With `Simd::Avx2` the
    /// Box-Muller pairs are computed four at a time in f64 (`kernel::avx2_noise`); the f32
    /// values then equal the scalar ones but for about one in 10^8, which differs by one
    /// ulp.
    pub fn fill_normal(&mut self, out: &mut [f32], simd: crate::kernel::Simd) {
        let mut rest = out;
        if rest.is_empty() {
            return;
        }
        if let Some(v) = self.spare.take() {
            rest[0] = v;
            rest = &mut rest[1..];
        }
        #[cfg(target_arch = "x86_64")]
        if simd == crate::kernel::Simd::Avx2 && crate::kernel::avx2_noise::available() {
            let whole = rest.len() / 16 * 16;
            let (head, tail) = rest.split_at_mut(whole);
            crate::kernel::avx2_noise::fill_pairs(head, || self.uniform());
            rest = tail;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = simd;
        for v in rest {
            *v = self.normal();
        }
    }

    /// A standard normal sample (Box-Muller, both values used).
    pub fn normal(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let th = std::f64::consts::TAU * self.uniform();
        self.spare = Some((r * th.sin()) as f32);
        (r * th.cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_unit_moments_and_is_reproducible() {
        let mut s = NoiseStream::new(7, 3);
        let n = 200_000;
        let v: Vec<f64> = (0..n).map(|_| s.normal() as f64).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        let mut again = NoiseStream::new(7, 3);
        assert_eq!(again.normal() as f64, v[0]);
        let mut other = NoiseStream::new(7, 4);
        assert_ne!(other.normal() as f64, v[0]);
    }
}
