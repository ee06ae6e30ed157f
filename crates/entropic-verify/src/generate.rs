//! Input generators: edge cases, log-spaced sweeps and seeded random cases.
//!
//! Random cases come from proptest's `TestRng` seeded explicitly (ChaCha),
//! so every run with the same seed tries the same inputs; the seed is
//! recorded in the [`crate::Report`].

use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// A seeded source of test inputs.
#[derive(Debug)]
pub struct Inputs {
    rng: TestRng,
    extensive: bool,
}

impl Inputs {
    /// Inputs from `seed`; `extensive` multiplies random case counts by 20.
    pub fn new(seed: u64, extensive: bool) -> Self {
        let mut bytes = [0u8; 32];
        for (i, b) in seed.to_le_bytes().iter().enumerate() {
            bytes[i] = *b;
            bytes[i + 8] = b.rotate_left(3) ^ 0x5a;
        }
        Self {
            rng: TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
            extensive,
        }
    }

    /// How many random cases to draw: `default`, or 20× in extensive mode.
    pub fn count(&self, default: usize) -> usize {
        if self.extensive { default * 20 } else { default }
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Log-uniform in `[lo, hi)` (both > 0).
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    /// Picks one element.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// A row of `c` logits with a random spread in {1, 10, 100, 1e4}.
    pub fn logits(&mut self, c: usize) -> Vec<f64> {
        let spread = self.pick(&[1.0, 10.0, 100.0, 1e4]);
        let shift = self.pick(&[0.0, 0.0, 1e3, -1e6]);
        (0..c).map(|_| shift + self.uniform(-spread, spread)).collect()
    }

    /// A row of `c` moderate logits (|z| ≤ 8), for checks whose error
    /// grows with the logits' scale (finite differences).
    pub fn moderate_logits(&mut self, c: usize) -> Vec<f64> {
        (0..c).map(|_| self.uniform(-8.0, 8.0)).collect()
    }

    /// A probability vector of length `c`; with `zeros`, some entries may be 0.
    pub fn simplex(&mut self, c: usize, zeros: bool) -> Vec<f64> {
        let mut v: Vec<f64> = (0..c)
            .map(|_| {
                if zeros && c > 1 && self.below(4) == 0 {
                    0.0
                } else {
                    self.log_uniform(1e-3, 1.0)
                }
            })
            .collect();
        if v.iter().all(|&x| x == 0.0) {
            v[0] = 1.0;
        }
        let s: f64 = v.iter().sum();
        let mut p: Vec<f64> = v.iter().map(|x| x / s).collect();
        // Re-normalize the largest entry so the f64 sum is as close to 1 as
        // rounding allows.
        let (imax, _) = p
            .iter()
            .enumerate()
            .fold((0, 0.0), |b, (i, &x)| if x > b.1 { (i, x) } else { b });
        let rest: f64 = p.iter().enumerate().filter(|(i, _)| *i != imax).map(|(_, x)| x).sum();
        p[imax] = 1.0 - rest;
        p
    }

    /// Fixed edge-case logit rows: all-equal huge, the classic (1e8, 1e8),
    /// extreme spreads, masked classes, a single class.
    pub fn edge_logit_rows() -> Vec<Vec<f64>> {
        vec![
            vec![1e8, 1e8],
            vec![1e300, 1e300, 1e300],
            vec![-1e300, -1e300],
            vec![0.0, 0.0, 0.0, 0.0],
            vec![1e4, -1e4, 0.0],
            vec![700.0, -700.0, 0.5],
            vec![0.0, f64::NEG_INFINITY, 1.0],
            vec![3.0],
            vec![1e-300, -1e-300, 5e-324],
            vec![f64::MAX, f64::MAX],
        ]
    }

    /// `k` log-spaced points from `lo` to `hi` (both > 0), inclusive.
    pub fn spaced(lo: f64, hi: f64, k: usize) -> Vec<f64> {
        if k < 2 {
            return vec![lo];
        }
        (0..k)
            .map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (k - 1) as f64).exp())
            .collect()
    }
}
