//! A uniform interface over every loss, so one checker can test each the
//! same way (value, gradient, Hessian, errors) — in the spirit of Stan
//! Math's `expect_ad`.

use entropic::{
    Batch, BiTemperedLogisticLoss, BinaryCrossEntropyWithLogits, Error, KlDiv, LossOutput, Real, Reduction,
    SigmoidFocalLoss, SoftmaxCrossEntropy, SoftmaxFocalLoss, Targets,
};

/// The targets of a test case.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// One class index per row.
    Classes(Vec<usize>),
    /// A dense `[n, c]` matrix (probabilities, binary labels, or `kl_div` targets).
    Dense(Vec<f64>),
}

/// One input of a loss: logits `[n, c]` and targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Rows.
    pub n: usize,
    /// Columns.
    pub c: usize,
    /// Row-major logits (or `kl_div` log-probabilities).
    pub logits: Vec<f64>,
    /// Targets.
    pub target: Target,
}

impl Case {
    /// A short description for reports (values to 17 significant digits).
    pub fn describe(&self) -> String {
        let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(",");
        let t = match &self.target {
            Target::Classes(y) => format!("classes {y:?}"),
            Target::Dense(p) => format!("targets [{}]", fmt(p)),
        };
        format!("{}x{} logits [{}] {t}", self.n, self.c, fmt(&self.logits))
    }
}

/// Anything the checker can test: a generic definition plus `f64` and `f32`
/// kernels returning the (reduced) value and the analytic gradient.
///
/// Production losses implement it through [`Loss`]; the mutation tests
/// implement it for deliberately wrong formulas.
pub trait LossUnderTest {
    /// Name in reports.
    fn name(&self) -> String;
    /// The generic definition's reduced value (the sum for `Reduction::None`).
    ///
    /// # Errors
    /// Whatever the definition rejects.
    fn value<D: Real>(&self, case: &Case, x: &[D]) -> Result<D, Error>;
    /// The fast kernel on logits `x` (the case's logits, possibly rounded to
    /// `f32`): the loss output and the analytic gradient.
    ///
    /// # Errors
    /// Whatever the kernel rejects.
    fn kernel<T: entropic::Float>(&self, case: &Case, x: &[T]) -> Result<(LossOutput<T>, Vec<T>), Error>;

    /// The `f64` kernel's total value (as [`total`]) and analytic gradient.
    ///
    /// # Errors
    /// Whatever the kernel rejects.
    fn kernel_f64(&self, case: &Case) -> Result<(f64, Vec<f64>), Error> {
        let (out, g) = self.kernel(case, &case.logits)?;
        Ok((total_f64(&out), g))
    }

    /// The bound on the `f32` kernel against the `f64` kernel rounded to
    /// `f32` ([`crate::ad::F32_PATH`] unless the loss has an `f32`
    /// arithmetic path).
    fn f32_tolerance(&self) -> crate::tolerance::Tolerance {
        crate::ad::F32_PATH
    }
}

/// Every production loss, configured.
#[derive(Debug, Clone)]
pub enum Loss {
    /// `SoftmaxCrossEntropy` with class or probability targets.
    SoftmaxCrossEntropy(SoftmaxCrossEntropy),
    /// `BinaryCrossEntropyWithLogits` with dense labels.
    BinaryCrossEntropy(BinaryCrossEntropyWithLogits),
    /// `KlDiv` with dense targets; the logits of the case are the input log-probabilities.
    KlDiv(KlDiv),
    /// The bi-tempered logistic loss with class or probability targets.
    BiTempered(BiTemperedLogisticLoss),
    /// Its binary variant: one activation per element, labels in [0, 1].
    BiTemperedBinary(BiTemperedLogisticLoss),
    /// Sigmoid focal loss with dense labels in [0, 1].
    SigmoidFocal(SigmoidFocalLoss),
    /// Softmax focal loss with class indices.
    SoftmaxFocal(SoftmaxFocalLoss),
}

/// The reduced value, or the sum of the unreduced ones for `Reduction::None`.
pub fn total<D: Real>(out: LossOutput<D>) -> D {
    match out.reduced {
        Some(v) => v,
        None => out.unreduced.into_iter().fold(D::zero(), |a, b| a + b),
    }
}

fn total_f64(out: &LossOutput<f64>) -> f64 {
    match out.reduced {
        Some(v) => v,
        None => out.unreduced.iter().sum(),
    }
}

impl LossUnderTest for Loss {
    fn kernel<T: entropic::Float>(&self, case: &Case, x: &[T]) -> Result<(LossOutput<T>, Vec<T>), Error> {
        let b = Batch::new(x, case.n, case.c)?;
        match (self, &case.target) {
            (Loss::SoftmaxCrossEntropy(l), Target::Classes(y)) => l.loss_and_grad(b, Targets::<f64>::Classes(y)),
            (Loss::SoftmaxCrossEntropy(l), Target::Dense(p)) => {
                l.loss_and_grad(b, Targets::Probabilities(Batch::new(p, case.n, case.c)?))
            }
            (Loss::BinaryCrossEntropy(l), Target::Dense(y)) => l.loss_and_grad(b, Batch::new(y, case.n, case.c)?),
            (Loss::KlDiv(l), Target::Dense(p)) => l.loss_and_grad(b, Batch::new(p, case.n, case.c)?),
            (Loss::BiTempered(l), Target::Classes(y)) => l.loss_and_grad(b, Targets::<f64>::Classes(y)),
            (Loss::BiTempered(l), Target::Dense(p)) => {
                l.loss_and_grad(b, Targets::Probabilities(Batch::new(p, case.n, case.c)?))
            }
            (Loss::BiTemperedBinary(l), Target::Dense(y)) => l.binary_loss_and_grad(b, Batch::new(y, case.n, case.c)?),
            (Loss::SigmoidFocal(l), Target::Dense(y)) => l.loss_and_grad(b, Batch::new(y, case.n, case.c)?),
            (Loss::SoftmaxFocal(l), Target::Classes(y)) => l.loss_and_grad(b, y),
            _ => Err(Error::IncompatibleOptions(
                "this loss does not take class-index targets",
            )),
        }
    }

    fn f32_tolerance(&self) -> crate::tolerance::Tolerance {
        match self {
            Loss::SoftmaxCrossEntropy(l) if l.label_smoothing() == 0.0 => crate::ad::F32_CLASS_CE_PATH,
            Loss::BinaryCrossEntropy(l) if l.weight().is_none() && l.pos_weight().is_none() => {
                crate::ad::F32_SIGMOID_BCE_PATH
            }
            Loss::SigmoidFocal(l) => crate::ad::f32_sigmoid_focal_path(l.gamma()),
            _ => crate::ad::F32_PATH,
        }
    }

    fn name(&self) -> String {
        match self {
            Loss::SoftmaxCrossEntropy(l) => format!("softmax_cross_entropy {l:?}"),
            Loss::BinaryCrossEntropy(l) => format!("binary_cross_entropy_with_logits {l:?}"),
            Loss::KlDiv(l) => format!("kl_div {l:?}"),
            Loss::BiTempered(l) => format!("bi_tempered_logistic_loss {l:?}"),
            Loss::BiTemperedBinary(l) => format!("bi_tempered_binary_logistic_loss {l:?}"),
            Loss::SigmoidFocal(l) => format!("sigmoid_focal_loss {l:?}"),
            Loss::SoftmaxFocal(l) => format!("softmax_focal_loss {l:?}"),
        }
    }

    fn value<D: Real>(&self, case: &Case, x: &[D]) -> Result<D, Error> {
        Ok(total(self.definition(case, x)?))
    }
}

impl Loss {
    /// The generic definition's full output (unreduced and reduced) on logits `x`.
    ///
    /// # Errors
    /// Whatever the definition rejects.
    pub fn definition<D: Real>(&self, case: &Case, x: &[D]) -> Result<LossOutput<D>, Error> {
        let b = Batch::new(x, case.n, case.c)?;
        let out = match (self, &case.target) {
            (Loss::SoftmaxCrossEntropy(l), Target::Classes(y)) => l.definition(b, Targets::<f64>::Classes(y))?,
            (Loss::SoftmaxCrossEntropy(l), Target::Dense(p)) => {
                l.definition(b, Targets::Probabilities(Batch::new(p, case.n, case.c)?))?
            }
            (Loss::BinaryCrossEntropy(l), Target::Dense(y)) => l.definition(b, Batch::new(y, case.n, case.c)?)?,
            (Loss::KlDiv(l), Target::Dense(p)) => l.definition(b, Batch::new(p, case.n, case.c)?)?,
            (Loss::BiTempered(l), Target::Classes(y)) => l.definition(b, Targets::<f64>::Classes(y))?,
            (Loss::BiTempered(l), Target::Dense(p)) => {
                l.definition(b, Targets::Probabilities(Batch::new(p, case.n, case.c)?))?
            }
            (Loss::BiTemperedBinary(l), Target::Dense(y)) => l.binary_definition(b, Batch::new(y, case.n, case.c)?)?,
            (Loss::SigmoidFocal(l), Target::Dense(y)) => l.definition(b, Batch::new(y, case.n, case.c)?)?,
            (Loss::SoftmaxFocal(l), Target::Classes(y)) => l.definition(b, y)?,
            _ => return Err(Error::IncompatibleOptions("this loss does not take these targets")),
        };
        Ok(out)
    }

    /// The reduction the loss is configured with.
    pub fn reduction(&self) -> Reduction {
        match self {
            Loss::SoftmaxCrossEntropy(l) => l.reduction(),
            Loss::BinaryCrossEntropy(l) => l.reduction(),
            Loss::KlDiv(l) => l.reduction(),
            Loss::BiTempered(l) | Loss::BiTemperedBinary(l) => l.reduction(),
            Loss::SigmoidFocal(l) => l.reduction(),
            Loss::SoftmaxFocal(l) => l.reduction(),
        }
    }

    /// The same loss with another reduction.
    pub fn with_reduction(&self, r: Reduction) -> Loss {
        match self {
            Loss::SoftmaxCrossEntropy(l) => Loss::SoftmaxCrossEntropy(l.clone().with_reduction(r)),
            Loss::BinaryCrossEntropy(l) => Loss::BinaryCrossEntropy(l.clone().with_reduction(r)),
            Loss::KlDiv(l) => Loss::KlDiv(l.with_reduction(r)),
            Loss::BiTempered(l) => Loss::BiTempered(l.with_reduction(r)),
            Loss::BiTemperedBinary(l) => Loss::BiTemperedBinary(l.with_reduction(r)),
            Loss::SigmoidFocal(l) => Loss::SigmoidFocal(l.with_reduction(r)),
            Loss::SoftmaxFocal(l) => Loss::SoftmaxFocal(l.clone().with_reduction(r)),
        }
    }

    /// What `Reduction::Mean` divides the sum by for this case (PyTorch's
    /// denominators, as documented on each loss): the weight of the present
    /// targets for weighted class-index cross-entropy, the number of
    /// non-ignored rows for the softmax focal loss, `n·c` for element-wise
    /// losses, `n` otherwise. `BatchMean` divides by `n`.
    pub fn mean_denominator(&self, case: &Case) -> f64 {
        let elements = (case.n * case.c) as f64;
        if self.reduction() == Reduction::BatchMean {
            return case.n as f64;
        }
        match (self, &case.target) {
            (Loss::SoftmaxCrossEntropy(l), Target::Classes(y)) => y
                .iter()
                .filter(|&&k| Some(k) != l.ignore_index())
                .map(|&k| l.weight().map_or(1.0, |w| w.get(k).copied().unwrap_or(f64::NAN)))
                .sum(),
            (Loss::SoftmaxFocal(l), Target::Classes(y)) => {
                y.iter().filter(|&&k| Some(k) != l.ignore_index()).count() as f64
            }
            (Loss::BinaryCrossEntropy(_) | Loss::KlDiv(_) | Loss::SigmoidFocal(_) | Loss::BiTemperedBinary(_), _) => {
                elements
            }
            _ => case.n as f64,
        }
    }
}
