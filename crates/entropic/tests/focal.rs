//! Focal loss: torchvision semantics on hand-computed values, γ = 0 against
//! binary / softmax cross-entropy, dual-number gradients of the generic
//! definitions against the analytic gradients (f64 and f32) on random and
//! extreme inputs, finiteness at ±1e30, fast path vs definition, parameter
//! and shape errors, `ignore_index` and reductions.

mod common;

use common::{SplitMix, dual_gradient, ulps32, ulps64};
use entropic::{
    Batch, BinaryCrossEntropyWithLogits, Error, Reduction, SigmoidFocalLoss, SoftmaxCrossEntropy, SoftmaxFocalLoss,
    Targets, sigmoid_focal_loss, softmax_focal_loss,
};
use num_dual::{Dual64, DualDVec64, DualNum, HyperDual64};

const EPS: f64 = f64::EPSILON;

/// Analytic gradient (fast kernel) vs the dual-number derivative of the
/// generic definition, relative to the magnitude of the terms being summed.
/// Both evaluate exact closed forms in f64 with O(c) roundings each (c ≤ 8
/// here); the two differ only in association and in how the chain rule is
/// applied (e.g. the dual derivative of `ln_1p(e^w)` vs the kernel's `σ(w)`),
/// so they agree to a small multiple of c·ε. The largest disagreement seen
/// is below 8 ε; 32 ε leaves a factor 4.
const GRADIENT_REL: f64 = 32.0 * EPS;

/// The f32 kernel rounds the f64 gradient once (≤ ½ ulp of f32 = 2⁻²⁴
/// relative); the f64 part is within [`GRADIENT_REL`]. Allow one full f32 ulp.
const GRADIENT_REL_F32: f64 = f32::EPSILON as f64;

/// With hard labels the f32 kernel takes its f32 path: within `17 + ⌈3γ⌉`
/// f32 ulps of the f64 kernel (the a priori bound derived at
/// `f32_focal_path_ulps` in `tests/kernels.rs`), i.e. that many
/// `f32::EPSILON` relative.
fn f32_focal_path_rel(gamma: f64) -> f64 {
    (17.0 + (3.0 * gamma).ceil()) * f64::from(f32::EPSILON)
}

/// An f32 result that underflows is flushed or rounded to a subnormal: the
/// absolute error is at most half the smallest f32 subnormal (≈ 7e-46).
const F32_UNDERFLOW_ABS: f64 = 1e-45;

/// Plain-f64 textbook reference (rounded `p`, `1 − p`, `powf`) vs the log-space
/// implementation, relative error, for |x| ≤ 5 and γ ≤ 3.5. The reference's
/// `1 − p` cancels: its relative error is up to ε·p/(1 − p) ≤ e⁵·ε ≈ 150 ε,
/// multiplied by γ ≤ 3.5 in `(1 − p)^γ`; `ln p` of the rounded `p` has the
/// same ≈ 150 ε relative error when p → 1. About 700 ε in all, plus a few
/// roundings: 2048 ε. Any formula error is O(1) relative.
const TEXTBOOK_REL: f64 = 2048.0 * EPS;

/// γ = 0, no α, against `SoftmaxCrossEntropy`: the cross-entropy kernel
/// computes `ln Σ_j e^{z_j − m} − (z_k − m)`, whose logarithm of a sum in
/// `[1, c]` has an absolute error of up to (c + 1)·ε; this module computes
/// `softplus(w)` (relative error a few ε). So the two agree within
/// (c + 1 + a few)·ε·max(1, ℓ); with c ≤ 8, 16 ε.
const SOFTMAX_CE_EPS: f64 = 16.0;

fn batch<T>(data: &[T], n: usize, c: usize) -> Batch<'_, T> {
    Batch::new(data, n, c).unwrap()
}

/// Plain textbook sigmoid focal loss and its gradient at moderate x.
fn textbook_sigmoid(x: f64, y: f64, alpha: Option<f64>, gamma: f64) -> (f64, f64, f64) {
    let p = 1.0 / (1.0 + (-x).exp());
    let q = p * (1.0 - y) + (1.0 - p) * y; // 1 − p_t
    let at = alpha.map_or(1.0, |a| a * y + (1.0 - a) * (1.0 - y));
    let bce = -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
    let loss = at * q.powf(gamma) * bce;
    // ∂F/∂x = α_t[γ q^{γ−1} p(1−p)(1−2y)·B + q^γ (p − y)]
    let t1 = if gamma == 0.0 {
        0.0
    } else {
        at * gamma * q.powf(gamma - 1.0) * p * (1.0 - p) * (1.0 - 2.0 * y) * bce
    };
    let t2 = at * q.powf(gamma) * (p - y);
    (loss, t1 + t2, t1.abs() + t2.abs())
}

/// Magnitude of the terms of the sigmoid-focal gradient at x (an upper bound
/// on what rounding is relative to): α_t·q^γ·(1 + γ·(1 + |x|)), using
/// R ≤ 1 and BCE ≤ |x| + ln 2.
fn sigmoid_term_scale(x: f64, y: f64, alpha: Option<f64>, gamma: f64) -> f64 {
    let p = 1.0 / (1.0 + (-x).exp());
    let q = p * (1.0 - y) + (1.0 - p) * y;
    let at = alpha.map_or(1.0, |a| a * y + (1.0 - a) * (1.0 - y));
    at * q.powf(gamma) * (1.0 + gamma * (1.0 + x.abs()))
}

const GAMMAS: [f64; 5] = [0.0, 0.5, 1.0, 2.0, 5.0];
const EXTREMES: [f64; 7] = [100.0, -100.0, 1e4, -1e4, 1e30, -1e30, 0.0];

// ---------------------------------------------------------------- sigmoid

#[test]
fn torchvision_value_at_x_0_3() {
    // torchvision.ops.sigmoid_focal_loss(tensor(0.3), tensor(1.), 0.25, 2)
    let x = 0.3_f64;
    let p = 1.0 / (1.0 + (-x).exp());
    let expected = 0.25 * (1.0 - p) * (1.0 - p) * -p.ln();
    let expected_grad = 0.25 * (1.0 - p) * (1.0 - p) * (2.0 * p * p.ln() - (1.0 - p));
    let fl = SigmoidFocalLoss::torchvision();
    assert_eq!(fl.reduction(), Reduction::None);
    assert_eq!((fl.alpha(), fl.gamma()), (Some(0.25), 2.0));
    let (out, grad) = fl.loss_and_grad(batch(&[x], 1, 1), batch(&[1.0_f64], 1, 1)).unwrap();
    assert_eq!(out.reduced, None);
    // at x = 0.3 the textbook formula is well conditioned: a few ulps
    assert!(
        ulps64(out.unreduced[0], expected) <= 8,
        "{} vs {expected}",
        out.unreduced[0]
    );
    assert!(ulps64(grad[0], expected_grad) <= 8, "{} vs {expected_grad}", grad[0]);
    assert!((expected - 0.025_098_318_872_149_26).abs() < 1e-17);
}

#[test]
fn sigmoid_matches_textbook_formula_on_a_grid() {
    for &gamma in &[0.0, 0.5, 1.0, 2.0, 3.5] {
        for alpha in [None, Some(0.25), Some(0.9)] {
            let fl = SigmoidFocalLoss::new(alpha, gamma)
                .unwrap()
                .with_reduction(Reduction::None);
            for i in -20..=20 {
                let x = f64::from(i) * 0.25;
                for y in [0.0, 0.1, 0.5, 0.7, 1.0] {
                    let (l, g) = fl.loss_and_grad(batch(&[x], 1, 1), batch(&[y], 1, 1)).unwrap();
                    let (el, eg, scale) = textbook_sigmoid(x, y, alpha, gamma);
                    assert!(
                        (l.unreduced[0] - el).abs() <= TEXTBOOK_REL * el.abs(),
                        "loss x={x} y={y} a={alpha:?} g={gamma}: {} vs {el}",
                        l.unreduced[0]
                    );
                    assert!(
                        (g[0] - eg).abs() <= TEXTBOOK_REL * scale + 4.0 * EPS,
                        "grad x={x} y={y} a={alpha:?} g={gamma}: {} vs {eg}",
                        g[0]
                    );
                }
            }
        }
    }
}

#[test]
fn sigmoid_gamma_zero_without_alpha_is_bce() {
    let mut rng = SplitMix(11);
    let fl = SigmoidFocalLoss::new(None, 0.0).unwrap();
    let bce = BinaryCrossEntropyWithLogits::new();
    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        let (fl, bce) = (fl.with_reduction(reduction), bce.clone().with_reduction(reduction));
        let mut x: Vec<f64> = (0..24).map(|_| rng.uniform(-40.0, 40.0)).collect();
        x.extend_from_slice(&EXTREMES);
        x.extend_from_slice(&[1e300, -1e300]);
        let y: Vec<f64> = (0..x.len())
            .map(|i| match i % 3 {
                0 => 0.0,
                1 => 1.0,
                _ => rng.uniform(0.0, 1.0),
            })
            .collect();
        let (n, c) = (x.len() / 3, 3);
        let (a, ga) = fl.loss_and_grad(batch(&x, n, c), batch(&y, n, c)).unwrap();
        let (b, gb) = bce.loss_and_grad(batch(&x, n, c), batch(&y, n, c)).unwrap();
        // Same expressions in the same order: identical results (0 ulps).
        assert_eq!(a, b);
        assert_eq!(ga, gb);
        let da = fl.definition(batch(&x, n, c), batch(&y, n, c)).unwrap();
        let db = bce.definition(batch(&x, n, c), batch(&y, n, c)).unwrap();
        assert_eq!(da, db);
        // f32 too (without ±1e300, which is ±∞ in f32)
        let x32: Vec<f32> = x[..30].iter().map(|&v| v as f32).collect();
        let (a, ga) = fl.loss_and_grad(batch(&x32, 10, c), batch(&y[..30], 10, c)).unwrap();
        let (b, gb) = bce.loss_and_grad(batch(&x32, 10, c), batch(&y[..30], 10, c)).unwrap();
        assert_eq!(a, b);
        assert_eq!(ga, gb);
    }
}

#[test]
fn sigmoid_focal_is_at_most_bce_without_alpha() {
    let mut rng = SplitMix(12);
    let bce = BinaryCrossEntropyWithLogits::new().with_reduction(Reduction::None);
    for &gamma in &GAMMAS[1..] {
        let fl = SigmoidFocalLoss::new(None, gamma)
            .unwrap()
            .with_reduction(Reduction::None);
        let x: Vec<f64> = (0..64).map(|_| rng.uniform(-30.0, 30.0)).collect();
        let y: Vec<f64> = (0..64)
            .map(|i| {
                if i % 2 == 0 {
                    f64::from(i % 4 / 2)
                } else {
                    rng.uniform(0.0, 1.0)
                }
            })
            .collect();
        let a = fl.loss(batch(&x, 8, 8), batch(&y, 8, 8)).unwrap();
        let b = bce.loss(batch(&x, 8, 8), batch(&y, 8, 8)).unwrap();
        for (i, (fa, fb)) in a.unreduced.iter().zip(&b.unreduced).enumerate() {
            // (1 − p_t)^γ = exp(γ·ln(1 − p_t)) ≤ exp(0) = 1 and BCE is the same value.
            assert!(fa <= fb, "i={i} γ={gamma}: {fa} > {fb}");
            // and it really focuses: a strictly smaller loss when 1 − p_t < 1
            assert!(*fa < *fb || *fb == 0.0, "i={i} γ={gamma}: {fa} !< {fb}");
        }
    }
}

#[test]
fn sigmoid_soft_label_symmetry() {
    // FL(x, y; α) = FL(−x, 1 − y; 1 − α): relabelling positives as negatives.
    // Dyadic labels make 1 − y exact; ln(1 − y) vs ln y of the mirrored label
    // round differently (≤ 1 ulp each), propagated through exp and a product:
    // 8 ulps.
    for &gamma in &GAMMAS {
        let a = SigmoidFocalLoss::new(Some(0.25), gamma).unwrap();
        let b = SigmoidFocalLoss::new(Some(0.75), gamma).unwrap();
        for x in [-7.5, -1.0, 0.0, 0.3, 2.0, 100.0] {
            for y in [0.0, 0.25, 0.5, 0.875, 1.0] {
                let la = a.loss(batch(&[x], 1, 1), batch(&[y], 1, 1)).unwrap().reduced.unwrap();
                let lb = b
                    .loss(batch(&[-x], 1, 1), batch(&[1.0 - y], 1, 1))
                    .unwrap()
                    .reduced
                    .unwrap();
                assert!(ulps64(la, lb) <= 8, "x={x} y={y} γ={gamma}: {la} vs {lb}");
            }
        }
    }
}

#[test]
fn sigmoid_reductions_and_denominators() {
    let x = [0.3, -1.2, 2.0, 0.7, -0.1, 4.0];
    let y = [1.0, 0.0, 0.5, 1.0, 0.0, 0.0];
    let base = SigmoidFocalLoss::new(Some(0.25), 2.0).unwrap();
    let none = base.with_reduction(Reduction::None);
    let (u, gu) = none.loss_and_grad(batch(&x, 2, 3), batch(&y, 2, 3)).unwrap();
    assert_eq!(u.unreduced.len(), 6);
    assert_eq!(u.reduced, None);
    let sum: f64 = u.unreduced.iter().sum();
    for (reduction, den) in [
        (Reduction::Sum, 1.0),
        (Reduction::Mean, 6.0),
        (Reduction::BatchMean, 2.0),
    ] {
        let (o, g) = base
            .with_reduction(reduction)
            .loss_and_grad(batch(&x, 2, 3), batch(&y, 2, 3))
            .unwrap();
        assert_eq!(o.unreduced, u.unreduced);
        assert!(ulps64(o.reduced.unwrap(), sum / den) <= 2, "{reduction:?}");
        for (a, b) in g.iter().zip(&gu) {
            assert!(ulps64(*a, b / den) <= 2, "{reduction:?}: {a} vs {}", b / den);
        }
    }
    // The default reduction of `new` is Mean (n·c), torchvision()'s is None.
    assert_eq!(base.reduction(), Reduction::Mean);
    // The function-style call agrees with the builder.
    let f = sigmoid_focal_loss(batch(&x, 2, 3), batch(&y, 2, 3), Some(0.25), 2.0, Reduction::Mean).unwrap();
    assert!(ulps64(f.reduced.unwrap(), sum / 6.0) <= 2);
    // Mean of an empty batch is an error, Sum of one is 0.
    let empty: [f64; 0] = [];
    let err = base.loss(batch(&empty, 0, 3), batch(&empty, 0, 3)).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    let s = base
        .with_reduction(Reduction::Sum)
        .loss(batch(&empty, 0, 3), batch(&empty, 0, 3))
        .unwrap();
    assert_eq!(s.reduced, Some(0.0));
}

/// Dual-number gradient of the sigmoid definition (Sum) vs the kernel's, f64.
fn check_sigmoid_gradient(x: &[f64], y: &[f64], alpha: Option<f64>, gamma: f64) {
    let n = x.len();
    let fl = SigmoidFocalLoss::new(alpha, gamma)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let (_, g) = fl.loss_and_grad(batch(x, n, 1), batch(y, n, 1)).unwrap();
    let gd = dual_gradient(x, |xs| {
        fl.definition(batch(xs, n, 1), batch(y, n, 1)).unwrap().reduced.unwrap()
    });
    for i in 0..n {
        let tol = if y[i] == 0.0 || y[i] == 1.0 {
            // hard labels: both terms have the same sign, no cancellation.
            // The definition forms q^γ = e^{γ·ln(1 − p_t)} from the rounded
            // product, |γ·ln(1 − p_t)|·ε/2 relative; the kernel from an
            // exact pair (see `sigmoid_focal_element`), so allow that too.
            let u = if y[i] == 1.0 { x[i] } else { -x[i] };
            let ln_q = u.max(0.0) + (-u.abs()).exp().ln_1p();
            (GRADIENT_REL + gamma * ln_q * EPS) * gd[i].abs()
        } else {
            GRADIENT_REL * (gd[i].abs() + sigmoid_term_scale(x[i], y[i], alpha, gamma))
        };
        assert!(
            gd[i].is_finite() && g[i].is_finite(),
            "x={} y={} γ={gamma}: {} {}",
            x[i],
            y[i],
            g[i],
            gd[i]
        );
        assert!(
            (g[i] - gd[i]).abs() <= tol,
            "x={} y={} α={alpha:?} γ={gamma}: analytic {} vs dual {} (tol {tol:e})",
            x[i],
            y[i],
            g[i],
            gd[i]
        );
    }
}

#[test]
fn sigmoid_dual_gradient_matches_analytic_on_random_inputs() {
    let mut rng = SplitMix(13);
    for &gamma in &[0.0, 0.5, 1.0, 2.0, 5.0, 0.1, 3.3] {
        for alpha in [None, Some(0.25), Some(0.0), Some(1.0)] {
            let x: Vec<f64> = (0..32).map(|_| rng.uniform(-25.0, 25.0)).collect();
            let y: Vec<f64> = (0..32)
                .map(|i| match i % 4 {
                    0 => 0.0,
                    1 => 1.0,
                    _ => rng.uniform(0.0, 1.0),
                })
                .collect();
            check_sigmoid_gradient(&x, &y, alpha, gamma);
        }
    }
}

#[test]
fn sigmoid_dual_gradient_matches_analytic_at_extremes() {
    for &gamma in &GAMMAS {
        for alpha in [None, Some(0.25)] {
            for &y in &[0.0, 1.0, 0.3, 1e-3, 0.999] {
                let x = EXTREMES.to_vec();
                let ys = vec![y; x.len()];
                check_sigmoid_gradient(&x, &ys, alpha, gamma);
            }
        }
    }
}

#[test]
fn sigmoid_f32_gradient_matches_dual_within_the_f32_bounds() {
    let mut rng = SplitMix(14);
    for &gamma in &GAMMAS {
        let fl = SigmoidFocalLoss::new(Some(0.25), gamma)
            .unwrap()
            .with_reduction(Reduction::Sum);
        let mut x32: Vec<f32> = (0..24).map(|_| rng.uniform(-20.0, 20.0) as f32).collect();
        x32.extend(EXTREMES.iter().map(|&v| v as f32));
        let n = x32.len();
        let y: Vec<f64> = (0..n).map(|i| [0.0, 1.0, 0.25][i % 3]).collect();
        let x: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
        let (_, g32) = fl.loss_and_grad(batch(&x32, n, 1), batch(&y, n, 1)).unwrap();
        let gd = dual_gradient(&x, |xs| {
            fl.definition(batch(xs, n, 1), batch(&y, n, 1))
                .unwrap()
                .reduced
                .unwrap()
        });
        for i in 0..n {
            let hard = y[i] == 0.0 || y[i] == 1.0;
            let scale = if hard {
                gd[i].abs()
            } else {
                gd[i].abs() + sigmoid_term_scale(x[i], y[i], Some(0.25), gamma)
            };
            // Hard labels: the f32 path; soft ones: the f64 path rounded once.
            let rel = if hard {
                f32_focal_path_rel(gamma)
            } else {
                GRADIENT_REL_F32
            };
            let tol = rel * gd[i].abs() + GRADIENT_REL * scale + F32_UNDERFLOW_ABS;
            assert!(
                (f64::from(g32[i]) - gd[i]).abs() <= tol,
                "x={} y={} γ={gamma}: f32 {} vs dual {}",
                x[i],
                y[i],
                g32[i],
                gd[i]
            );
        }
    }
}

#[test]
fn sigmoid_finite_loss_and_gradient_at_extremes_in_every_type() {
    for &gamma in &[0.0, 0.25, 0.5, 1.0, 2.0, 5.0] {
        for alpha in [None, Some(0.25)] {
            let fl = SigmoidFocalLoss::new(alpha, gamma)
                .unwrap()
                .with_reduction(Reduction::None);
            for &x in &EXTREMES {
                for &y in &[0.0, 1.0, 0.5, 1e-12] {
                    let (o, g) = fl.loss_and_grad(batch(&[x], 1, 1), batch(&[y], 1, 1)).unwrap();
                    assert!(
                        o.unreduced[0].is_finite() && o.unreduced[0] >= 0.0,
                        "x={x} y={y} γ={gamma}"
                    );
                    assert!(g[0].is_finite(), "x={x} y={y} γ={gamma}: {}", g[0]);
                    let (o, g) = fl.loss_and_grad(batch(&[x as f32], 1, 1), batch(&[y], 1, 1)).unwrap();
                    assert!(
                        o.unreduced[0].is_finite() && g[0].is_finite(),
                        "f32 x={x} y={y} γ={gamma}"
                    );
                    let d = fl
                        .definition(batch(&[Dual64::from_re(x).derivative()], 1, 1), batch(&[y], 1, 1))
                        .unwrap();
                    let d = &d.unreduced[0];
                    assert!(
                        d.re.is_finite() && d.eps.is_finite(),
                        "dual x={x} y={y} γ={gamma}: {d:?}"
                    );
                    let h = fl
                        .definition(
                            batch(&[HyperDual64::from_re(x).derivative1().derivative2()], 1, 1),
                            batch(&[y], 1, 1),
                        )
                        .unwrap();
                    let h = &h.unreduced[0];
                    assert!(
                        h.eps1.is_finite() && h.eps1eps2.is_finite(),
                        "hyperdual x={x} y={y} γ={gamma}: {h:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn naive_pow_autodiff_is_nan_where_the_definition_is_not() {
    // Documents the failure the log-space form avoids: at x = 40, y = 1,
    // p = σ(x) rounds to 1, 1 − p = 0 and d/dx (1 − p)^0.5 = ½·0^{−½}·(−p') = ∞·0.
    let x = Dual64::from_re(40.0).derivative();
    let p = (Dual64::from_re(1.0)) / (Dual64::from_re(1.0) + (-x).exp());
    let naive = (Dual64::from_re(1.0) - p).powf(0.5) * -p.ln();
    assert!(naive.eps.is_nan(), "{naive:?}");
    let fl = SigmoidFocalLoss::new(None, 0.5).unwrap();
    let d = fl.definition(batch(&[x], 1, 1), batch(&[1.0_f64], 1, 1)).unwrap();
    let v = d.reduced.unwrap();
    assert!(v.re.is_finite() && v.eps.is_finite(), "{v:?}");
    // exact: (1−p)^½·(−ln p) ≈ e^{−20}·e^{−40}, derivative ≈ −1.5·e^{−60}
    assert!((v.eps / (-1.5 * (-60.0_f64).exp()) - 1.0).abs() < 1e-12, "{v:?}");
}

/// Sigmoid focal kernel vs definition (both `f64`), in ulps: a base plus a
/// slope per unit of `|γ·ln(1 − p_t)|`.
///
/// Reason: the kernel's branch-free `exp` (≤ 1 ulp) and `ln(1 + t)`
/// (≤ 1.25 ulp) differ from the standard library's by a few ulps in
/// softplus and σ, and the value and gradient are products of at most four
/// such factors (the base); the modulating factor `M = exp(γ·ln(1 − p_t))`
/// turns a relative error δ of `ln(1 − p_t)` into `γ·|ln(1 − p_t)|·δ` of
/// `M`, so each unit of `|γ·ln(1 − p_t)|` adds a few ulps (the slope; both
/// evaluations carry that conditioning, the exact value does not).
const FOCAL_KERNEL_BASE_ULPS: f64 = 16.0;
const FOCAL_KERNEL_ULPS_PER_UNIT: f64 = 4.0;

/// The allowance of [`FOCAL_KERNEL_BASE_ULPS`] for one element:
/// `|ln(1 − p_t)| ≤ |x| + ln 2 + |ln min(y, 1 − y)|` (0 for hard labels).
fn focal_kernel_ulps(x: f64, y: f64, gamma: f64) -> f64 {
    let soft = if y > 0.0 && y < 1.0 {
        y.min(1.0 - y).ln().abs()
    } else {
        0.0
    };
    FOCAL_KERNEL_BASE_ULPS + FOCAL_KERNEL_ULPS_PER_UNIT * gamma * (x.abs() + 1.0 + soft)
}

#[test]
fn sigmoid_kernel_agrees_with_definition() {
    // The f64 kernel (vectorized exp / ln(1 + t)) vs the generic definition
    // with D = f64 (the standard library's): within the allowance above,
    // element by element and after the reduction.
    let mut rng = SplitMix(15);
    for &gamma in &GAMMAS {
        for alpha in [None, Some(0.4)] {
            let fl = SigmoidFocalLoss::new(alpha, gamma).unwrap();
            let mut x: Vec<f64> = (0..30).map(|_| rng.uniform(-50.0, 50.0)).collect();
            x.extend_from_slice(&EXTREMES[..6]);
            let y: Vec<f64> = (0..36)
                .map(|i| {
                    if i % 3 == 2 {
                        rng.uniform(0.0, 1.0)
                    } else {
                        f64::from(i % 3)
                    }
                })
                .collect();
            let allowed: Vec<f64> = x
                .iter()
                .zip(&y)
                .map(|(&x, &y)| focal_kernel_ulps(x, y, gamma))
                .collect();
            let worst_allowed = allowed.iter().fold(0.0f64, |m, &a| m.max(a));
            for reduction in [Reduction::None, Reduction::Mean] {
                let fl = fl.with_reduction(reduction);
                let (k, gk) = fl.loss_and_grad(batch(&x, 6, 6), batch(&y, 6, 6)).unwrap();
                let d = fl.definition(batch(&x, 6, 6), batch(&y, 6, 6)).unwrap();
                for ((a, b), tol) in k.unreduced.iter().zip(&d.unreduced).zip(&allowed) {
                    assert!(ulps64(*a, *b) as f64 <= *tol, "γ={gamma}: {a} vs {b} (≤ {tol} ulps)");
                }
                if let (Some(a), Some(b)) = (k.reduced, d.reduced) {
                    assert!(ulps64(a, b) as f64 <= worst_allowed, "γ={gamma}: {a} vs {b}");
                }
                // The gradient against the dual-number derivative of the
                // definition (per element, relative to max(|g|, scale)).
                let xd: Vec<Dual64> = x.iter().map(|&v| Dual64::from_re(v)).collect();
                for j in 0..x.len() {
                    let mut xj = xd.clone();
                    xj[j] = xj[j].derivative();
                    let v = fl.definition(batch(&xj, 6, 6), batch(&y, 6, 6)).unwrap();
                    let dual = match reduction {
                        Reduction::None => v.unreduced[j].eps,
                        _ => v.reduced.unwrap().eps,
                    };
                    let tol = allowed[j] * EPS * dual.abs().max(f64::MIN_POSITIVE);
                    assert!(
                        (gk[j] - dual).abs() <= tol.max(1e-300),
                        "γ={gamma}: grad {} vs {dual}",
                        gk[j]
                    );
                }
                // f32 kernel = f64 kernel rounded once (inputs exactly representable)
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
                let (k32, g32) = fl.loss_and_grad(batch(&x32, 6, 6), batch(&y, 6, 6)).unwrap();
                let (k64, g64) = fl.loss_and_grad(batch(&x64, 6, 6), batch(&y, 6, 6)).unwrap();
                for (a, b) in k32.unreduced.iter().zip(&k64.unreduced).chain(g32.iter().zip(&g64)) {
                    assert_eq!(ulps32(*a, *b as f32), 0, "{a} vs {b}");
                }
            }
        }
    }
}

#[test]
fn sigmoid_parameter_validation() {
    for gamma in [-1e-300, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = SigmoidFocalLoss::new(None, gamma).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { name: "gamma", .. }),
            "{gamma}: {err}"
        );
    }
    for alpha in [1.0 + 1e-15, -0.25, -1.0, f64::NAN, f64::INFINITY] {
        let err = SigmoidFocalLoss::new(Some(alpha), 2.0).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { name: "alpha", .. }),
            "{alpha}: {err}"
        );
    }
    for (alpha, gamma) in [(Some(0.0), 0.0), (Some(1.0), 1e6), (None, 0.5)] {
        let fl = SigmoidFocalLoss::new(alpha, gamma).unwrap();
        assert_eq!((fl.alpha(), fl.gamma()), (alpha, gamma));
    }
    let err = sigmoid_focal_loss(
        batch(&[0.0_f64], 1, 1),
        batch(&[1.0_f64], 1, 1),
        None,
        -2.0,
        Reduction::Sum,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidParameter { name: "gamma", .. }), "{err}");
}

#[test]
fn sigmoid_input_errors() {
    let fl = SigmoidFocalLoss::torchvision();
    let x = [0.0_f64, 1.0, 2.0, 3.0];
    let y = [0.0_f64, 1.0, 0.0, 1.0];
    let err = fl.loss(batch(&x, 2, 2), batch(&y, 1, 4)).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { what: "labels", .. }), "{err}");
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let xb = [0.0, bad, 0.0, 0.0];
        let err = fl.loss(batch(&xb, 2, 2), batch(&y, 2, 2)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFinite {
                    what: "logits",
                    at: entropic::Position::Cell { row: 0, col: 1 },
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
    let err = fl
        .loss(batch(&x, 2, 2), batch(&[0.0, 1.0, 1.5, 0.0], 2, 2))
        .unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { what: "labels", .. }), "{err}");
    let err = fl
        .loss(batch(&x, 2, 2), batch(&[0.0, -0.1, 1.0, 0.0], 2, 2))
        .unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { what: "labels", .. }), "{err}");
    let err = fl
        .loss(batch(&x, 2, 2), batch(&[0.0, f64::NAN, 1.0, 0.0], 2, 2))
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { what: "labels", .. }), "{err}");
    let mut g = [0.0; 3];
    let err = fl
        .loss_and_grad_into(batch(&x, 2, 2), batch(&y, 2, 2), &mut g)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                what: "gradient buffer",
                ..
            }
        ),
        "{err}"
    );
    let mut g = [7.0; 4];
    let out = fl.loss_and_grad_into(batch(&x, 2, 2), batch(&y, 2, 2), &mut g).unwrap();
    let (out2, g2) = fl.loss_and_grad(batch(&x, 2, 2), batch(&y, 2, 2)).unwrap();
    assert_eq!((out, g.to_vec()), (out2, g2));
}

// ---------------------------------------------------------------- softmax

fn log_softmax_naive(z: &[f64]) -> Vec<f64> {
    let s: f64 = z.iter().map(|v| v.exp()).sum();
    z.iter().map(|v| v - s.ln()).collect()
}

#[test]
fn softmax_hand_computed_values() {
    // z = [1, 2, 3], k = 0, α = [0.25, 0.5, 0.75], γ = 2: −α_0 (1 − a_0)^2 ln a_0
    let z = [1.0_f64, 2.0, 3.0];
    let la = log_softmax_naive(&z);
    let a0 = la[0].exp();
    let expected = -0.25 * (1.0 - a0).powi(2) * la[0];
    // gradient: α(1 − a_k)^γ (δ_jk − a_j)[γ a_k ln a_k/(1 − a_k) − 1]
    let bracket = 2.0 * a0 * la[0] / (1.0 - a0) - 1.0;
    let expected_grad: Vec<f64> = (0..3)
        .map(|j| 0.25 * (1.0 - a0).powi(2) * (f64::from(u8::from(j == 0)) - la[j].exp()) * bracket)
        .collect();
    let fl = SoftmaxFocalLoss::new(2.0)
        .unwrap()
        .with_alpha(vec![0.25, 0.5, 0.75])
        .unwrap();
    assert_eq!(fl.alpha(), Some(&[0.25, 0.5, 0.75][..]));
    let (out, grad) = fl.loss_and_grad(batch(&z, 1, 3), &[0]).unwrap();
    // well-conditioned at these logits: the naive reference is within a few ulps
    assert!(
        ulps64(out.reduced.unwrap(), expected) <= 8,
        "{:?} vs {expected}",
        out.reduced
    );
    for (g, e) in grad.iter().zip(&expected_grad) {
        assert!(ulps64(*g, *e) <= 16, "{g} vs {e}");
    }
    // Mean with one row = the value; α is not a denominator.
    assert_eq!(out.unreduced[0], out.reduced.unwrap());
}

#[test]
fn softmax_gamma_zero_without_alpha_is_ce() {
    let mut rng = SplitMix(21);
    let fl = SoftmaxFocalLoss::new(0.0).unwrap().with_reduction(Reduction::None);
    let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::None);
    for c in 1..=8usize {
        for scale in [1.0, 30.0, 1e4, 1e30] {
            let n = 8;
            let z: Vec<f64> = (0..n * c).map(|_| rng.uniform(-1.0, 1.0) * scale).collect();
            let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
            let (a, ga) = fl.loss_and_grad(batch(&z, n, c), &y).unwrap();
            let (b, gb) = ce.loss_and_grad(batch(&z, n, c), Targets::<f64>::Classes(&y)).unwrap();
            for i in 0..n {
                let (fa, fb) = (a.unreduced[i], b.unreduced[i]);
                assert!(
                    (fa - fb).abs() <= SOFTMAX_CE_EPS * EPS * fb.abs().max(1.0),
                    "c={c} scale={scale} row {i}: {fa} vs {fb}"
                );
                let row = i * c..(i + 1) * c;
                let gmax = gb[row.clone()].iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                for (x, y) in ga[row.clone()].iter().zip(&gb[row]) {
                    assert!(
                        (x - y).abs() <= GRADIENT_REL * gmax,
                        "c={c} scale={scale} row {i}: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn softmax_focal_is_at_most_ce_and_strictly_below_for_gamma_positive() {
    let mut rng = SplitMix(22);
    let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::None);
    for &gamma in &GAMMAS[1..] {
        let fl = SoftmaxFocalLoss::new(gamma).unwrap().with_reduction(Reduction::None);
        let (n, c) = (16, 5);
        let z: Vec<f64> = (0..n * c).map(|_| rng.uniform(-6.0, 6.0)).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let a = fl.loss(batch(&z, n, c), &y).unwrap();
        let b = ce.loss(batch(&z, n, c), Targets::<f64>::Classes(&y)).unwrap();
        for (fa, fb) in a.unreduced.iter().zip(&b.unreduced) {
            // (1 − a_k)^γ < 1 for a_k > 0: the factor is far below 1 − 16ε here
            assert!(*fa < *fb * (1.0 - SOFTMAX_CE_EPS * EPS), "γ={gamma}: {fa} vs {fb}");
        }
    }
}

/// Dual-number gradient of the softmax definition (Sum) vs the kernel's.
fn check_softmax_gradient(z: &[f64], n: usize, c: usize, y: &[usize], fl: &SoftmaxFocalLoss) {
    let fl = fl.clone().with_reduction(Reduction::Sum);
    let (_, g) = fl.loss_and_grad(batch(z, n, c), y).unwrap();
    let gd = dual_gradient(z, |zs| fl.definition(batch(zs, n, c), y).unwrap().reduced.unwrap());
    for i in 0..n {
        let row = i * c..(i + 1) * c;
        let gmax = gd[row.clone()].iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for j in row {
            assert!(
                gd[j].is_finite() && g[j].is_finite(),
                "z={:?} k={}",
                &z[i * c..(i + 1) * c],
                y[i]
            );
            assert!(
                (g[j] - gd[j]).abs() <= GRADIENT_REL * gmax,
                "γ={} row {:?} k={} j={}: analytic {} vs dual {}",
                fl.gamma(),
                &z[i * c..(i + 1) * c],
                y[i],
                j - i * c,
                g[j],
                gd[j]
            );
        }
    }
}

#[test]
fn softmax_dual_gradient_matches_analytic_on_random_inputs() {
    let mut rng = SplitMix(23);
    for &gamma in &[0.0, 0.5, 1.0, 2.0, 5.0, 0.2] {
        for with_alpha in [false, true] {
            for c in [1usize, 2, 3, 5, 8] {
                let n = 6;
                let z: Vec<f64> = (0..n * c).map(|_| rng.uniform(-12.0, 12.0)).collect();
                let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
                let mut fl = SoftmaxFocalLoss::new(gamma).unwrap();
                if with_alpha {
                    fl = fl.with_alpha((0..c).map(|_| rng.uniform(0.0, 1.0)).collect()).unwrap();
                }
                check_softmax_gradient(&z, n, c, &y, &fl);
            }
        }
    }
}

#[test]
fn softmax_dual_gradient_matches_analytic_at_extremes() {
    let mut rng = SplitMix(24);
    let pool = [100.0, -100.0, 1e4, -1e4, 1e30, -1e30, 0.0, 1.5];
    for &gamma in &GAMMAS {
        let fl = SoftmaxFocalLoss::new(gamma)
            .unwrap()
            .with_alpha(vec![0.25, 0.5, 1.0])
            .unwrap();
        let (n, c) = (64, 3);
        let z: Vec<f64> = (0..n * c).map(|_| pool[rng.below(pool.len())]).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        check_softmax_gradient(&z, n, c, &y, &fl);
    }
}

#[test]
fn softmax_f32_gradient_matches_dual() {
    let mut rng = SplitMix(25);
    let pool = [100.0_f32, -100.0, 1e4, -1e4, 1e30, -1e30, 0.0];
    for &gamma in &GAMMAS {
        let fl = SoftmaxFocalLoss::new(gamma).unwrap().with_reduction(Reduction::Sum);
        let (n, c) = (24, 4);
        let z32: Vec<f32> = (0..n * c)
            .map(|i| {
                if i % 2 == 0 {
                    pool[rng.below(pool.len())]
                } else {
                    rng.uniform(-8.0, 8.0) as f32
                }
            })
            .collect();
        let z: Vec<f64> = z32.iter().map(|&v| f64::from(v)).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let (_, g32) = fl.loss_and_grad(batch(&z32, n, c), &y).unwrap();
        let gd = dual_gradient(&z, |zs| fl.definition(batch(zs, n, c), &y).unwrap().reduced.unwrap());
        for i in 0..n {
            let gmax = gd[i * c..(i + 1) * c].iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            for j in i * c..(i + 1) * c {
                let tol = GRADIENT_REL_F32 * gd[j].abs() + GRADIENT_REL * gmax + F32_UNDERFLOW_ABS;
                assert!(
                    (f64::from(g32[j]) - gd[j]).abs() <= tol,
                    "γ={gamma} j={j}: {} vs {}",
                    g32[j],
                    gd[j]
                );
            }
        }
    }
}

#[test]
fn softmax_finite_at_extremes_in_every_type() {
    let rows: [[f64; 3]; 6] = [
        [1e30, -1e30, 0.0],
        [-1e30, 1e30, 1e30],
        [1e4, -1e4, 100.0],
        [-100.0, 100.0, -1e4],
        [1e300, -1e300, 0.0],
        [0.0, 0.0, 0.0],
    ];
    for &gamma in &[0.0, 0.25, 0.5, 1.0, 2.0, 5.0] {
        let fl = SoftmaxFocalLoss::new(gamma).unwrap().with_reduction(Reduction::None);
        for row in &rows {
            for k in 0..3 {
                let (o, g) = fl.loss_and_grad(batch(row, 1, 3), &[k]).unwrap();
                assert!(
                    o.unreduced[0].is_finite() && o.unreduced[0] >= 0.0,
                    "{row:?} k={k} γ={gamma}"
                );
                assert!(g.iter().all(|v| v.is_finite()), "{row:?} k={k} γ={gamma}: {g:?}");
                let r32 = row.map(|v| v as f32);
                if r32.iter().all(|v| v.is_finite()) {
                    let (o, g) = fl.loss_and_grad(batch(&r32, 1, 3), &[k]).unwrap();
                    assert!(
                        o.unreduced[0].is_finite() && g.iter().all(|v| v.is_finite()),
                        "f32 {row:?} k={k}"
                    );
                }
                // DualDVec64: the whole gradient of the definition in one pass
                let zs: Vec<DualDVec64> = (0..3)
                    .map(|j| {
                        let mut e = nalgebra::DVector::zeros(3);
                        e[j] = 1.0;
                        DualDVec64::new(row[j], num_dual::Derivative::some(e))
                    })
                    .collect();
                let d = fl.definition(batch(&zs, 1, 3), &[k]).unwrap();
                let eps = d.unreduced[0]
                    .eps
                    .clone()
                    .unwrap_generic(nalgebra::Dyn(3), nalgebra::U1);
                assert!(d.unreduced[0].re.is_finite(), "{row:?} k={k}");
                for j in 0..3 {
                    assert!(eps[j].is_finite(), "{row:?} k={k} γ={gamma}: {eps:?}");
                    // and equals the analytic gradient
                    assert!(
                        (eps[j] - g_f64(&fl, row, k)[j]).abs() <= GRADIENT_REL * 1.0,
                        "{row:?} k={k}"
                    );
                }
            }
        }
    }
}

fn g_f64(fl: &SoftmaxFocalLoss, row: &[f64; 3], k: usize) -> Vec<f64> {
    fl.loss_and_grad(batch(row, 1, 3), &[k]).unwrap().1
}

#[test]
fn softmax_kernel_agrees_with_definition() {
    // Per-sample values identical (0 ulps): same f64 expressions. The
    // reduction sums the same n non-negative terms in another association
    // (8 lanes vs sequential): each side is within (n − 1)·ε relative of the
    // exact sum, so they differ by at most 2(n − 1) ulps.
    let mut rng = SplitMix(26);
    for &gamma in &GAMMAS {
        let fl = SoftmaxFocalLoss::new(gamma)
            .unwrap()
            .with_alpha(vec![0.1, 0.2, 0.3, 0.4, 1.0])
            .unwrap()
            .with_ignore_index(Some(3));
        let (n, c) = (20, 5);
        let z: Vec<f64> = (0..n * c).map(|_| rng.uniform(-40.0, 40.0)).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean, Reduction::BatchMean] {
            let fl = fl.clone().with_reduction(reduction);
            let k = fl.loss(batch(&z, n, c), &y).unwrap();
            let d = fl.definition(batch(&z, n, c), &y).unwrap();
            for (a, b) in k.unreduced.iter().zip(&d.unreduced) {
                assert_eq!(*a, *b, "{a} vs {b}");
            }
            if let (Some(a), Some(b)) = (k.reduced, d.reduced) {
                assert!(ulps64(a, b) <= 2 * (n as u64 - 1), "{reduction:?}: {a} vs {b}");
            }
            let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
            let z64: Vec<f64> = z32.iter().map(|&v| f64::from(v)).collect();
            let (k32, g32) = fl.loss_and_grad(batch(&z32, n, c), &y).unwrap();
            let (k64, g64) = fl.loss_and_grad(batch(&z64, n, c), &y).unwrap();
            for (a, b) in k32.unreduced.iter().zip(&k64.unreduced).chain(g32.iter().zip(&g64)) {
                assert_eq!(ulps32(*a, *b as f32), 0, "{a} vs {b}");
            }
        }
    }
}

#[test]
fn softmax_ignore_index_and_mean_denominator() {
    let ninf = f64::NEG_INFINITY;
    // row 0 ignored (all −∞), row 1 ignored (finite), rows 2 and 3 kept
    let z = [ninf, ninf, ninf, 5.0, -3.0, 1e30, 0.3, -1.2, 2.0, 1.0, 2.0, 3.0];
    let alpha = vec![0.25, 0.5, 0.75];
    let fl = SoftmaxFocalLoss::new(2.0)
        .unwrap()
        .with_alpha(alpha.clone())
        .unwrap()
        .with_ignore_index(Some(9));
    assert_eq!(fl.ignore_index(), Some(9));
    let y = [9, 9, 2, 0];
    let (out, grad) = fl.loss_and_grad(batch(&z, 4, 3), &y).unwrap();
    assert_eq!(&out.unreduced[..2], &[0.0, 0.0]);
    assert_eq!(&grad[..6], &[0.0; 6]);
    let none = fl.clone().with_reduction(Reduction::None);
    let u = none.loss(batch(&z[6..], 2, 3), &[2, 0]).unwrap().unreduced;
    assert_eq!(&out.unreduced[2..], &u[..]);
    // Mean divides by the 2 kept rows (not by α_2 + α_0 = 1)
    assert!(
        ulps64(out.reduced.unwrap(), (u[0] + u[1]) / 2.0) <= 2,
        "{:?}",
        out.reduced
    );
    assert!(ulps64(out.reduced.unwrap(), (u[0] + u[1]) / (alpha[2] + alpha[0])) > 1000);
    // BatchMean divides by n = 4
    let bm = fl
        .clone()
        .with_reduction(Reduction::BatchMean)
        .loss(batch(&z, 4, 3), &y)
        .unwrap();
    assert!(ulps64(bm.reduced.unwrap(), (u[0] + u[1]) / 4.0) <= 2);
    // gradient of Mean = gradient of Sum / 2
    let (_, gs) = fl
        .clone()
        .with_reduction(Reduction::Sum)
        .loss_and_grad(batch(&z, 4, 3), &y)
        .unwrap();
    for (a, b) in grad.iter().zip(&gs) {
        assert!(ulps64(*a, b / 2.0) <= 1, "{a} vs {b}");
    }
    // the definition agrees on the ignored rows too
    let d = fl.definition(batch(&z, 4, 3), &y).unwrap();
    assert_eq!(d.unreduced, out.unreduced);
    // every row ignored: Mean has nothing to average
    let err = fl.loss(batch(&z[..6], 2, 3), &[9, 9]).unwrap_err();
    assert!(matches!(err, Error::ZeroTotalWeight { .. }), "{err}");
    // an ignored row may not hold NaN or +∞
    let err = fl.loss(batch(&[0.0, f64::NAN, 0.0], 1, 3), &[9]).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    // an all −∞ row that is not ignored is an error naming the row
    let err = fl.loss(batch(&z[..6], 2, 3), &[1, 9]).unwrap_err();
    assert!(matches!(err, Error::NoFiniteLogit { row: 0, .. }), "{err}");
    // function-style call (no ignore_index) agrees with the builder
    let f = softmax_focal_loss(batch(&z[6..], 2, 3), &[2, 0], Some(&alpha), 2.0, Reduction::Sum).unwrap();
    assert!(ulps64(f.reduced.unwrap(), u[0] + u[1]) <= 1);
}

#[test]
fn softmax_masked_classes() {
    let ninf = f64::NEG_INFINITY;
    for &gamma in &GAMMAS {
        let fl = SoftmaxFocalLoss::new(gamma).unwrap().with_reduction(Reduction::None);
        // a masked non-target class is the same as dropping it
        let (a, ga) = fl.loss_and_grad(batch(&[0.5, ninf, -0.25], 1, 3), &[2]).unwrap();
        let (b, gb) = fl.loss_and_grad(batch(&[0.5, -0.25], 1, 2), &[1]).unwrap();
        assert_eq!(a.unreduced, b.unreduced);
        assert_eq!((ga[0], ga[1], ga[2]), (gb[0], 0.0, gb[1]));
        // the target is the only finite class (or c = 1): a_k = 1, loss and gradient 0
        let (a, ga) = fl.loss_and_grad(batch(&[ninf, 3.0, ninf], 1, 3), &[1]).unwrap();
        assert_eq!((a.unreduced[0], ga), (0.0, vec![0.0; 3]));
        let (a, ga) = fl.loss_and_grad(batch(&[1e30], 1, 1), &[0]).unwrap();
        assert_eq!((a.unreduced[0], ga), (0.0, vec![0.0]));
        // a masked target: +∞ loss (as cross-entropy) and the limit gradient a − e_k
        let (a, ga) = fl.loss_and_grad(batch(&[0.0, 0.0, ninf], 1, 3), &[2]).unwrap();
        assert_eq!(a.unreduced[0], f64::INFINITY);
        assert_eq!(ga, vec![0.5, 0.5, -1.0]);
        // … and exactly 0 when its α is 0
        let z = fl.clone().with_alpha(vec![1.0, 1.0, 0.0]).unwrap();
        let (a, ga) = z.loss_and_grad(batch(&[0.0, 0.0, ninf], 1, 3), &[2]).unwrap();
        assert_eq!((a.unreduced[0], ga), (0.0, vec![0.0; 3]));
    }
}

#[test]
fn softmax_huge_equal_logits() {
    // c equal logits of any size: a_k = 1/c exactly, ℓ = (1 − 1/c)^γ·ln c
    for c in [2usize, 3, 10, 1000] {
        for zv in [1e6, 1e30, -1e30, 1e300] {
            for &gamma in &GAMMAS {
                let z = vec![zv; c];
                let fl = SoftmaxFocalLoss::new(gamma).unwrap();
                let out = fl.loss(batch(&z, 1, c), &[c / 2]).unwrap();
                let cf = c as f64;
                let expected = (1.0 - 1.0 / cf).powf(gamma) * cf.ln();
                // ln s_o = ln(c − 1) from a sum of c − 1 ones (exact), then
                // softplus / exp each add a few ulps; 16 ulps.
                assert!(
                    ulps64(out.reduced.unwrap(), expected) <= 16,
                    "c={c} z={zv} γ={gamma}: {:?} vs {expected}",
                    out.reduced
                );
            }
        }
    }
}

#[test]
fn softmax_parameter_and_input_errors() {
    for gamma in [-0.5, f64::NAN, f64::INFINITY] {
        let err = SoftmaxFocalLoss::new(gamma).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { name: "gamma", .. }),
            "{gamma}: {err}"
        );
    }
    let fl = SoftmaxFocalLoss::new(2.0).unwrap();
    assert_eq!(
        (fl.gamma(), fl.alpha(), fl.ignore_index(), fl.reduction()),
        (2.0, None, None, Reduction::Mean)
    );
    let err = fl.clone().with_alpha(vec![0.5, 1.5]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfDomain {
                what: "alpha",
                at: entropic::Position::Index(1),
                ..
            }
        ),
        "{err}"
    );
    let err = fl.clone().with_alpha(vec![-0.1]).unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { what: "alpha", .. }), "{err}");
    let err = fl.clone().with_alpha(vec![f64::NAN]).unwrap_err();
    assert!(matches!(err, Error::NonFinite { what: "alpha", .. }), "{err}");
    let z = [0.0_f64, 1.0, 2.0, 3.0, 4.0, 5.0];
    // α of the wrong length for c
    let err = fl
        .clone()
        .with_alpha(vec![0.5, 0.5])
        .unwrap()
        .loss(batch(&z, 2, 3), &[0, 1])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                what: "alpha",
                expected: 3,
                actual: 2
            }
        ),
        "{err}"
    );
    // targets of the wrong length
    let err = fl.loss(batch(&z, 2, 3), &[0]).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { what: "targets", .. }), "{err}");
    // class out of range
    let err = fl.loss(batch(&z, 2, 3), &[0, 3]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ClassOutOfRange {
                row: 1,
                class: 3,
                classes: 3
            }
        ),
        "{err}"
    );
    // c = 0
    let err = fl.loss(batch(&[] as &[f64], 2, 0), &[0, 0]).unwrap_err();
    assert!(matches!(err, Error::InvalidShape { .. }), "{err}");
    // NaN / +∞ logits
    for bad in [f64::NAN, f64::INFINITY] {
        let err = fl
            .loss(batch(&[0.0, 1.0, 2.0, 3.0, bad, 5.0], 2, 3), &[0, 1])
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFinite {
                    at: entropic::Position::Cell { row: 1, col: 1 },
                    ..
                }
            ),
            "{err}"
        );
    }
    // gradient buffer
    let mut g = [0.0; 5];
    let err = fl.loss_and_grad_into(batch(&z, 2, 3), &[0, 1], &mut g).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                what: "gradient buffer",
                ..
            }
        ),
        "{err}"
    );
    let mut g = [9.0; 6];
    let out = fl.loss_and_grad_into(batch(&z, 2, 3), &[0, 1], &mut g).unwrap();
    assert_eq!((out, g.to_vec()), fl.loss_and_grad(batch(&z, 2, 3), &[0, 1]).unwrap());
    // empty batch: Mean is an error, Sum is 0
    let err = fl.loss(batch(&[] as &[f64], 0, 3), &[]).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    let s = fl
        .clone()
        .with_reduction(Reduction::Sum)
        .loss(batch(&[] as &[f64], 0, 3), &[])
        .unwrap();
    assert_eq!(s.reduced, Some(0.0));
    // n = 0 with an absurd c is a valid empty batch: no allocation of c entries
    let s = fl
        .clone()
        .with_reduction(Reduction::Sum)
        .loss_and_grad(batch(&[] as &[f32], 0, usize::MAX), &[])
        .unwrap();
    assert_eq!((s.0.reduced, s.1.len()), (Some(0.0), 0));
    let s = SigmoidFocalLoss::torchvision()
        .loss_and_grad(batch(&[] as &[f32], 0, usize::MAX), batch(&[] as &[f32], 0, usize::MAX))
        .unwrap();
    assert_eq!((s.0.unreduced.len(), s.1.len()), (0, 0));
    let err = softmax_focal_loss(batch(&z, 2, 3), &[0, 1], Some(&[2.0, 0.0, 0.0]), 1.0, Reduction::Sum).unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { what: "alpha", .. }), "{err}");
}

#[test]
fn definitions_run_with_every_scalar_type() {
    let x = [0.3_f64, -2.0, 7.0, 1e4];
    let y = [1.0_f64, 0.0, 0.4, 1.0];
    let fl = SigmoidFocalLoss::torchvision().with_reduction(Reduction::Sum);
    let f64v = fl
        .definition(batch(&x, 2, 2), batch(&y, 2, 2))
        .unwrap()
        .reduced
        .unwrap();
    let x32 = x.map(|v| v as f32);
    let f32v = fl
        .definition(batch(&x32, 2, 2), batch(&y, 2, 2))
        .unwrap()
        .reduced
        .unwrap();
    // f32 evaluation of a handful of well-conditioned operations: ≤ 64 f32 ulps
    assert!(
        (f64::from(f32v) - f64v).abs() <= 64.0 * f64::from(f32::EPSILON) * f64v,
        "{f32v} vs {f64v}"
    );
    let hd: Vec<HyperDual64> = x.iter().map(|&v| HyperDual64::from_re(v)).collect();
    assert_eq!(
        fl.definition(batch(&hd, 2, 2), batch(&y, 2, 2))
            .unwrap()
            .reduced
            .unwrap()
            .re,
        f64v
    );
    let sm = SoftmaxFocalLoss::new(0.5).unwrap();
    let d = sm.definition(batch(&x.map(Dual64::from_re), 2, 2), &[0, 1]).unwrap();
    assert_eq!(
        d.reduced.unwrap().re,
        sm.definition(batch(&x, 2, 2), &[0, 1]).unwrap().reduced.unwrap()
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn sigmoid_gradient_and_bounds(
            x in -60.0f64..60.0,
            y in prop_oneof![Just(0.0f64), Just(1.0f64), 0.0f64..=1.0],
            gamma in prop_oneof![Just(0.0f64), Just(0.5f64), 0.0f64..6.0],
            alpha in proptest::option::of(0.0f64..=1.0),
        ) {
            check_sigmoid_gradient(&[x], &[y], alpha, gamma);
            let fl = SigmoidFocalLoss::new(alpha, gamma).unwrap();
            let l = fl.loss(batch(&[x], 1, 1), batch(&[y], 1, 1)).unwrap().reduced.unwrap();
            let b = BinaryCrossEntropyWithLogits::new().loss(batch(&[x], 1, 1), batch(&[y], 1, 1)).unwrap().reduced.unwrap();
            let at = alpha.map_or(1.0, |a| a * y + (1.0 - a) * (1.0 - y));
            prop_assert!(l.is_finite() && l >= 0.0);
            // α_t·(1 − p_t)^γ ≤ α_t: ≤ α_t·BCE up to one rounding of the product
            prop_assert!(l <= at * b * (1.0 + 2.0 * EPS), "{} vs {}", l, at * b);
        }

        #[test]
        fn softmax_gradient_matches(
            z in proptest::collection::vec(-40.0f64..40.0, 2..7),
            k in 0usize..6,
            gamma in prop_oneof![Just(0.0f64), Just(0.5f64), 0.0f64..6.0],
        ) {
            let c = z.len();
            let k = k % c;
            check_softmax_gradient(&z, 1, c, &[k], &SoftmaxFocalLoss::new(gamma).unwrap());
            // the gradient sums to 0 (shift invariance) up to rounding of the largest entry
            let (_, g) = SoftmaxFocalLoss::new(gamma).unwrap().loss_and_grad(batch(&z, 1, c), &[k]).unwrap();
            let gmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            prop_assert!(g.iter().sum::<f64>().abs() <= 2.0 * c as f64 * EPS * gmax);
        }
    }
}

/// Found by the fuzzer (`losses`, fifth session): with a γ beyond `f32::MAX`
/// the `f32` path formed `q^γ·(γ·p·b + q)` as `0·∞` = NaN. Such a γ now
/// takes the `f64` path: finite, and the `f64` result rounded.
#[test]
fn a_gamma_beyond_f32_range_keeps_f32_gradients_finite() {
    let gamma = 3.013384389948092e296;
    let fl = SigmoidFocalLoss::new(Some(0.0), gamma)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let x32 = [2.125f32, 0.0, 0.0, 0.0];
    let y32 = [0.0f32; 4];
    let (o32, g32) = fl.loss_and_grad(batch(&x32, 2, 2), batch(&y32, 2, 2)).unwrap();
    let x64 = x32.map(f64::from);
    let y64 = y32.map(f64::from);
    let (o64, g64) = fl.loss_and_grad(batch(&x64, 2, 2), batch(&y64, 2, 2)).unwrap();
    for (a, b) in o32
        .unreduced
        .iter()
        .chain(&o32.reduced)
        .chain(&g32)
        .zip(o64.unreduced.iter().chain(&o64.reduced).chain(&g64))
    {
        assert!(!a.is_nan(), "NaN in {o32:?} {g32:?}");
        assert_eq!(*a, *b as f32, "{a} vs {b}");
    }
}
