//! Softmax cross-entropy from logits, with PyTorch `F.cross_entropy` options.

use crate::batch::Batch;
use crate::domain::{check_in_range, check_parameter, check_weights};
use crate::error::{Error, Result};
use crate::kernels::{self, rows, rows::for_each_row};
use crate::real::{Float, Real};
use crate::reduction::{LossOutput, Reduction, reduce_f64, reduce_generic};
use crate::softmax::{RowStats, check_batch, row_exp, shifted_log_sum};

/// The targets of a softmax cross-entropy (or focal) loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Targets<'a, P> {
    /// One class index per row (`0 ≤ y < c`, or the loss's `ignore_index`).
    Classes(&'a [usize]),
    /// A row of non-negative class probabilities (soft labels) per row, same
    /// shape as the logits. Rows need not be normalized; the gradient is then
    /// `a·Σy − y` rather than `a − y`.
    Probabilities(Batch<'a, P>),
}

/// Targets with probabilities read through `Real::re` into `f64`, so that
/// kernels can share them across threads (`P` need not be `Sync`); class
/// indices are kept as they are.
pub(crate) struct TargetsF64<'a> {
    classes: Option<&'a [usize]>,
    probabilities: Vec<f64>,
    shape: (usize, usize),
}

impl<'a> TargetsF64<'a> {
    pub(crate) fn read<P: Real>(targets: &Targets<'a, P>) -> Self {
        match targets {
            Targets::Classes(y) => Self {
                classes: Some(y),
                probabilities: Vec::new(),
                shape: (0, 0),
            },
            Targets::Probabilities(p) => Self {
                classes: None,
                probabilities: p.as_slice().iter().map(Real::re).collect(),
                shape: (p.n(), p.c()),
            },
        }
    }

    /// The targets as `Targets<f64>`.
    ///
    /// # Errors
    /// None for targets from [`TargetsF64::read`] (their shape is a batch's).
    pub(crate) fn view(&self) -> Result<Targets<'_, f64>> {
        Ok(match self.classes {
            Some(y) => Targets::Classes(y),
            None => Targets::Probabilities(Batch::new(&self.probabilities, self.shape.0, self.shape.1)?),
        })
    }
}

/// Softmax cross-entropy over a row-major batch of logits `[n, c]`, the
/// semantics of PyTorch's `F.cross_entropy`.
///
/// # Formula
/// With `ln a = log_softmax(z)`, smoothing `ε`, class weights `w` (default 1):
/// - class index `y`: `ℓ = −(1−ε)·w_y·ln a_y − (ε/C)·Σ_c w_c ln a_c`;
/// - probabilities `p`: `ℓ = −Σ_c w_c·q_c·ln a_c` with `q = (1−ε)p + ε/C`.
///
/// # Conventions
/// - Label smoothing is PyTorch's `ε/C` (every class, the true one included,
///   receives `ε/C`). The bi-tempered loss uses `ε/(C−1)` instead.
/// - `Mean` divides by `Σ_n w_{y_n}` over non-ignored rows for class targets,
///   and by `n` for probability targets (as PyTorch does).
/// - Ignored rows contribute 0 to the loss and a zero gradient, whatever
///   their logits (−∞ included).
/// - A term with coefficient `w_c q_c = 0` contributes 0 even when `ln a_c = −∞`
///   (the `0·ln 0 = 0` convention); a positive coefficient on a masked (−∞)
///   class gives `+∞`, the exact value.
///
/// # Gradient
/// `∂ℓ/∂z_c = a_c·Σ_j w_j q_j − w_c q_c` (`a − y` for one-hot targets,
/// unit weights and no smoothing), scaled by the reduction.
///
/// # Errors
/// See [`SoftmaxCrossEntropy::loss`].
///
/// # Example
/// ```
/// use entropic::{Batch, SoftmaxCrossEntropy, Targets};
/// let logits = [1.0_f64, 2.0, 3.0];
/// let ce = SoftmaxCrossEntropy::new().with_label_smoothing(0.1)?;
/// let (out, grad) = ce.loss_and_grad(Batch::new(&logits, 1, 3)?, Targets::<f64>::Classes(&[2]))?;
/// // 0.9·(−ln a_2) + (0.1/3)·Σ_c(−ln a_c)
/// assert!((out.reduced.unwrap() - 0.50760596).abs() < 1e-8);
/// assert!(grad.iter().sum::<f64>().abs() < 1e-15); // Σ_c ∂ℓ/∂z_c = 0
/// # Ok::<(), entropic::Error>(())
/// ```
///
/// # References
/// PyTorch `torch.nn.functional.cross_entropy`; Szegedy et al. 2016,
/// "Rethinking the Inception Architecture", §7 (label smoothing).
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxCrossEntropy {
    weight: Option<Vec<f64>>,
    ignore_index: Option<usize>,
    label_smoothing: f64,
    reduction: Reduction,
}

impl Default for SoftmaxCrossEntropy {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftmaxCrossEntropy {
    /// PyTorch's defaults: no weights, no ignored class, no smoothing,
    /// `Reduction::Mean`.
    pub fn new() -> Self {
        Self {
            weight: None,
            ignore_index: None,
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
        }
    }

    /// Per-class weights (length `c`, finite, `≥ 0`; checked against the
    /// logits' `c` when the loss is evaluated).
    ///
    /// # Errors
    /// [`Error::NonFinite`] / [`Error::OutOfDomain`] naming the bad weight.
    pub fn with_weight(mut self, weight: Vec<f64>) -> Result<Self> {
        check_in_range("weight", &weight, 0, 0.0, f64::MAX, "finite and >= 0")?;
        self.weight = Some(weight);
        Ok(self)
    }

    /// Rows whose class index equals `ignore_index` are skipped (PyTorch's
    /// default `-100` has no `usize` spelling: use `None` for "no ignored
    /// class", or map it at the boundary as the CLI does).
    pub fn with_ignore_index(mut self, ignore_index: Option<usize>) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Label smoothing `ε ∈ [0, 1]` (PyTorch convention `ε/C`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] outside `[0, 1]` or NaN.
    pub fn with_label_smoothing(mut self, epsilon: f64) -> Result<Self> {
        self.label_smoothing =
            check_parameter("label_smoothing", epsilon, (0.0..=1.0).contains(&epsilon), "in [0, 1]")?;
        Ok(self)
    }

    /// The reduction (`None`, `Sum`, `Mean`; `BatchMean` divides by `n`).
    pub fn with_reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The per-class weights, if any.
    pub fn weight(&self) -> Option<&[f64]> {
        self.weight.as_deref()
    }

    /// The ignored class, if any.
    pub fn ignore_index(&self) -> Option<usize> {
        self.ignore_index
    }

    /// The label smoothing `ε`.
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }

    /// Validates shapes, targets and logits; returns the per-row coefficient
    /// rule and the reduction scale.
    fn prepare<T: Real, P: Real>(&self, logits: &Batch<'_, T>, targets: &Targets<'_, P>) -> Result<f64> {
        let mean_den = self.prepare_targets(logits, targets)?;
        self.check_logits(logits, targets)?;
        self.reduction.scale(mean_den, logits.n())
    }

    /// The checks of [`Self::prepare`] that do not read the logits; returns
    /// the `Mean` denominator.
    fn prepare_targets<T: Real, P: Real>(&self, logits: &Batch<'_, T>, targets: &Targets<'_, P>) -> Result<f64> {
        let (n, c) = (logits.n(), logits.c());
        if let Some(w) = &self.weight {
            check_weights("weight", w, c)?;
        }
        let w = |k: usize| self.weight.as_ref().map_or(1.0, |w| w[k]);
        let mean_den = match targets {
            Targets::Classes(y) => {
                if y.len() != n {
                    return Err(Error::ShapeMismatch {
                        what: "targets",
                        expected: n,
                        actual: y.len(),
                    });
                }
                let mut den = 0.0;
                for (row, &k) in y.iter().enumerate() {
                    if Some(k) == self.ignore_index {
                        continue;
                    }
                    if k >= c {
                        return Err(Error::ClassOutOfRange {
                            row,
                            class: k,
                            classes: c,
                        });
                    }
                    den += w(k);
                }
                den
            }
            Targets::Probabilities(p) => {
                if self.ignore_index.is_some() {
                    return Err(Error::IncompatibleOptions(
                        "ignore_index applies to class-index targets only, not to probability targets",
                    ));
                }
                logits.same_shape(p, "probability targets")?;
                check_in_range("probability targets", p.as_slice(), c, 0.0, f64::MAX, "finite and >= 0")?;
                n as f64
            }
        };
        if c == 0 {
            return Err(Error::InvalidShape {
                what: "logits",
                n,
                c,
                requirement: "at least one class",
            });
        }
        Ok(mean_den)
    }

    /// Ignored rows may hold anything but NaN / +inf; checks the others.
    fn check_logits<T: Real, P: Real>(&self, logits: &Batch<'_, T>, targets: &Targets<'_, P>) -> Result<()> {
        match targets {
            Targets::Classes(y) => {
                for (i, row) in logits.rows().enumerate() {
                    crate::softmax::check_row("logits", row, i).or_else(|e| match e {
                        Error::NoFiniteLogit { .. } if Some(y[i]) == self.ignore_index => Ok(()),
                        e => Err(e),
                    })?;
                }
            }
            Targets::Probabilities(_) => check_batch("logits", logits)?,
        }
        Ok(())
    }

    /// Coefficients `w_c q_c` of row `i` (written into `q`), returns their sum;
    /// `None` for an ignored row.
    fn coefficients<P: Real>(&self, targets: &Targets<'_, P>, i: usize, c: usize, q: &mut [f64]) -> Option<f64> {
        let eps = self.label_smoothing;
        let w = |k: usize| self.weight.as_ref().map_or(1.0, |w| w[k]);
        match targets {
            Targets::Classes(y) => {
                let k = y[i];
                if Some(k) == self.ignore_index {
                    return None;
                }
                for (j, qj) in q.iter_mut().enumerate() {
                    let onehot = if j == k { 1.0 - eps } else { 0.0 };
                    *qj = w(j) * (onehot + eps / c as f64);
                }
            }
            Targets::Probabilities(p) => {
                for (j, (qj, pj)) in q.iter_mut().zip(p.row(i)).enumerate() {
                    *qj = w(j) * ((1.0 - eps) * pj.re() + eps / c as f64);
                }
            }
        }
        Some(q.iter().sum())
    }

    /// The generic definition (the reference): per-row `−Σ_c w_c q_c ln a_c`
    /// with `ln a` from the generic log-softmax, reduced in a fixed order.
    /// Runs with `f32`, `f64`, dual numbers or any [`Real`]; the verifier
    /// differentiates exactly this code.
    ///
    /// # Errors
    /// As [`SoftmaxCrossEntropy::loss`].
    ///
    /// # Example
    /// ```
    /// use entropic::{Batch, SoftmaxCrossEntropy, Targets};
    /// use num_dual::{Dual64, DualNum};
    /// let z = [Dual64::from_re(0.0).derivative(), Dual64::from_re(0.0)];
    /// let out = SoftmaxCrossEntropy::new()
    ///     .definition(Batch::new(&z, 1, 2)?, Targets::<f64>::Classes(&[0]))?;
    /// assert_eq!(out.reduced.unwrap().eps, -0.5); // a_0 − 1
    /// # Ok::<(), entropic::Error>(())
    /// ```
    pub fn definition<D: Real, P: Real>(&self, logits: Batch<'_, D>, targets: Targets<'_, P>) -> Result<LossOutput<D>> {
        let scale = self.prepare(&logits, &targets)?;
        let c = logits.c();
        let mut q = vec![0.0; if logits.n() == 0 { 0 } else { c }];
        let mut unreduced = Vec::with_capacity(logits.n());
        for (i, row) in logits.rows().enumerate() {
            let Some(_) = self.coefficients(&targets, i, c, &mut q) else {
                unreduced.push(D::zero());
                continue;
            };
            let (m, l) = shifted_log_sum(row);
            let mut loss = D::zero();
            for (z, &qj) in row.iter().zip(&q) {
                if qj != 0.0 {
                    // −q_j ln a_j = q_j (ln Σ e^{z−m} − (z_j − m))
                    loss += crate::softmax::nll_term(l.clone(), z.clone(), m.clone(), qj);
                }
            }
            unreduced.push(loss);
        }
        let reduced = reduce_generic(&unreduced, self.reduction, scale);
        Ok(LossOutput { unreduced, reduced })
    }

    /// The loss value (fast path; same result as [`Self::definition`]).
    ///
    /// # Errors
    /// - [`Error::ShapeMismatch`]: targets or weights of the wrong length;
    /// - [`Error::InvalidShape`]: `c = 0`;
    /// - [`Error::ClassOutOfRange`]: a class index `≥ c` (not ignored);
    /// - [`Error::NonFinite`]: NaN or +∞ logits, non-finite probability targets;
    /// - [`Error::OutOfDomain`]: negative probability targets;
    /// - [`Error::NoFiniteLogit`]: a non-ignored row of all −∞;
    /// - [`Error::IncompatibleOptions`]: `ignore_index` with probability targets;
    /// - [`Error::Empty`] / [`Error::ZeroTotalWeight`]: a `Mean` with nothing to average.
    pub fn loss<T: Float, P: Real>(&self, logits: Batch<'_, T>, targets: Targets<'_, P>) -> Result<LossOutput<T>> {
        self.kernel(logits, targets, None)
    }

    /// The loss and its gradient with respect to the logits (row-major, same
    /// shape), fused in one pass over each row.
    ///
    /// # Errors
    /// As [`Self::loss`].
    pub fn loss_and_grad<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        targets: Targets<'_, P>,
    ) -> Result<(LossOutput<T>, Vec<T>)> {
        let mut grad = vec![T::zero(); logits.as_slice().len()];
        let out = self.kernel(logits, targets, Some(&mut grad))?;
        Ok((out, grad))
    }

    /// As [`Self::loss_and_grad`], writing the gradient into `grad`.
    ///
    /// # Errors
    /// As [`Self::loss`], and [`Error::ShapeMismatch`] when `grad` has the wrong length.
    pub fn loss_and_grad_into<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        targets: Targets<'_, P>,
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

    /// The fast kernel: rows in parallel (deterministic), per row two passes
    /// over the logits (max; exp + sum into a scratch row, validating on the
    /// way) and one over the scratch (gradient), all in `f64` — except `f32`
    /// logits with class targets, which run in groups of rows through
    /// [`kernels::cross_entropy_class_group_f32`] (`f32` exponentials, `f64`
    /// sums; each row's bits as alone). Invalid logits make
    /// [`Self::prepare`] report the error the definition reports.
    fn kernel<T: Float, P: Real>(
        &self,
        logits: Batch<'_, T>,
        targets: Targets<'_, P>,
        grad: Option<&mut [T]>,
    ) -> Result<LossOutput<T>> {
        let (n, c) = (logits.n(), logits.c());
        let scale = match self
            .prepare_targets(&logits, &targets)
            .and_then(|den| self.reduction.scale(den, n))
        {
            Ok(scale) => scale,
            // The full validation reports the first error in its order.
            Err(e) => return Err(self.prepare(&logits, &targets).err().unwrap_or(e)),
        };
        let owned = TargetsF64::read(&targets);
        let targets64 = owned.view()?;
        let classes = match targets64 {
            Targets::Classes(y) if self.label_smoothing == 0.0 => Some(y),
            _ => None,
        };
        let mut unreduced = vec![0.0; n];
        let ignored_row_ok = |row: &[T]| !row.iter().any(|z| z.to_f64().is_nan() || z.to_f64() == f64::INFINITY);
        let one_row = |i: usize, loss: &mut [f64], g: Option<&mut [T]>, scratch: &mut Vec<f64>| {
            let row = logits.row(i);
            let e = rows::scratch(scratch, 2 * c);
            let (e, q) = e.split_at_mut(c);
            if let Some(y) = classes {
                // One-hot target k with weight w_k: loss w_k·(ln s − (z_k − m)),
                // gradient w_k·(a − e_k) with a = e/s, s = 1 + rest.
                let k = y[i];
                if Some(k) == self.ignore_index {
                    loss[0] = 0.0;
                    if let Some(g) = g {
                        g.fill(T::zero());
                    }
                    return ignored_row_ok(row);
                }
                let wk = self.weight.as_ref().map_or(1.0, |w| w[k]);
                if let Some(row32) = T::as_f32(row) {
                    let g32 = g.and_then(T::as_f32_mut);
                    return kernels::cross_entropy_class_group_f32(row32, &[k], &[wk], scale, loss, g32);
                }
                return match kernels::cross_entropy_class_row(row, k, wk, scale, e, g) {
                    Some(l) => {
                        loss[0] = l;
                        true
                    }
                    None => false,
                };
            }
            let Some(total) = self.coefficients(&targets64, i, c, q) else {
                loss[0] = 0.0;
                if let Some(g) = g {
                    g.fill(T::zero());
                }
                return ignored_row_ok(row);
            };
            let Some(RowStats { m, best, rest }) = row_exp(row, e) else {
                return false;
            };
            loss[0] = kernels::weighted_nll(row, q, m, crate::softmax::log_one_plus(rest));
            if let Some(g) = g {
                // g_j = a_j·Σq − q_j; the largest-probability entry (a_best
                // up to 1) would cancel catastrophically when
                // a_best·Σq ≈ q_best: since Σ_j g_j = 0 exactly it is
                // minus the sum of the others.
                kernels::gradient_into(e, 1.0 + rest, total, q, scale, g);
                e[best] = 0.0;
                g[best] = T::round_from(scale * -kernels::compensated_sum(e));
            }
            true
        };
        // f32 logits with class targets: groups of rows through the group
        // kernel (rows with an ignored target go one by one).
        let group = match classes {
            Some(_) if T::as_f32(&[]).is_some() => kernels::class_group(c),
            _ => 1,
        };
        let ok = for_each_row(c, 1, group, &mut unreduced, grad, |i, losses, mut g, scratch| {
            let len = losses.len();
            if let (Some(y), Some(rows32)) = (classes, T::as_f32(&logits.as_slice()[i * c..(i + len) * c])) {
                let ks = &y[i..i + len];
                if ks.iter().all(|&k| Some(k) != self.ignore_index) {
                    let mut ws = [1.0; kernels::MAX_CLASS_GROUP];
                    if let Some(w) = &self.weight {
                        for (wr, &k) in ws.iter_mut().zip(ks) {
                            *wr = w[k];
                        }
                    }
                    let g32 = g.and_then(T::as_f32_mut);
                    return kernels::cross_entropy_class_group_f32(rows32, ks, &ws[..len], scale, losses, g32);
                }
            }
            let mut ok = true;
            for r in 0..len {
                let g = g.as_deref_mut().map(|g| &mut g[r * c..(r + 1) * c]);
                ok &= one_row(i + r, &mut losses[r..r + 1], g, scratch);
            }
            ok
        });
        if !ok {
            // Unreachable for rows the validation accepts (the kernel rejects
            // exactly NaN, +∞ and all −∞ rows); report the validation's error.
            self.check_logits(&logits, &targets)?;
        }
        let reduced = reduce_f64(&unreduced, self.reduction, scale).map(T::round_from);
        Ok(LossOutput {
            unreduced: unreduced.into_iter().map(T::round_from).collect(),
            reduced,
        })
    }
}
