//! Focal loss (Lin et al. 2017): the sigmoid variant (binary / multi-label,
//! per element, torchvision / optax semantics) and the softmax variant
//! (multi-class, integer targets), both evaluated in log space from the
//! logits so that the loss *and* its gradient stay finite for logits of any
//! finite size and every `γ ≥ 0`.
//!
//! The naive formula `−α_t (1 − p_t)^γ ln p_t` with `p = σ(x)` breaks in
//! three places: `ln p_t` of a rounded probability (`ln 0 = −∞` once
//! `|x| ≳ 37` in `f64`), `1 − p_t` cancelling to `0`, and the derivative of
//! `(1 − p_t)^γ`, `γ(1 − p_t)^{γ−1}`, which is `∞` at `1 − p_t = 0` for
//! `γ < 1` and multiplies a `0` (`∞·0 = NaN` under automatic
//! differentiation). Here every logarithm is a log-sigmoid / log-softmax of
//! the logits, the modulating factor is `exp(γ·ln(1 − p_t))`, and the
//! analytic gradient is written with bounded factors only (see each type's
//! "Gradient" section).

use crate::batch::Batch;
use multiversion::multiversion;

use crate::binary_cross_entropy::{sigmoid, softplus};
use crate::domain::{check_in_range, check_logits, check_parameter, check_weights};
use crate::error::{Error, Result};
use crate::kernels::exp::{exp, exp_pair};
use crate::kernels::log1p::logistic_parts;
use crate::kernels::{self, logistic32, rows::for_each_element_row};
use crate::real::{Float, Real};
use crate::reduction::{LossOutput, Reduction, reduce_f64, reduce_generic};
use crate::softmax::check_row;

/// Validates the focusing parameter `γ` (finite, `≥ 0`).
fn check_gamma(gamma: f64) -> Result<f64> {
    check_parameter("gamma", gamma, gamma.is_finite() && gamma >= 0.0, "finite and >= 0")
}

/// `ln(e^a + e^b)` for two values that are not both `−∞`, branching on the
/// real parts only. Generic.
fn log_add_exp<D: Real>(a: D, b: D) -> D {
    let (hi, lo) = if a.re() >= b.re() { (a, b) } else { (b, a) };
    let d = lo - hi.clone();
    hi + d.exp().ln_1p()
}

/// The per-element pieces of the sigmoid focal loss at logit `x` and label
/// `y ∈ [0, 1]`: `(B, ln(1 − p_t), softplus(−x), softplus(x))` with
/// `B = y·softplus(−x) + (1 − y)·softplus(x)` the binary cross-entropy
/// (zero-coefficient terms skipped, exactly as
/// [`crate::BinaryCrossEntropyWithLogits`] does) and
/// `ln(1 − p_t) = ln(p(1 − y) + (1 − p)y)` as a log-sum-exp of
/// `ln p + ln(1 − y)` and `ln(1 − p) + ln y`. Generic: the definition and the
/// fast kernel (with `D = f64`) share it.
fn sigmoid_terms<D: Real>(x: &D, y: f64) -> (D, D, D, D) {
    let sp_neg = softplus(-x.clone()); // −ln p
    let sp_pos = softplus(x.clone()); // −ln(1 − p)
    let mut b = D::zero();
    if y != 0.0 {
        b += sp_neg.scale_f64(y);
    }
    if 1.0 - y != 0.0 {
        b += sp_pos.scale_f64(1.0 - y);
    }
    let log_q = if y == 0.0 {
        -sp_neg.clone()
    } else if y == 1.0 {
        -sp_pos.clone()
    } else {
        log_add_exp(
            -sp_neg.clone() + D::from_f64((-y).ln_1p()),
            -sp_pos.clone() + D::from_f64(y.ln()),
        )
    };
    (b, log_q, sp_neg, sp_pos)
}

/// `(1 − p_t)^γ = exp(γ·ln(1 − p_t))`, or `None` for `γ = 0` (the factor is
/// exactly 1; skipping it avoids `0·(−∞)` when `1 − p_t = 0`).
fn modulating_factor<D: Real>(log_q: &D, gamma: f64) -> Option<D> {
    if gamma == 0.0 {
        None
    } else {
        Some(log_q.scale_f64(gamma).exp())
    }
}

/// Sigmoid focal loss over a row-major `[n, c]` batch of logits, one
/// independent binary problem per element (binary and multi-label
/// classification, dense detection): the semantics of torchvision's
/// `sigmoid_focal_loss` and optax's `sigmoid_focal_loss`.
///
/// # Formula
/// With `p = σ(x)`, `p_t = p·y + (1 − p)(1 − y)`, `α_t = α·y + (1 − α)(1 − y)`
/// (`α_t = 1` when the weighting is disabled):
///
/// `FL(x, y) = α_t · (1 − p_t)^γ · BCE(x, y)`,
/// `BCE(x, y) = y·softplus(−x) + (1 − y)·softplus(x) = −y ln p − (1 − y) ln(1 − p)`,
///
/// which for hard labels `y ∈ {0, 1}` is the paper's `−α_t (1 − p_t)^γ ln p_t`.
/// It is evaluated as `α_t · exp(γ·ln(1 − p_t)) · BCE` with
/// `ln(1 − p_t) = ln(p(1 − y) + (1 − p)y)` = log-sum-exp of
/// `ln p + ln(1 − y)` and `ln(1 − p) + ln y` (a zero-weight term is
/// skipped), `ln p = −softplus(−x)`, `ln(1 − p) = −softplus(x)`: no
/// probability is ever rounded before its logarithm is taken.
///
/// # Conventions
/// - `alpha: Option<f64>`: `Some(α)` with `α ∈ [0, 1]` weights positives by
///   `α` and negatives by `1 − α`; `None` disables the weighting. torchvision
///   disables it with a negative `alpha` (e.g. `alpha=-1`): that maps to
///   `None`. torchvision's defaults are [`SigmoidFocalLoss::torchvision`].
/// - Labels `y ∈ [0, 1]`; soft labels are allowed (as in optax), `γ` then
///   modulates by `(p(1 − y) + (1 − p)y)^γ`.
/// - Logits must be finite: NaN and `±∞` are errors (`±1e300` is fine).
/// - Losses are per element (unreduced shape `[n, c]`); `Mean` divides by
///   `n·c` (torchvision's `.mean()`), `BatchMean` by `n`.
/// - `γ = 0` with `alpha = None` is exactly [`crate::BinaryCrossEntropyWithLogits`]
///   (same operations, same rounding).
///
/// # Gradient
/// Let `F = α_t·M·B` with `M = (1 − p_t)^γ`, `B = BCE`, `q = 1 − p_t`. Then
/// `∂B/∂x = p − y`, `∂q/∂x = p(1 − p)(1 − 2y)` (since `∂p/∂x = p(1 − p)`),
/// `∂M/∂x = γ q^{γ−1}·∂q/∂x`, and
///
/// `∂F/∂x = α_t · q^γ · [ γ(1 − 2y)·R·B + (p − y) ]`,  `R = p(1 − p)/q`.
///
/// `q` is a convex combination of `p` and `1 − p`, so `R ≤ max(p, 1 − p) ≤ 1`:
/// the factor `q^{γ−1}`, unbounded as `q → 0` when `γ < 1`, never appears on
/// its own. `R` is computed as `exp(ln p + ln(1 − p) − ln q)` from the
/// logits, or exactly as `R = p` (`y = 1`) and `R = 1 − p` (`y = 0`). For
/// `y = 1` this is the paper's `∂FL/∂x = α(1 − p)^γ·[γ·p·ln p − (1 − p)]`.
/// `p − y` is evaluated as `(1 − y)σ(x) − yσ(−x)` (no `1 − σ` cancellation),
/// as in binary cross-entropy. Every factor is finite for finite `x`, so the
/// gradient is finite for every finite logit and every `γ ≥ 0`.
///
/// # Errors
/// See [`SigmoidFocalLoss::loss`].
///
/// # Example
/// ```
/// use entropic::{Batch, Reduction, SigmoidFocalLoss};
/// // torchvision.ops.sigmoid_focal_loss(x, y) with alpha=0.25, gamma=2, reduction="none"
/// let fl = SigmoidFocalLoss::torchvision();
/// let x = [0.3_f64, -0.7, 1e4];
/// let y = [1.0_f64, 0.0, 0.0];
/// let (out, grad) = fl.loss_and_grad(Batch::new(&x, 1, 3)?, Batch::new(&y, 1, 3)?)?;
/// let p = 1.0 / (1.0 + (-0.3_f64).exp());
/// let expected = 0.25 * (1.0 - p).powi(2) * -p.ln();
/// assert!((out.unreduced[0] - expected).abs() <= 1e-15);
/// assert!((grad[0] - 0.25 * (1.0 - p).powi(2) * (2.0 * p * p.ln() - (1.0 - p))).abs() <= 1e-15);
/// // a confidently wrong negative: loss 0.75·1e4, gradient 0.75, no overflow
/// assert_eq!(out.unreduced[2], 7500.0);
/// assert_eq!(grad[2], 0.75);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Lin, Goyal, Girshick, He, Dollár (ICCV 2017), "Focal Loss for Dense
/// Object Detection", Eq. (5) (and (4) for the `α`-free form);
/// torchvision `torchvision.ops.sigmoid_focal_loss`; optax
/// `optax.losses.sigmoid_focal_loss` (soft labels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigmoidFocalLoss {
    alpha: Option<f64>,
    gamma: f64,
    reduction: Reduction,
}

impl SigmoidFocalLoss {
    /// torchvision's default `alpha` (weight of the positives).
    pub const TORCHVISION_ALPHA: f64 = 0.25;
    /// torchvision's (and the paper's) default focusing parameter `γ`.
    pub const TORCHVISION_GAMMA: f64 = 2.0;

    /// A sigmoid focal loss with weighting `alpha` (`None` disables it, as
    /// torchvision's negative `alpha` does) and focusing parameter `gamma`,
    /// with the crate-wide default `Reduction::Mean`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `γ` is NaN, infinite or negative, or
    /// `α` is NaN or outside `[0, 1]`.
    pub fn new(alpha: Option<f64>, gamma: f64) -> Result<Self> {
        let gamma = check_gamma(gamma)?;
        if let Some(a) = alpha {
            check_parameter(
                "alpha",
                a,
                (0.0..=1.0).contains(&a),
                "in [0, 1] (use None to disable the weighting)",
            )?;
        }
        Ok(Self {
            alpha,
            gamma,
            reduction: Reduction::Mean,
        })
    }

    /// torchvision's defaults: `alpha = 0.25`, `gamma = 2`,
    /// `reduction = "none"` ([`Reduction::None`]; note that
    /// [`SigmoidFocalLoss::new`] defaults to `Mean` instead).
    pub fn torchvision() -> Self {
        Self {
            alpha: Some(Self::TORCHVISION_ALPHA),
            gamma: Self::TORCHVISION_GAMMA,
            reduction: Reduction::None,
        }
    }

    /// The reduction (`Mean` divides by `n·c`, `BatchMean` by `n`).
    pub fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The class-balance weight `α` (`None`: disabled).
    pub fn alpha(&self) -> Option<f64> {
        self.alpha
    }

    /// The focusing parameter `γ`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn alpha_t(&self, y: f64) -> f64 {
        self.alpha.map_or(1.0, |a| a * y + (1.0 - a) * (1.0 - y))
    }

    /// Validates shapes, logits and labels; returns the reduction scale.
    fn prepare<T: Real, P: Real>(&self, x: &Batch<'_, T>, y: &Batch<'_, P>) -> Result<f64> {
        let c = x.c();
        x.same_shape(y, "labels")?;
        check_logits("logits", x.as_slice(), c, false)?;
        check_in_range("labels", y.as_slice(), c, 0.0, 1.0, "a label in [0, 1]")?;
        self.reduction.scale(x.as_slice().len() as f64, x.n())
    }

    /// The generic definition (the reference), per element
    /// `α_t·exp(γ·ln(1 − p_t))·BCE(x, y)` with every logarithm taken from the
    /// logits. Runs with `f32`, `f64`, dual numbers or any [`Real`]; its
    /// dual-number derivatives are finite wherever the loss is.
    ///
    /// # Errors
    /// As [`Self::loss`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, SigmoidFocalLoss};
    /// use num_dual::{Dual64, DualNum};
    /// // γ = 0.5 at a confident correct prediction: naive autodiff of
    /// // (1 − p)^γ gives ∞·0 = NaN here; the log-space definition does not.
    /// let fl = SigmoidFocalLoss::new(None, 0.5)?;
    /// let x = [Dual64::from_re(1e4).derivative()];
    /// let out = fl.definition(Batch::new(&x, 1, 1)?, Batch::new(&[1.0_f64], 1, 1)?)?;
    /// let v = out.reduced.unwrap();
    /// assert_eq!((v.re, v.eps), (0.0, 0.0));
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn definition<D: Real, P: Real>(&self, logits: Batch<'_, D>, labels: Batch<'_, P>) -> Result<LossOutput<D>> {
        let scale = self.prepare(&logits, &labels)?;
        let unreduced: Vec<D> = logits
            .as_slice()
            .iter()
            .zip(labels.as_slice())
            .map(|(x, y)| {
                let y = y.re();
                let (b, log_q, _, _) = sigmoid_terms(x, y);
                let fl = match modulating_factor(&log_q, self.gamma) {
                    None => b,
                    Some(m) => m * b,
                };
                fl.scale_f64(self.alpha_t(y))
            })
            .collect();
        let reduced = reduce_generic(&unreduced, self.reduction, scale);
        Ok(LossOutput { unreduced, reduced })
    }

    /// The loss value (fast path, `f64` inside, rounded once to `T`).
    ///
    /// # Errors
    /// - [`Error::ShapeMismatch`]: labels of a different shape than the logits;
    /// - [`Error::NonFinite`]: NaN or `±∞` logits, non-finite labels;
    /// - [`Error::OutOfDomain`]: labels outside `[0, 1]`;
    /// - [`Error::Empty`] / [`Error::ZeroTotalWeight`]: `Mean` or `BatchMean`
    ///   of an empty batch.
    pub fn loss<T: Float, P: Real>(&self, logits: Batch<'_, T>, labels: Batch<'_, P>) -> Result<LossOutput<T>> {
        self.kernel(logits, labels, None, true)
    }

    /// The loss and its gradient with respect to the logits (same shape),
    /// fused in one pass.
    ///
    /// # Errors
    /// As [`Self::loss`].
    pub fn loss_and_grad<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        labels: Batch<'_, P>,
    ) -> Result<(LossOutput<T>, Vec<T>)> {
        let mut grad = vec![T::zero(); logits.as_slice().len()];
        let out = self.kernel(logits, labels, Some(&mut grad), true)?;
        Ok((out, grad))
    }

    /// As [`Self::loss_and_grad`], writing the gradient into `grad`.
    ///
    /// # Errors
    /// As [`Self::loss`], and [`Error::ShapeMismatch`] when `grad` has the wrong length.
    pub fn loss_and_grad_into<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        labels: Batch<'_, P>,
        grad: &mut [T],
    ) -> Result<LossOutput<T>> {
        if grad.len() != logits.as_slice().len() {
            return Err(Error::ShapeMismatch {
                what: "gradient buffer",
                expected: logits.as_slice().len(),
                actual: grad.len(),
            });
        }
        self.kernel(logits, labels, Some(grad), true)
    }

    /// The reduced loss, with its gradient written into `grad`, without the
    /// per-element values: PyTorch's `reduction='mean'` (or `'sum'`)
    /// forward + backward, which makes no `n·c` loss buffer either. The
    /// value and the gradient are those of [`Self::loss_and_grad_into`].
    ///
    /// # Errors
    /// As [`Self::loss_and_grad_into`], and
    /// [`crate::Error::IncompatibleOptions`] for [`Reduction::None`] (no
    /// single value).
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, Reduction, SigmoidFocalLoss};
    /// let loss = SigmoidFocalLoss::torchvision().with_reduction(Reduction::Mean);
    /// let (x, y) = ([0.5_f32, -1.0, 2.0, 0.0], [1.0_f32, 0.0, 0.0, 1.0]);
    /// let mut grad = [0.0; 4];
    /// let value = loss.reduced_loss_and_grad_into(Batch::new(&x, 2, 2)?, Batch::new(&y, 2, 2)?, &mut grad)?;
    /// let (out, g) = loss.loss_and_grad(Batch::new(&x, 2, 2)?, Batch::new(&y, 2, 2)?)?;
    /// assert_eq!((Some(value), grad.to_vec()), (out.reduced, g));
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn reduced_loss_and_grad_into<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        labels: Batch<'_, P>,
        grad: &mut [T],
    ) -> Result<T> {
        crate::reduction::check_reduced_only(self.reduction, logits.as_slice().len(), grad.len())?;
        let out = self.kernel(logits, labels, Some(grad), false)?;
        Ok(out.reduced.expect("a Mean or Sum reduction has a value"))
    }

    /// The fast kernel: one vectorized pass per row over the elements
    /// (branch-free `exp`/`ln(1 + t)` pieces shared with binary
    /// cross-entropy; hard labels in the vector loop, soft labels
    /// `0 < y < 1` patched afterwards with their log-sum-exp `ln(1 − p_t)`),
    /// rows in parallel (deterministic). Invalid input makes
    /// [`Self::prepare`] report the error the definition reports.
    fn kernel<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        labels: Batch<'_, P>,
        grad: Option<&mut [T]>,
        keep_terms: bool,
    ) -> Result<LossOutput<T>> {
        let len = logits.as_slice().len();
        let scale = match logits
            .same_shape(&labels, "labels")
            .and_then(|()| self.reduction.scale(len as f64, logits.n()))
        {
            Ok(scale) => scale,
            Err(e) => return Err(self.prepare(&logits, &labels).err().unwrap_or(e)),
        };
        let (alpha, gamma) = (self.alpha, self.gamma);
        let mut unreduced = vec![T::zero(); if keep_terms { len } else { 0 }];
        let mut sums = vec![0.0; logits.n()];
        let ok = for_each_element_row(
            logits.as_slice(),
            labels.as_slice(),
            logits.c(),
            &mut sums,
            keep_terms.then_some(&mut unreduced[..]),
            grad,
            |x, y, terms, mut g| {
                // The f32 path for f32 rows with hard labels and a γ that is
                // an f32 (beyond f32::MAX, γ·p·b is +∞ and q^γ·∞ NaN; found by
                // the fuzzer); any other row (or one it hands back) takes the
                // f64 row.
                let f32_done = gamma <= f64::from(f32::MAX)
                    && T::as_f32(x).is_some_and(|x32| {
                        let g32 = g.as_deref_mut().and_then(T::as_f32_mut);
                        logistic32::sigmoid_focal_row_f32(x32, y, alpha, gamma, scale, terms, g32)
                    });
                f32_done || sigmoid_focal_row(x, y, alpha, gamma, scale, terms, g)
            },
        );
        if !ok {
            // The kernel flags exactly non-finite logits and labels outside [0, 1].
            self.prepare(&logits, &labels)?;
        }
        // Every term is ≥ 0, so the row sums overflow only where the total does.
        let reduced = reduce_f64(&sums, self.reduction, scale).map(T::round_from);
        Ok(LossOutput { unreduced, reduced })
    }
}

/// One element of the sigmoid focal loss in `f64`: `(α_t·M·B, M·[γ(1 − 2y)·R·B + (p − y)])`
/// (value, and gradient before `α_t` and the reduction scale), with the
/// hard-label `ln(1 − p_t)` and `R` unless `soft` gives them. The
/// logistic pieces and `B`, `p − y` are binary cross-entropy's
/// ([`kernels::bce_from_logistic`]), so `γ = 0` without `α` reproduces it bit
/// for bit.
#[inline(always)]
fn sigmoid_focal_element(x: f64, y: f64, alpha: Option<f64>, gamma: f64, soft: bool) -> (f64, f64, f64) {
    let (pos, neg, l, sig_pos, sig_neg) = logistic_parts(x);
    let (sp_pos, sp_neg) = (pos + l, neg + l);
    let (b, d) = kernels::bce_from_logistic(y, 1.0, sp_pos, sp_neg, sig_pos, sig_neg);
    let alpha_t = alpha.map_or(1.0, |a| a * y + (1.0 - a) * (1.0 - y));
    // ln(1 − p_t) and R = p(1 − p)/(1 − p_t): for y = 1, ln(1 − p) and p;
    // for y = 0, ln p and 1 − p (see the type's "Gradient" section).
    let (m, r) = if soft {
        let log_q = log_add_exp(-sp_neg + (-y).ln_1p(), -sp_pos + y.ln());
        (exp(log_q * gamma), (-sp_neg - sp_pos - log_q).exp())
    } else {
        // ln(1 − p_t) = −(a + l) with the exact a = max(±x, 0): the
        // argument −γ·(a + l) as an exact pair (γ·a by an FMA, then a
        // TwoSum with −γ·l), so that q^γ does not inherit the rounding of
        // a + l or of the product, |γ·ln(1 − p_t)|/2 ulps (the old form:
        // 150 ulps at x = 100, γ = 3.7).
        let a = if y == 1.0 { pos } else { neg };
        let hi = gamma * a;
        let lo = gamma.mul_add(a, -hi);
        let gl = gamma * l;
        let s = -hi - gl;
        let bb = s + hi;
        let err = (-hi - (s - bb)) + (-gl - bb);
        (exp_pair(s, err - lo), if y == 1.0 { sig_pos } else { sig_neg })
    };
    if gamma == 0.0 {
        (alpha_t * b, d, alpha_t)
    } else {
        (alpha_t * (m * b), m * (gamma * (1.0 - 2.0 * y) * r * b + d), alpha_t)
    }
}

/// One row of the sigmoid focal loss: `terms_j` and, when `grad` is given,
/// `grad_j = round(scale·α_t·∂_j)`; returns false when a logit is not
/// finite or a label is outside `[0, 1]`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
fn sigmoid_focal_row<T: Float, P: Real>(
    x: &[T],
    y: &[P],
    alpha: Option<f64>,
    gamma: f64,
    scale: f64,
    terms: &mut [f64],
    mut grad: Option<&mut [T]>,
) -> bool {
    let n = x.len();
    let (y, terms) = (&y[..n], &mut terms[..n]);
    let (mut bad, mut soft) = (false, false);
    match grad.as_deref_mut() {
        Some(grad) => {
            let grad = &mut grad[..n];
            for j in 0..n {
                let (xj, yj) = (x[j].to_f64(), y[j].re());
                bad |= !xj.is_finite() | !(0.0..=1.0).contains(&yj);
                soft |= yj > 0.0 && yj < 1.0;
                let (v, d, alpha_t) = sigmoid_focal_element(xj, yj, alpha, gamma, false);
                terms[j] = v;
                grad[j] = T::round_from(scale * alpha_t * d);
            }
        }
        None => {
            for j in 0..n {
                let (xj, yj) = (x[j].to_f64(), y[j].re());
                bad |= !xj.is_finite() | !(0.0..=1.0).contains(&yj);
                soft |= yj > 0.0 && yj < 1.0;
                terms[j] = sigmoid_focal_element(xj, yj, alpha, gamma, false).0;
            }
        }
    }
    if soft {
        for j in (0..n).filter(|&j| y[j].re() > 0.0 && y[j].re() < 1.0) {
            let (v, d, alpha_t) = sigmoid_focal_element(x[j].to_f64(), y[j].re(), alpha, gamma, true);
            terms[j] = v;
            if let Some(grad) = grad.as_deref_mut() {
                grad[j] = T::round_from(scale * alpha_t * d);
            }
        }
    }
    !bad
}

/// torchvision-style call: `sigmoid_focal_loss(inputs, targets, alpha, gamma,
/// reduction)` (fast path). `alpha = None` is torchvision's negative alpha.
///
/// # Errors
/// As [`SigmoidFocalLoss::new`] and [`SigmoidFocalLoss::loss`].
///
/// # Example
/// ```
/// use entropic::{Batch, Reduction, sigmoid_focal_loss};
/// let out = sigmoid_focal_loss(
///     Batch::new(&[0.0_f32, 0.0], 1, 2)?, Batch::new(&[1.0_f32, 0.0], 1, 2)?,
///     Some(0.25), 2.0, Reduction::Sum,
/// )?;
/// // (0.25 + 0.75)·0.5²·ln 2
/// assert!((out.reduced.unwrap() - 0.25 * 2f32.ln()).abs() <= 1e-7);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn sigmoid_focal_loss<T: Float, P: Real>(
    logits: Batch<'_, T>,
    labels: Batch<'_, P>,
    alpha: Option<f64>,
    gamma: f64,
    reduction: Reduction,
) -> Result<LossOutput<T>> {
    SigmoidFocalLoss::new(alpha, gamma)?
        .with_reduction(reduction)
        .loss(logits, labels)
}

/// `(m_o, ln Σ_{j≠k} e^{z_j − m_o})` over the entries of `row` other than
/// `k`, `m_o` the largest of them (by real part); `None` when there is no
/// other entry with a finite logit (then `p_k = 1` exactly). Generic.
fn log_sum_exp_excluding<D: Real>(row: &[D], k: usize) -> Option<(D, D)> {
    let mut best: Option<(usize, f64)> = None;
    for (j, z) in row.iter().enumerate() {
        let v = z.re();
        if j != k && best.is_none_or(|(_, b)| v > b) {
            best = Some((j, v));
        }
    }
    let (j, v) = best?;
    if v == f64::NEG_INFINITY {
        return None;
    }
    let m = row.get(j)?.clone();
    let s: D = row
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != k)
        .map(|(_, z)| (z.clone() - m.clone()).exp())
        .sum();
    Some((m, s.ln()))
}

/// The log-odds against the target `k`, `w = ln Σ_{j≠k} e^{z_j} − z_k`, from
/// the parts `(m_o, ln s_o)` of [`log_sum_exp_excluding`] (`m_o − z_k` first,
/// so that `ln s_o` is not lost against huge logits).
fn target_log_odds<D: Real>(z_k: D, m_o: D, ls: D) -> D {
    (m_o - z_k) + ls
}

/// The focal loss of a row from the parts of its log-odds
/// `w = (m_o − z_k) + ln s_o`: [`focal_from_log_odds`], except where
/// `m_o − z_k` overflows although `z_k` is finite (logits of both signs near
/// `f64::MAX`). There `softplus(w) = w` and the modulating factor is 1 to
/// within `e^{−w} = 0`, and the loss is `α·w`, formed from its parts by
/// [`crate::softmax::nll_term`] (the same overflow as cross-entropy's):
/// finite wherever the exact value is (`α ≤ 1`).
fn focal_from_parts<D: Real>(z_k: D, m_o: D, ls: D, gamma: f64, alpha: f64) -> D {
    let w = target_log_odds(z_k.clone(), m_o.clone(), ls.clone());
    if w.re() == f64::INFINITY && z_k.re() != f64::NEG_INFINITY && alpha != 0.0 {
        return crate::softmax::nll_term(ls, z_k, m_o, alpha);
    }
    focal_from_log_odds(w, gamma, alpha)
}

/// `α·exp(−γ·softplus(−w))·softplus(w)`, the focal loss of a row with
/// log-odds `w` against its target; exactly 0 when `α = 0` (also for a
/// masked target, `w = +∞`, where `0·∞` would be NaN). Generic.
fn focal_from_log_odds<D: Real>(w: D, gamma: f64, alpha: f64) -> D {
    if alpha == 0.0 {
        return D::zero();
    }
    let b = softplus(w.clone());
    let fl = match modulating_factor(&-softplus(-w), gamma) {
        None => b,
        Some(m) => m * b,
    };
    fl.scale_f64(alpha)
}

/// Softmax focal loss over a row-major `[n, c]` batch of logits with one
/// class index per row: `ℓ = −α_k (1 − a_k)^γ ln a_k`, `a = softmax(z)`,
/// `k` the target class.
///
/// # Formula
/// Everything is a function of the log-odds against the target,
/// `w = ln Σ_{j≠k} e^{z_j} − z_k` (a log-sum-exp over the other classes with
/// its own max shift, minus `z_k`):
/// `−ln a_k = softplus(w)`, `ln(1 − a_k) = ln Σ_{j≠k} a_j = −softplus(−w)`, so
///
/// `ℓ = α_k · exp(−γ·softplus(−w)) · softplus(w)`.
///
/// Neither `a_k` nor `1 − a_k` is ever rounded before its logarithm is taken.
///
/// # Conventions
/// - `alpha`: optional per-class weights `α_c ∈ [0, 1]` (length `c`);
///   without them `α_k = 1`.
/// - Logits may be `−∞` (a masked class, probability 0) but not NaN or `+∞`.
///   A row whose only finite logit is the target (or `c = 1`) has `a_k = 1`
///   and loss 0; a masked target gives `+∞` (the exact value) and the limit
///   gradient `α_k(a − e_k)`.
/// - `ignore_index`: rows whose target equals it contribute loss 0 and a zero
///   gradient whatever their logits (all `−∞` included; NaN and `+∞` are
///   still errors, as in [`crate::SoftmaxCrossEntropy`]).
/// - `Mean` divides by the number of non-ignored rows, **not** by
///   `Σ α_{k_n}` as PyTorch's weighted `nll_loss` would: `α` is a fixed
///   per-class weight of the loss (as `α_t` in torchvision's sigmoid focal
///   loss, whose `.mean()` is unweighted), and normalizing by it would undo
///   its effect on a single-class batch. `BatchMean` divides by `n`.
/// - `γ = 0` without `alpha` is softmax cross-entropy; it agrees with
///   [`crate::SoftmaxCrossEntropy`] to within a few ulps of `max(1, ℓ)`
///   (this type's `softplus(w)` is the more accurate of the two for `ℓ ≪ 1`).
///
/// # Gradient
/// With `B = softplus(w)`, `M = exp(−γ·softplus(−w)) = (1 − a_k)^γ` and
/// `dB/dw = σ(w) = 1 − a_k`, `d ln M/dw = γσ(−w) = γ a_k`:
///
/// `D := dℓ/dw = α_k · M · [σ(w) + γ·σ(−w)·softplus(w)]  (≥ 0)`,
///
/// and `∂w/∂z_k = −1`, `∂w/∂z_j = e^{z_j}/Σ_{i≠k} e^{z_i} =: ã_j` (the softmax
/// over the other classes), so
///
/// `∂ℓ/∂z_k = −D`,  `∂ℓ/∂z_j = D·ã_j  (j ≠ k)`.
///
/// Equivalently `∇ℓ = α_k (1 − a_k)^γ (1 + K)(a − e_k)` with
/// `K = γ a_k(−ln a_k)/(1 − a_k)`, the textbook
/// `∂/∂z_j[−α(1 − a_k)^γ ln a_k] = α(1 − a_k)^γ(δ_jk − a_j)[γ a_k ln a_k/(1 − a_k) − 1]`;
/// the `w` form has no `0/0` at `a_k → 1` and every factor is in `[0, 1]`
/// except `softplus(w)`, which only appears as `σ(−w)·softplus(w) < 1`, so
/// the gradient is finite for every finite logit and every `γ ≥ 0`, and sums
/// to 0 over the row up to rounding.
///
/// # Errors
/// See [`SoftmaxFocalLoss::loss`].
///
/// # Example
/// ```
/// use entropic::{Batch, Reduction, SoftmaxFocalLoss};
/// let fl = SoftmaxFocalLoss::new(2.0)?
///     .with_alpha(vec![0.25, 0.5, 0.75])?
///     .with_reduction(Reduction::None);
/// let z = [1.0_f64, 2.0, 3.0, 1e30, -1e30, 0.0];
/// let (out, grad) = fl.loss_and_grad(Batch::new(&z, 2, 3)?, &[2, 1])?;
/// let a = [1f64.exp(), 2f64.exp(), 3f64.exp()].map(|e| e / (1f64.exp() + 2f64.exp() + 3f64.exp()));
/// assert!((out.unreduced[0] - 0.75 * (1.0 - a[2]).powi(2) * -a[2].ln()).abs() <= 1e-15);
/// // row 1 is confidently wrong by 2e30: loss 0.5·2e30, gradient 0.5·(e_0 − e_1)
/// assert_eq!(out.unreduced[1], 1e30);
/// assert_eq!(&grad[3..], &[0.5, -0.5, 0.0]);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// Lin, Goyal, Girshick, He, Dollár (ICCV 2017), "Focal Loss for Dense
/// Object Detection", Eq. (5) (the multi-class form is the natural extension
/// the paper mentions in §3.2 and its appendix); torchvision's
/// `sigmoid_focal_loss` for the conventions shared with the binary form.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxFocalLoss {
    alpha: Option<Vec<f64>>,
    gamma: f64,
    ignore_index: Option<usize>,
    reduction: Reduction,
}

impl SoftmaxFocalLoss {
    /// A softmax focal loss with focusing parameter `gamma`, no `α`, no
    /// ignored class, `Reduction::Mean`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `γ` is NaN, infinite or negative.
    pub fn new(gamma: f64) -> Result<Self> {
        Ok(Self {
            alpha: None,
            gamma: check_gamma(gamma)?,
            ignore_index: None,
            reduction: Reduction::Mean,
        })
    }

    /// Per-class weights `α_c ∈ [0, 1]` (length `c`, checked against the
    /// logits when the loss is evaluated).
    ///
    /// # Errors
    /// [`Error::NonFinite`] / [`Error::OutOfDomain`] naming the first bad entry.
    pub fn with_alpha(mut self, alpha: Vec<f64>) -> Result<Self> {
        check_in_range("alpha", &alpha, 0, 0.0, 1.0, "in [0, 1]")?;
        self.alpha = Some(alpha);
        Ok(self)
    }

    /// Rows whose target equals `ignore_index` are skipped (`None`: no
    /// ignored class; PyTorch's `-100` has no `usize` spelling).
    pub fn with_ignore_index(mut self, ignore_index: Option<usize>) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// The reduction (`Mean` divides by the number of non-ignored rows,
    /// `BatchMean` by `n`).
    pub fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The per-class weights (`None`: all 1).
    pub fn alpha(&self) -> Option<&[f64]> {
        self.alpha.as_deref()
    }

    /// The focusing parameter `γ`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The ignored class, if any.
    pub fn ignore_index(&self) -> Option<usize> {
        self.ignore_index
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// `α_k` of a validated class index.
    fn alpha_of(&self, k: usize) -> f64 {
        self.alpha.as_ref().and_then(|a| a.get(k).copied()).unwrap_or(1.0)
    }

    /// Validates shapes, targets and logits; returns the reduction scale.
    fn prepare<T: Real>(&self, logits: &Batch<'_, T>, targets: &[usize]) -> Result<f64> {
        let (n, c) = (logits.n(), logits.c());
        if targets.len() != n {
            return Err(Error::ShapeMismatch {
                what: "targets",
                expected: n,
                actual: targets.len(),
            });
        }
        if c == 0 {
            return Err(Error::InvalidShape {
                what: "logits",
                n,
                c,
                requirement: "at least one class",
            });
        }
        if let Some(a) = &self.alpha {
            check_weights("alpha", a, c)?;
        }
        let mut kept = 0usize;
        for (row, (&k, z)) in targets.iter().zip(logits.rows()).enumerate() {
            let ignored = Some(k) == self.ignore_index;
            if !ignored {
                if k >= c {
                    return Err(Error::ClassOutOfRange {
                        row,
                        class: k,
                        classes: c,
                    });
                }
                kept += 1;
            }
            check_row("logits", z, row).or_else(|e| match e {
                Error::NoFiniteLogit { .. } if ignored => Ok(()),
                e => Err(e),
            })?;
        }
        self.reduction.scale(kept as f64, n)
    }

    /// The focal loss of one validated row with target `k`. Generic.
    fn row_loss<D: Real>(&self, row: &[D], k: usize) -> D {
        match (row.get(k), log_sum_exp_excluding(row, k)) {
            (Some(z_k), Some((m_o, ls))) => focal_from_parts(z_k.clone(), m_o, ls, self.gamma, self.alpha_of(k)),
            // a_k = 1 (no other finite logit): −α·0^γ·ln 1 = 0 for every γ ≥ 0
            _ => D::zero(),
        }
    }

    /// The generic definition (the reference): per row
    /// `α_k·exp(−γ·softplus(−w))·softplus(w)` with `w` the log-odds against the
    /// target, reduced in a fixed order. Runs with `f32`, `f64`, dual numbers
    /// or any [`Real`].
    ///
    /// # Errors
    /// As [`Self::loss`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, SoftmaxFocalLoss};
    /// use num_dual::{Dual64, DualNum};
    /// // z = (0, 0), k = 0, γ = 2: w = 0, ℓ = (1/2)²·ln 2
    /// let z = [Dual64::from_re(0.0).derivative(), Dual64::from_re(0.0)];
    /// let out = SoftmaxFocalLoss::new(2.0)?.definition(Batch::new(&z, 1, 2)?, &[0])?;
    /// let v = out.reduced.unwrap();
    /// assert!((v.re - 0.25 * 2f64.ln()).abs() < 1e-16);
    /// // −D = −(1/4)·[1/2 + 2·(1/2)·ln 2]
    /// assert!((v.eps + 0.25 * (0.5 + 2f64.ln())).abs() < 1e-16);
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn definition<D: Real>(&self, logits: Batch<'_, D>, targets: &[usize]) -> Result<LossOutput<D>> {
        let scale = self.prepare(&logits, targets)?;
        let unreduced: Vec<D> = logits
            .rows()
            .zip(targets)
            .map(|(row, &k)| {
                if Some(k) == self.ignore_index {
                    D::zero()
                } else {
                    self.row_loss(row, k)
                }
            })
            .collect();
        let reduced = reduce_generic(&unreduced, self.reduction, scale);
        Ok(LossOutput { unreduced, reduced })
    }

    /// The loss value (fast path, `f64` inside, rounded once to `T`).
    ///
    /// # Errors
    /// - [`Error::ShapeMismatch`]: targets or `alpha` of the wrong length;
    /// - [`Error::InvalidShape`]: `c = 0`;
    /// - [`Error::ClassOutOfRange`]: a target `≥ c` (not ignored);
    /// - [`Error::NonFinite`]: NaN or `+∞` logits;
    /// - [`Error::NoFiniteLogit`]: a non-ignored row of all `−∞`;
    /// - [`Error::Empty`] / [`Error::ZeroTotalWeight`]: a `Mean` with nothing
    ///   to average (empty batch, every row ignored).
    pub fn loss<T: Float>(&self, logits: Batch<'_, T>, targets: &[usize]) -> Result<LossOutput<T>> {
        self.kernel(logits, targets, None)
    }

    /// The loss and its gradient with respect to the logits (row-major, same
    /// shape), fused in one pass over each row.
    ///
    /// # Errors
    /// As [`Self::loss`].
    pub fn loss_and_grad<T: Float>(&self, logits: Batch<'_, T>, targets: &[usize]) -> Result<(LossOutput<T>, Vec<T>)> {
        let mut grad = vec![T::zero(); logits.as_slice().len()];
        let out = self.kernel(logits, targets, Some(&mut grad))?;
        Ok((out, grad))
    }

    /// As [`Self::loss_and_grad`], writing the gradient into `grad`.
    ///
    /// # Errors
    /// As [`Self::loss`], and [`Error::ShapeMismatch`] when `grad` has the wrong length.
    pub fn loss_and_grad_into<T: Float>(
        &self,
        logits: Batch<'_, T>,
        targets: &[usize],
        grad: &mut [T],
    ) -> Result<LossOutput<T>> {
        if grad.len() != logits.as_slice().len() {
            return Err(Error::ShapeMismatch {
                what: "gradient buffer",
                expected: logits.as_slice().len(),
                actual: grad.len(),
            });
        }
        self.kernel(logits, targets, Some(grad))
    }

    fn kernel<T: Float>(
        &self,
        logits: Batch<'_, T>,
        targets: &[usize],
        mut grad: Option<&mut [T]>,
    ) -> Result<LossOutput<T>> {
        let scale = self.prepare(&logits, targets)?;
        let c = logits.c();
        let gamma = self.gamma;
        // Filled row by row (never `vec![0.0; c]`: with n = 0 the batch may
        // claim any c, e.g. usize::MAX).
        let mut z: Vec<f64> = Vec::new();
        let mut unreduced = Vec::with_capacity(logits.n());
        for (i, (row, &k)) in logits.rows().zip(targets).enumerate() {
            let g = grad.as_deref_mut().and_then(|g| g.get_mut(i * c..(i + 1) * c));
            z.clear();
            z.extend(row.iter().map(|x| x.to_f64()));
            if Some(k) == self.ignore_index {
                if let Some(g) = g {
                    g.fill(T::zero());
                }
                unreduced.push(0.0);
                continue;
            }
            let parts = z.get(k).copied().zip(log_sum_exp_excluding(&z, k));
            let Some((z_k, (m_o, ls))) = parts else {
                // a_k = 1 (no other finite logit): loss 0, locally constant
                unreduced.push(0.0);
                if let Some(g) = g {
                    g.fill(T::zero());
                }
                continue;
            };
            let w = target_log_odds(z_k, m_o, ls);
            let alpha = self.alpha_of(k);
            unreduced.push(focal_from_parts(z_k, m_o, ls, gamma, alpha));
            let Some(g) = g else { continue };
            let b = softplus(w);
            let m = modulating_factor(&-softplus(-w), gamma).unwrap_or(1.0);
            // γ·σ(−w)·softplus(w); σ(−w) = 0 (w = +∞, a masked target) ends it
            let s_neg = sigmoid(-w);
            let focus = if gamma == 0.0 || s_neg == 0.0 {
                0.0
            } else {
                gamma * s_neg * b
            };
            let d = scale * alpha * m * (sigmoid(w) + focus);
            // ã_j = e^{z_j − m_o − ln s_o}: the softmax over the classes j ≠ k
            for (j, (gj, &zj)) in g.iter_mut().zip(&z).enumerate() {
                *gj = T::round_from(if j == k { -d } else { d * ((zj - m_o) - ls).exp() });
            }
        }
        let reduced = reduce_f64(&unreduced, self.reduction, scale).map(T::round_from);
        Ok(LossOutput {
            unreduced: unreduced.into_iter().map(T::round_from).collect(),
            reduced,
        })
    }
}

/// Function-style call of the softmax focal loss (fast path): class targets,
/// optional per-class `alpha`, `gamma`, `reduction` (no ignored class; use
/// [`SoftmaxFocalLoss`] for `ignore_index`).
///
/// # Errors
/// As [`SoftmaxFocalLoss::new`], [`SoftmaxFocalLoss::with_alpha`] and
/// [`SoftmaxFocalLoss::loss`].
///
/// # Example
/// ```
/// use entropic::{Batch, Reduction, softmax_focal_loss};
/// let out = softmax_focal_loss(Batch::new(&[0.0_f64, 0.0], 1, 2)?, &[1], None, 1.0, Reduction::Mean)?;
/// assert!((out.reduced.unwrap() - 0.5 * 2f64.ln()).abs() < 1e-16);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn softmax_focal_loss<T: Float>(
    logits: Batch<'_, T>,
    targets: &[usize],
    alpha: Option<&[f64]>,
    gamma: f64,
    reduction: Reduction,
) -> Result<LossOutput<T>> {
    let mut fl = SoftmaxFocalLoss::new(gamma)?.with_reduction(reduction);
    if let Some(a) = alpha {
        fl = fl.with_alpha(a.to_vec())?;
    }
    fl.loss(logits, targets)
}
