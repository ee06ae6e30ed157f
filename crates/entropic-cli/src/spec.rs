//! Parsing of the batch losses' cases into the verifier's `(Loss, Case)`
//! form, shared by the fast oracle (kernels), the reference oracle
//! (high-precision definitions) and the conformance vectors.

use std::path::Path;

use entropic::{
    BiTemperedLogisticLoss, BinaryCrossEntropyWithLogits, KlDiv, Reduction, SigmoidFocalLoss, SoftmaxCrossEntropy,
    SoftmaxFocalLoss,
};
use entropic_verify::loss::{Case, Loss, Target};
use serde_json::{Map, Value};

use crate::oracle::{Array, CaseError, Params, array, class_targets, required};

/// The losses that take a batch of logits and targets.
pub const BATCH_LOSSES: &[&str] = &[
    "softmax_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "bi_tempered_logistic_loss",
    "bi_tempered_binary_logistic_loss",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
];

/// A parsed batch case.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The configured loss (with the case's reduction).
    pub loss: Loss,
    /// Logits and targets.
    pub case: Case,
    /// The shape of the logits as given (`[n]` or `[n, c]`), for output.
    pub shape: Vec<usize>,
}

type R<T> = Result<T, CaseError>;

fn same_shape(target: &Array, logits: &Array) -> R<()> {
    if target.shape != logits.shape {
        return Err(CaseError::new(
            "target",
            format!("shape {:?} differs from logits {:?}", target.shape, logits.shape),
        ));
    }
    Ok(())
}

fn dims(a: &Array) -> R<(usize, usize)> {
    match a.shape.as_slice() {
        [n, c] => Ok((*n, *c)),
        [n] => Ok((*n, 1)),
        other => Err(CaseError::new(
            "logits",
            format!("expected 1 or 2 dimensions, found shape {other:?}"),
        )),
    }
}

const ALL: &[Reduction] = &[Reduction::None, Reduction::Sum, Reduction::Mean];

/// Parses a batch-loss case.
///
/// # Errors
/// A [`CaseError`] naming the field.
pub fn parse(loss: &str, case: &Map<String, Value>, base: &Path) -> R<Spec> {
    let arr = |field: &str| -> R<Array> { array(required(case, field)?, field, base) };
    let logits = arr("logits")?;
    let (n, c) = dims(&logits)?;
    let target = arr("target")?;
    let dense = |t: &Array| -> R<Target> {
        same_shape(t, &logits)?;
        Ok(Target::Dense(t.data.clone()))
    };
    let (loss, target) = match loss {
        "softmax_cross_entropy" => {
            let p = Params::new(case, &["weight", "ignore_index", "label_smoothing", "reduction"])?;
            let mut ce = SoftmaxCrossEntropy::new()
                .with_reduction(p.reduction(Reduction::Mean, ALL)?)
                .with_label_smoothing(p.f64("label_smoothing", 0.0)?)?;
            if let Some(w) = p.vec("weight")? {
                ce = ce.with_weight(w)?;
            }
            if target.shape.len() == 1 {
                let classes = class_targets(&target, p.int("ignore_index", -100)?)?;
                (
                    Loss::SoftmaxCrossEntropy(ce.with_ignore_index(Some(usize::MAX))),
                    Target::Classes(classes),
                )
            } else {
                if p.get("ignore_index").is_some() {
                    return Err(CaseError::new(
                        "params.ignore_index",
                        "only applies to class-index targets",
                    ));
                }
                (Loss::SoftmaxCrossEntropy(ce), dense(&target)?)
            }
        }
        "binary_cross_entropy_with_logits" => {
            let p = Params::new(case, &["weight", "pos_weight", "reduction"])?;
            let mut l = BinaryCrossEntropyWithLogits::new().with_reduction(p.reduction(Reduction::Mean, ALL)?);
            if let Some(w) = p.vec("weight")? {
                l = l.with_weight(w)?;
            }
            if let Some(w) = p.vec("pos_weight")? {
                l = l.with_pos_weight(w)?;
            }
            (Loss::BinaryCrossEntropy(l), dense(&target)?)
        }
        "kl_div" => {
            let p = Params::new(case, &["reduction", "log_target"])?;
            let r = p.reduction(
                Reduction::Mean,
                &[Reduction::None, Reduction::Sum, Reduction::Mean, Reduction::BatchMean],
            )?;
            (
                Loss::KlDiv(KlDiv::new(r).with_log_target(p.bool("log_target", false)?)),
                dense(&target)?,
            )
        }
        "bi_tempered_logistic_loss" | "bi_tempered_binary_logistic_loss" => {
            let p = Params::new(case, &["t1", "t2", "label_smoothing", "reduction"])?;
            let l = BiTemperedLogisticLoss::new(p.f64("t1", 1.0)?, p.f64("t2", 1.0)?)?
                .with_label_smoothing(p.f64("label_smoothing", 0.0)?)?
                .with_reduction(p.reduction(Reduction::Mean, ALL)?);
            if loss == "bi_tempered_binary_logistic_loss" {
                (Loss::BiTemperedBinary(l), dense(&target)?)
            } else if target.shape.len() == 1 {
                (Loss::BiTempered(l), Target::Classes(class_targets(&target, i64::MIN)?))
            } else {
                (Loss::BiTempered(l), dense(&target)?)
            }
        }
        "sigmoid_focal_loss" => {
            let p = Params::new(case, &["alpha", "gamma", "reduction"])?;
            // torchvision: alpha 0.25 by default, a negative alpha disables it;
            // reduction "none" by default.
            let alpha = p.f64("alpha", SigmoidFocalLoss::TORCHVISION_ALPHA)?;
            let alpha = if alpha < 0.0 { None } else { Some(alpha) };
            let l = SigmoidFocalLoss::new(alpha, p.f64("gamma", SigmoidFocalLoss::TORCHVISION_GAMMA)?)?
                .with_reduction(p.reduction(Reduction::None, ALL)?);
            (Loss::SigmoidFocal(l), dense(&target)?)
        }
        "softmax_focal_loss" => {
            let p = Params::new(case, &["alpha", "gamma", "ignore_index", "reduction"])?;
            let mut l = SoftmaxFocalLoss::new(p.f64("gamma", 2.0)?)?.with_reduction(p.reduction(Reduction::Mean, ALL)?);
            if let Some(a) = p.vec("alpha")? {
                l = l.with_alpha(a)?;
            }
            let classes = class_targets(&target, p.int("ignore_index", -100)?)?;
            (
                Loss::SoftmaxFocal(l.with_ignore_index(Some(usize::MAX))),
                Target::Classes(classes),
            )
        }
        other => return Err(CaseError::new("loss", format!("\"{other}\" is not a batch loss"))),
    };
    Ok(Spec {
        loss,
        case: Case {
            n,
            c,
            logits: logits.data.clone(),
            target,
        },
        shape: logits.shape,
    })
}
