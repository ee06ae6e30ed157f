//! Shared test support: ulp distances and dual-number gradients of generic code.
#![allow(dead_code)]

use num_dual::Dual64;

/// Distance in units in the last place between two f64 (0 when equal,
/// including equal infinities; `u64::MAX` when either is NaN).
pub fn ulps64(a: f64, b: f64) -> u64 {
    if a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    let key = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 { i64::MIN - bits } else { bits }
    };
    key(a).abs_diff(key(b))
}

/// Distance in units in the last place between two f32.
pub fn ulps32(a: f32, b: f32) -> u64 {
    if a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    let key = |x: f32| {
        let bits = x.to_bits() as i32;
        if bits < 0 { i32::MIN - bits } else { bits }
    };
    u64::from(key(a).abs_diff(key(b)))
}

/// |a − b| ≤ rel·max(|a|, |b|) + abs.
pub fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs()) + abs
}

/// Gradient of `f` at `x` by forward-mode dual numbers, one coordinate at a time.
pub fn dual_gradient(x: &[f64], f: impl Fn(&[Dual64]) -> Dual64) -> Vec<f64> {
    (0..x.len())
        .map(|j| {
            let xs: Vec<Dual64> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if i == j {
                        Dual64::from_re(v).derivative()
                    } else {
                        Dual64::from_re(v)
                    }
                })
                .collect();
            f(&xs).eps
        })
        .collect()
}

/// A small deterministic generator (SplitMix64) so test inputs are reproducible.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A probability vector of length c.
    pub fn simplex(&mut self, c: usize) -> Vec<f64> {
        let v: Vec<f64> = (0..c).map(|_| self.uniform(0.01, 1.0)).collect();
        let s: f64 = v.iter().sum();
        v.iter().map(|x| x / s).collect()
    }
}
