//! Binary cross-entropy from logits (`F.binary_cross_entropy_with_logits`).

use crate::batch::Batch;
use crate::domain::{check_in_range, check_not_nan, check_weights};
use crate::error::Result;
use crate::kernels::{self, logistic32, rows::for_each_element_row};
use crate::real::{Float, Real};
use crate::reduction::{LossOutput, Reduction, reduce_f64, reduce_generic};

/// `softplus(x) = ln(1 + e^x) = max(x, 0) + ln(1 + e^{−|x|})`: exact at
/// `x = ±∞` (`+∞`, `0`) and never overflows. Generic.
pub fn softplus<T: Real>(x: T) -> T {
    if x.re() > 0.0 {
        x.clone() + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// `σ(x) = 1/(1 + e^{−x})`, evaluated without overflow on both sides. Generic.
pub fn sigmoid<T: Real>(x: T) -> T {
    if x.re() >= 0.0 {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e.clone() / (T::one() + e)
    }
}

/// `ln σ(x) = −softplus(−x)`. Generic.
pub fn log_sigmoid<T: Real>(x: T) -> T {
    -softplus(-x)
}

/// Binary cross-entropy with logits over a row-major `[n, c]` batch (one
/// independent binary problem per element; multi-label classification).
///
/// # Formula
/// `ℓ = w_c·[ r_c·y·softplus(−x) + (1 − y)·softplus(x) ]`, which equals
/// `−w_c·[ r_c·y·ln σ(x) + (1−y)·ln(1−σ(x)) ]` with `r` the `pos_weight`.
///
/// # Conventions
/// - `weight` and `pos_weight` are per column (length `c`, broadcast over rows),
///   PyTorch's most common broadcast.
/// - Labels `y ∈ [0, 1]` (soft labels allowed). A term whose coefficient is 0
///   contributes 0 even when its softplus is `+∞`, so `x = +∞, y = 1` gives 0.
/// - Logits may be `±∞` (the limits are well defined); NaN is an error.
/// - `Mean` divides by `n·c` (PyTorch).
///
/// # Gradient
/// `∂ℓ/∂x = w_c·[ (1 − y)·σ(x) − r_c·y·σ(−x) ]` (`σ(x) − y` without weights),
/// with `σ(−x)` evaluated directly (no `1 − σ(x)` cancellation).
///
/// # Errors
/// Shape mismatches, NaN logits, labels outside `[0, 1]`, negative or
/// non-finite weights, `Mean` of an empty batch.
///
/// # Example
/// ```
/// use entropic::{Batch, BinaryCrossEntropyWithLogits, Reduction};
/// let bce = BinaryCrossEntropyWithLogits::new().with_reduction(Reduction::None);
/// let x = [1e9_f64, -1e9, f64::NEG_INFINITY];
/// let y = [0.0, 0.0, 0.9];
/// let (out, grad) = bce.loss_and_grad(Batch::new(&x, 1, 3)?, Batch::new(&y, 1, 3)?)?;
/// assert_eq!(out.unreduced, vec![1e9, 0.0, f64::INFINITY]);
/// assert_eq!(grad, vec![1.0, 0.0, -0.9]);
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// PyTorch `torch.nn.functional.binary_cross_entropy_with_logits`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryCrossEntropyWithLogits {
    weight: Option<Vec<f64>>,
    pos_weight: Option<Vec<f64>>,
    reduction: Reduction,
}

impl Default for BinaryCrossEntropyWithLogits {
    fn default() -> Self {
        Self::new()
    }
}

impl BinaryCrossEntropyWithLogits {
    /// PyTorch's defaults: no weights, `Reduction::Mean`.
    pub fn new() -> Self {
        Self {
            weight: None,
            pos_weight: None,
            reduction: Reduction::Mean,
        }
    }

    /// Per-column weights `w_c` (finite, `≥ 0`).
    ///
    /// # Errors
    /// Names the first bad weight.
    pub fn with_weight(mut self, weight: Vec<f64>) -> Result<Self> {
        check_in_range("weight", &weight, 0, 0.0, f64::MAX, "finite and >= 0")?;
        self.weight = Some(weight);
        Ok(self)
    }

    /// Per-column positive-class weights `r_c` (finite, `≥ 0`).
    ///
    /// # Errors
    /// Names the first bad weight.
    pub fn with_pos_weight(mut self, pos_weight: Vec<f64>) -> Result<Self> {
        check_in_range("pos_weight", &pos_weight, 0, 0.0, f64::MAX, "finite and >= 0")?;
        self.pos_weight = Some(pos_weight);
        Ok(self)
    }

    /// The reduction.
    pub fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The per-column weights, if any.
    pub fn weight(&self) -> Option<&[f64]> {
        self.weight.as_deref()
    }

    /// The per-column positive-class weights, if any.
    pub fn pos_weight(&self) -> Option<&[f64]> {
        self.pos_weight.as_deref()
    }

    fn prepare<T: Real, P: Real>(&self, x: &Batch<'_, T>, y: &Batch<'_, P>) -> Result<f64> {
        let c = x.c();
        self.prepare_shapes(x, y)?;
        check_not_nan("logits", x.as_slice(), c)?;
        check_in_range("labels", y.as_slice(), c, 0.0, 1.0, "a label in [0, 1]")?;
        self.reduction.scale(x.as_slice().len() as f64, x.n())
    }

    /// The checks of [`Self::prepare`] that do not read the data.
    fn prepare_shapes<T: Real, P: Real>(&self, x: &Batch<'_, T>, y: &Batch<'_, P>) -> Result<()> {
        let c = x.c();
        x.same_shape(y, "labels")?;
        if let Some(w) = &self.weight {
            check_weights("weight", w, c)?;
        }
        if let Some(w) = &self.pos_weight {
            check_weights("pos_weight", w, c)?;
        }
        Ok(())
    }

    fn weights(&self, j: usize) -> (f64, f64) {
        (
            self.weight.as_ref().map_or(1.0, |w| w[j]),
            self.pos_weight.as_ref().map_or(1.0, |w| w[j]),
        )
    }

    /// The generic definition (reference), per element
    /// `w·[r·y·softplus(−x) + (1−y)·softplus(x)]`.
    ///
    /// # Errors
    /// As [`Self::loss`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, BinaryCrossEntropyWithLogits};
    /// let out = BinaryCrossEntropyWithLogits::new()
    ///     .definition(Batch::new(&[0.0_f64], 1, 1)?, Batch::new(&[1.0_f64], 1, 1)?)?;
    /// assert_eq!(out.reduced, Some(2f64.ln()));
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn definition<D: Real, P: Real>(&self, logits: Batch<'_, D>, labels: Batch<'_, P>) -> Result<LossOutput<D>> {
        let scale = self.prepare(&logits, &labels)?;
        let c = logits.c();
        let unreduced: Vec<D> = logits
            .as_slice()
            .iter()
            .zip(labels.as_slice())
            .enumerate()
            .map(|(i, (x, y))| {
                let (w, r) = self.weights(i % c);
                let y = y.re();
                let mut l = D::zero();
                if r * y != 0.0 {
                    l += softplus(-x.clone()).scale_f64(r * y);
                }
                if 1.0 - y != 0.0 {
                    l += softplus(x.clone()).scale_f64(1.0 - y);
                }
                l.scale_f64(w)
            })
            .collect();
        let reduced = reduce_generic(&unreduced, self.reduction, scale);
        Ok(LossOutput { unreduced, reduced })
    }

    /// The loss value (fast path).
    ///
    /// # Errors
    /// - [`crate::Error::ShapeMismatch`]: labels or weights of the wrong shape;
    /// - [`crate::Error::NonFinite`]: NaN logits, non-finite labels;
    /// - [`crate::Error::OutOfDomain`]: labels outside `[0, 1]`;
    /// - [`crate::Error::Empty`]: `Mean` of an empty batch.
    pub fn loss<T: Float, P: Real>(&self, logits: Batch<'_, T>, labels: Batch<'_, P>) -> Result<LossOutput<T>> {
        self.kernel(logits, labels, None, true)
    }

    /// The loss and its gradient with respect to the logits.
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
    /// As [`Self::loss`], and a shape mismatch for `grad`.
    pub fn loss_and_grad_into<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        labels: Batch<'_, P>,
        grad: &mut [T],
    ) -> Result<LossOutput<T>> {
        if grad.len() != logits.as_slice().len() {
            return Err(crate::Error::ShapeMismatch {
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
    /// use entropic::{Batch, BinaryCrossEntropyWithLogits};
    /// let loss = BinaryCrossEntropyWithLogits::new();
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

    /// The fast kernel: one vectorized pass per row (branch-free `exp` and
    /// `ln(1 + t)` shared by the value and the gradient), rows in parallel
    /// (deterministic). Labels are read in place through `Real::re` and
    /// checked on the way, NaN logits are detected in the same pass; the
    /// reduction sums per-row lane sums, so no `n·c` buffer of `f64` terms
    /// is made. Any invalid input makes [`Self::prepare`] report the
    /// error the definition reports.
    fn kernel<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        labels: Batch<'_, P>,
        grad: Option<&mut [T]>,
        keep_terms: bool,
    ) -> Result<LossOutput<T>> {
        let (n, c) = (logits.n(), logits.c());
        let len = logits.as_slice().len();
        let scale = match self
            .prepare_shapes(&logits, &labels)
            .and_then(|()| self.reduction.scale(len as f64, n))
        {
            Ok(scale) => scale,
            Err(e) => return Err(self.prepare(&logits, &labels).err().unwrap_or(e)),
        };
        let mut unreduced = vec![T::zero(); if keep_terms { len } else { 0 }];
        let mut sums = vec![0.0; n];
        // (`c` may be huge when `n = 0`: allocate per-column buffers only
        // for a non-empty batch.)
        let ok = len == 0 || {
            let ones = vec![1.0; c];
            let w = self.weight.as_deref().unwrap_or(&ones);
            let r = self.pos_weight.as_deref().unwrap_or(&ones);
            let unweighted = self.weight.is_none() && self.pos_weight.is_none();
            for_each_element_row(
                logits.as_slice(),
                labels.as_slice(),
                c,
                &mut sums,
                keep_terms.then_some(&mut unreduced[..]),
                grad,
                |x, y, terms, mut g| {
                    // The f32 path for unweighted f32 rows with hard labels;
                    // any other group (or one it hands back) takes the f64
                    // row, one row at a time (the weights are per column).
                    let f32_done = unweighted
                        && T::as_f32(x).is_some_and(|x32| {
                            let g32 = g.as_deref_mut().and_then(T::as_f32_mut);
                            logistic32::bce_row_f32(x32, y, scale, terms, g32)
                        });
                    f32_done || {
                        let mut ok = true;
                        for (i, (x, y)) in x.chunks(c).zip(y.chunks(c)).enumerate() {
                            let g = g.as_deref_mut().map(|g| &mut g[i * c..(i + 1) * c]);
                            ok &= kernels::bce_row(x, y, w, r, scale, &mut terms[i * c..(i + 1) * c], g);
                        }
                        ok
                    }
                },
            )
        };
        if !ok {
            // Reports the validation's error (the kernel flags exactly NaN
            // logits and labels outside [0, 1]).
            self.prepare(&logits, &labels)?;
        }
        // Every term is ≥ 0, so the row sums overflow only where the total does.
        let reduced = reduce_f64(&sums, self.reduction, scale).map(T::round_from);
        Ok(LossOutput { unreduced, reduced })
    }
}
