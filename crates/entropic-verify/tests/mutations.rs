//! Mutation sensitivity: every check family is fed deliberately wrong
//! formulas and must reject each with a message naming the failing input.
//! A verifier that cannot fail proves nothing.

use entropic::{Batch, Error, LossOutput, Real, Reduction, SoftmaxCrossEntropy, Targets};
use entropic_verify::ad::{check_errors, check_loss};
use entropic_verify::claims::{self, derivative_identity, equal_on_pairs, equal_on_rows, holds_on_pairs};
use entropic_verify::generate::Inputs;
use entropic_verify::loss::{Case, Loss, LossUnderTest, Target};
use entropic_verify::losses::{TargetKind, bad_cases, cases};
use entropic_verify::{Tally, Tolerance};

fn assert_rejects(t: &Tally, what: &str) {
    assert!(t.cases > 0, "{what}: no case tried");
    let msg = t
        .failure
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: the wrong formula was NOT rejected"));
    assert!(!msg.is_empty(), "{what}: empty failure message");
    println!("{what}: rejected — {}", &msg[..msg.len().min(160)]);
}

fn ce() -> SoftmaxCrossEntropy {
    SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum)
}

/// A mutant built from the production CE with one part replaced.
#[derive(Clone, Copy, PartialEq)]
enum Mutation {
    /// Analytic gradient a(1 − a) − y instead of a − y.
    GradientSoftmaxDerivativeTimesError,
    /// Value without the max shift: ln Σ e^z − z_y (overflows).
    NoMaxShift,
    /// A definition term invisible to dual numbers (a stop-gradient bug)
    /// that the analytic gradient also misses: only finite differences see it.
    SharedStopGradient,
    /// A definition whose second derivative is off (first order intact).
    WrongSecondOrder,
    /// The f32 path takes the log of an f32 softmax instead of a log-softmax.
    F32LogOfSoftmax,
    /// The kernel lets NaN through instead of rejecting it.
    AcceptsNaN,
}

struct Mutant(Mutation);

impl LossUnderTest for Mutant {
    fn name(&self) -> String {
        "mutant".into()
    }

    fn value<D: Real>(&self, case: &Case, x: &[D]) -> Result<D, Error> {
        let Target::Classes(y) = &case.target else {
            unreachable!()
        };
        let v =
            entropic_verify::loss::total(ce().definition(Batch::new(x, case.n, case.c)?, Targets::<f64>::Classes(y))?);
        Ok(match self.0 {
            Mutation::SharedStopGradient => v + D::from_f64(x[0].re() * x[0].re()),
            Mutation::WrongSecondOrder => {
                let d = x[0].clone() - D::from_f64(x[0].re());
                v + d.clone() * d
            }
            _ => v,
        })
    }

    fn kernel<T: entropic::Float>(&self, case: &Case, x: &[T]) -> Result<(LossOutput<T>, Vec<T>), Error> {
        let Target::Classes(y) = &case.target else {
            unreachable!()
        };
        if self.0 == Mutation::AcceptsNaN && x.iter().any(|v| v.re().is_nan()) {
            return Ok((
                LossOutput {
                    unreduced: vec![T::round_from(f64::NAN)],
                    reduced: Some(T::round_from(f64::NAN)),
                },
                x.to_vec(),
            ));
        }
        let (mut out, mut g) = ce().loss_and_grad(Batch::new(x, case.n, case.c)?, Targets::<f64>::Classes(y))?;
        let c = case.c;
        for (i, row) in x.chunks(c.max(1)).enumerate() {
            let z: Vec<f64> = row.iter().map(|v| v.re()).collect();
            let a = entropic::softmax(&z)?;
            match self.0 {
                Mutation::GradientSoftmaxDerivativeTimesError => {
                    for j in 0..c {
                        let yj = if j == y[i] { 1.0 } else { 0.0 };
                        g[i * c + j] = T::round_from(a[j] * (1.0 - a[j]) - yj);
                    }
                }
                Mutation::NoMaxShift => {
                    let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
                    out.unreduced[i] = T::round_from(lse - z[y[i]]);
                }
                Mutation::F32LogOfSoftmax if T::NAME == "f32" => {
                    // −ln(softmax) with the probability rounded to f32 first:
                    // underflows to 0 (loss +∞) and loses digits near a_y = 1.
                    let a_y = a[y[i]] as f32;
                    out.unreduced[i] = T::round_from(-f64::from(a_y.ln()));
                }
                _ => {}
            }
        }
        if self.0 == Mutation::NoMaxShift || self.0 == Mutation::F32LogOfSoftmax {
            out.reduced = Some(T::round_from(out.unreduced.iter().map(|v| v.re()).sum()));
        }
        if self.0 == Mutation::SharedStopGradient {
            let v = out.reduced.map(|r| r.re()).unwrap_or(0.0) + x[0].re() * x[0].re();
            out.reduced = Some(T::round_from(v));
        }
        Ok((out, g))
    }
}

fn class_cases() -> (Vec<Case>, Vec<Case>) {
    let mut inputs = Inputs::new(11, false);
    cases(&mut inputs, TargetKind::Classes, None, 12)
}

#[test]
fn production_cross_entropy_passes_the_same_checks() {
    // The control: the same checks on the real loss pass, so the rejections
    // below are due to the mutations.
    let (wide, moderate) = class_cases();
    let r = check_loss(&Loss::SoftmaxCrossEntropy(ce()), &wide, &moderate);
    assert!(r.passed(), "{r:?}");
    assert!(
        check_errors(&Loss::SoftmaxCrossEntropy(ce()), &bad_cases(TargetKind::Classes))
            .failure
            .is_none()
    );
}

#[test]
fn gradient_family_rejects_a_times_one_minus_a_minus_y() {
    let (wide, moderate) = class_cases();
    let r = check_loss(&Mutant(Mutation::GradientSoftmaxDerivativeTimesError), &wide, &moderate);
    assert_rejects(&r.gradient, "CE gradient a(1-a) - y (autodiff)");
    assert_rejects(&r.finite_difference, "CE gradient a(1-a) - y (differences)");
}

#[test]
fn value_family_rejects_a_missing_max_shift() {
    let (wide, moderate) = class_cases();
    let r = check_loss(&Mutant(Mutation::NoMaxShift), &wide, &moderate);
    assert_rejects(&r.value, "CE value without the max shift");
}

#[test]
fn finite_differences_catch_a_bug_shared_by_definition_and_gradient() {
    let (wide, moderate) = class_cases();
    let r = check_loss(&Mutant(Mutation::SharedStopGradient), &wide, &moderate);
    assert!(
        r.gradient.failure.is_none(),
        "autodiff cannot see a stop-gradient bug shared with the analytic form"
    );
    assert_rejects(
        &r.finite_difference,
        "stop-gradient term shared by definition and gradient",
    );
}

#[test]
fn hessian_family_rejects_a_wrong_second_order() {
    let (wide, moderate) = class_cases();
    let r = check_loss(&Mutant(Mutation::WrongSecondOrder), &wide, &moderate);
    assert!(r.gradient.failure.is_none() && r.value.failure.is_none());
    assert_rejects(&r.hessian, "definition with a wrong second derivative");
}

#[test]
fn f32_family_rejects_log_of_an_f32_softmax() {
    let (wide, moderate) = class_cases();
    let r = check_loss(&Mutant(Mutation::F32LogOfSoftmax), &wide, &moderate);
    assert_rejects(&r.f32_path, "f32 path as ln(softmax) in f32");
}

#[test]
fn error_family_rejects_a_kernel_that_lets_nan_through() {
    let t = check_errors(&Mutant(Mutation::AcceptsNaN), &bad_cases(TargetKind::Classes));
    assert_rejects(&t, "kernel accepting NaN logits");
}

const TOL: Tolerance = claims::INFO_IDENTITY;

fn kl_typo(p: &[f64], q: &[f64]) -> Option<f64> {
    // Σ P·ln P / ln Q, as one widely copied note writes KL.
    Some(
        p.iter()
            .zip(q)
            .filter(|(a, _)| **a > 0.0)
            .map(|(a, b)| a * a.ln() / b.ln())
            .sum(),
    )
}

#[test]
fn identity_family_rejects_the_kl_typo() {
    let mut inputs = Inputs::new(3, false);
    let t = equal_on_pairs(&mut inputs, &TOL, &|p, q| kl_typo(p, q), &|p, q| {
        Some(entropic::cross_entropy(p, q).ok()? - entropic::entropy(p).ok()?)
    });
    assert_rejects(&t, "KL = Σ P ln P / ln Q");
}

#[test]
fn identity_family_rejects_cross_entropy_without_its_minus_sign() {
    let mut inputs = Inputs::new(4, false);
    let t = equal_on_pairs(
        &mut inputs,
        &TOL,
        &|p, q| {
            Some(
                p.iter()
                    .zip(q)
                    .map(|(a, b)| if *a > 0.0 { a * b.ln() } else { 0.0 })
                    .sum(),
            )
        },
        &|p, q| Some(entropic::entropy(p).ok()? + entropic::kl_divergence(p, q).ok()?),
    );
    assert_rejects(&t, "H(P,Q) = Σ P ln Q");
}

#[test]
fn identity_family_rejects_mixed_index_cross_entropy() {
    // −Σ_j y_i ln a_j with i fixed at the first index: the textbook typo.
    let mut inputs = Inputs::new(5, false);
    let t = equal_on_pairs(
        &mut inputs,
        &TOL,
        &|p, q| Some(-q.iter().map(|b| p[0] * b.ln()).sum::<f64>()),
        &|p, q| entropic::cross_entropy(p, q).ok(),
    );
    assert_rejects(&t, "−Σ_j y_i ln a_j");
}

#[test]
fn inequality_family_rejects_a_sign_flipped_kl() {
    let mut inputs = Inputs::new(6, false);
    let t = holds_on_pairs(&mut inputs, &|p, q| {
        let kl: f64 = p
            .iter()
            .zip(q)
            .filter(|(a, _)| **a > 0.0)
            .map(|(a, b)| a * (b / a).ln())
            .sum();
        if kl < -1e-12 {
            Err(format!("KL = {kl} < 0"))
        } else {
            Ok(())
        }
    });
    assert_rejects(&t, "KL = Σ p ln(q/p) (sign flipped)");
}

#[test]
fn vjp_family_rejects_wrong_softmax_and_log_softmax_vjps() {
    let mut inputs = Inputs::new(7, false);
    let tol = claims::VJP_IDENTITY;
    // Missing the −Σ a_j v_j term (the Jacobian taken as diag(a)).
    let t = claims::vjp_identity(&mut inputs, &tol, false, &|a: &[f64], v: &[f64]| {
        Some(a.iter().zip(v).map(|(a, v)| a * v).collect())
    });
    assert_rejects(&t, "softmax VJP a ⊙ v (no −aaᵀ term)");
    // The log-softmax VJP with Σ_j a_j v_j in place of Σ_j v_j.
    let t = claims::vjp_identity(&mut inputs, &tol, true, &|a: &[f64], v: &[f64]| {
        let dot: f64 = a.iter().zip(v).map(|(a, v)| a * v).sum();
        Some(a.iter().zip(v).map(|(a, v)| v - a * dot).collect())
    });
    assert_rejects(&t, "log-softmax VJP with Σ a v instead of Σ v");
    // The production VJPs pass the same checks.
    let t = claims::vjp_identity(&mut inputs, &tol, false, &|a: &[f64], v: &[f64]| {
        entropic::softmax_vjp(a, v).ok()
    });
    assert!(t.failure.is_none() && t.cases > 0, "{:?}", t.failure);
}

#[test]
fn row_family_rejects_softmax_without_max_shift() {
    let mut inputs = Inputs::new(7, false);
    let t = equal_on_rows(&mut inputs, &claims::SOFTMAX_IDENTITY, &|row| {
        let e: Vec<f64> = row.iter().map(|z| z.exp()).collect();
        let s: f64 = e.iter().sum();
        vec![(e.iter().map(|v| v / s).sum::<f64>(), 1.0)]
    });
    assert_rejects(&t, "softmax without the max shift");
}

#[test]
fn derivative_family_rejects_log_t_with_one_plus_t() {
    // log_t(x) = (x^{1+t} − 1)/(1+t) (sign typo); its derivative is x^t, not x^{−t}.
    let t = 0.7;
    let xs = Inputs::spaced(0.01, 100.0, 30);
    let tally = derivative_identity(
        &claims::DERIVATIVE_IDENTITY,
        &xs,
        &|x| Some(((x.ln() * (1.0 + t)).exp() - 1.0) / (1.0 + t)),
        &|x| Some(x.powf(-t)),
    );
    assert_rejects(&tally, "log_t with (1+t)");
    // The correct form passes the same check.
    let ok = derivative_identity(
        &claims::DERIVATIVE_IDENTITY,
        &xs,
        &|x| Some(((x.ln() * (1.0 - t)).exp() - 1.0) / (1.0 - t)),
        &|x| Some(x.powf(-t)),
    );
    assert!(ok.failure.is_none(), "{:?}", ok.failure);
}

#[test]
fn limit_rate_family_rejects_a_wrong_coefficient() {
    // log_t(x) − ln x ≈ (1−t)(ln x)²/2 as t → 1; claim a coefficient of (ln x)² instead.
    let x: f64 = 3.0;
    let err = |d: f64| ((x.ln() * d).exp_m1()) / d - x.ln();
    let right = claims::limit_rate(&err, x.ln().powi(2) / 2.0);
    assert!(
        (right.order - 1.0).abs() < 0.05 && right.coefficient_rel_error < 1e-3,
        "{right:?}"
    );
    let wrong = claims::limit_rate(&err, x.ln().powi(2));
    assert!(wrong.coefficient_rel_error > 0.4, "{wrong:?}");
}

/// The bi-tempered loss with its analytic gradient's escort left
/// unnormalized: ẽ_i = p_i^{t2} instead of p_i^{t2}/Σ_j p_j^{t2}.
struct UnnormalizedEscort(entropic::BiTemperedLogisticLoss);

impl LossUnderTest for UnnormalizedEscort {
    fn name(&self) -> String {
        "bi-tempered with unnormalized escort".into()
    }

    fn value<D: Real>(&self, case: &Case, x: &[D]) -> Result<D, Error> {
        Loss::BiTempered(self.0).value(case, x)
    }

    fn kernel<T: entropic::Float>(&self, case: &Case, x: &[T]) -> Result<(LossOutput<T>, Vec<T>), Error> {
        let (out, _) = Loss::BiTempered(self.0).kernel(case, x)?;
        let Target::Classes(y) = &case.target else {
            unreachable!()
        };
        let (t1, t2) = (self.0.t1(), self.0.t2());
        let mut g = Vec::with_capacity(x.len());
        for (i, row) in x.chunks(case.c).enumerate() {
            let z: Vec<f64> = row.iter().map(|v| v.re()).collect();
            let p = entropic::tempered_softmax(&z, t2)?;
            let yv: Vec<f64> = (0..case.c).map(|j| if j == y[i] { 1.0 } else { 0.0 }).collect();
            let terms: Vec<f64> = p.iter().zip(&yv).map(|(pj, yj)| (pj - yj) * pj.powf(t2 - t1)).collect();
            let total: f64 = terms.iter().sum();
            for (pj, tj) in p.iter().zip(&terms) {
                g.push(T::round_from((tj - pj.powf(t2) * total) / case.n as f64));
            }
        }
        Ok((out, g))
    }
}

#[test]
fn gradient_family_rejects_an_unnormalized_escort() {
    let loss = entropic::BiTemperedLogisticLoss::new(0.5, 1.5).unwrap();
    let mut inputs = Inputs::new(12, false);
    let (_, moderate) = cases(&mut inputs, TargetKind::Classes, Some(4), 12);
    // Control: the production loss passes on the same cases.
    assert!(check_loss(&Loss::BiTempered(loss), &moderate, &moderate).passed());
    let r = check_loss(&UnnormalizedEscort(loss), &moderate, &moderate);
    assert_rejects(&r.gradient, "bi-tempered escort without normalization");
}

#[test]
fn hessian_family_rejects_a_hessian_missing_its_label_mass() {
    use entropic_verify::tempered_claims::{ce_hessian_analytic, check_ce_hessian_with};
    let tol = Tolerance::relative(1e-14, "as the cross_entropy.hessian claim");
    let mut inputs = Inputs::new(13, false);
    let ok = check_ce_hessian_with(&mut inputs, &tol, &ce_hessian_analytic);
    assert!(ok.failure.is_none(), "{:?}", ok.failure);
    let mut inputs = Inputs::new(13, false);
    let wrong = check_ce_hessian_with(&mut inputs, &tol, &|z, _y| {
        // diag(a) − aaᵀ without the factor Σy (right only for normalized labels).
        let a = entropic::softmax(z).unwrap_or_default();
        nalgebra::DMatrix::from_fn(a.len(), a.len(), |i, j| if i == j { a[i] } else { 0.0 } - a[i] * a[j])
    });
    assert_rejects(&wrong, "CE Hessian without Σy");
}

#[test]
fn normalization_family_rejects_a_tempered_softmax_without_its_normalizer() {
    // exp_t(a − max a) without solving for λ does not sum to 1.
    let mut inputs = Inputs::new(14, false);
    let t = equal_on_rows(&mut inputs, &claims::SOFTMAX_IDENTITY, &|row| {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        vec![(row.iter().map(|a| entropic::exp_t(a - m, 1.5)).sum::<f64>(), 1.0)]
    });
    assert_rejects(&t, "tempered softmax without λ");
}

/// The sigmoid focal loss with its analytic gradient missing the γ term
/// (the derivative of the modulating factor), as a common derivation slip.
struct FocalWithoutGammaTerm(entropic::SigmoidFocalLoss);

impl LossUnderTest for FocalWithoutGammaTerm {
    fn name(&self) -> String {
        "sigmoid focal without the γ term".into()
    }

    fn value<D: Real>(&self, case: &Case, x: &[D]) -> Result<D, Error> {
        Loss::SigmoidFocal(self.0).value(case, x)
    }

    fn kernel<T: entropic::Float>(&self, case: &Case, x: &[T]) -> Result<(LossOutput<T>, Vec<T>), Error> {
        let (out, _) = Loss::SigmoidFocal(self.0).kernel(case, x)?;
        let Target::Dense(y) = &case.target else { unreachable!() };
        let gamma = self.0.gamma();
        let n = (case.n * case.c) as f64; // Mean over elements
        let g = x
            .iter()
            .zip(y)
            .map(|(xi, &yi)| {
                let p = 1.0 / (1.0 + (-xi.re()).exp());
                let pt = p * yi + (1.0 - p) * (1.0 - yi);
                // α_t (1 − p_t)^γ (p − y): the BCE gradient times the factor, no γ·… term.
                T::round_from((1.0 - pt).powf(gamma) * (p - yi) / n)
            })
            .collect();
        Ok((out, g))
    }
}

#[test]
fn gradient_family_rejects_a_focal_gradient_missing_the_gamma_term() {
    let loss = entropic::SigmoidFocalLoss::new(None, 2.0).unwrap();
    let mut inputs = Inputs::new(15, false);
    let (_, moderate) = cases(&mut inputs, TargetKind::Binary, None, 12);
    assert!(check_loss(&Loss::SigmoidFocal(loss), &moderate, &moderate).passed());
    let r = check_loss(&FocalWithoutGammaTerm(loss), &moderate, &moderate);
    assert_rejects(&r.gradient, "focal gradient without the γ term");
}
