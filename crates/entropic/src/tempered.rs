//! Tempered logarithm and exponential, the tempered softmax and sigmoid, and
//! the bi-tempered logistic loss (Amid, Warmuth, Anil, Koren, NeurIPS 2019).
//!
//! # The normalizer
//! The tempered softmax `p_i = exp_t(a_i − λ)` needs the scalar `λ(a)` with
//! `Σ_i exp_t(a_i − λ) = 1`, which has no closed form for `t ≠ 1`. It is
//! solved in `f64` on the real parts, after the max shift `z = a − max a`
//! (so the shifted root `λ'` lies in `[0, −log_t(1/c)]`: the max term gives
//! `S(0) ≥ 1`, and `S(λ') ≤ c·exp_t(−λ')` gives `S ≤ 1` at the upper end), by
//! Newton's method on `F(λ) = log_t S(λ)`, `S(λ) = Σ_i exp_t(z_i − λ)`.
//! `F` is exactly linear in `λ` when all logits are equal and at `t = 1`
//! (`ln S = lse(z) − λ`), so Newton is fast from the first step.
//!
//! Safeguards: every evaluation tightens the bracket `[lo, hi]`. A Newton
//! point outside the bracket (or not finite) is replaced, when the iterate is
//! left of the root (`S > 1`), by the Newton step on `S` itself, and
//! otherwise by bisection. Convergence: `S` is convex and decreasing in `λ`
//! (`exp_t` is convex for `t > 0`), so Newton on `S` from the left never
//! passes the root and converges monotonically; for `S > 1` the step on `F`,
//! `log_t(S)·S^t/Σp^t`, is at least the step on `S`, `(S − 1)/Σp^t`, so the
//! left iterates increase monotonically at least as fast; right iterates
//! only tighten `hi`, and points outside the bracket bisect it. The
//! convergence is quadratic near the root.
//!
//! The iteration stops when the Newton step is below
//! `2ε·|λ'| + ε/(2·Σ p_i^t)`, i.e. when it would change `Σ p` by about one
//! rounding error. The iteration cap ([`TEMPERED_SOFTMAX_MAX_ITERATIONS`] by
//! default) is only a safety limit: hitting it is [`Error::NotConverged`].
//! Observed: at most 12 evaluations (mean 3) for rows of 2 to 100 000
//! logits spread over ±1 to ±1e4 and t ∈ {0.1, 0.5, 0.9, 0.99, 1.01, 1.5, 2, 4}.
//!
//! # Derivatives of λ
//! The generic (dual-number) path never differentiates through the loop:
//! `λ` is lifted from its converged `f64` value by two Newton steps on
//! `S(λ) − 1` in the scalar type `T`, each with its real part removed (so the
//! real value stays the converged one). Newton's method on a truncated
//! Taylor series doubles the number of exact coefficients per step, so one
//! step gives exact first derivatives (the implicit-function theorem,
//! `∂λ/∂a_i = p_i^t / Σ_j p_j^t`, the escort weights) and two steps exact
//! derivatives up to order 3 (Hessians with `Dual2`/`HyperDual`). A type
//! more precise than `f64` ([`Real::precision_beyond_f64`], the verifier's
//! reference) takes full Newton steps instead, until the step is below its
//! own precision, so its `λ` is exact to that precision and not the `f64`
//! root.

use crate::batch::Batch;
use crate::cross_entropy::Targets;
use crate::domain::{check_in_range, check_logits, check_parameter};
use crate::error::{Error, Position, Result};
use crate::kernels::{self, rows};
use crate::real::{Float, Real};
use crate::reduction::{LossOutput, Reduction, reduce_f64, reduce_generic};
use crate::softmax::{check_batch, check_row, shifted_log_sum};

/// Default safety cap on the evaluations of the normalization function per
/// row (see [`TemperedSoftmax::with_max_iterations`]). Not reached in
/// practice: the safeguarded Newton iteration needs about 2–12.
pub const TEMPERED_SOFTMAX_MAX_ITERATIONS: usize = 200;

/// Largest `t·ln c` accepted for `t > 1`: beyond it the shifted normalizer
/// `λ' ≈ c^{t−1}/(t−1)` and the escort denominator `Σ p^t ≥ c^{−t}` leave the
/// `f64` range.
const MAX_T_LN_C: f64 = 700.0;

/// `log_t(x) = (x^{1−t} − 1)/(1 − t)`, the tempered logarithm, with
/// `log_1 = ln`. Generic.
///
/// # Formula
/// Evaluated as `expm1((1 − t)·ln x)/(1 − t)`, which stays accurate as
/// `t → 1` (the literal formula loses all digits at `1 − t ≈ 1e−14`); at
/// `t = 1` exactly it is `ln x`. The two agree up to the true `O(1 − t)`
/// difference `(1−t)·(ln x)²/2`: there is no jump at `t = 1`.
///
/// # Conventions
/// `log_t(0) = −1/(1 − t)` for `t < 1` (bounded below: the source of the
/// bi-tempered loss's robustness), `−∞` for `t ≥ 1`. `x < 0` or NaN gives
/// NaN, as `ln` does. `t` is a constant (not differentiated).
///
/// # Gradient
/// `d/dx log_t(x) = x^{−t}` (automatic in dual numbers).
///
/// # Example
/// ```
/// use entropic::log_t;
/// assert_eq!(log_t(1.0_f64, 0.5), 0.0);
/// assert!((log_t(4.0_f64, 0.5) - 2.0).abs() < 1e-15); // (√4 − 1)/0.5
/// assert_eq!(log_t(0.0_f64, 0.5), -2.0);
/// assert_eq!(log_t(2.0_f64, 1.0), 2f64.ln());
/// ```
///
/// # References
/// Amid, Warmuth, Anil, Koren (NeurIPS 2019), "Robust Bi-Tempered Logistic
/// Loss Based on Bregman Divergences", Eq. (1).
pub fn log_t<T: Real>(x: T, t: f64) -> T {
    if t == 1.0 {
        return x.ln();
    }
    let k = 1.0 - t;
    x.ln().scale_f64(k).exp_m1() / T::from_f64(k)
}

/// `exp_t(x) = [1 + (1 − t)·x]_+^{1/(1−t)}`, the tempered exponential (the
/// inverse of [`log_t`]), with `exp_1 = exp`. Generic.
///
/// # Formula
/// Evaluated as `exp(ln1p((1 − t)·x)/(1 − t))`, accurate as `t → 1`; at
/// `t = 1` exactly it is `e^x`.
///
/// # Conventions
/// - `t < 1` (finite support): `exp_t(x) = 0` where `1 + (1 − t)x ≤ 0`,
///   with zero derivative there.
/// - `t > 1` (heavy tail): the function has a pole at `x = 1/(t − 1)`;
///   `exp_t(x) = +∞` for `x ≥ 1/(t − 1)` (the limit from the left; the
///   formula is undefined beyond the pole). The tempered softmax only
///   evaluates it at `x ≤ 0`.
/// - `exp_t(−∞) = 0` for every `t`; NaN gives NaN.
///
/// # Gradient
/// `d/dx exp_t(x) = exp_t(x)^t` (automatic in dual numbers).
///
/// # Example
/// ```
/// use entropic::{exp_t, log_t};
/// assert_eq!(exp_t(0.0_f64, 2.0), 1.0);
/// assert!((exp_t(-1.0_f64, 2.0) - 0.5).abs() < 1e-16); // 1/(1 + 1)
/// assert_eq!(exp_t(-3.0_f64, 0.5), 0.0); // outside the support
/// assert!((exp_t(log_t(0.3_f64, 1.5), 1.5) - 0.3).abs() < 1e-16);
/// ```
///
/// # References
/// Amid et al. (NeurIPS 2019), Eq. (2).
pub fn exp_t<T: Real>(x: T, t: f64) -> T {
    exp_t_and_power(x, t).0
}

/// `(exp_t(x), exp_t(x)^t)`; the second is the derivative of the first and
/// is computed as `exp_t(x)/(1 + (1−t)x)` (since `exp_t^{1−t} = 1 + (1−t)x`).
fn exp_t_and_power<T: Real>(x: T, t: f64) -> (T, T) {
    if x.is_neg_infinity() {
        return (T::zero(), T::zero());
    }
    if t == 1.0 {
        let e = x.exp();
        return (e.clone(), e);
    }
    let k = 1.0 - t;
    let kx = x.scale_f64(k);
    if kx.re() <= -1.0 {
        return if t < 1.0 {
            (T::zero(), T::zero())
        } else {
            (T::from_f64(f64::INFINITY), T::from_f64(f64::INFINITY))
        };
    }
    let p = (kx.ln_1p() / T::from_f64(k)).exp();
    let pt = p.clone() / (T::one() + kx);
    (p, pt)
}

/// `ln exp_t(u) = ln1p((1 − t)·u)/(1 − t)` (`u` at `t = 1`): the log of a
/// tempered probability without forming the probability, so that it stays
/// finite where `exp_t(u)` underflows. `−∞` outside the support (`t < 1`)
/// and at `u = −∞`, with zero derivative there.
fn ln_exp_t<T: Real>(u: T, t: f64) -> T {
    if u.is_neg_infinity() {
        return T::from_f64(f64::NEG_INFINITY);
    }
    if t == 1.0 {
        return u;
    }
    let k = 1.0 - t;
    let ku = u.scale_f64(k);
    if ku.re() <= -1.0 {
        return T::from_f64(if t < 1.0 { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if ku.re() == f64::INFINITY {
        // t > 1 and (1 − t)·u beyond the range although u is finite: the 1
        // in ln(1 + (1−t)u) is negligible (below 1e-292 relative).
        return ((-u).ln() + T::from_f64((-k).ln())) / T::from_f64(k);
    }
    ku.ln_1p() / T::from_f64(k)
}

/// `ln exp_t(a − μ − λ')` for a heavy tail (`t > 1`) where the shifted
/// logit `a − μ` overflows to `−∞` although `a` is finite (logits of both
/// signs beyond `f64::MAX/2`): the probability is positive, and its log
/// `ln(1 + |k|·D)/k` (`k = 1 − t`, `D = μ − a + λ' > f64::MAX`) is finite
/// (≈ −7 080 for `D ≈ 2e308`, `t = 1.1`). Formed as
/// `(ln|k| + ln(μ/2 − a/2 + λ'/2) + ln 2)/k`; the dropped `ln1p(1/(|k|D))`
/// is below `1e-292` (`|k| ≥ 2^-52`).
fn ln_exp_t_far<T: Real>(a: T, mu: T, lambda: T, t: f64) -> T {
    let k = 1.0 - t;
    let half_d = mu.scale_f64(0.5) - a.scale_f64(0.5) + lambda.scale_f64(0.5);
    (half_d.ln() + T::from_f64(std::f64::consts::LN_2 + (-k).ln())) / T::from_f64(k)
}

/// `y·log_t(p)` from `ln p`, for a label `y > 0`: `y·expm1((1−t)·ln p)/(1−t)`
/// (accurate as `t → 1`), or, where `(1−t)·ln p` is so large that `p^{1−t}`
/// overflows although `y·p^{1−t}` does not (a tiny label, `t` near 2, found
/// by `cargo fuzz`), `(e^{ln y + (1−t)·ln p} − y)/(1−t)`.
fn y_log_t_of_ln<T: Real>(y: f64, ln_p: T, t: f64) -> T {
    if t == 1.0 {
        return ln_p.scale_f64(y);
    }
    let k = 1.0 - t;
    let kl = ln_p.scale_f64(k);
    if kl.re() > 700.0 {
        ((kl + T::from_f64(y.ln())).exp() - T::from_f64(y)) / T::from_f64(k)
    } else {
        kl.exp_m1().scale_f64(y) / T::from_f64(k)
    }
}

/// `|ℓ| = |ln(p/y)|` below which [`bregman_term`] sums its series: there
/// the direct difference loses up to `−log2 |ℓ| + 1` bits; at `|ℓ| ≥ 1/4`
/// the direct form loses at most 3 bits, and the series' terms shrink at
/// least by `c·|ℓ|/k ≤ 1/(2k)` per degree.
const BREGMAN_SERIES_RADIUS: f64 = 0.25;

/// A cap on the series' degree, so that the loop is bounded whatever its
/// input: on `|ℓ| < 1/4` the tail bound is below `1e-180` at degree 100,
/// under the rounding of every working precision used (≤ 512 bits), so the
/// cap never cuts the sum short.
const BREGMAN_SERIES_MAX_DEGREE: f64 = 128.0;

/// One class's Bregman term of the bi-tempered loss for a label `y > 0` and
/// `p > 0` (finite `ln p`):
/// `y·(log_t y − log_t p) − (y^{2−t} − p^{2−t})/(2−t) = y^{2−t}·φ(ℓ)` with
/// `ℓ = ln(p/y)` and `φ(ℓ) = expm1((2−t)ℓ)/(2−t) − expm1((1−t)ℓ)/(1−t) ≥ 0`.
///
/// Near a perfect prediction (`p ≈ y`) the two halves cancel to `≈ y^{2−t} ℓ²/2`,
/// so `φ` is summed there as `Σ_{k≥2} (a^{k−1} − b^{k−1}) ℓ^k/k!`
/// (`a = 2 − t`, `b = 1 − t`, `a − b = 1`) until the tail is below the
/// type's [`Real::epsilon`], and the loss keeps its relative accuracy
/// instead of an absolute error of `ε·y^{2−t}`.
fn bregman_term<T: Real>(y: f64, ln_p: T, t: f64) -> T {
    let (a, b) = (2.0 - t, 1.0 - t);
    let ln_y = T::from_f64(y).ln();
    let l = ln_p.clone() - ln_y.clone();
    let l_abs = l.re().abs();
    if l_abs >= BREGMAN_SERIES_RADIUS {
        let p_term = (ln_p.scale_f64(a).exp() - ln_y.clone().scale_f64(a).exp()) / T::from_f64(a);
        return p_term - (y_log_t_of_ln(y, ln_p, t) - y_log_t_of_ln(y, ln_y, t));
    }
    // Tail bound: |a^{k−1} − b^{k−1}|·|ℓ|^k/k! ≤ 2·c^{k−1}|ℓ|^k/k! with
    // c = max(|a|, |b|) ≤ 2, against φ ≥ ℓ²/4 on |ℓ| < 1/4; `bound` is
    // 2·c^{k−1}|ℓ|^{k−2}/k!, so the sum stops once the next term is below
    // ε/4 of φ.
    let c = a.abs().max(b.abs());
    let (a_t, b_t) = (T::from_f64(a), T::from_f64(b));
    let (mut a_pow, mut b_pow) = (a_t.clone(), b_t.clone());
    let mut l_pow = l.clone() * l.clone() / T::from_f64(2.0);
    let mut phi = T::zero();
    let mut bound = c;
    let limit = T::epsilon() / 16.0;
    let mut k = 2.0;
    loop {
        phi += (a_pow.clone() - b_pow.clone()) * l_pow.clone();
        k += 1.0;
        bound *= c * l_abs / k;
        if bound <= limit || k >= BREGMAN_SERIES_MAX_DEGREE {
            break;
        }
        a_pow *= a_t.clone();
        b_pow *= b_t.clone();
        l_pow = l_pow * l.clone() / T::from_f64(k);
    }
    ln_y.scale_f64(a).exp() * phi
}

/// The result of normalizing one row with [`TemperedSoftmax::normalize`].
#[derive(Debug, Clone, PartialEq)]
pub struct TemperedNormalization<T> {
    /// `p_i = exp_t(a_i − λ)`, summing to 1.
    pub probabilities: Vec<T>,
    /// `ln p_i`, computed without forming `p_i` (finite where `p_i`
    /// underflows to 0 but is positive; `−∞` outside the support).
    pub log_probabilities: Vec<T>,
    /// The normalizer `λ` (in `T`, with implicit derivatives), `= μ + λ'`
    /// with `μ` the max logit.
    pub lambda: T,
    /// Evaluations of the normalization function used (0 at `t = 1`, where
    /// the log-sum-exp is closed form).
    pub iterations: usize,
}

/// The tempered softmax with its temperature and solver limit; see the
/// module documentation for the algorithm.
///
/// # Formula
/// `p_i = exp_t(a_i − λ(a))` with `λ` solving `Σ_i exp_t(a_i − λ) = 1`.
/// `t = 1` is the ordinary softmax (computed with the shifted log-sum-exp);
/// `t > 1` has heavy tails (every `p_i > 0`); `0 < t < 1` has finite
/// support (`p_i = 0` when `a_i ≤ λ − 1/(1 − t)`).
///
/// # Conventions
/// `−∞` logits are masked classes (`p = 0`). `Σ p = 1` to within rounding:
/// `|Σ p − 1| ≤` [`crate::NORMALIZATION_TOLERANCE_EPS_PER_ENTRY`]`·c·ε`.
///
/// # Gradient
/// `∂p_j/∂a_i = p_j^t·(δ_ij − ẽ_i)` with the escort `ẽ_i = p_i^t/Σ_k p_k^t`
/// (from `∂λ/∂a_i = ẽ_i`); dual numbers get it through the implicit lift.
///
/// # Errors
/// [`Error::InvalidParameter`] for `t ≤ 0`, non-finite `t`, a zero cap, or
/// `t > 1` with `t·ln c > 700` (the normalizer would overflow `f64`);
/// [`Error::Empty`], [`Error::NonFinite`] (NaN, `+∞`), [`Error::NoFiniteLogit`];
/// [`Error::NotConverged`] if the safety cap is hit.
///
/// # Example
/// ```
/// use entropic::TemperedSoftmax;
/// let n = TemperedSoftmax::new(4.0)?.normalize(&[4.0_f64, -3.0, -6.0])?;
/// let sum: f64 = n.probabilities.iter().sum();
/// assert!((sum - 1.0).abs() <= 4.0 * f64::EPSILON);
/// // Google's reference reports 0.41369352: its 5 fixed-point iterations
/// // stop ~1e-3 short of the normalized value at t = 4.
/// assert!((n.probabilities[0] - 0.41235244286).abs() < 1e-10);
/// assert!(n.iterations <= 10);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Amid et al. (NeurIPS 2019), Eq. (5) (tempered softmax) and §3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemperedSoftmax {
    t: f64,
    max_iterations: usize,
}

impl TemperedSoftmax {
    /// The tempered softmax with temperature `t > 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `t ≤ 0`, NaN or `±∞`.
    pub fn new(t: f64) -> Result<Self> {
        let t = check_parameter("t", t, t.is_finite() && t > 0.0, "finite and > 0")?;
        Ok(Self {
            t,
            max_iterations: TEMPERED_SOFTMAX_MAX_ITERATIONS,
        })
    }

    /// Safety cap on solver evaluations per row (`≥ 1`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for 0.
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Result<Self> {
        check_parameter("max_iterations", max_iterations as f64, max_iterations >= 1, ">= 1")?;
        self.max_iterations = max_iterations;
        Ok(self)
    }

    /// The temperature.
    pub fn t(&self) -> f64 {
        self.t
    }

    /// The iteration cap.
    pub fn max_iterations(&self) -> usize {
        self.max_iterations
    }

    /// Normalizes one row. Generic: with dual numbers, `λ` and the
    /// probabilities carry exact (implicit) derivatives.
    ///
    /// # Errors
    /// See [`TemperedSoftmax`].
    pub fn normalize<T: Real>(&self, row: &[T]) -> Result<TemperedNormalization<T>> {
        check_row("logits", row, 0)?;
        normalize_row(row, self.t, self.max_iterations, 0)
    }
}

/// `p_i = exp_t(a_i − λ)` with `Σ p = 1` ([`TemperedSoftmax`] with the
/// default iteration cap). Generic.
///
/// # Errors
/// As [`TemperedSoftmax`].
///
/// # Example
/// ```
/// let p = entropic::tempered_softmax(&[0.0_f64, 0.0, 0.0, 0.0], 1.5)?;
/// assert!(p.iter().all(|&x| (x - 0.25).abs() <= f64::EPSILON));
/// let p = entropic::tempered_softmax(&[5.0_f64, 0.0], 0.5)?; // finite support
/// assert_eq!(p, vec![1.0, 0.0]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn tempered_softmax<T: Real>(row: &[T], t: f64) -> Result<Vec<T>> {
    Ok(TemperedSoftmax::new(t)?.normalize(row)?.probabilities)
}

/// The tempered sigmoid: the second component of
/// `tempered_softmax([0, a], t)` (the ordinary sigmoid at `t = 1`). Generic.
///
/// # Errors
/// As [`tempered_softmax`] (NaN or `+∞` activation; `a = −∞` gives 0).
///
/// # Example
/// ```
/// let s = entropic::tempered_sigmoid(3.0_f64, 4.0)?;
/// // Google's reference test has 0.58516014 (its 5 iterations are not converged).
/// assert!((s - 0.58502950615).abs() < 1e-10);
/// assert_eq!(entropic::tempered_sigmoid(0.0_f64, 0.3)?, 0.5);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Amid et al. (NeurIPS 2019), §3; google/bi-tempered-loss `tempered_sigmoid`.
pub fn tempered_sigmoid<T: Real>(a: T, t: f64) -> Result<T> {
    let mut p = tempered_softmax(&[T::zero(), a], t)?;
    p.pop().ok_or(Error::Empty { what: "logits" })
}

/// When [`halley_solve`] may stop (besides a step below the rounding
/// tolerance, which is always a stop, with the step taken).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// Only there: the reference's solver.
    Confirmed,
    /// Also after a Halley step of relative size `≤ PREDICTED_ROOT_STEP`:
    /// the error after it is of the order of the step cubed (below `2^-60`
    /// relative), so the caller computes the row at the new `λ` and checks
    /// the solver's stopping test there instead of spending a pass.
    Predicted,
    /// After a step of relative size `≤ COARSE_STEP`: the `f32` first phase,
    /// whose `λ` is only a starting point.
    Coarse,
    /// As `Coarse`, or after a Halley step whose predicted successor
    /// (`COARSE_CUBIC_FACTOR · step³`, relative) is within
    /// `PREDICTED_ROOT_STEP`: the `f32` phase of a long row, whose last
    /// pass takes that next step in `f64` (a row where it is larger goes on
    /// with the `f64` solver: slower, not less accurate).
    CoarseCubic,
}

/// The relative step size (in units of `|λ| + 1/Q`, the scale on which `S`
/// changes by about itself) below which a Halley step's result is taken
/// as the root, to be checked by the caller: `2^-20`, cubed `2^-60`, a
/// margin of `2^8` for the constant of the cubic convergence.
const PREDICTED_ROOT_STEP: f64 = 9.5367431640625e-7;

/// The relative step size that ends the `f32` phase: `2^-14`. After a
/// Halley step that size the error is of the order of its cube (`2^-42`),
/// far below the `f32` sums' own noise (about `2^-24` relative), so the
/// start is as good as `f32` makes it; one `f64` Halley step from there has
/// a relative size near `2^-24`, within [`PREDICTED_ROOT_STEP`].
const COARSE_STEP: f64 = 6.103515625e-5;

/// The constant of [`Stop::CoarseCubic`]'s prediction: a Halley step of
/// relative size `r` leaves an error of about `K·r³`. Measured on the
/// benchmark's rows (c = 1000, logits in [−4, 4)), the next step over the
/// cube of the last: `K` = 0.03 at t = 1.2, 0.07 at t = 0.8; 0.2 leaves a
/// margin of 3 (a row beyond it costs `f64` passes, not accuracy).
const COARSE_CUBIC_FACTOR: f64 = 0.2;

/// The cap on `f32` passes (a starting point only; the `f64` solver goes on
/// from wherever they stop).
const COARSE_MAX_PASSES: usize = 6;

/// A root of `S(λ) = Σ exp_t(z_i − λ) = 1` found by [`halley_solve`].
#[derive(Debug, Clone, Copy)]
struct Root {
    lambda: f64,
    /// Passes over the row.
    evaluations: usize,
    /// Whether the last pass found a step below the rounding tolerance
    /// (otherwise the root was predicted, see [`Stop::Predicted`]).
    confirmed: bool,
    /// Whether `lambda` is the `f32` phase's start, left for the row's last
    /// pass to take the `f64` Halley step from (see
    /// [`solve_shifted_normalizer_fast`]).
    coarse: bool,
}

/// The Newton step on `F = log_t S` at a point with residual `S − 1` and
/// `Q = Σp^t`: `F/(−F') = log_t(S)·S^t/Q`, with `ln S = ln1p(S − 1)`.
fn newton_step(excess: f64, q: f64, t: f64) -> f64 {
    let k = 1.0 - t;
    let ln_s = excess.ln_1p();
    (k * ln_s).exp_m1() / k * (t * ln_s).exp() / q
}

/// The step on `λ` from a point with residual `S − 1`, `Q = Σp^t` and
/// `R = Σp^{2t−1}`, and whether it is Halley's: Newton on `F = log_t S`
/// (`h = F/(−F')`) with Halley's correction from `F''` (`S' = −Q`,
/// `S'' = t·R`), `h/(1 − h·t·(R − Q²/S)/(2Q))`, used only while the factor
/// is near 1 (cubic convergence near the root, Newton's step far from it).
fn halley_step(excess: f64, q: f64, r: f64, t: f64) -> (f64, bool) {
    let s = 1.0 + excess;
    let h = newton_step(excess, q, t);
    let denominator = 1.0 - h * t * (r - q * q / s) / (2.0 * q);
    let halley = (0.5..=2.0).contains(&denominator);
    (if halley { h / denominator } else { h }, halley)
}

/// The relative size of a step on `λ`, in units of `|λ| + 1/Q` (the scale
/// on which `S` changes by about itself).
fn relative_step(step: f64, lambda: f64, q: f64) -> f64 {
    step.abs() * q / (lambda.abs() * q + 1.0)
}

/// A step this small changes `Σp` by about one rounding: converged.
fn rounding_tolerance(lambda: f64, q: f64) -> f64 {
    2.0 * f64::EPSILON * lambda.abs() + 0.5 * f64::EPSILON / q
}

/// The safeguarded Halley iteration for the shifted normalizer `λ' ≥ 0`
/// (`z_i ≤ 0`, `max z_i = 0`, `t ≠ 1`, `c` entries) from `start`, with
/// `sums(λ) = (S − 1, Q, R)`, `R = Σ p^{2t−1}`. `Err(residual)` when
/// `max_iterations` passes did not stop it.
fn halley_solve(
    mut sums: impl FnMut(f64) -> (f64, f64, f64),
    t: f64,
    c: usize,
    start: f64,
    max_iterations: usize,
    stop: Stop,
) -> std::result::Result<Root, f64> {
    let k = 1.0 - t;
    let ln_c = (c as f64).ln();
    // S(hi) ≤ c·exp_t(−hi) = 1 (equality for equal logits). Widened by far
    // more than its rounding error, so that a Newton step onto the root of
    // an (almost) equal row, itself rounded, stays strictly inside.
    let hi0 = -(-k * ln_c).exp_m1() / k;
    let mut hi = hi0 * (1.0 + 1e-6) + f64::MIN_POSITIVE;
    let mut lo = 0.0_f64;
    let mut lambda = if (lo..hi).contains(&start) { start } else { 0.0 };
    let mut residual = f64::NAN;
    let root = |lambda, evaluations, confirmed| {
        Ok(Root {
            lambda,
            evaluations,
            confirmed,
            coarse: false,
        })
    };
    for it in 1..=max_iterations {
        let (excess, q, r) = sums(lambda);
        residual = excess;
        if excess == 0.0 {
            return root(lambda, it, true);
        }
        if excess > 0.0 {
            lo = lambda;
        } else {
            hi = lambda;
        }
        let (step, halley) = halley_step(excess, q, r, t);
        let newton = lambda + step;
        let tol = rounding_tolerance(lambda, q);
        if step.abs() <= tol {
            return root(if (lo..=hi).contains(&newton) { newton } else { lambda }, it, true);
        }
        let inside = |x: f64| x.is_finite() && x > lo && x < hi;
        let next = if inside(newton) {
            newton
        } else if excess > 0.0 && inside(lambda + excess / q) {
            // Left of the root, Newton on the convex S never passes the root.
            lambda + excess / q
        } else {
            0.5 * (lo + hi)
        };
        let moved = (next - lambda).abs();
        if moved <= tol || hi - lo <= tol {
            return root(next, it, true);
        }
        let relative = relative_step(moved, lambda, q);
        let early = match stop {
            Stop::Confirmed => false,
            Stop::Predicted => halley && next == newton && relative <= PREDICTED_ROOT_STEP,
            Stop::Coarse => relative <= COARSE_STEP,
            Stop::CoarseCubic => {
                relative <= COARSE_STEP || (halley && COARSE_CUBIC_FACTOR * relative.powi(3) <= PREDICTED_ROOT_STEP)
            }
        };
        if early {
            return root(next, it, false);
        }
        lambda = next;
    }
    Err(residual)
}

/// The error of a normalizer that hit the iteration cap.
fn not_converged(row: usize, iterations: usize, residual: f64) -> Error {
    Error::NotConverged {
        what: "tempered softmax normalizer",
        row,
        iterations,
        residual,
    }
}

/// Solves `Σ exp_t(z_i − λ') = 1` for the shifted normalizer `λ' ≥ 0`
/// (`z_i ≤ 0`, `max z_i = 0`, `t ≠ 1`) in `f64` from `λ' = 0`, to a
/// confirmed root (the reference). Returns `(λ', evaluations)`.
fn solve_shifted_normalizer(z: &[f64], t: f64, max_iterations: usize, row: usize) -> Result<(f64, usize)> {
    let top = z.iter().filter(|&&x| x == 0.0).count();
    let sums = |lambda| crate::kernels::tempered::tempered_sums(z, top, lambda, t);
    halley_solve(sums, t, z.len(), 0.0, max_iterations, Stop::Confirmed)
        .map(|r| (r.lambda, r.evaluations))
        .map_err(|residual| not_converged(row, max_iterations, residual))
}

/// Rows shorter than this take the `f64` solver's pass after the `f32`
/// phase (see [`solve_shifted_normalizer_fast`]): there a pass is cheap
/// against the per-row work, and the conformance vectors' short rows keep
/// their path.
const SERIES_MIN_CLASSES: usize = 64;

/// The fast path's solver: `f32` passes to a starting point
/// ([`Stop::Coarse`]), then `f64` Halley steps to a predicted or confirmed
/// root ([`Stop::Predicted`]); a predicted root is checked by the caller.
///
/// On rows of at least [`SERIES_MIN_CLASSES`] entries whose top
/// entries hold at most half the mass at the start, the `f32` start is
/// returned as it is ([`Root::coarse`]): the row's last pass (in `f64`)
/// forms the sums there, takes the Halley step, and moves the row to the
/// new `λ` by a series. A confident row (`p_top` near 1, where the loss
/// depends on the small probabilities' last bits, see `accuracy.md`) keeps
/// the `f64` pass.
fn solve_shifted_normalizer_fast(z: &[f64], top: usize, t: f64, max_iterations: usize, row: usize) -> Result<Root> {
    let sums32 = |lambda| crate::kernels::tempered::tempered_sums32(z, lambda, t);
    let start = if t > 1.0 && z.len() >= SERIES_MIN_CLASSES {
        heavy_tail_start(crate::kernels::tempered::finite_moments(z), t).unwrap_or(0.0)
    } else {
        0.0
    };
    // Long rows end the f32 phase one pass early where the cubic
    // convergence predicts the f64 last pass's step within its bound.
    let stop = if z.len() >= SERIES_MIN_CLASSES {
        Stop::CoarseCubic
    } else {
        Stop::Coarse
    };
    let (start, coarse, settled) = match halley_solve(sums32, t, z.len(), start, COARSE_MAX_PASSES, stop) {
        Ok(r) => (r.lambda, r.evaluations, true),
        Err(_) => (0.0, COARSE_MAX_PASSES, false),
    };
    if settled && z.len() >= SERIES_MIN_CLASSES && top as f64 * exp_t(-start, t) <= 0.5 {
        return Ok(Root {
            lambda: start,
            evaluations: coarse,
            confirmed: false,
            coarse: true,
        });
    }
    let sums = |lambda| crate::kernels::tempered::tempered_sums(z, top, lambda, t);
    let mut root = halley_solve(sums, t, z.len(), start, max_iterations, Stop::Predicted)
        .map_err(|residual| not_converged(row, max_iterations, residual))?;
    root.evaluations += coarse;
    Ok(root)
}

/// The largest second-order correction `α/A²` (see [`heavy_tail_start`])
/// for which the moment estimate is taken as the start: there the
/// neglected fourth-order term is a few percent of `S` (on the benchmark's
/// rows the estimate is within about 0.5 % of the root, relative).
const MOMENT_START_MAX_CORRECTION: f64 = 0.25;

/// A starting `λ'` for a heavy-tailed normalizer (`t > 1`) from the moments
/// `(n, Σz, Σz²)` of the row's finite shifted logits: with `k = 1 − t < 0`,
/// `u_i = 1 + k(z_i − λ) = A + k(z_i − z̄)`, `A = 1 + k(z̄ − λ)`, the second
/// order expansion of `S = Σ u_i^{1/k}` about the mean is
/// `n·A^{1/k}·(1 + α/A²)`, `α = t·σ²/2`; `S = 1` at
/// `A = (n·(1 + α/A²))^{−k}` (two fixed-point steps from `A = n^{−k}`),
/// `λ = (1 + k z̄ − A)/k`. `None` where the correction is large (a peaked
/// row, where the expansion fails): the solver then starts from 0. Only a
/// start: the solver's steps and stopping tests decide the root.
fn heavy_tail_start((n, sum, sum_sq): (f64, f64, f64), t: f64) -> Option<f64> {
    let k = 1.0 - t;
    if n < 2.0 {
        return None;
    }
    let mean = sum / n;
    let var = (sum_sq / n - mean * mean).max(0.0);
    let alpha = t * var / 2.0;
    let mut a = n.powf(-k);
    let correction = alpha / (a * a);
    if correction.is_nan() || correction > MOMENT_START_MAX_CORRECTION {
        return None;
    }
    for _ in 0..2 {
        a = (n * (1.0 + alpha / (a * a))).powf(-k);
    }
    let lambda = (1.0 + k * mean - a) / k;
    (lambda.is_finite() && lambda > 0.0).then_some(lambda)
}

fn check_heavy_tail_range(name: &'static str, t: f64, c: usize) -> Result<()> {
    if t > 1.0 && t * (c as f64).ln() > MAX_T_LN_C {
        return Err(Error::InvalidParameter {
            name,
            value: t,
            requirement: "t * ln(classes) <= 700 when t > 1 (the normalizer would overflow f64)",
        });
    }
    Ok(())
}

/// Tempered softmax of a validated row, generic, with the implicit lift of λ.
fn normalize_row<T: Real>(
    row: &[T],
    t: f64,
    max_iterations: usize,
    row_index: usize,
) -> Result<TemperedNormalization<T>> {
    check_heavy_tail_range("t", t, row.len())?;
    if t == 1.0 {
        let (m, l) = shifted_log_sum(row);
        let log_probabilities: Vec<T> = row.iter().map(|a| a.clone() - m.clone() - l.clone()).collect();
        let probabilities = log_probabilities.iter().map(Real::exp).collect();
        return Ok(TemperedNormalization {
            probabilities,
            log_probabilities,
            lambda: m + l,
            iterations: 0,
        });
    }
    let mut best = 0;
    for (i, a) in row.iter().enumerate() {
        if a.re() > row[best].re() {
            best = i;
        }
    }
    let mu = row[best].clone();
    let z: Vec<T> = row.iter().map(|a| a.clone() - mu.clone()).collect();
    let z_re: Vec<f64> = z.iter().map(Real::re).collect();
    let (lambda0, iterations) = solve_shifted_normalizer(&z_re, t, max_iterations, row_index)?;
    // Implicit lift: Newton steps on S(λ) − 1 in T. For f64-based types two
    // steps with the real parts removed (the value stays the converged f64
    // one, the derivative parts become exact); for a type more precise than
    // f64 (the verifier's reference) full steps until the step is below its
    // own precision: quadratic convergence from the f64 root doubles the
    // correct bits per step (53 → 106 → … → 848 in 4 steps), so the cap of
    // LIFT_MAX_STEPS is never the limit at ≤ 512 bits.
    const LIFT_MAX_STEPS: usize = 8;
    let wide = T::precision_beyond_f64();
    let mut lambda = T::from_f64(lambda0);
    for step in 0..LIFT_MAX_STEPS {
        if !wide && step == 2 {
            break;
        }
        let (mut s, mut q) = (T::zero(), T::zero());
        for zi in &z {
            let (p, pt) = exp_t_and_power(zi.clone() - lambda.clone(), t);
            s += p;
            q += pt;
        }
        let delta = (s - T::one()) / q;
        if wide {
            let small = delta.abs().re() <= T::epsilon() * lambda.abs().re().max(f64::MIN_POSITIVE);
            lambda += delta;
            if small && step >= 1 {
                break;
            }
        } else {
            let delta_re = T::from_f64(delta.re());
            lambda += delta - delta_re;
        }
    }
    let log_probabilities: Vec<T> = z
        .iter()
        .zip(row)
        .map(|(zi, a)| {
            if t > 1.0 && zi.is_neg_infinity() && !a.is_neg_infinity() {
                ln_exp_t_far(a.clone(), mu.clone(), lambda.clone(), t)
            } else {
                ln_exp_t(zi.clone() - lambda.clone(), t)
            }
        })
        .collect();
    let probabilities = z
        .iter()
        .zip(&log_probabilities)
        .map(|(zi, lp)| {
            if zi.is_neg_infinity() {
                lp.exp()
            } else {
                exp_t(zi.clone() - lambda.clone(), t)
            }
        })
        .collect();
    Ok(TemperedNormalization {
        probabilities,
        log_probabilities,
        lambda: mu + lambda,
        iterations,
    })
}

/// Fast-path row normalization in `f64`: writes `p`, `ln p` and `ln p / 2`,
/// and for `t ≠ 1` the inverse bases `1/(1 + (1−t)(z_i − λ))`; returns
/// `Q = Σ p_i^t` when those are consistent with `p` (`t ≠ 1` and no entry
/// replaced by the far-tail formulas), for the fused gradient, and the
/// passes over the row (0 at `t = 1`).
///
/// `ln p / 2` is finite for every positive probability: at `t = 1` a logit
/// gap beyond `f64::MAX` gives `ln p < −f64::MAX` (`−∞` in `ln_p`), whose
/// half `(a/2 − μ/2) − l/2` is still representable.
fn normalize_row_f64(
    row: &[f64],
    t: f64,
    max_iterations: usize,
    row_index: usize,
    out: RowBuffers<'_>,
) -> Result<(Option<f64>, usize)> {
    let RowBuffers {
        p,
        ln_p,
        half_ln_p,
        inv_base,
    } = out;
    check_heavy_tail_range("t", t, row.len())?;
    // Rows are validated (no NaN): the lane max is the plain max.
    let mu = crate::kernels::tempered::row_max(row);
    if t == 1.0 {
        // As the generic shifted log-sum: ln_1p of the sum without the max term.
        let best = row.iter().position(|&a| a == mu).unwrap_or(0);
        let rest: f64 = crate::softmax::compensated_sum(
            row.iter()
                .enumerate()
                .filter(|&(j, _)| j != best)
                .map(|(_, &a)| (a - mu).exp()),
        );
        let l = crate::softmax::log_one_plus(rest);
        for (((pi, lpi), hi), &a) in p.iter_mut().zip(ln_p.iter_mut()).zip(half_ln_p.iter_mut()).zip(row) {
            *lpi = (a - mu) - l;
            *hi = if *lpi == f64::NEG_INFINITY && a > f64::NEG_INFINITY {
                (0.5 * a - 0.5 * mu) - 0.5 * l
            } else {
                0.5 * *lpi
            };
            *pi = lpi.exp();
        }
        return Ok((None, 0));
    }
    let top = crate::kernels::tempered::shifted_into(row, mu, p);
    let mut root = solve_shifted_normalizer_fast(p, top, t, max_iterations, row_index)?;
    let mut sum_escort;
    // ln p and p = e^{ln p} vectorized; `p` still holds z = a − μ on entry,
    // `half_ln_p` holds it from here on (until the loop below).
    half_ln_p.copy_from_slice(p);
    loop {
        let (excess, q, r) =
            crate::kernels::tempered::tempered_logs_into(half_ln_p, top, root.lambda, t, ln_p, p, inv_base);
        sum_escort = q;
        root.evaluations += 1;
        if root.confirmed || excess == 0.0 {
            break;
        }
        if root.coarse {
            // The f64 Halley step from the f32 start, taken here: where it
            // is small (relative ≤ 2^-20, so that the error after it, of the
            // order of its cube, is below 2^-60) the row moves by the
            // series and the root is as the solver's predicted one; else the
            // f64 solver goes on from the start.
            root.coarse = false;
            let (step, halley) = halley_step(excess, q, r, t);
            if halley && relative_step(step, root.lambda, q) <= PREDICTED_ROOT_STEP {
                let next = root.lambda + step;
                sum_escort =
                    crate::kernels::tempered::tempered_step_series(step, t, half_ln_p, next, inv_base, ln_p, p);
                root.lambda = next;
                break;
            }
            root = solve_on(half_ln_p, top, t, root, Stop::Predicted, max_iterations, row_index)?;
            continue;
        }
        let step = newton_step(excess, q, t);
        if step.abs() <= rounding_tolerance(root.lambda, q) {
            // As the solver's own stop, the last step taken: to first order
            // where that is exact to rounding, else by one more pass.
            let moved = crate::kernels::tempered::tempered_step_first_order(step, inv_base, ln_p, p);
            root.lambda += step;
            root.confirmed = true;
            if moved {
                break;
            }
            continue;
        }
        // A predicted root that missed: the rounding noise of S (a few ulps
        // of each p) exceeded the tolerance (0.2–1.5 % of the rows at
        // c = 10 in the benchmark's inputs, none at c ≥ 100). The f64
        // solver from there, to a confirmed root.
        root = solve_on(half_ln_p, top, t, root, Stop::Confirmed, max_iterations, row_index)?;
    }
    let lambda = root.lambda;
    // Heavy-tail entries to replace (rare): checked by a vectorizable count.
    // `half_ln_p` still holds z until here: the far-tail loop below reads it.
    let far = t > 1.0 && crate::kernels::tempered::far_tail_count(ln_p, row) > 0;
    if !far {
        crate::kernels::scaled_into(ln_p, 0.5, half_ln_p);
        return Ok((Some(sum_escort), root.evaluations));
    }
    for (((pi, lpi), hi), &a) in p.iter_mut().zip(ln_p.iter_mut()).zip(half_ln_p.iter_mut()).zip(row) {
        if *lpi == f64::NEG_INFINITY && a > f64::NEG_INFINITY {
            // A heavy tail has no zero probability: z = a − μ overflowed
            // (`hi` holds z), or (1 − t)(z − λ) did.
            *lpi = if *hi == f64::NEG_INFINITY {
                ln_exp_t_far(a, mu, lambda, t)
            } else {
                ln_exp_t(*hi - lambda, t)
            };
            *pi = lpi.exp();
        }
        *hi = 0.5 * *lpi;
    }
    Ok((None, root.evaluations))
}

/// The `f64` solver from `root`'s `λ` on the shifted row `z` (`top`
/// entries at 0), its passes added to `root`'s.
fn solve_on(
    z: &[f64],
    top: usize,
    t: f64,
    root: Root,
    stop: Stop,
    max_iterations: usize,
    row_index: usize,
) -> Result<Root> {
    let sums = |lambda| crate::kernels::tempered::tempered_sums(z, top, lambda, t);
    let more = halley_solve(sums, t, z.len(), root.lambda, max_iterations, stop)
        .map_err(|residual| not_converged(row_index, max_iterations, residual))?;
    Ok(Root {
        evaluations: root.evaluations + more.evaluations,
        ..more
    })
}

/// The per-row buffers [`normalize_row_f64`] writes.
struct RowBuffers<'a> {
    p: &'a mut [f64],
    ln_p: &'a mut [f64],
    half_ln_p: &'a mut [f64],
    /// `1/(1 + (1−t)(z_i − λ))` (see `kernels::tempered::tempered_logs_into`),
    /// valid when [`normalize_row_f64`] returns `Some`.
    inv_base: &'a mut [f64],
}

/// The bi-tempered logistic loss over a row-major batch of activations
/// `[n, c]`.
///
/// # Formula
/// With `p = tempered_softmax(a, t2)` and labels `y` (after smoothing), per row
/// `ℓ = Σ_i [ y_i·(log_{t1} y_i − log_{t1} p_i) − (y_i^{2−t1} − p_i^{2−t1})/(2 − t1) ]`,
/// the Bregman divergence of `x ↦ x·log_{t1} x − x^{2−t1}/(2−t1)` (each
/// term is `≥ 0`).
///
/// # Conventions
/// - `t1 < 1` bounds the loss (`≤ 1/(1 − t1)` for one-hot labels);
///   `t2 > 1` gives heavy tails, `t2 < 1` finite support.
/// - At `t1 = t2 = 1` the loss is `KL(y‖softmax(a)) = Σ y ln(y/p)` for
///   normalized `y` (generally `Σ y ln(y/p) − Σ y + 1`), continuous in the
///   temperatures: it is *not* the cross-entropy `−Σ y ln p`, though the two
///   coincide for one-hot labels (they differ by the label entropy; Google's
///   TF and JAX references disagree on this point).
/// - `y_i·log_{t1} y_i = 0` at `y_i = 0`. An entry with `p_i = 0` (finite
///   support, masked `−∞` logit, or underflow) contributes the constant
///   `y_i/(1 − t1)` for `t1 < 1` and `+∞` for `t1 ≥ 1` when `y_i > 0`.
/// - Label smoothing `ε` follows Google's reference: the true class gets
///   `1 − ε`, every other class `ε/(C − 1)`; probability labels become
///   `(1 − ε·C/(C−1))·y + ε/(C−1)`. This differs from PyTorch's `ε/C`
///   convention (used by [`crate::SoftmaxCrossEntropy`]).
/// - Labels are in `[0, 1]`; rows need not be normalized, but a row of
///   zeros is an error.
/// - `Mean` and `BatchMean` divide by `n`.
///
/// # Gradient
/// `∂ℓ/∂a_i = (p_i − y_i)·p_i^{t2−t1} − ẽ_i·Σ_j (p_j − y_j)·p_j^{t2−t1}` with
/// the escort `ẽ_i = p_i^{t2}/Σ_j p_j^{t2}` (from `∂ℓ/∂p_j = (p_j − y_j)p_j^{−t1}`
/// and `∂p_j/∂a_i = p_j^{t2}(δ_ij − ẽ_i)`), scaled by the reduction. Entries
/// with `p_j = 0` are locally constant and contribute 0 (no `0·∞`); a
/// gradient beyond the `f64` range (tiny `p` with `t2 < t1`) is `±∞`, never NaN.
///
/// # Errors
/// See [`BiTemperedLogisticLoss::loss`].
///
/// # Example
/// ```
/// use entropic::{Batch, BiTemperedLogisticLoss, Reduction, Targets};
/// let a = [-0.5_f64, 0.1, 2.0];
/// let y = [0.2_f64, 0.3, 0.5];
/// let loss = BiTemperedLogisticLoss::new(0.5, 1.5)?.with_reduction(Reduction::None);
/// let (out, grad) = loss.loss_and_grad(Batch::new(&a, 1, 3)?, Targets::Probabilities(Batch::new(&y, 1, 3)?))?;
/// assert!((out.unreduced[0] - 0.02301914).abs() < 2e-4); // reference (5 fixed-point iterations)
/// assert!(grad.iter().sum::<f64>().abs() < 1e-15); // shift invariance
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Amid, Warmuth, Anil, Koren (NeurIPS 2019), "Robust Bi-Tempered Logistic
/// Loss Based on Bregman Divergences": Eq. (1)–(2) (`log_t`, `exp_t`),
/// Eq. (5) (tempered softmax), Eq. (6)–(7) (the loss as a Bregman divergence
/// with the matching gradient); code: google/bi-tempered-loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiTemperedLogisticLoss {
    t1: f64,
    t2: f64,
    label_smoothing: f64,
    reduction: Reduction,
    max_iterations: usize,
}

impl BiTemperedLogisticLoss {
    /// The loss with temperatures `0 ≤ t1 < 2`, `t2 > 0`, no smoothing and
    /// `Reduction::Mean`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `t1` or `t2`.
    pub fn new(t1: f64, t2: f64) -> Result<Self> {
        let t1 = check_parameter("t1", t1, (0.0..2.0).contains(&t1), "in [0, 2)")?;
        let t2 = check_parameter("t2", t2, t2.is_finite() && t2 > 0.0, "finite and > 0")?;
        Ok(Self {
            t1,
            t2,
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
            max_iterations: TEMPERED_SOFTMAX_MAX_ITERATIONS,
        })
    }

    /// Label smoothing `ε ∈ [0, 1)` (reference convention `ε/(C−1)`; needs `C ≥ 2`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] outside `[0, 1)` or NaN.
    pub fn with_label_smoothing(mut self, epsilon: f64) -> Result<Self> {
        self.label_smoothing = check_parameter("label_smoothing", epsilon, (0.0..1.0).contains(&epsilon), "in [0, 1)")?;
        Ok(self)
    }

    /// The reduction (`Mean` and `BatchMean` divide by `n`).
    pub fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Safety cap on the tempered-softmax solver per row (`≥ 1`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for 0.
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Result<Self> {
        check_parameter("max_iterations", max_iterations as f64, max_iterations >= 1, ">= 1")?;
        self.max_iterations = max_iterations;
        Ok(self)
    }

    /// `t1` (the temperature of the logarithm).
    pub fn t1(&self) -> f64 {
        self.t1
    }

    /// `t2` (the temperature of the softmax).
    pub fn t2(&self) -> f64 {
        self.t2
    }

    /// The label smoothing `ε`.
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn prepare<T: Real, P: Real>(&self, activations: &Batch<'_, T>, targets: &Targets<'_, P>) -> Result<f64> {
        self.prepare_scanning(activations, targets, true)
    }

    /// [`Self::prepare`]; with `scan` false without the checks of every
    /// entry (labels in `[0, 1]`, a positive label per row, activations not
    /// NaN or `+∞` and not all `−∞`), which the kernel makes row by row
    /// ([`kernels::tempered::widen_checked`]), calling the full validation for the error
    /// only when a row fails them.
    fn prepare_scanning<T: Real, P: Real>(
        &self,
        activations: &Batch<'_, T>,
        targets: &Targets<'_, P>,
        scan: bool,
    ) -> Result<f64> {
        let (n, c) = (activations.n(), activations.c());
        match targets {
            Targets::Classes(y) => {
                if y.len() != n {
                    return Err(Error::ShapeMismatch {
                        what: "targets",
                        expected: n,
                        actual: y.len(),
                    });
                }
                for (row, &k) in y.iter().enumerate() {
                    if k >= c {
                        return Err(Error::ClassOutOfRange {
                            row,
                            class: k,
                            classes: c,
                        });
                    }
                }
            }
            Targets::Probabilities(p) if !scan => activations.same_shape(p, "label targets")?,
            Targets::Probabilities(p) => {
                activations.same_shape(p, "label targets")?;
                check_in_range("label targets", p.as_slice(), c, 0.0, 1.0, "a label in [0, 1]")?;
                for (i, row) in p.rows().enumerate() {
                    if c > 0 && row.iter().all(|v| v.re() == 0.0) {
                        return Err(Error::OutOfDomain {
                            what: "label targets",
                            at: Position::Row(i),
                            value: 0.0,
                            requirement: "a row with at least one positive label",
                        });
                    }
                }
            }
        }
        if scan {
            check_batch("activations", activations)?;
        } else if c == 0 {
            return Err(Error::InvalidShape {
                what: "activations",
                n,
                c,
                requirement: "at least one class",
            });
        }
        if self.label_smoothing > 0.0 && c < 2 {
            return Err(Error::InvalidShape {
                what: "activations",
                n,
                c,
                requirement: "at least 2 classes for label smoothing",
            });
        }
        check_heavy_tail_range("t2", self.t2, c)?;
        self.reduction.scale(n as f64, n)
    }

    /// The smoothed label row `i` into `y`.
    fn labels<P: Real>(&self, targets: &Targets<'_, P>, i: usize, y: &mut [f64]) {
        let c = y.len();
        let eps = self.label_smoothing;
        let off = if eps > 0.0 { eps / (c as f64 - 1.0) } else { 0.0 };
        match targets {
            Targets::Classes(k) => {
                // A fill and one store (a vectorized loop; the validation
                // has checked k[i] < c).
                y.fill(off);
                y[k[i]] = 1.0 - eps;
            }
            Targets::Probabilities(p) => {
                let a = 1.0 - eps * c as f64 / (c as f64 - 1.0);
                for (yj, pj) in y.iter_mut().zip(p.row(i)) {
                    *yj = if eps > 0.0 { a * pj.re() + off } else { pj.re() };
                }
            }
        }
    }

    /// One class's term of the row loss, `≥ 0`, from `ln p`, never from `p`
    /// (where `p` underflows, `t2 ≥ 1` and huge spreads, `log_{t1} p` stays
    /// finite, as the exact loss is): [`zero_probability_term`](Self::zero_probability_term)
    /// at `p = 0`, `p^{2−t1}/(2−t1)` at `y = 0`, else [`bregman_term`].
    fn class_term<D: Real>(&self, y: f64, ln_p: D) -> D {
        let a = 2.0 - self.t1;
        if ln_p.is_neg_infinity() {
            self.zero_probability_term(y)
        } else if y == 0.0 {
            // p^{2−t1} as exp((2−t1)·ln p): num-dual's `powf` forms p^{n−3}
            // first, which overflows for tiny p.
            ln_p.scale_f64(a).exp() / D::from_f64(a)
        } else {
            bregman_term(y, ln_p, self.t1)
        }
    }

    /// The term of a class with `p = 0`:
    /// `y·(log_{t1} y − log_{t1} 0) − y^{2−t1}/(2−t1)`, which is
    /// `y^{2−t1}/((1−t1)(2−t1))` for `t1 < 1` (`log_{t1} 0 = −1/(1−t1)`),
    /// `+∞` for `t1 ≥ 1` and a positive label, `0` for `y = 0`.
    fn zero_probability_term<D: Real>(&self, y: f64) -> D {
        let (a, b) = (2.0 - self.t1, 1.0 - self.t1);
        if y == 0.0 {
            D::zero()
        } else if b > 0.0 {
            D::from_f64(y).ln().scale_f64(a).exp() / (D::from_f64(a) * D::from_f64(b))
        } else {
            D::from_f64(f64::INFINITY)
        }
    }

    /// The generic definition (the reference): the per-row formula on the
    /// generic tempered softmax (with λ lifted implicitly), reduced in a
    /// fixed order. Runs with `f32`, `f64` and dual numbers.
    ///
    /// # Errors
    /// As [`Self::loss`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, BiTemperedLogisticLoss, Targets};
    /// use num_dual::{Dual64, DualNum};
    /// let a = [Dual64::from_re(0.0).derivative(), Dual64::from_re(0.0)];
    /// let out = BiTemperedLogisticLoss::new(1.0, 1.0)?
    ///     .definition(Batch::new(&a, 1, 2)?, Targets::<f64>::Classes(&[0]))?;
    /// let l = out.reduced.unwrap();
    /// assert!((l.re - 2f64.ln()).abs() < 1e-15);
    /// assert!((l.eps + 0.5).abs() < 1e-15); // p_0 − 1
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn definition<D: Real, P: Real>(
        &self,
        activations: Batch<'_, D>,
        targets: Targets<'_, P>,
    ) -> Result<LossOutput<D>> {
        let scale = self.prepare(&activations, &targets)?;
        let t2 = self.t2;
        let c = activations.c();
        // No row buffer for an empty batch: `c` is then unbounded by the data.
        let mut y = vec![0.0; if activations.n() == 0 { 0 } else { c }];
        let mut unreduced = Vec::with_capacity(activations.n());
        for (i, row) in activations.rows().enumerate() {
            self.labels(&targets, i, &mut y);
            let ln_p = normalize_row(row, t2, self.max_iterations, i)?.log_probabilities;
            // At t1 = t2 = 1 a finite logit whose ln p = (z − m) − l is below
            // −f64::MAX in D (a logit gap beyond the range) still has the
            // finite term y·ln y − y − y·ln p for a small label: −y·ln p from
            // its parts (`nll_term`).
            let far = |lp: &D, z: &D| t2 == 1.0 && self.t1 == 1.0 && lp.is_neg_infinity() && !z.is_neg_infinity();
            let parts = if ln_p.iter().zip(row).any(|(lp, z)| far(lp, z)) {
                Some(shifted_log_sum(row))
            } else {
                None
            };
            let mut loss = D::zero();
            for ((lp, &yj), z) in ln_p.iter().zip(&y).zip(row) {
                loss += match &parts {
                    Some((m, l)) if yj > 0.0 && far(lp, z) => {
                        D::from_f64(yj * yj.ln() - yj) + crate::softmax::nll_term(l.clone(), z.clone(), m.clone(), yj)
                    }
                    _ => self.class_term(yj, lp.clone()),
                };
            }
            unreduced.push(loss);
        }
        let reduced = reduce_generic(&unreduced, self.reduction, scale);
        Ok(LossOutput { unreduced, reduced })
    }

    /// The loss value (fast path, `f64` internally; agrees with
    /// [`Self::definition`]).
    ///
    /// # Errors
    /// - [`Error::ShapeMismatch`]: targets of the wrong length or shape;
    /// - [`Error::InvalidShape`]: `c = 0`, or `c = 1` with label smoothing;
    /// - [`Error::ClassOutOfRange`]: a class index `≥ c`;
    /// - [`Error::NonFinite`]: NaN or `+∞` activations, non-finite labels;
    /// - [`Error::OutOfDomain`]: labels outside `[0, 1]`, or a row of zero labels;
    /// - [`Error::NoFiniteLogit`]: a row of all `−∞`;
    /// - [`Error::InvalidParameter`]: `t2 > 1` with `t2·ln c > 700`;
    /// - [`Error::NotConverged`]: the solver's safety cap was hit;
    /// - [`Error::Empty`]: `Mean`/`BatchMean` of an empty batch.
    pub fn loss<T: Float, P: Real>(&self, activations: Batch<'_, T>, targets: Targets<'_, P>) -> Result<LossOutput<T>> {
        self.kernel(activations, targets, None)
    }

    /// The loss and its gradient with respect to the activations (row-major,
    /// same shape), fused in one pass per row.
    ///
    /// # Errors
    /// As [`Self::loss`].
    pub fn loss_and_grad<T: Float, P: Real>(
        &self,
        activations: Batch<'_, T>,
        targets: Targets<'_, P>,
    ) -> Result<(LossOutput<T>, Vec<T>)> {
        let mut grad = vec![T::zero(); activations.as_slice().len()];
        let out = self.kernel(activations, targets, Some(&mut grad))?;
        Ok((out, grad))
    }

    /// As [`Self::loss_and_grad`], writing the gradient into `grad`.
    ///
    /// # Errors
    /// As [`Self::loss`], and [`Error::ShapeMismatch`] when `grad` has the wrong length.
    pub fn loss_and_grad_into<T: Float, P: Real>(
        &self,
        activations: Batch<'_, T>,
        targets: Targets<'_, P>,
        grad: &mut [T],
    ) -> Result<LossOutput<T>> {
        if grad.len() != activations.as_slice().len() {
            return Err(Error::ShapeMismatch {
                what: "gradient buffer",
                expected: activations.as_slice().len(),
                actual: grad.len(),
            });
        }
        self.kernel(activations, targets, Some(grad))
    }

    fn kernel<T: Float, P: Real>(
        &self,
        activations: Batch<'_, T>,
        targets: Targets<'_, P>,
        grad: Option<&mut [T]>,
    ) -> Result<LossOutput<T>> {
        // The entries are checked row by row below (the full validation
        // runs only when a row fails, for its error).
        let scale = self.prepare_scanning(&activations, &targets, false)?;
        let (t1, t2) = (self.t1, self.t2);
        let (n, c) = (activations.n(), activations.c());
        let mut unreduced = vec![0.0; n];
        // The first failing row's error (a row's normalizer that does not
        // converge): the smallest row index wins, whatever the scheduling.
        let failure: std::sync::Mutex<Option<(usize, Error)>> = std::sync::Mutex::new(None);
        let ok = rows::for_each_row(c, 1, 1, &mut unreduced, grad, |i, loss, g, scratch| {
            let buf = rows::scratch(scratch, 7 * c);
            let (y, buf) = buf.split_at_mut(c);
            let (a, buf) = buf.split_at_mut(c);
            let (p, buf) = buf.split_at_mut(c);
            let (ln_p, buf) = buf.split_at_mut(c);
            let (half_ln_p, buf) = buf.split_at_mut(c);
            let (gr, inv_base) = buf.split_at_mut(c);
            let labels = match &targets {
                Targets::Probabilities(p) => Some(p.row(i)),
                Targets::Classes(_) => None,
            };
            if !kernels::tempered::widen_checked(activations.row(i), labels, a) {
                return false;
            }
            self.labels(&targets, i, y);
            let buffers = RowBuffers {
                p,
                ln_p,
                half_ln_p,
                inv_base,
            };
            let sum_escort = match normalize_row_f64(a, t2, self.max_iterations, i, buffers) {
                Ok((q, _)) => q,
                Err(e) => {
                    let mut f = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if f.as_ref().is_none_or(|(row, _)| i < *row) {
                        *f = Some((i, e));
                    }
                    return false;
                }
            };
            // The unlabelled classes' terms p^{2−t1}/(2−t1), vectorized (their
            // powers stay in `gr` for the fused gradient), then the others.
            let mut total = kernels::tempered::tempered_unlabelled_powers_into(ln_p, y, t1, gr) / (2.0 - t1);
            kernels::tempered::for_each_labelled(y, |j| {
                let (lp, h, yj) = (ln_p[j], half_ln_p[j], y[j]);
                total += if t1 == 1.0 && lp == f64::NEG_INFINITY && h > f64::NEG_INFINITY {
                    // p > 0 with ln p below −f64::MAX (t2 = 1, a logit gap
                    // beyond the range): y·(ln y − ln p) − y + p with p = 0
                    // and ln p = 2h; finite for a small enough label.
                    -(yj * h) - yj * h + (yj * yj.ln() - yj)
                } else {
                    self.class_term(yj, lp)
                };
            });
            loss[0] = total;
            if let Some(g) = g {
                let fused = sum_escort.is_some_and(|q| {
                    kernels::tempered::tempered_gradient_fused(p, ln_p, inv_base, y, (t1, q), scale, gr)
                });
                if !fused
                    && !kernels::tempered::tempered_gradient_direct(p, half_ln_p, y, (t1, t2), scale, gr, inv_base)
                {
                    row_gradient(p, half_ln_p, y, (t1, t2), scale, gr, inv_base);
                }
                kernels::scaled_into(gr, 1.0, g);
            }
            true
        });
        if !ok {
            // An invalid row: the full validation names the first bad entry.
            self.prepare(&activations, &targets)?;
        }
        if let Some((_, e)) = failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return Err(e);
        }
        let reduced = reduce_f64(&unreduced, self.reduction, scale).map(T::round_from);
        Ok(LossOutput {
            unreduced: unreduced.into_iter().map(T::round_from).collect(),
            reduced,
        })
    }

    /// Validates a binary batch and builds the 2-class logits `[0, a]` and
    /// labels `[1 − y, y]`.
    fn binary_inputs<T: Real, P: Real>(
        &self,
        activations: &Batch<'_, T>,
        labels: &Batch<'_, P>,
    ) -> Result<(Vec<T>, Vec<f64>)> {
        activations.same_shape(labels, "labels")?;
        let c = activations.c();
        check_logits("activations", activations.as_slice(), c, true)?;
        check_in_range("labels", labels.as_slice(), c, 0.0, 1.0, "a label in [0, 1]")?;
        let mut logits = Vec::with_capacity(2 * activations.as_slice().len());
        let mut y = Vec::with_capacity(2 * activations.as_slice().len());
        for (a, l) in activations.as_slice().iter().zip(labels.as_slice()) {
            logits.push(T::zero());
            logits.push(a.clone());
            y.push(1.0 - l.re());
            y.push(l.re());
        }
        Ok((logits, y))
    }

    /// The binary bi-tempered loss, generic definition: each element `a` of
    /// `activations` (any shape `[n, c]`) with label `y ∈ [0, 1]` is the
    /// 2-class loss on logits `[0, a]` and labels `[1 − y, y]` (label
    /// smoothing with `C = 2`: `(1 − 2ε)·y + ε`). `Mean` divides by `n·c`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::NonFinite`] (NaN or `+∞`
    /// activations, non-finite labels), [`Error::OutOfDomain`] (labels
    /// outside `[0, 1]`), [`Error::NotConverged`], [`Error::Empty`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, BiTemperedLogisticLoss, Reduction};
    /// let a = [0.0_f64, 0.0];
    /// let y = [1.0, 0.0];
    /// let out = BiTemperedLogisticLoss::new(1.0, 1.0)?
    ///     .with_reduction(Reduction::None)
    ///     .binary_definition(Batch::new(&a, 1, 2)?, Batch::new(&y, 1, 2)?)?;
    /// assert!(out.unreduced.iter().all(|l| (l - 2f64.ln()).abs() < 1e-15));
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn binary_definition<D: Real, P: Real>(
        &self,
        activations: Batch<'_, D>,
        labels: Batch<'_, P>,
    ) -> Result<LossOutput<D>> {
        let (logits, y) = self.binary_inputs(&activations, &labels)?;
        let m = logits.len() / 2;
        self.definition(
            Batch::new(&logits, m, 2)?,
            Targets::Probabilities(Batch::new(&y, m, 2)?),
        )
    }

    /// The binary loss (fast path); see [`Self::binary_definition`].
    ///
    /// # Errors
    /// As [`Self::binary_definition`].
    pub fn binary_loss<T: Float, P: Real>(
        &self,
        activations: Batch<'_, T>,
        labels: Batch<'_, P>,
    ) -> Result<LossOutput<T>> {
        let (logits, y) = self.binary_inputs(&activations, &labels)?;
        let m = logits.len() / 2;
        self.kernel(
            Batch::new(&logits, m, 2)?,
            Targets::Probabilities(Batch::new(&y, m, 2)?),
            None,
        )
    }

    /// The binary loss and its gradient with respect to the activations (same
    /// shape): the gradient of the 2-class loss with respect to its second logit.
    ///
    /// # Errors
    /// As [`Self::binary_definition`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, BiTemperedLogisticLoss, Reduction};
    /// let a = [0.0_f64];
    /// let (out, grad) = BiTemperedLogisticLoss::new(0.8, 2.0)?
    ///     .with_reduction(Reduction::Sum)
    ///     .binary_loss_and_grad(Batch::new(&a, 1, 1)?, Batch::new(&[1.0], 1, 1)?)?;
    /// assert!(out.reduced.unwrap() > 0.0);
    /// assert!(grad[0] < 0.0); // raising a raises p(y = 1)
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn binary_loss_and_grad<T: Float, P: Real>(
        &self,
        activations: Batch<'_, T>,
        labels: Batch<'_, P>,
    ) -> Result<(LossOutput<T>, Vec<T>)> {
        let (logits, y) = self.binary_inputs(&activations, &labels)?;
        let m = logits.len() / 2;
        let mut g2 = vec![T::zero(); logits.len()];
        let out = self.kernel(
            Batch::new(&logits, m, 2)?,
            Targets::Probabilities(Batch::new(&y, m, 2)?),
            Some(&mut g2),
        )?;
        Ok((out, g2.chunks_exact(2).map(|g| g[1]).collect()))
    }
}

/// The gradient of one row (see [`BiTemperedLogisticLoss`]'s Gradient
/// section), `g_i = A_i − ẽ_i·Σ_j A_j` with `A_j = (p_j − y_j)·p_j^{t2−t1}`,
/// in log space where it must be: from `h_j = ln p_j / 2` (finite for every
/// positive probability, see [`normalize_row_f64`]).
///
/// - `|A_j|` is `e^{2X_j}` with `X_j = ln|p_j − y_j|/2 + (t2 − t1)·h_j`
///   (`ln|p − y|` is `ln p` for `y = 0`, where `p` may underflow, and `ln y`
///   where `p` underflowed below a positive label). A true zero (`h = −∞`:
///   outside the finite support, a masked class) is locally constant and
///   has `A = 0` (no `0·∞`).
/// - `Σ_j A_j` is summed scaled by `e^{−2s}` (`s = max X_j`, only when
///   `2s > 600`), so it cannot overflow.
/// - `ẽ_i·Σ` is formed from its log `2t2·(h_i − h_max) − ln E + 2s + ln|Σ'|`,
///   not as the product of an escort that may underflow (`< e^{−745}`) and
///   a sum that may be beyond the range: their product can be an ordinary
///   number (logits `(0, −4e32, −2e55)`, `t = (1.9, 1.1)`: `6.1e86`).
/// - Each entry `A_i − ẽ_i·Σ` is formed at its own scale `e^{2m_i}`
///   (`m_i` the larger of the two logs, used only when `2m_i > 600`) and
///   rounded once to `±∞`, `0` or a finite value.
/// - The argmax entry is `−Σ_{i≠best} g_i` (shift invariance), summed at a
///   common scale so that entries of opposite infinite signs give no NaN.
///
/// In the ordinary range (all scales 0) these are the same operations as a
/// direct evaluation.
fn row_gradient(
    p: &[f64],
    half_ln_p: &[f64],
    y: &[f64],
    (t1, t2): (f64, f64),
    scale: f64,
    out: &mut [f64],
    scales: &mut [f64],
) {
    // Logs (halved) up to this bound are exponentiated directly (below it a
    // term underflows, as it would in any evaluation; only overflow is
    // rescaled, so that ordinary rows keep the direct evaluation's bits).
    const DIRECT_HALF_LOG: f64 = kernels::tempered::TEMPERED_DIRECT_HALF_LOG;
    let rescale = |x: f64| if x > DIRECT_HALF_LOG { x } else { 0.0 };
    let d = t2 - t1;
    let h_max = half_ln_p.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    // X_j (halved log |A_j|) into `out`, −∞ where A_j = 0.
    let mut x_max = f64::NEG_INFINITY;
    for (o, ((&pj, &h), &yj)) in out.iter_mut().zip(p.iter().zip(half_ln_p).zip(y)) {
        *o = if h == f64::NEG_INFINITY || (yj > 0.0 && pj == yj) {
            f64::NEG_INFINITY
        } else if yj == 0.0 {
            // ln|p − 0|/2 + d·h, in the order of the direct form ln p + d·ln p.
            h + d * h
        } else if pj == 0.0 {
            0.5 * yj.ln() + d * h
        } else {
            0.5 * (pj - yj).abs().ln() + d * h
        };
        x_max = x_max.max(*o);
    }
    // The sign of p_j − y_j (positive for y = 0 even where p underflowed).
    let sign = |j: usize| if y[j] == 0.0 || p[j] > y[j] { 1.0 } else { -1.0 };
    let s = rescale(x_max);
    let total: f64 = out
        .iter()
        .enumerate()
        .map(|(j, &x)| sign(j) * (2.0 * (x - s)).exp())
        .sum();
    let ln_total = 0.5 * total.abs().ln();
    let escort = |h: f64| {
        if h > f64::NEG_INFINITY {
            (2.0 * t2 * (h - h_max)).exp()
        } else {
            0.0
        }
    };
    let escort_sum: f64 = half_ln_p.iter().map(|&h| escort(h)).sum();
    let best = half_ln_p.iter().position(|&v| v == h_max).unwrap_or(0);
    // Entry i at its own scale: (b_i, m_i) with g_i = b_i·e^{2m_i} before
    // the reduction's scale.
    let entry = |x: f64, h: f64, sgn: f64| -> (f64, f64) {
        // Halved log of |ẽ_i·Σ| without ln E (divided after).
        let w = if h > f64::NEG_INFINITY && total != 0.0 {
            t2 * (h - h_max) + s + ln_total
        } else {
            f64::NEG_INFINITY
        };
        let m = rescale(x.max(w));
        let a = if x > f64::NEG_INFINITY {
            sgn * (2.0 * (x - m)).exp()
        } else {
            0.0
        };
        let e = if w > f64::NEG_INFINITY {
            (2.0 * (t2 * (h - h_max) + s - m)).exp() / escort_sum * total
        } else {
            0.0
        };
        (a - e, m)
    };
    let finish = |b: f64, m: f64| {
        let v = b * scale;
        if v == 0.0 || m == 0.0 {
            v
        } else {
            (2.0 * m + v.abs().ln()).exp().copysign(v)
        }
    };
    // Every scale is 0 or above DIRECT_HALF_LOG: 0 is the floor.
    let mut rest_scale = 0.0_f64;
    for (j, (o, ms)) in out.iter_mut().zip(scales.iter_mut()).enumerate() {
        if j != best {
            let (b, m) = entry(*o, half_ln_p[j], sign(j));
            if b != 0.0 {
                rest_scale = rest_scale.max(m);
            }
            (*o, *ms) = (b, m);
        }
    }
    let (mut rest, mut largest) = (0.0_f64, 0.0_f64);
    for (j, (o, &m)) in out.iter_mut().zip(scales.iter()).enumerate() {
        if j != best && *o != 0.0 {
            let term = *o * (2.0 * (m - rest_scale)).exp();
            rest += term;
            largest = largest.max(term.abs());
            *o = finish(*o, m);
        }
    }
    out[best] = if rest_scale != 0.0 && rest.abs() <= RESCALED_CANCELLATION * largest {
        // The others cancel at a scale where their logs cannot resolve
        // factors near 1 (a log of 4e307 has an ulp of 2^971): the argmax
        // entry from its own formula instead.
        let (b, m) = entry(out[best], half_ln_p[best], sign(best));
        finish(b, m)
    } else {
        finish(-rest, rest_scale)
    };
}

/// Relative size below which the rescaled sum of the non-argmax gradient
/// entries counts as cancelled (`2^-20`: more than 20 bits lost).
const RESCALED_CANCELLATION: f64 = 9.5367431640625e-7;

/// The bi-tempered logistic loss per row (unreduced), Google's reference
/// signature: `labels` as class indices or probability rows.
///
/// # Errors
/// As [`BiTemperedLogisticLoss::new`], [`BiTemperedLogisticLoss::with_label_smoothing`]
/// and [`BiTemperedLogisticLoss::loss`].
///
/// # Example
/// ```
/// use entropic::{bi_tempered_logistic_loss, Batch, Targets};
/// let a = [0.1_f32, 1.5, -5.0];
/// let l = bi_tempered_logistic_loss(Batch::new(&a, 1, 3)?, Targets::<f32>::Classes(&[1]), 0.5, 1.5, 0.0)?;
/// assert!(l[0] > 0.0 && l[0] < 2.0); // bounded by 1/(1 − t1)
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn bi_tempered_logistic_loss<T: Float, P: Real>(
    activations: Batch<'_, T>,
    labels: Targets<'_, P>,
    t1: f64,
    t2: f64,
    label_smoothing: f64,
) -> Result<Vec<T>> {
    Ok(BiTemperedLogisticLoss::new(t1, t2)?
        .with_label_smoothing(label_smoothing)?
        .with_reduction(Reduction::None)
        .loss(activations, labels)?
        .unreduced)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path's `p` of a row and its passes.
    fn normalized(row: &[f64], t: f64) -> (Vec<f64>, usize) {
        let c = row.len();
        let (mut p, mut ln_p, mut half, mut inv) = (vec![0.0; c], vec![0.0; c], vec![0.0; c], vec![0.0; c]);
        let buffers = RowBuffers {
            p: &mut p,
            ln_p: &mut ln_p,
            half_ln_p: &mut half,
            inv_base: &mut inv,
        };
        let (_, passes) = normalize_row_f64(row, t, TEMPERED_SOFTMAX_MAX_ITERATIONS, 0, buffers).unwrap();
        (p, passes)
    }

    /// A seeded stream of uniform numbers in `[lo, hi)` (an LCG).
    fn uniform_in(seed: u64) -> impl FnMut(f64, f64) -> f64 {
        let mut s = seed;
        move |lo, hi| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
        }
    }

    /// The moment start lands near the root on a spread row (within 1 %
    /// of `λ'`, relative; the solver from 0 lands 10 % off after its first
    /// step), and on a row with one logit far above the others it either
    /// declines (t = 1.2, 1.3: the top entry holds most of the mass, the
    /// expansion fails) or lands near the root (t = 2, where the tail
    /// holds it).
    #[test]
    fn heavy_tail_start_is_near_the_root_or_declines() {
        let mut uniform = uniform_in(5);
        for t in [1.2, 1.3, 2.0] {
            let a: Vec<f64> = (0..1000).map(|_| uniform(-4.0, 4.0)).collect();
            let mu = a.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            let z: Vec<f64> = a.iter().map(|x| x - mu).collect();
            let mut peaked = z.clone();
            peaked[7] = 40.0;
            peaked.iter_mut().for_each(|x| *x -= 40.0);
            for (row, declines) in [(&z, false), (&peaked, t < 2.0)] {
                let (root, _) = solve_shifted_normalizer(row, t, 200, 0).unwrap();
                match heavy_tail_start(crate::kernels::tempered::finite_moments(row), t) {
                    Some(start) => {
                        assert!(!declines, "t = {t}: a start {start} (root {root})");
                        assert!(
                            (start - root).abs() <= 0.01 * root,
                            "t = {t}: start {start} vs root {root}"
                        );
                    }
                    None => assert!(declines, "t = {t}: no start (root {root})"),
                }
            }
            // Moments beyond the range (Σz² or Σz overflowing): no start.
            for big in [1e300, f64::MAX] {
                let mut far = vec![-big; 100];
                far[3] = 0.0;
                assert!(heavy_tail_start(crate::kernels::tempered::finite_moments(&far), t).is_none());
            }
        }
    }

    /// The fast path's normalizer (`f32` first phase; on long rows the
    /// last pass's Halley step and a series move, on short or confident
    /// rows an `f64` pass and a predicted root checked on the last pass) is
    /// normalized to working precision like the reference
    /// (`tests/tempered.rs`), and takes few passes: on rows drawn like the
    /// benchmark's (uniform logits in `[−4, 4]`, c = 1000) exactly 2 at
    /// t = 1.2 and 1.3 (1 `f32` from the moment start, the last pass) and 3
    /// at t = 0.8 (2 `f32`, the last pass); on short rows 5 (3 `f32`, 1
    /// `f64`, the last pass) or 4.
    #[test]
    fn fast_normalizer_is_normalized_to_working_precision_in_few_passes() {
        let mut uniform = uniform_in(11);
        let mut worst = 0.0f64;
        for &c in &[2usize, 3, 17, 64, 100, 1000] {
            for spread in [4.0, 1.0, 30.0, 1e4] {
                for &t in &[0.1, 0.5, 0.8, 0.99, 1.01, 1.2, 2.0, 4.0] {
                    let row: Vec<f64> = (0..c).map(|_| uniform(-spread, spread)).collect();
                    let (p, _) = normalized(&row, t);
                    let sum: f64 = p.iter().sum();
                    // As the reference's test: each p rounded, ≤ c roundings in the sum.
                    let tol = crate::NORMALIZATION_TOLERANCE_EPS_PER_ENTRY * c as f64 * f64::EPSILON;
                    assert!(
                        (sum - 1.0).abs() <= tol,
                        "c={c} spread={spread} t={t}: Σp − 1 = {:e}",
                        sum - 1.0
                    );
                    worst = worst.max((sum - 1.0).abs());
                }
            }
        }
        // The benchmark's rows (c = 1000) and short rows (c = 32): the pass
        // count. At t = 0.8 the long rows' f32 phase stops after 2 passes
        // (Stop::CoarseCubic); at t = 1.2 and 1.3 after 1, from the moment
        // estimate (`heavy_tail_start`; 3 passes from λ = 0).
        for (c, t, passes) in [
            (1000, 1.2, 2),
            (1000, 1.3, 2),
            (1000, 0.8, 3),
            (32, 1.2, 5),
            (32, 0.8, 5),
        ] {
            for _ in 0..50 {
                let row: Vec<f64> = (0..c).map(|_| uniform(-4.0, 4.0)).collect();
                let (_, n) = normalized(&row, t);
                // Short rows: the f32 phase sometimes stops after 2.
                assert!(
                    n == passes || (c < 64 && n == passes - 1),
                    "c = {c}, t = {t}: {n} passes"
                );
            }
        }
        eprintln!("fast normalizer: worst |Σp − 1| = {worst:e}");
    }
}
