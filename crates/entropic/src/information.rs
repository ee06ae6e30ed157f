//! Information content, entropy, cross-entropy and divergences of
//! probability vectors.
//!
//! Inputs are validated probability vectors (entries in `[0, 1]`, sum 1
//! within [`crate::NORMALIZATION_TOLERANCE_EPS_PER_ENTRY`]`·n·ε`). The
//! convention `0·ln 0 = 0` holds throughout; a term `p_i > 0 = q_i` makes a
//! cross-entropy or KL divergence `+∞`, its exact value. All functions are
//! in nats; [`Base`] converts.
//!
//! Gradients are partial derivatives with the entries treated as
//! independent variables (not projected onto the simplex), as autodiff
//! frameworks compute them.

use crate::domain::{check_in_range, check_probability_vector};
use crate::error::{Error, Result};
use crate::real::Real;

/// The unit of an information quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    /// Natural logarithm (the unit every function here returns).
    Nats,
    /// Base-2 logarithm: `bits = nats / ln 2`.
    Bits,
}

impl Base {
    /// Converts a value in nats to this base.
    ///
    /// # Example
    /// ```
    /// use entropic::{entropy, Base};
    /// let h = entropy(&[0.5_f64, 0.5])?;
    /// assert_eq!(Base::Bits.from_nats(h), 1.0);
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn from_nats<T: Real>(self, nats: T) -> T {
        match self {
            Base::Nats => nats,
            Base::Bits => nats / T::from_f64(std::f64::consts::LN_2),
        }
    }
}

fn check_pair<T: Real>(p: &[T], q: &[T]) -> Result<()> {
    check_probability_vector("p", p)?;
    check_probability_vector("q", q)?;
    if p.len() != q.len() {
        return Err(Error::ShapeMismatch {
            what: "q",
            expected: p.len(),
            actual: q.len(),
        });
    }
    Ok(())
}

/// `p·ln(p/q)` with `0·ln(0/q) = 0`.
fn p_ln_p_over_q<T: Real>(p: &T, q: &T) -> T {
    if p.re() == 0.0 {
        T::zero()
    } else {
        p.clone() * (p.clone() / q.clone()).ln()
    }
}

/// Information content (surprisal) `I(p) = −ln p` of an event of
/// probability `p`; `+∞` at `p = 0`.
///
/// Gradient: `−1/p`.
///
/// # Errors
/// [`Error::OutOfDomain`] / [`Error::NonFinite`] for `p ∉ [0, 1]`.
///
/// # Example
/// ```
/// assert_eq!(entropic::information(0.25_f64)?, 4f64.ln());
/// assert_eq!(entropic::information(0.0_f64)?, f64::INFINITY);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn information<T: Real>(p: T) -> Result<T> {
    check_in_range("p", std::slice::from_ref(&p), 0, 0.0, 1.0, "a probability in [0, 1]")?;
    Ok(-p.ln())
}

/// Shannon entropy `H(P) = −Σ_i p_i ln p_i = E_P[I]`, in nats.
///
/// Gradient: [`entropy_grad`].
///
/// # Errors
/// [`Error::Empty`], [`Error::OutOfDomain`], [`Error::NonFinite`],
/// [`Error::NotNormalized`] for an invalid probability vector.
///
/// # Example
/// ```
/// let h = entropic::entropy(&[0.25_f64; 4])?;
/// assert!((h - 4f64.ln()).abs() <= f64::EPSILON);
/// assert_eq!(entropic::entropy(&[1.0_f64, 0.0])?, 0.0);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Shannon 1948, "A Mathematical Theory of Communication", §6.
pub fn entropy<T: Real>(p: &[T]) -> Result<T> {
    check_probability_vector("p", p)?;
    Ok(-p
        .iter()
        .map(|pi| {
            if pi.re() == 0.0 {
                T::zero()
            } else {
                pi.clone() * pi.ln()
            }
        })
        .sum::<T>())
}

/// `∂H/∂p_i = −(ln p_i + 1)` (`+∞` at `p_i = 0`, the exact one-sided slope).
///
/// # Errors
/// As [`entropy`].
///
/// # Example
/// ```
/// let g = entropic::entropy_grad(&[0.5_f64, 0.5])?;
/// assert_eq!(g, vec![2f64.ln() - 1.0; 2]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn entropy_grad<T: Real>(p: &[T]) -> Result<Vec<T>> {
    check_probability_vector("p", p)?;
    Ok(p.iter().map(|pi| -(pi.ln() + T::one())).collect())
}

/// Cross-entropy `H(P, Q) = −Σ_i p_i ln q_i = H(P) + KL(P‖Q)`, in nats.
///
/// Note the minus sign: `Σ p ln q` is the *negative* cross-entropy.
///
/// # Errors
/// As [`entropy`] for either argument, [`Error::ShapeMismatch`] when their
/// lengths differ.
///
/// # Example
/// ```
/// let h = entropic::cross_entropy(&[1.0_f64, 0.0], &[0.5, 0.5])?;
/// assert_eq!(h, 2f64.ln());
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn cross_entropy<T: Real>(p: &[T], q: &[T]) -> Result<T> {
    check_pair(p, q)?;
    Ok(-p
        .iter()
        .zip(q)
        .map(|(pi, qi)| {
            if pi.re() == 0.0 {
                T::zero()
            } else {
                pi.clone() * qi.ln()
            }
        })
        .sum::<T>())
}

/// Gradient of [`cross_entropy`]: `(∂/∂p_i, ∂/∂q_i) = (−ln q_i, −p_i/q_i)`.
///
/// # Errors
/// As [`cross_entropy`].
///
/// # Example
/// ```
/// let (dp, dq) = entropic::cross_entropy_grad(&[1.0_f64, 0.0], &[0.5, 0.5])?;
/// assert_eq!(dp, vec![2f64.ln(), 2f64.ln()]);
/// assert_eq!(dq, vec![-2.0, 0.0]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn cross_entropy_grad<T: Real>(p: &[T], q: &[T]) -> Result<(Vec<T>, Vec<T>)> {
    check_pair(p, q)?;
    let dp = q.iter().map(|qi| -qi.ln()).collect();
    let dq = p.iter().zip(q).map(|(pi, qi)| -(pi.clone() / qi.clone())).collect();
    Ok((dp, dq))
}

/// Kullback–Leibler divergence `KL(P‖Q) = Σ_i p_i ln(p_i / q_i) ≥ 0`, in nats.
///
/// This is the correct form: *not* `Σ P·ln P / ln Q`, as one widely copied
/// note has it. Not symmetric in `P` and `Q`.
///
/// # Errors
/// As [`cross_entropy`].
///
/// # Example
/// ```
/// let kl = entropic::kl_divergence(&[0.5_f64, 0.5], &[0.25, 0.75])?;
/// let expected = 0.5 * (2f64).ln() + 0.5 * (2.0f64 / 3.0).ln();
/// assert!((kl - expected).abs() <= 2.0 * f64::EPSILON * expected);
/// assert_eq!(entropic::kl_divergence(&[0.5_f64, 0.5], &[1.0, 0.0])?, f64::INFINITY);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Kullback & Leibler 1951, "On Information and Sufficiency", eq. (2.4).
pub fn kl_divergence<T: Real>(p: &[T], q: &[T]) -> Result<T> {
    check_pair(p, q)?;
    Ok(p.iter().zip(q).map(|(pi, qi)| p_ln_p_over_q(pi, qi)).sum())
}

/// Gradient of [`kl_divergence`]: `(∂/∂p_i, ∂/∂q_i) = (ln(p_i/q_i) + 1, −p_i/q_i)`.
///
/// # Errors
/// As [`kl_divergence`].
///
/// # Example
/// ```
/// let (dp, dq) = entropic::kl_divergence_grad(&[0.5_f64, 0.5], &[0.5, 0.5])?;
/// assert_eq!(dp, vec![1.0, 1.0]);
/// assert_eq!(dq, vec![-1.0, -1.0]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn kl_divergence_grad<T: Real>(p: &[T], q: &[T]) -> Result<(Vec<T>, Vec<T>)> {
    check_pair(p, q)?;
    let dp = p
        .iter()
        .zip(q)
        .map(|(pi, qi)| (pi.clone() / qi.clone()).ln() + T::one())
        .collect();
    let dq = p.iter().zip(q).map(|(pi, qi)| -(pi.clone() / qi.clone())).collect();
    Ok((dp, dq))
}

/// Jensen–Shannon divergence `JS(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M)`,
/// `M = (P + Q)/2`; symmetric, `0 ≤ JS ≤ ln 2`, always finite.
///
/// # Errors
/// As [`cross_entropy`].
///
/// # Example
/// ```
/// let js = entropic::js_divergence(&[1.0_f64, 0.0], &[0.0, 1.0])?;
/// assert_eq!(js, 2f64.ln());
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Lin 1991, "Divergence measures based on the Shannon entropy", eq. (4.1).
pub fn js_divergence<T: Real>(p: &[T], q: &[T]) -> Result<T> {
    check_pair(p, q)?;
    let half = T::from_f64(0.5);
    Ok(p.iter()
        .zip(q)
        .map(|(pi, qi)| {
            let m = (pi.clone() + qi.clone()) * half.clone();
            p_ln_p_over_q(pi, &m) + p_ln_p_over_q(qi, &m)
        })
        .sum::<T>()
        * half)
}

/// Gradient of [`js_divergence`]: `(∂/∂p_i, ∂/∂q_i) = (½ ln(p_i/m_i), ½ ln(q_i/m_i))`
/// (the `+1` and `−p/(2m) − q/(2m)` terms cancel).
///
/// # Errors
/// As [`js_divergence`].
///
/// # Example
/// ```
/// let (dp, dq) = entropic::js_divergence_grad(&[0.5_f64, 0.5], &[0.5, 0.5])?;
/// assert_eq!(dp, vec![0.0, 0.0]);
/// assert_eq!(dq, vec![0.0, 0.0]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn js_divergence_grad<T: Real>(p: &[T], q: &[T]) -> Result<(Vec<T>, Vec<T>)> {
    check_pair(p, q)?;
    let half = T::from_f64(0.5);
    let g = |a: &T, b: &T| {
        let m = (a.clone() + b.clone()) * half.clone();
        (a.clone() / m).ln() * half.clone()
    };
    let dp = p.iter().zip(q).map(|(pi, qi)| g(pi, qi)).collect();
    let dq = q.iter().zip(p).map(|(qi, pi)| g(qi, pi)).collect();
    Ok((dp, dq))
}
