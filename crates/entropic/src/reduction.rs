//! Reductions over a batch, with PyTorch's denominators.

use crate::error::{Error, Result};
use crate::real::Real;

/// How per-sample (or per-element) losses are combined into one number.
///
/// The denominators follow PyTorch: see each loss for what `Mean` divides
/// by. There is deliberately no "auto" choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Keep the unreduced losses; the returned gradient is that of their sum
    /// (PyTorch's `backward` with `grad_output = ones`).
    None,
    /// Sum of the unreduced losses.
    Sum,
    /// Weighted mean (the loss's own denominator, as in PyTorch).
    Mean,
    /// Sum divided by the number of rows `n` (`F.kl_div`'s `batchmean`, the
    /// true mean KL divergence per sample).
    BatchMean,
}

impl Reduction {
    /// PyTorch's spelling (`"none"`, `"sum"`, `"mean"`, `"batchmean"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reduction::None => "none",
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
            Reduction::BatchMean => "batchmean",
        }
    }

    /// The factor that multiplies the sum: 1 for `None`/`Sum`, `1/mean_den`
    /// for `Mean`, `1/n` for `BatchMean`.
    ///
    /// # Errors
    /// [`Error::Empty`] for `Mean`/`BatchMean` of an empty batch,
    /// [`Error::ZeroTotalWeight`] for a zero (weighted) denominator.
    pub(crate) fn scale(self, mean_den: f64, n: usize) -> Result<f64> {
        let den = match self {
            Reduction::None | Reduction::Sum => return Ok(1.0),
            Reduction::Mean => mean_den,
            Reduction::BatchMean => n as f64,
        };
        if n == 0 {
            return Err(Error::Empty { what: "batch" });
        }
        if den <= 0.0 || !den.is_finite() {
            return Err(Error::ZeroTotalWeight { total: den });
        }
        Ok(1.0 / den)
    }
}

/// The value of a loss over a batch.
///
/// # Example
/// ```
/// use entropic::{Batch, Reduction, SoftmaxCrossEntropy, Targets};
/// let logits = [0.0, 0.0, 2.0, 0.0];
/// let out = SoftmaxCrossEntropy::new()
///     .with_reduction(Reduction::Sum)
///     .loss(Batch::new(&logits, 2, 2)?, Targets::<f64>::Classes(&[0, 0]))?;
/// assert_eq!(out.unreduced.len(), 2);
/// assert!((out.reduced.unwrap() - out.unreduced.iter().sum::<f64>()).abs() < 1e-15);
/// # Ok::<(), entropic::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutput<T> {
    /// One loss per sample (cross-entropy, focal, bi-tempered) or per element
    /// (binary cross-entropy, `kl_div`), before reduction, unscaled.
    pub unreduced: Vec<T>,
    /// The reduced loss; `None` for [`Reduction::None`].
    pub reduced: Option<T>,
}

/// The checks of a `reduced_loss_and_grad_into`: a reduction with a single
/// value, and a gradient buffer of the logits' length.
pub(crate) fn check_reduced_only(reduction: Reduction, logits_len: usize, grad_len: usize) -> Result<()> {
    if reduction == Reduction::None {
        return Err(Error::IncompatibleOptions(
            "reduced_loss_and_grad_into needs a Mean or Sum reduction (Reduction::None has no single value)",
        ));
    }
    if grad_len != logits_len {
        return Err(Error::ShapeMismatch {
            what: "gradient buffer",
            expected: logits_len,
            actual: grad_len,
        });
    }
    Ok(())
}

/// Applies `scale` (from [`Reduction::scale`]) to a sequential sum of
/// `unreduced`, in a fixed order (deterministic).
pub(crate) fn reduce_generic<D: Real>(unreduced: &[D], reduction: Reduction, scale: f64) -> Option<D> {
    match reduction {
        Reduction::None => None,
        _ => {
            let sum = unreduced.iter().cloned().fold(D::zero(), |acc, v| acc + v);
            // A +∞ term is exact (a positive label on an impossible event) and
            // every other term is finite, so the exact sum is +∞, even where
            // the finite terms' partial sums overflow to −∞ (which gives NaN).
            // Only that NaN is replaced: a sum that is merely beyond the `f64`
            // range (a high-precision type, whose `re()` rounds it to +∞)
            // keeps its value and its derivatives.
            if sum.re().is_nan() && unreduced.iter().any(|v| v.re() == f64::INFINITY) {
                return Some(D::from_f64(f64::INFINITY));
            }
            Some(if scale == 1.0 { sum } else { sum.scale_f64(scale) })
        }
    }
}

/// `f64` accumulation of kernel results (the caller rounds once to `T`):
/// blocks of [`REDUCE_BLOCK`] terms, each summed over 8 lanes, the block sums
/// then added in order. Blocks run in parallel with the `parallel` feature;
/// the association is fixed by the length alone, so the bits do not depend
/// on the thread count. (Every term is one row's or element's loss, ≥ 0 for
/// most losses; the error is ≤ (len/8 + 8)·ε·Σ|terms|, far below the
/// per-term errors for the lengths of one batch.)
pub(crate) fn reduce_f64(unreduced: &[f64], reduction: Reduction, scale: f64) -> Option<f64> {
    match reduction {
        Reduction::None => None,
        _ if unreduced.contains(&f64::INFINITY) => Some(f64::INFINITY),
        _ => Some(block_sums(unreduced) * scale),
    }
}

/// Terms per block of [`reduce_f64`].
const REDUCE_BLOCK: usize = 1 << 14;

/// `2^-64`: finite terms scaled by it cannot overflow in any partial sum of
/// fewer than `2^64` of them.
const OVERFLOW_SCALE: f64 = 1.0 / 18_446_744_073_709_551_616.0;

fn block_sums(xs: &[f64]) -> f64 {
    let s = scaled_block_sums(xs, 1.0);
    if s.is_finite() {
        return s;
    }
    // A partial sum of finite terms overflowed (e.g. f64::MAX and −f64::MAX
    // in different lanes give +∞ and −∞, then NaN, where the exact sum is
    // 0). Sum again scaled by 2^-64 — exact for every term above 2^-958,
    // and the smaller ones are negligible next to terms that overflowed —
    // and scale back: ±∞ only where the exact sum overflows.
    scaled_block_sums(xs, OVERFLOW_SCALE) / OVERFLOW_SCALE
}

fn scaled_block_sums(xs: &[f64], scale: f64) -> f64 {
    #[cfg(feature = "parallel")]
    let sums: Vec<f64> = {
        use rayon::prelude::*;
        xs.par_chunks(REDUCE_BLOCK).map(|b| lane_sum(b, scale)).collect()
    };
    #[cfg(not(feature = "parallel"))]
    let sums: Vec<f64> = xs.chunks(REDUCE_BLOCK).map(|b| lane_sum(b, scale)).collect();
    sums.iter().sum()
}

/// `Σ scale·x` over 8 lanes, combined in a fixed order (vectorizes).
fn lane_sum(xs: &[f64], scale: f64) -> f64 {
    let mut acc = [0.0; 8];
    let mut chunks = xs.chunks_exact(8);
    for ch in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(ch) {
            *a += scale * x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += scale * x;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the hostile proptest: ±f64::MAX terms in different lanes
    /// overflowed to +∞ and −∞ and gave NaN; the exact sum is 0.
    #[test]
    fn cancelling_huge_terms_do_not_give_nan() {
        let mut xs = vec![0.0; 15];
        xs[1] = f64::MAX;
        xs[3] = -f64::MAX;
        xs[12] = f64::MAX;
        xs[14] = -f64::MAX;
        assert_eq!(reduce_f64(&xs, Reduction::Sum, 1.0), Some(0.0));
        // A sum that really overflows is +∞, not NaN.
        assert_eq!(reduce_f64(&[f64::MAX; 3], Reduction::Sum, 1.0), Some(f64::INFINITY));
        // Tiny terms next to cancelling huge ones: finite (their exact sum
        // is 1; any association is within ε·f64::MAX of it).
        assert!(
            reduce_f64(&[f64::MAX, 1e-300, -f64::MAX, 1.0], Reduction::Sum, 1.0)
                .unwrap()
                .is_finite()
        );
    }
}
