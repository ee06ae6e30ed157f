//! The reference oracle: a batch case evaluated with the production generic
//! definitions in high-precision arithmetic (`entropic_verify::precise`), at
//! two precisions (256 and 512 bits), returning values certified to be the
//! correctly rounded `f64` and `f32` results of the exact mathematical loss.
//!
//! Reductions are applied in high precision (the sum of the unreduced
//! values divided by the loss's mean denominator), so a `mean` reference is
//! the rounding of the exact mean, not of `sum·fl(1/n)`. Gradients are
//! forward-mode derivatives of the definition with `PreciseDual`, one pass
//! per input (at most [`DUAL_GRADIENT_LIMIT`] inputs), except for softmax
//! cross-entropy, whose verified closed form `a·Σ(w q) − w q` is evaluated
//! in high precision instead (one pass instead of one per logit, which
//! makes rows of 32 000 classes affordable).
//!
//! Constants the definitions form in `f64` (label-smoothing coefficients
//! `(1 − ε)·y + ε/C`, weights, the smoothed bi-tempered labels) enter as
//! those `f64` values: the reference is the exact loss *for those
//! coefficients*, which is what every implementation that takes `ε` as an
//! `f64` computes.
//!
//! Caveat: the bi-tempered normalizer λ is solved in `f64` and lifted by two
//! Newton steps, so those references are exact to ~2^-100 relative rather
//! than to the working precision; the rounding is still correct unless the
//! exact value lies within ~1e-30 relative of a rounding boundary.

use entropic::{LossOutput, Real, Reduction};
use entropic_verify::loss::{Case, Loss, Target};
use entropic_verify::precise::{CorrectlyRounded, Precise, PreciseDual, correctly_rounded_vec, lift, lift_dual};

use crate::oracle::{CaseError, Dtype};
use crate::spec::Spec;

/// Largest number of inputs whose gradient is computed with one
/// `PreciseDual` pass each.
pub const DUAL_GRADIENT_LIMIT: usize = 2048;

/// Correctly rounded outputs of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceOutput {
    /// Unreduced values.
    pub per_sample: Vec<CorrectlyRounded>,
    /// The reduced value (`None` for `reduction: "none"`).
    pub loss: Option<CorrectlyRounded>,
    /// The gradient of the reduced loss (of the sum for `"none"`).
    pub grad: Vec<CorrectlyRounded>,
}

fn err(e: impl std::fmt::Display) -> CaseError {
    CaseError::new("case", format!("reference: {e}"))
}

/// Rounds the case's inputs (logits and dense targets) to `dtype`, as the
/// `f32` kernels see them.
pub fn rounded_case(case: &Case, dtype: Dtype) -> Case {
    if dtype == Dtype::F64 {
        return case.clone();
    }
    let r = |v: &[f64]| v.iter().map(|&x| f64::from(x as f32)).collect::<Vec<_>>();
    let target = match &case.target {
        Target::Classes(y) => Target::Classes(y.clone()),
        Target::Dense(p) => Target::Dense(r(p)),
    };
    Case {
        n: case.n,
        c: case.c,
        logits: r(&case.logits),
        target,
    }
}

fn sum<D: Real>(xs: Vec<D>) -> D {
    xs.into_iter().fold(D::zero(), |a, b| a + b)
}

/// Evaluates `spec` (inputs already rounded to the dtype of interest).
///
/// # Errors
/// The definition's error, or an uncertain reference (a value too close to
/// a rounding boundary to certify at 256/512 bits).
pub fn evaluate(spec: &Spec) -> Result<ReferenceOutput, CaseError> {
    let case = &spec.case;
    let reduction = spec.loss.reduction();
    let none = spec.loss.with_reduction(Reduction::None);
    let den = match reduction {
        Reduction::Mean | Reduction::BatchMean => Some(spec.loss.mean_denominator(case)),
        _ => None,
    };
    if let Some(d) = den
        && !(d > 0.0 && d.is_finite())
    {
        return Err(CaseError::new("case", format!("mean over total weight {d}")));
    }
    // per_sample and the reduced value from one evaluation per precision.
    let values = correctly_rounded_vec(|| {
        let out: LossOutput<Precise> = none.definition(case, &lift(&case.logits))?;
        let mut v = out.unreduced.clone();
        let total = sum(out.unreduced);
        v.push(match den {
            Some(d) => total / Precise::from_f64(d),
            None => total,
        });
        Ok::<_, entropic::Error>(v)
    })
    .map_err(err)?;
    let (per_sample, reduced) = values.split_at(values.len() - 1);
    let loss = (reduction != Reduction::None).then(|| reduced[0]);
    let summed = spec.loss.with_reduction(Reduction::Sum);
    let k = case.logits.len();
    let closed_form = matches!(spec.loss, Loss::SoftmaxCrossEntropy(_));
    let grad = if k <= DUAL_GRADIENT_LIMIT && !closed_form {
        correctly_rounded_vec(|| {
            (0..k)
                .map(|j| {
                    let out: LossOutput<PreciseDual> = summed.definition(case, &lift_dual(&case.logits, j))?;
                    let g = out.reduced.map_or_else(|| Precise::from_f64(f64::NAN), |v| v.eps);
                    Ok(match den {
                        Some(d) => g / Precise::from_f64(d),
                        None => g,
                    })
                })
                .collect::<Result<Vec<_>, entropic::Error>>()
        })
        .map_err(err)?
    } else {
        match (&spec.loss, &case.target) {
            (Loss::SoftmaxCrossEntropy(ce), target) => {
                correctly_rounded_vec(|| cross_entropy_gradient(ce, case, target, den)).map_err(err)?
            }
            _ => {
                return Err(CaseError::new(
                    "logits",
                    format!("reference gradients are limited to {DUAL_GRADIENT_LIMIT} inputs for this loss"),
                ));
            }
        }
    };
    Ok(ReferenceOutput {
        per_sample: per_sample.to_vec(),
        loss,
        grad,
    })
}

/// `∂ℓ/∂z = (a·Σ_j w_j q_j − w q)/den` per row, in high precision (the
/// closed form the verifier checks against autodiff for every option).
fn cross_entropy_gradient(
    ce: &entropic::SoftmaxCrossEntropy,
    case: &Case,
    target: &Target,
    den: Option<f64>,
) -> Result<Vec<Precise>, entropic::Error> {
    let c = case.c;
    let eps = ce.label_smoothing();
    let mut g = Vec::with_capacity(case.logits.len());
    for (i, row) in case.logits.chunks(c.max(1)).enumerate() {
        let a = entropic::softmax(&lift(row))?;
        let y: Vec<f64> = match target {
            Target::Classes(y) => {
                if Some(y[i]) == ce.ignore_index() {
                    g.extend((0..c).map(|_| Precise::from_f64(0.0)));
                    continue;
                }
                (0..c).map(|j| if j == y[i] { 1.0 } else { 0.0 }).collect()
            }
            Target::Dense(p) => p[i * c..(i + 1) * c].to_vec(),
        };
        // q_j = w_j·((1 − ε)·y_j + ε/C) formed in f64 exactly as the
        // definition forms it, then lifted: the same coefficients as the
        // PreciseDual path, so both gradient routes give one reference.
        let q: Vec<Precise> = y
            .iter()
            .enumerate()
            .map(|(j, &yj)| {
                let w = ce.weight().map_or(1.0, |w| w[j]);
                let onehot_or_soft = match target {
                    Target::Classes(_) => {
                        if yj == 1.0 {
                            1.0 - eps
                        } else {
                            0.0
                        }
                    }
                    Target::Dense(_) => (1.0 - eps) * yj,
                };
                Precise::from_f64(w * (onehot_or_soft + eps / c as f64))
            })
            .collect();
        let s = sum(q.clone());
        for (aj, qj) in a.into_iter().zip(q) {
            let v = aj * s.clone() - qj;
            g.push(match den {
                Some(d) => v / Precise::from_f64(d),
                None => v,
            });
        }
    }
    Ok(g)
}

/// The `f64` or `f32` value of a certified number.
pub fn pick(x: &CorrectlyRounded, dtype: Dtype) -> f64 {
    match dtype {
        Dtype::F64 => x.f64,
        Dtype::F32 => f64::from(x.f32),
    }
}
