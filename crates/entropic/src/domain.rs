//! Input-domain checks shared by the generic definitions and the fast
//! kernels, so both reject exactly the same inputs with the same error.
//!
//! Checks look at real parts only ([`Real::re`]).

use crate::error::{Error, Position, Result};
use crate::real::Real;

/// Relative allowance, in units of the type's machine epsilon per entry, for
/// a probability vector's sum to differ from 1.
///
/// Reason: each of `n` entries correctly rounded contributes at most ε/2 of
/// relative error and a sequential sum adds at most (n − 1)·ε/2 more, so a
/// vector that is exactly normalized before rounding sums to 1 within n·ε.
/// A factor 2 admits vectors produced by one more rounded operation (e.g. a
/// softmax). Anything further off is not a probability vector.
pub const NORMALIZATION_TOLERANCE_EPS_PER_ENTRY: f64 = 2.0;

/// Logits: no NaN, no +∞; −∞ (a masked class) allowed when `allow_neg_inf`.
pub(crate) fn check_logits<T: Real>(what: &'static str, data: &[T], c: usize, allow_neg_inf: bool) -> Result<()> {
    let bad = |v: f64| v.is_nan() || v == f64::INFINITY || (v == f64::NEG_INFINITY && !allow_neg_inf);
    // A branch-free count first (vectorized for f32 and f64 data); the
    // search for the first bad entry only where there is one.
    if crate::kernels::rows::count_where(data, |x| bad(x.re())) == 0 {
        return Ok(());
    }
    for (i, x) in data.iter().enumerate() {
        let v = x.re();
        if bad(v) {
            return Err(Error::NonFinite {
                what,
                at: Position::cell(i, c),
                value: v,
                requirement: if allow_neg_inf {
                    "finite or -inf (a masked class)"
                } else {
                    "finite"
                },
            });
        }
    }
    Ok(())
}

/// Logits that may be ±∞ but not NaN (binary cross-entropy, whose limits at
/// ±∞ are well defined).
pub(crate) fn check_not_nan<T: Real>(what: &'static str, data: &[T], c: usize) -> Result<()> {
    for (i, x) in data.iter().enumerate() {
        let v = x.re();
        if v.is_nan() {
            return Err(Error::NonFinite {
                what,
                at: Position::cell(i, c),
                value: v,
                requirement: "not NaN",
            });
        }
    }
    Ok(())
}

/// Values in `[lo, hi]` (finite).
pub(crate) fn check_in_range<T: Real>(
    what: &'static str,
    data: &[T],
    c: usize,
    lo: f64,
    hi: f64,
    requirement: &'static str,
) -> Result<()> {
    // A branch-free count first (vectorized), the search for the first bad
    // entry only where there is one; with finite bounds `v ∈ [lo, hi]`
    // implies `v` finite (and is false for NaN).
    let bounded = lo.is_finite() && hi.is_finite();
    if bounded && crate::kernels::rows::count_where(data, |x| !(x.re() >= lo && x.re() <= hi)) == 0 {
        return Ok(());
    }
    for (i, x) in data.iter().enumerate() {
        let v = x.re();
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what,
                at: Position::cell(i, c),
                value: v,
                requirement,
            });
        }
        if !(lo..=hi).contains(&v) {
            return Err(Error::OutOfDomain {
                what,
                at: Position::cell(i, c),
                value: v,
                requirement,
            });
        }
    }
    Ok(())
}

/// Per-class weights: finite and `>= 0`, of length `c`.
pub(crate) fn check_weights(what: &'static str, w: &[f64], c: usize) -> Result<()> {
    if w.len() != c {
        return Err(Error::ShapeMismatch {
            what,
            expected: c,
            actual: w.len(),
        });
    }
    check_in_range(what, w, 0, 0.0, f64::MAX, "finite and >= 0")
}

/// A probability vector: entries in [0, 1] and sum 1 within
/// [`NORMALIZATION_TOLERANCE_EPS_PER_ENTRY`]·n·ε.
pub(crate) fn check_probability_vector<T: Real>(what: &'static str, p: &[T]) -> Result<()> {
    if p.is_empty() {
        return Err(Error::Empty { what });
    }
    check_in_range(what, p, 0, 0.0, 1.0, "a probability in [0, 1]")?;
    let sum: f64 = p.iter().map(Real::re).sum();
    let tolerance = NORMALIZATION_TOLERANCE_EPS_PER_ENTRY * p.len() as f64 * T::epsilon();
    if (sum - 1.0).abs() > tolerance {
        return Err(Error::NotNormalized {
            what,
            at: Position::Index(0),
            sum,
            tolerance,
        });
    }
    Ok(())
}

/// A scalar parameter that must be finite and lie in `[lo, hi]` (use
/// `f64::INFINITY` for an open upper end).
pub(crate) fn check_parameter(name: &'static str, value: f64, ok: bool, requirement: &'static str) -> Result<f64> {
    if value.is_nan() || !ok {
        return Err(Error::InvalidParameter {
            name,
            value,
            requirement,
        });
    }
    Ok(value)
}
