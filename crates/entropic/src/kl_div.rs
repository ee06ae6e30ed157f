//! KL divergence from log-probabilities (`F.kl_div`).

use crate::batch::Batch;
use crate::domain::{check_in_range, check_logits};
use crate::error::Result;
use crate::real::{Float, Real};
use crate::reduction::{LossOutput, Reduction, reduce_f64, reduce_generic};

/// Pointwise KL divergence `F.kl_div(input, target)`, where `input` holds
/// log-probabilities `ln q` of the model and `target` the reference
/// distribution `p` (or `ln p` with `log_target`).
///
/// # Formula
/// `ℓ = p·(ln p − x)` per element (`x = ln q`); with `log_target`,
/// `ℓ = e^t·(t − x)` (`t = ln p`).
///
/// # Conventions
/// - `p = 0` (or `t = −∞`) contributes 0, even where `x = −∞`
///   (`0·ln 0 = 0`). `x = −∞` with `p > 0` gives `+∞` (exact).
/// - Reductions as PyTorch: `Mean` divides by `n·c` (not the KL divergence!),
///   `BatchMean` by `n` (the mean KL per row). There is no default: the
///   reduction is chosen at construction.
///
/// # Gradient
/// `∂ℓ/∂x = −p` (or `−e^t`), scaled by the reduction: finite wherever the
/// target is finite, including `p = 0` entries.
///
/// # Errors
/// NaN or `+∞` in the input; negative or non-finite `p`; NaN or `+∞` in a
/// log target; shape mismatch; `Mean`/`BatchMean` of an empty batch.
///
/// # Example
/// ```
/// use entropic::{Batch, KlDiv, Reduction};
/// let ln_q = [0.5_f64.ln(), 0.5_f64.ln()];
/// let p = [1.0, 0.0];
/// let (out, grad) = KlDiv::new(Reduction::BatchMean)
///     .loss_and_grad(Batch::new(&ln_q, 1, 2)?, Batch::new(&p, 1, 2)?)?;
/// assert_eq!(out.reduced, Some(2f64.ln()));
/// assert_eq!(grad, vec![-1.0, 0.0]);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// PyTorch `torch.nn.functional.kl_div`; Kullback & Leibler 1951.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlDiv {
    reduction: Reduction,
    log_target: bool,
}

impl KlDiv {
    /// With the given reduction, `log_target = false`.
    pub fn new(reduction: Reduction) -> Self {
        Self {
            reduction,
            log_target: false,
        }
    }

    /// Whether the target is given as log-probabilities.
    pub fn with_log_target(mut self, log_target: bool) -> Self {
        self.log_target = log_target;
        self
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// Whether the target is given as log-probabilities.
    pub fn log_target(&self) -> bool {
        self.log_target
    }

    /// A copy with another reduction.
    pub fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    fn prepare<T: Real, P: Real>(&self, input: &Batch<'_, T>, target: &Batch<'_, P>) -> Result<f64> {
        let c = input.c();
        input.same_shape(target, "target")?;
        check_logits("input (log-probabilities)", input.as_slice(), c, true)?;
        if self.log_target {
            check_logits("target (log-probabilities)", target.as_slice(), c, true)?;
        } else {
            check_in_range("target", target.as_slice(), c, 0.0, f64::MAX, "finite and >= 0")?;
        }
        self.reduction.scale(input.as_slice().len() as f64, input.n())
    }

    /// `(p, ln p)` from a target entry, `None` where `p = 0`.
    fn target(&self, t: f64) -> Option<(f64, f64)> {
        if self.log_target {
            (t != f64::NEG_INFINITY).then(|| (t.exp(), t))
        } else {
            (t != 0.0).then(|| (t, t.ln()))
        }
    }

    /// The generic definition (reference): `p·(ln p − x)` per element.
    ///
    /// # Errors
    /// As [`Self::loss`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, KlDiv, Reduction};
    /// let x = [-(2f64.ln()), -(2f64.ln())];
    /// let out = KlDiv::new(Reduction::Sum).definition(Batch::new(&x, 1, 2)?, Batch::new(&[0.5, 0.5], 1, 2)?)?;
    /// assert!(out.reduced.unwrap().abs() < 1e-16);
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn definition<D: Real, P: Real>(&self, input: Batch<'_, D>, target: Batch<'_, P>) -> Result<LossOutput<D>> {
        let scale = self.prepare(&input, &target)?;
        let unreduced: Vec<D> = input
            .as_slice()
            .iter()
            .zip(target.as_slice())
            .map(|(x, t)| match self.target(t.re()) {
                None => D::zero(),
                // ln q = −∞ under a positive target: the exact term is +∞, also
                // where p = e^t underflows to 0 (0·∞ would be NaN).
                Some(_) if x.re() == f64::NEG_INFINITY => D::from_f64(f64::INFINITY),
                // ln p = ln q with p = e^t overflowing (a log target above
                // 709): the term is exactly 0 (∞·0 would be NaN). Only then:
                // for a finite p the product keeps its derivative −p.
                Some((p, ln_p)) if p.is_infinite() && ln_p == x.re() => D::zero(),
                // p = e^t underflowed to 0 (t < −745): the exact term
                // e^t·(t − x) is below the range, also where t − x
                // overflows (0·∞ would be NaN); its derivative −p is 0 too.
                Some((0.0, _)) => D::zero(),
                Some((p, ln_p)) => (D::from_f64(ln_p) - x.clone()).scale_f64(p),
            })
            .collect();
        let reduced = reduce_generic(&unreduced, self.reduction, scale);
        Ok(LossOutput { unreduced, reduced })
    }

    /// The loss value (fast path).
    ///
    /// # Errors
    /// - [`crate::Error::ShapeMismatch`]; [`crate::Error::NonFinite`] for NaN / `+∞` input
    ///   or a NaN / `+∞` log target;
    /// - [`crate::Error::OutOfDomain`] for a negative target;
    /// - [`crate::Error::Empty`] for a mean of an empty batch.
    ///
    /// As in PyTorch, inputs above 0 (log-probabilities of more than 1) are
    /// accepted: the formula is defined there and a finite-difference step at
    /// `ln q = 0` must not fail.
    pub fn loss<T: Float, P: Real>(&self, input: Batch<'_, T>, target: Batch<'_, P>) -> Result<LossOutput<T>> {
        self.kernel(input, target, None)
    }

    /// The loss and its gradient with respect to `input`.
    ///
    /// # Errors
    /// As [`Self::loss`].
    pub fn loss_and_grad<T: Float, P: Real>(
        &self,
        input: Batch<'_, T>,
        target: Batch<'_, P>,
    ) -> Result<(LossOutput<T>, Vec<T>)> {
        let mut grad = vec![T::zero(); input.as_slice().len()];
        let out = self.kernel(input, target, Some(&mut grad))?;
        Ok((out, grad))
    }

    fn kernel<T: Float, P: Real>(
        &self,
        input: Batch<'_, T>,
        target: Batch<'_, P>,
        mut grad: Option<&mut [T]>,
    ) -> Result<LossOutput<T>> {
        let scale = self.prepare(&input, &target)?;
        let mut unreduced = Vec::with_capacity(input.as_slice().len());
        for (i, (x, t)) in input.as_slice().iter().zip(target.as_slice()).enumerate() {
            let (l, g) = match self.target(t.re()) {
                None => (0.0, 0.0),
                Some((p, _)) if x.to_f64() == f64::NEG_INFINITY => (f64::INFINITY, -p),
                Some((p, ln_p)) if p.is_infinite() && ln_p == x.to_f64() => (0.0, -p),
                // As the definition: an underflowed e^t contributes 0.
                Some((0.0, _)) => (0.0, -0.0),
                Some((p, ln_p)) => (p * (ln_p - x.to_f64()), -p),
            };
            unreduced.push(l);
            if let Some(gr) = grad.as_deref_mut() {
                gr[i] = T::round_from(scale * g);
            }
        }
        let reduced = reduce_f64(&unreduced, self.reduction, scale).map(T::round_from);
        Ok(LossOutput {
            unreduced: unreduced.into_iter().map(T::round_from).collect(),
            reduced,
        })
    }
}
