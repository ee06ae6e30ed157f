//! The tempered functions and the bi-tempered logistic loss: published
//! reference values, tempered log/exp identities and continuity at t = 1,
//! the normalization to working precision, the t1 = t2 = 1 limit,
//! dual-number gradients of the generic definition against the analytic
//! gradients, the binary variant, parameter validation and boundedness.

mod common;

use common::{SplitMix, close, dual_gradient, ulps64};
use entropic::{
    Batch, BiTemperedLogisticLoss, Error, NORMALIZATION_TOLERANCE_EPS_PER_ENTRY, Reduction, SoftmaxCrossEntropy,
    Targets, TemperedSoftmax, bi_tempered_logistic_loss, exp_t, log_t, softmax, tempered_sigmoid, tempered_softmax,
};
use num_dual::{Dual64, DualNum, HyperDual64};

const LABELS: [f64; 9] = [0.2, 0.3, 0.5, 0.6, 0.3, 0.1, 0.2, 0.8, 0.0];
const ACTIVATIONS: [f64; 9] = [-0.5, 0.1, 2.0, 0.1, 1.5, -5.0, 4.0, -3.0, -6.0];

/// Google's test asserts its float32 results with `assertAllClose`
/// (rtol = atol = 1e-6); our f64 re-implementation of its algorithm differs
/// from the float32 run by float32 roundings (~1e-7 relative), so the
/// published digits are reproduced within the same 1e-6 + 1e-6·|x|.
const PUBLISHED_TOL: f64 = 1e-6;

/// The reference's fixed-point iteration run to convergence vs our Newton
/// solution: both are f64 evaluations of the same converged loss with O(c)
/// roundings of O(1) terms; the loss is a difference of such terms, so they
/// agree to a few hundred ε absolutely.
const CONVERGED_ABS: f64 = 256.0 * f64::EPSILON;

/// log_t / exp_t round trips and derivative identities: each side is a
/// composition of ~4 correctly rounded operations (ln, expm1, ln1p, exp, a
/// division), whose errors are amplified by at most |ln x|-sized condition
/// numbers on the inputs used (|ln x| ≤ 5): 64 ε relative.
const IDENTITY_REL: f64 = 64.0 * f64::EPSILON;

/// Continuity at t = 1 ± 1e−12: the true difference from the t = 1 value is
/// the first Taylor term (1e−12·(ln x)²/2 for log_t, −1e−12·x²/2·e^x for
/// exp_t); the next term is O(1e−24) (far below an ulp). After subtracting
/// the first-order term, values agree to a few ulps: 8 ε relative.
const CONTINUITY_REL: f64 = 8.0 * f64::EPSILON;

/// Analytic vs dual-number gradient, relative to the largest |gradient|
/// entry of the row (plus an absolute floor for rows whose gradient is ~0).
/// Both evaluate exact formulas in f64; the dual path differentiates the
/// loss through p^{2−t1}, log_{t1} p and the implicit lift of λ (O(c)
/// roundings, amplified by at most p^{t2−t1}-sized factors, ≤ 1e3 on the
/// inputs used): 1e-10 relative is ~4e5 ε, well above the observed < 1e-13
/// but far below any formula error (which would be O(1)).
const GRADIENT_REL: f64 = 1e-10;

/// The f32 kernel computes in f64 and rounds once; against the f64 dual
/// gradient, the error is the rounding of the f32 inputs (up to 2^-24
/// relative on each logit, amplified by the logit magnitudes ≤ 20 and the
/// curvature) plus one f32 rounding: 1e-4 relative to the largest entry.
const F32_GRADIENT_REL: f64 = 1e-4;

/// Kernel (f64) vs generic definition (f64) loss values: the same per-class
/// Bregman terms (each ≥ 0, no cancellation between them) on the same λ
/// (same solver), summed in the same order; only the `ln p` of the two
/// normalizations may differ in rounding. 16 ε relative (observed: the
/// same bits on every case here).
const KERNEL_VS_DEFINITION_REL: f64 = 16.0 * f64::EPSILON;

fn probs<'a>(y: &'a [f64], n: usize, c: usize) -> Targets<'a, f64> {
    Targets::Probabilities(Batch::new(y, n, c).unwrap())
}

// ----------------------------------------------------------------------------
// A literal re-implementation of Google's TF reference (fixed point for the
// normalizer, literal log_t / exp_t, +1e-10 on labels), to reproduce the
// published numbers and to show what their residual is.

fn ref_log_t(u: f64, t: f64) -> f64 {
    if t == 1.0 {
        u.ln()
    } else {
        (u.powf(1.0 - t) - 1.0) / (1.0 - t)
    }
}

fn ref_exp_t(u: f64, t: f64) -> f64 {
    if t == 1.0 {
        u.exp()
    } else {
        (1.0 + (1.0 - t) * u).max(0.0).powf(1.0 / (1.0 - t))
    }
}

fn ref_normalization(a: &[f64], t: f64, iters: usize) -> f64 {
    let mu = a.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let step0: Vec<f64> = a.iter().map(|v| v - mu).collect();
    let mut norm = step0.clone();
    for _ in 0..iters {
        let z: f64 = norm.iter().map(|&v| ref_exp_t(v, t)).sum();
        norm = step0.iter().map(|v| v * z.powf(1.0 - t)).collect();
    }
    let z: f64 = norm.iter().map(|&v| ref_exp_t(v, t)).sum();
    -ref_log_t(1.0 / z, t) + mu
}

fn ref_loss(a: &[f64], y: &[f64], t1: f64, t2: f64, iters: usize, label_offset: f64) -> (f64, f64) {
    let lam = ref_normalization(a, t2, iters);
    let p: Vec<f64> = a.iter().map(|&v| ref_exp_t(v - lam, t2)).collect();
    let loss = y
        .iter()
        .zip(&p)
        .map(|(&y, &p)| {
            y * (ref_log_t(y + label_offset, t1) - ref_log_t(p, t1))
                - (y.powf(2.0 - t1) - p.powf(2.0 - t1)) / (2.0 - t1)
        })
        .sum();
    (loss, p.iter().sum::<f64>())
}

#[test]
fn published_reference_values_t1_05_t2_15() {
    let published = [0.02301914, 0.18972909, 0.93874922];
    let ours = BiTemperedLogisticLoss::new(0.5, 1.5)
        .unwrap()
        .with_reduction(Reduction::None)
        .loss(Batch::new(&ACTIVATIONS, 3, 3).unwrap(), probs(&LABELS, 3, 3))
        .unwrap();
    for r in 0..3 {
        let (a, y) = (&ACTIVATIONS[3 * r..3 * r + 3], &LABELS[3 * r..3 * r + 3]);
        // 1. The reference algorithm (5 fixed-point iterations) reproduces the
        //    published digits...
        let (ref5, sum5) = ref_loss(a, y, 0.5, 1.5, 5, 1e-10);
        assert!(
            close(ref5, published[r], PUBLISHED_TOL, PUBLISHED_TOL),
            "row {r}: {ref5} vs {}",
            published[r]
        );
        // 2. ...but it is not normalized: its Σp is off by up to ~1e-2.
        assert!((sum5 - 1.0).abs() < 2e-2, "row {r}: reference Σp = {sum5}");
        // 3. Run to convergence, the same algorithm agrees with our Newton
        //    solution to rounding.
        let (ref_inf, sum_inf) = ref_loss(a, y, 0.5, 1.5, 500, 0.0);
        assert!(
            (sum_inf - 1.0).abs() < 1e-14,
            "row {r}: converged reference Σp = {sum_inf}"
        );
        assert!(
            (ours.unreduced[r] - ref_inf).abs() <= CONVERGED_ABS,
            "row {r}: {} vs {ref_inf}",
            ours.unreduced[r]
        );
        // 4. So ours differs from the published value by exactly the
        //    reference's truncation error (plus the float32 allowance).
        let truncation = (ref5 - ref_inf).abs();
        assert!(
            (ours.unreduced[r] - published[r]).abs() <= truncation + 2.0 * PUBLISHED_TOL,
            "row {r}: ours {} published {} truncation {truncation}",
            ours.unreduced[r],
            published[r]
        );
        eprintln!(
            "row {r}: published {} ours {:.10} reference-5 Σp−1 = {:.3e}",
            published[r],
            ours.unreduced[r],
            sum5 - 1.0
        );
    }
}

#[test]
fn other_published_reference_values() {
    // label smoothing 0.1, one-hot labels, t1 = 0.5, t2 = 1.5 (atol 1e-5 in
    // the reference test): the reference's own smoothing formula.
    let published = [0.76652711, 0.08627685, 1.35443510];
    let classes = [0usize, 1, 2];
    let ours = BiTemperedLogisticLoss::new(0.5, 1.5)
        .unwrap()
        .with_label_smoothing(0.1)
        .unwrap()
        .with_reduction(Reduction::None)
        .loss(
            Batch::new(&ACTIVATIONS, 3, 3).unwrap(),
            Targets::<f64>::Classes(&classes),
        )
        .unwrap();
    for r in 0..3 {
        let a = &ACTIVATIONS[3 * r..3 * r + 3];
        let y: Vec<f64> = (0..3).map(|j| if j == classes[r] { 0.9 } else { 0.05 }).collect();
        let (ref5, _) = ref_loss(a, &y, 0.5, 1.5, 5, 1e-10);
        assert!(close(ref5, published[r], 0.0, 1e-5), "row {r}: {ref5}");
        let (ref_inf, _) = ref_loss(a, &y, 0.5, 1.5, 500, 0.0);
        assert!((ours.unreduced[r] - ref_inf).abs() <= CONVERGED_ABS, "row {r}");
    }
    // Probability labels with smoothing: y' = (1 − εC/(C−1))·y + ε/(C−1)
    // equals the class-index smoothing for one-hot rows.
    let onehot = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let soft = BiTemperedLogisticLoss::new(0.5, 1.5)
        .unwrap()
        .with_label_smoothing(0.1)
        .unwrap()
        .with_reduction(Reduction::None)
        .loss(Batch::new(&ACTIVATIONS, 3, 3).unwrap(), probs(&onehot, 3, 3))
        .unwrap();
    for r in 0..3 {
        assert!((soft.unreduced[r] - ours.unreduced[r]).abs() <= 4.0 * f64::EPSILON);
    }

    // tempered softmax at t = 4 and tempered sigmoid at t = 4 (rtol/atol 1e-6).
    let t4 = [
        [0.3205458, 0.32714278, 0.3523402],
        [0.3430056, 0.36491093, 0.29220778],
        [0.41369352, 0.30534995, 0.28299212],
    ];
    for r in 0..3 {
        let a = &ACTIVATIONS[3 * r..3 * r + 3];
        let p = tempered_softmax(a, 4.0).unwrap();
        // The reference algorithm with its 5 iterations reproduces the
        // published digits; run to convergence it agrees with ours to
        // rounding (at t = 4 the published values are off by up to ~1.3e-3).
        let (lam5, lam_inf) = (ref_normalization(a, 4.0, 5), ref_normalization(a, 4.0, 500));
        for j in 0..3 {
            let p5 = ref_exp_t(a[j] - lam5, 4.0);
            assert!(
                close(p5, t4[r][j], PUBLISHED_TOL, PUBLISHED_TOL),
                "t=4 row {r}: {p5} vs {}",
                t4[r][j]
            );
            let p_inf = ref_exp_t(a[j] - lam_inf, 4.0);
            assert!(
                close(p[j], p_inf, CONVERGED_ABS, CONVERGED_ABS),
                "t=4 row {r}: {} vs {p_inf}",
                p[j]
            );
        }
    }
    for (a, expected) in [(0.0, 0.5), (3.0, 0.58516014), (6.0, 0.6421035)] {
        let s = tempered_sigmoid(a, 4.0).unwrap();
        let lam = ref_normalization(&[0.0, a], 4.0, 5);
        assert!(close(ref_exp_t(a - lam, 4.0), expected, PUBLISHED_TOL, PUBLISHED_TOL));
        let lam = ref_normalization(&[0.0, a], 4.0, 500);
        assert!(
            close(s, ref_exp_t(a - lam, 4.0), CONVERGED_ABS, CONVERGED_ABS),
            "sigmoid_4({a}) = {s}"
        );
        let s1 = tempered_sigmoid(a, 1.0).unwrap();
        assert!(ulps64(s1, 1.0 / (1.0 + (-a).exp())) <= 2);
    }
}

// ----------------------------------------------------------------------------
// log_t / exp_t

#[test]
fn log_t_and_exp_t_identities() {
    let temps = [0.0, 0.1, 0.5, 0.9, 0.99, 1.0, 1.01, 1.5, 2.0, 4.0];
    for &t in &temps {
        assert_eq!(log_t(1.0_f64, t), 0.0, "log_t(1) at t={t}");
        assert_eq!(exp_t(0.0_f64, t), 1.0, "exp_t(0) at t={t}");
        for &x in &[1e-2, 0.1, 0.3, 0.5, 0.99, 1.5, 3.0, 20.0] {
            let u: f64 = log_t(x, t);
            let back = exp_t(u, t);
            // exp_t amplifies a relative error of its argument u by
            // u·exp_t(u)^{t−1} = u·x^{t−1} (large near the pole of t > 1).
            let condition = (u.abs() * x.powf(t - 1.0)).max(1.0);
            assert!(
                close(back, x, IDENTITY_REL * condition, 0.0),
                "exp_t(log_t({x})) = {back} at t={t}"
            );
            // d/dx log_t = x^{−t}
            let d = log_t(Dual64::from_re(x).derivative(), t).eps;
            assert!(close(d, x.powf(-t), IDENTITY_REL, 0.0), "log_t' at x={x} t={t}");
        }
        for &x in &[-3.0, -1.0, -0.1, 0.0, 0.05, 0.2] {
            let e = exp_t(x, t);
            if e == 0.0 {
                continue;
            }
            let back = log_t(e, t);
            // log_t turns a relative error of e into an absolute one times e^{1−t}.
            let abs = IDENTITY_REL * e.powf(1.0 - t);
            assert!(close(back, x, IDENTITY_REL, abs), "log_t(exp_t({x})) = {back} at t={t}");
            // d/dx exp_t = exp_t^t
            let d = exp_t(Dual64::from_re(x).derivative(), t).eps;
            assert!(close(d, e.powf(t), IDENTITY_REL, 0.0), "exp_t' at x={x} t={t}");
        }
    }
    // Conventions: bounded log for t < 1, finite support, the pole for t > 1.
    assert_eq!(log_t(0.0_f64, 0.5), -2.0);
    assert_eq!(log_t(0.0_f64, 1.5), f64::NEG_INFINITY);
    assert_eq!(exp_t(-2.0_f64, 0.5), 0.0);
    assert_eq!(exp_t(-2.5_f64, 0.5), 0.0);
    assert_eq!(exp_t(f64::NEG_INFINITY, 1.5), 0.0);
    assert_eq!(exp_t(2.0_f64, 1.5), f64::INFINITY);
    assert_eq!(exp_t(3.0_f64, 1.5), f64::INFINITY);
    assert!(exp_t(1.9_f64, 1.5).is_finite());
    // zero derivative outside the support, no NaN
    let d = exp_t(Dual64::from_re(-3.0).derivative(), 0.5);
    assert_eq!((d.re, d.eps), (0.0, 0.0));
    // f32 runs the same code
    assert!((log_t(4.0_f32, 0.5) - 2.0).abs() <= 2.0 * f32::EPSILON);
}

#[test]
fn log_t_and_exp_t_have_no_jump_at_t_equal_1() {
    for &h in &[1e-12, -1e-12] {
        let t = 1.0 + h;
        let k = 1.0 - t; // exactly −h up to the rounding of 1 + h
        for &x in &[1e-3, 0.2, 0.5, 2.0, 7.0, 100.0] {
            let l = x.ln();
            // log_t(x) = ln x + k (ln x)²/2 + O(k²)
            let expected = l + k * l * l / 2.0;
            let v = log_t(x, t);
            assert!(
                close(v, expected, CONTINUITY_REL, 0.0),
                "log_t({x}, 1{h:+e}) = {v}, expected {expected}"
            );
        }
        for &x in &[-20.0, -3.0, -0.5, 0.0, 0.7, 5.0] {
            // exp_t(x) = e^x (1 − k x²/2) + O(k²)
            let expected = x.exp() * (1.0 - k * x * x / 2.0);
            let v = exp_t(x, t);
            assert!(
                close(v, expected, CONTINUITY_REL, 0.0),
                "exp_t({x}, 1{h:+e}) = {v}, expected {expected}"
            );
        }
    }
}

// ----------------------------------------------------------------------------
// Tempered softmax

/// A row of length c whose logits spread over ±spread (deterministic).
fn spread_row(rng: &mut SplitMix, c: usize, spread: f64) -> Vec<f64> {
    (0..c).map(|_| rng.uniform(-spread, spread)).collect()
}

#[test]
fn tempered_softmax_is_normalized_to_working_precision() {
    let temps = [0.1, 0.5, 0.9, 0.99, 1.0, 1.01, 1.5, 2.0, 4.0];
    let mut rng = SplitMix(7);
    let mut worst_iterations = 0;
    let mut total_iterations = 0;
    let mut solves = 0;
    for &c in &[2usize, 3, 17, 1000, 100_000] {
        let mut rows = vec![spread_row(&mut rng, c, 1e4), spread_row(&mut rng, c, 1.0), vec![3.0; c]];
        if c <= 1000 {
            rows.push(spread_row(&mut rng, c, 30.0));
            let mut masked = spread_row(&mut rng, c, 5.0);
            masked[0] = f64::NEG_INFINITY;
            rows.push(masked);
        }
        for row in &rows {
            for &t in &temps {
                let n = TemperedSoftmax::new(t).unwrap().normalize(row).unwrap();
                let sum: f64 = n.probabilities.iter().sum();
                // NORMALIZATION_TOLERANCE_EPS_PER_ENTRY·c·ε: each p_i is rounded
                // once, the naive sum adds ≤ c roundings, and λ is exact to
                // rounding (see domain.rs for the constant's justification).
                let tol = NORMALIZATION_TOLERANCE_EPS_PER_ENTRY * c as f64 * f64::EPSILON;
                assert!((sum - 1.0).abs() <= tol, "c={c} t={t}: Σp − 1 = {:e}", sum - 1.0);
                assert!(n.probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
                worst_iterations = worst_iterations.max(n.iterations);
                total_iterations += n.iterations;
                solves += 1;
            }
        }
    }
    eprintln!(
        "normalizer evaluations: worst {worst_iterations}, mean {:.2} over {solves} solves",
        total_iterations as f64 / solves as f64
    );
    assert!(worst_iterations <= 30, "worst {worst_iterations}");
}

#[test]
fn tempered_softmax_f32_is_normalized() {
    let mut rng = SplitMix(11);
    for &c in &[2usize, 10, 1000] {
        let row: Vec<f32> = spread_row(&mut rng, c, 50.0).into_iter().map(|x| x as f32).collect();
        for &t in &[0.1, 0.5, 0.99, 1.0, 1.01, 2.0, 4.0] {
            let p = tempered_softmax(&row, t).unwrap();
            let sum: f64 = p.iter().map(|&x| f64::from(x)).sum();
            // p_i are computed in f32 from an f32-rounded λ: the argument z − λ
            // carries an f32 rounding of λ (≤ ε₃₂·|λ|·Σp^t) plus one rounding per
            // entry, so 2·c·ε₃₂ (+ 8 ε₃₂ for the λ rounding) bounds the sum.
            let tol = (NORMALIZATION_TOLERANCE_EPS_PER_ENTRY * c as f64 + 8.0) * f64::from(f32::EPSILON);
            assert!((sum - 1.0).abs() <= tol, "f32 c={c} t={t}: Σp − 1 = {:e}", sum - 1.0);
        }
    }
}

#[test]
fn tempered_softmax_at_t_1_is_softmax_and_has_no_jump() {
    let row = [-0.5, 0.1, 2.0, 7.0, -3.0];
    let p1 = tempered_softmax(&row, 1.0).unwrap();
    assert_eq!(p1, softmax(&row).unwrap());
    for &h in &[1e-12, -1e-12] {
        let p = tempered_softmax(&row, 1.0 + h).unwrap();
        for (a, b) in p.iter().zip(&p1) {
            // |∂p/∂t| ≤ O(max z²) ≈ 100 here, so the true change is ≤ 1e-10
            // relative; a jump (the literal formula) would be ~1e-4.
            assert!(close(*a, *b, 1e-10, 0.0), "t=1{h:+e}: {a} vs {b}");
        }
    }
}

#[test]
fn tempered_softmax_finite_support_and_derivatives() {
    // t < 1: entries beyond the support are exactly 0 and have zero derivative.
    let p = tempered_softmax(&[5.0_f64, 4.5, -10.0], 0.5).unwrap();
    assert_eq!(p[2], 0.0);
    assert!(((p[0] + p[1]) - 1.0).abs() <= 2.0 * f64::EPSILON);
    // Jacobian by duals vs the closed form ∂p_j/∂a_i = p_j^t (δ_ij − ẽ_i).
    for &t in &[0.5, 1.0, 1.7] {
        let a = [0.3, -1.2, 2.0, 0.9];
        let p = tempered_softmax(&a, t).unwrap();
        let pt: Vec<f64> = p.iter().map(|v| v.powf(t)).collect();
        let st: f64 = pt.iter().sum();
        for j in 0..4 {
            let g = dual_gradient(&a, |x| tempered_softmax(x, t).unwrap()[j]);
            for i in 0..4 {
                let expected = pt[j] * (f64::from(u8::from(i == j)) - pt[i] / st);
                assert!(
                    close(g[i], expected, 1e-12, 1e-15),
                    "t={t} ∂p{j}/∂a{i}: {} vs {expected}",
                    g[i]
                );
            }
        }
        // Second derivatives (two lift steps): HyperDual vs central
        // differences of exact first derivatives (h = 1e-5, error O(h²) ≈ 1e-10).
        let h = 1e-5;
        let x: Vec<HyperDual64> = a
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let mut d = HyperDual64::from_re(v);
                if i == 0 {
                    d.eps1 = 1.0;
                }
                if i == 1 {
                    d.eps2 = 1.0;
                }
                d
            })
            .collect();
        let hess = tempered_softmax(&x, t).unwrap()[2].eps1eps2;
        let grad_at = |shift: f64| {
            let mut b = a;
            b[1] += shift;
            dual_gradient(&b, |x| tempered_softmax(x, t).unwrap()[2])[0]
        };
        let fd = (grad_at(h) - grad_at(-h)) / (2.0 * h);
        assert!(close(hess, fd, 1e-6, 1e-9), "t={t}: hessian {hess} vs {fd}");
    }
}

// ----------------------------------------------------------------------------
// The loss

#[test]
fn t1_t2_equal_1_is_kl_and_cross_entropy_for_one_hot() {
    let loss = BiTemperedLogisticLoss::new(1.0, 1.0)
        .unwrap()
        .with_reduction(Reduction::None);
    let out = loss
        .loss(Batch::new(&ACTIVATIONS, 3, 3).unwrap(), probs(&LABELS, 3, 3))
        .unwrap();
    for r in 0..3 {
        let p = softmax(&ACTIVATIONS[3 * r..3 * r + 3]).unwrap();
        let kl: f64 = LABELS[3 * r..3 * r + 3]
            .iter()
            .zip(&p)
            .filter(|(y, _)| **y > 0.0)
            .map(|(y, p)| y * (y / p).ln())
            .sum();
        assert!(
            (out.unreduced[r] - kl).abs() <= 16.0 * f64::EPSILON,
            "row {r}: {} vs KL {kl}",
            out.unreduced[r]
        );
    }
    // One-hot: equals SoftmaxCrossEntropy.
    let classes = [2usize, 1, 0];
    let bt = loss
        .loss(
            Batch::new(&ACTIVATIONS, 3, 3).unwrap(),
            Targets::<f64>::Classes(&classes),
        )
        .unwrap();
    let ce = SoftmaxCrossEntropy::new()
        .with_reduction(Reduction::None)
        .loss(
            Batch::new(&ACTIVATIONS, 3, 3).unwrap(),
            Targets::<f64>::Classes(&classes),
        )
        .unwrap();
    for r in 0..3 {
        assert!(
            close(bt.unreduced[r], ce.unreduced[r], 16.0 * f64::EPSILON, 1e-15),
            "row {r}"
        );
    }
    // Continuity in both temperatures around 1: the loss is smooth in (t1, t2),
    // with derivatives O(1) here, so a 1e-9 change moves it by O(1e-9).
    let base = out.unreduced.clone();
    for (t1, t2) in [(1.0 - 1e-9, 1.0), (1.0, 1.0 + 1e-9), (1.0 + 1e-9, 1.0 - 1e-9)] {
        let o = BiTemperedLogisticLoss::new(t1, t2)
            .unwrap()
            .with_reduction(Reduction::None)
            .loss(Batch::new(&ACTIVATIONS, 3, 3).unwrap(), probs(&LABELS, 3, 3))
            .unwrap();
        for (r, (v, b)) in o.unreduced.iter().zip(&base).enumerate() {
            assert!((v - b).abs() <= 1e-7, "({t1}, {t2}) row {r}");
        }
    }
}

/// A random case: n rows of c logits spread over ±spread, and labels either
/// one-hot, soft, or with zeros.
fn random_case(rng: &mut SplitMix, c: usize, spread: f64) -> (Vec<f64>, Vec<f64>) {
    let a = spread_row(rng, c, spread);
    let kind = rng.below(3);
    let y = match kind {
        0 => {
            let k = rng.below(c);
            (0..c).map(|j| f64::from(u8::from(j == k))).collect()
        }
        1 => rng.simplex(c),
        _ => {
            let mut y = rng.simplex(c);
            y[rng.below(c)] = 0.0;
            let s: f64 = y.iter().sum();
            y.iter().map(|v| v / s).collect()
        }
    };
    (a, y)
}

fn assert_grad_close(analytic: &[f64], dual: &[f64], rel: f64, what: &str) {
    let scale = dual.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-300);
    for (i, (a, d)) in analytic.iter().zip(dual).enumerate() {
        assert!(a.is_finite(), "{what}: entry {i} not finite: {a}");
        assert!(
            (a - d).abs() <= rel * scale + 1e-300,
            "{what}: entry {i}: analytic {a} vs dual {d} (scale {scale})"
        );
    }
}

#[test]
fn dual_gradient_of_definition_matches_analytic_gradient() {
    let mut rng = SplitMix(2024);
    let temps = [
        (0.0, 0.3),
        (0.5, 0.7),
        (0.8, 1.0),
        (1.0, 1.0),
        (0.5, 1.5),
        (1.5, 0.5),
        (1.2, 2.0),
        (0.2, 4.0),
        (1.9, 1.0),
    ];
    let mut checked = 0;
    for &(t1, t2) in &temps {
        let loss = BiTemperedLogisticLoss::new(t1, t2)
            .unwrap()
            .with_reduction(Reduction::Sum);
        for case in 0..12 {
            let c = 2 + rng.below(7);
            let spread = [1.0, 5.0, 20.0][case % 3];
            let (a, y) = random_case(&mut rng, c, spread);
            let (out, grad) = loss
                .loss_and_grad(Batch::new(&a, 1, c).unwrap(), probs(&y, 1, c))
                .unwrap();
            let def = loss
                .definition(Batch::new(&a, 1, c).unwrap(), probs(&y, 1, c))
                .unwrap()
                .reduced
                .unwrap();
            let value = out.reduced.unwrap();
            if !value.is_finite() {
                // t1 ≥ 1 with y > 0 on a p = 0 class: +∞ in both paths.
                assert_eq!(def, value);
                continue;
            }
            assert!(
                (value - def).abs() <= KERNEL_VS_DEFINITION_REL * def.abs(),
                "t=({t1},{t2}): {value} vs {def}"
            );
            let dual = dual_gradient(&a, |x| {
                loss.definition(Batch::new(x, 1, c).unwrap(), probs(&y, 1, c))
                    .unwrap()
                    .reduced
                    .unwrap()
            });
            assert_grad_close(
                &grad,
                &dual,
                GRADIENT_REL,
                &format!("f64 t=({t1},{t2}) a={a:?} y={y:?}"),
            );
            // f32 kernel against the same dual gradient.
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let (_, g32) = loss
                .loss_and_grad(Batch::new(&a32, 1, c).unwrap(), probs(&y, 1, c))
                .unwrap();
            let g32: Vec<f64> = g32.into_iter().map(f64::from).collect();
            assert_grad_close(&g32, &dual, F32_GRADIENT_REL, &format!("f32 t=({t1},{t2})"));
            checked += 1;
        }
    }
    assert!(checked >= 90, "only {checked} finite cases");
}

#[test]
fn gradient_with_zero_probabilities_and_t2_below_t1() {
    // t2 < 1: classes beyond the support have p = 0; with t2 < t1 the factor
    // p^{t2−t1} would be 0^{negative}. No NaN, and the duals agree.
    let a = [6.0, 5.5, -30.0, -1.0, f64::NEG_INFINITY];
    let y = [0.5, 0.2, 0.2, 0.1, 0.0];
    for &(t1, t2) in &[(0.9, 0.5), (0.5, 0.3), (0.0, 0.2), (1.5, 0.5)] {
        let loss = BiTemperedLogisticLoss::new(t1, t2)
            .unwrap()
            .with_reduction(Reduction::Sum);
        let p = tempered_softmax(&a, t2).unwrap();
        assert!(p[2] == 0.0 && p[4] == 0.0, "{p:?}");
        let (out, grad) = loss
            .loss_and_grad(Batch::new(&a, 1, 5).unwrap(), probs(&y, 1, 5))
            .unwrap();
        let v = out.reduced.unwrap();
        if t1 < 1.0 {
            assert!(v.is_finite());
        } else {
            assert_eq!(v, f64::INFINITY); // y > 0 on a p = 0 class, log_{t1}(0) = −∞
        }
        assert!(grad.iter().all(|g| g.is_finite()), "t=({t1},{t2}): {grad:?}");
        assert_eq!(grad[2], 0.0);
        assert_eq!(grad[4], 0.0);
        if t1 < 1.0 {
            let finite: Vec<f64> = a.iter().map(|&v| if v.is_finite() { v } else { -1e300 }).collect();
            let dual = dual_gradient(&finite, |x| {
                let mut x = x.to_vec();
                x[4] = Dual64::from_re(f64::NEG_INFINITY);
                loss.definition(Batch::new(&x, 1, 5).unwrap(), probs(&y, 1, 5))
                    .unwrap()
                    .reduced
                    .unwrap()
            });
            assert_grad_close(&grad, &dual, GRADIENT_REL, &format!("t=({t1},{t2})"));
        }
    }
    // Tiny positive p with t2 < t1: a huge gradient, finite or ±∞, never NaN.
    let a = [0.0_f64, -1.0 / 0.5 + 1e-290];
    let loss = BiTemperedLogisticLoss::new(1.9, 0.5).unwrap();
    let (_, grad) = loss
        .loss_and_grad(Batch::new(&a, 1, 2).unwrap(), probs(&[0.5, 0.5], 1, 2))
        .unwrap();
    assert!(grad.iter().all(|g| !g.is_nan()), "{grad:?}");
}

#[test]
fn extreme_logits_give_finite_losses_and_gradients() {
    let a = [1e4_f64, -1e4, 0.0, 9999.0, -5e3];
    let y = [0.1, 0.4, 0.0, 0.3, 0.2];
    for &(t1, t2) in &[(0.2, 4.0), (0.8, 1.01), (0.5, 0.99), (0.9, 0.1), (1.0, 1.5), (0.0, 2.0)] {
        let loss = BiTemperedLogisticLoss::new(t1, t2).unwrap();
        let (out, grad) = loss
            .loss_and_grad(Batch::new(&a, 1, 5).unwrap(), probs(&y, 1, 5))
            .unwrap();
        let v = out.reduced.unwrap();
        assert!(v.is_finite() || (t1 >= 1.0 && v == f64::INFINITY), "t=({t1},{t2}): {v}");
        assert!(grad.iter().all(|g| g.is_finite()), "t=({t1},{t2}): {grad:?}");
        assert!(grad.iter().sum::<f64>().abs() <= 1e-12 * grad.iter().map(|g| g.abs()).sum::<f64>().max(1.0));
        if t2 > 1.0 {
            // heavy tails: every p > 0; check the gradient against the duals
            let dual = dual_gradient(&a, |x| {
                loss.definition(Batch::new(x, 1, 5).unwrap(), probs(&y, 1, 5))
                    .unwrap()
                    .reduced
                    .unwrap()
            });
            assert_grad_close(&grad, &dual, GRADIENT_REL, &format!("extreme t=({t1},{t2})"));
        }
    }
}

#[test]
fn binary_variant_t1_08_t2_2() {
    let loss = BiTemperedLogisticLoss::new(0.8, 2.0)
        .unwrap()
        .with_reduction(Reduction::None);
    let a = [0.0_f64, 3.0, -2.0, 15.0, -40.0, 0.7];
    let y = [1.0, 0.0, 0.3, 1.0, 0.0, 0.5];
    let (out, grad) = loss
        .binary_loss_and_grad(Batch::new(&a, 2, 3).unwrap(), Batch::new(&y, 2, 3).unwrap())
        .unwrap();
    for i in 0..6 {
        // equals the 2-class loss on [0, a] with labels [1 − y, y]
        let two = loss
            .loss(
                Batch::new(&[0.0, a[i]], 1, 2).unwrap(),
                probs(&[1.0 - y[i], y[i]], 1, 2),
            )
            .unwrap();
        assert!((out.unreduced[i] - two.unreduced[0]).abs() <= 4.0 * f64::EPSILON);
        // dual gradient of the binary definition
        let g = dual_gradient(&[a[i]], |x| {
            loss.binary_definition(Batch::new(x, 1, 1).unwrap(), Batch::new(&y[i..=i], 1, 1).unwrap())
                .unwrap()
                .unreduced[0]
        });
        assert!(
            close(grad[i], g[0], GRADIENT_REL, 1e-300),
            "element {i}: {} vs {}",
            grad[i],
            g[0]
        );
        // p = tempered_sigmoid(a)
        let s = tempered_sigmoid(a[i], 2.0).unwrap();
        let p = tempered_softmax(&[0.0, a[i]], 2.0).unwrap();
        assert_eq!(s, p[1]);
    }
    // Google's binary test: t1 = t2 = 1, a = 0 → ln 2 for both labels.
    let ln2 = BiTemperedLogisticLoss::new(1.0, 1.0)
        .unwrap()
        .with_reduction(Reduction::None)
        .binary_loss(
            Batch::new(&[0.0, 0.0], 1, 2).unwrap(),
            Batch::new(&[1.0, 0.0], 1, 2).unwrap(),
        )
        .unwrap();
    assert!(ln2.unreduced.iter().all(|l| ulps64(*l, std::f64::consts::LN_2) <= 2));
    // Binary errors name the original position.
    let err = loss
        .binary_loss(
            Batch::new(&[0.0, f64::NAN], 1, 2).unwrap(),
            Batch::new(&[0.0, 1.0], 1, 2).unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                at: entropic::Position::Cell { row: 0, col: 1 },
                ..
            }
        ),
        "{err:?}"
    );
    let err = loss
        .binary_loss(Batch::new(&[0.0], 1, 1).unwrap(), Batch::new(&[1.5], 1, 1).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { .. }), "{err:?}");
}

#[test]
fn loss_is_bounded_for_one_hot_labels_when_t1_below_1() {
    let mut rng = SplitMix(99);
    for &t1 in &[0.0, 0.3, 0.8, 0.99] {
        for &t2 in &[0.5, 1.0, 1.5, 4.0] {
            let loss = BiTemperedLogisticLoss::new(t1, t2)
                .unwrap()
                .with_reduction(Reduction::None);
            for _ in 0..10 {
                let c = 2 + rng.below(10);
                let a = spread_row(&mut rng, c, 1e3);
                // the worst class: the one with the smallest logit
                let k = (0..c).min_by(|&i, &j| a[i].total_cmp(&a[j])).unwrap();
                let out = loss
                    .loss(Batch::new(&a, 1, c).unwrap(), Targets::<f64>::Classes(&[k]))
                    .unwrap();
                let bound = 1.0 / (1.0 - t1);
                // The supremum 1/(1 − t1) is approached as p_k → 0; rounding
                // of the O(1/(1−t1)) terms can exceed it by a few ulps.
                assert!(
                    out.unreduced[0] >= 0.0 && out.unreduced[0] <= bound * (1.0 + 8.0 * f64::EPSILON),
                    "t=({t1},{t2}) c={c}: {} > {bound}",
                    out.unreduced[0]
                );
            }
        }
    }
}

#[test]
fn reductions_and_free_function() {
    let classes = [2usize, 1, 0];
    let base = BiTemperedLogisticLoss::new(0.7, 1.3).unwrap();
    let batch = Batch::new(&ACTIVATIONS, 3, 3).unwrap();
    let none = base
        .with_reduction(Reduction::None)
        .loss(batch, Targets::<f64>::Classes(&classes))
        .unwrap();
    assert_eq!(none.reduced, None);
    let sum: f64 = none.unreduced.iter().sum();
    let s = base
        .with_reduction(Reduction::Sum)
        .loss(batch, Targets::<f64>::Classes(&classes))
        .unwrap();
    assert!((s.reduced.unwrap() - sum).abs() <= 4.0 * f64::EPSILON * sum);
    let (m, gm) = base.loss_and_grad(batch, Targets::<f64>::Classes(&classes)).unwrap();
    assert!((m.reduced.unwrap() - sum / 3.0).abs() <= 4.0 * f64::EPSILON * sum);
    let (_, gs) = base
        .with_reduction(Reduction::Sum)
        .loss_and_grad(batch, Targets::<f64>::Classes(&classes))
        .unwrap();
    for (a, b) in gm.iter().zip(&gs) {
        assert!((a * 3.0 - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1e-300));
    }
    let free = bi_tempered_logistic_loss(batch, Targets::<f64>::Classes(&classes), 0.7, 1.3, 0.0).unwrap();
    assert_eq!(free, none.unreduced);
    let mut buf = vec![0.0; 9];
    base.loss_and_grad_into(batch, Targets::<f64>::Classes(&classes), &mut buf)
        .unwrap();
    assert_eq!(buf, gm);
    assert!(matches!(
        base.loss_and_grad_into(batch, Targets::<f64>::Classes(&classes), &mut [0.0; 8]),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn parameters_are_validated() {
    for (t1, t2) in [
        (-0.1, 1.0),
        (2.0, 1.0),
        (f64::NAN, 1.0),
        (0.5, 0.0),
        (0.5, -1.0),
        (0.5, f64::INFINITY),
        (0.5, f64::NAN),
    ] {
        let err = BiTemperedLogisticLoss::new(t1, t2).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { .. }), "({t1}, {t2}): {err:?}");
    }
    let ok = BiTemperedLogisticLoss::new(0.0, 1e-3).unwrap();
    assert!(BiTemperedLogisticLoss::new(1.999, 10.0).is_ok());
    for eps in [-0.1, 1.0, f64::NAN] {
        assert!(matches!(
            ok.with_label_smoothing(eps),
            Err(Error::InvalidParameter {
                name: "label_smoothing",
                ..
            })
        ));
    }
    assert!(ok.with_label_smoothing(0.999).is_ok());
    assert!(matches!(
        ok.with_max_iterations(0),
        Err(Error::InvalidParameter {
            name: "max_iterations",
            ..
        })
    ));
    for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            TemperedSoftmax::new(t),
            Err(Error::InvalidParameter { name: "t", .. })
        ));
        assert!(tempered_softmax(&[0.0, 1.0], t).is_err());
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let loss = BiTemperedLogisticLoss::new(0.5, 1.5).unwrap();
    let a = [0.0, 1.0, f64::NAN, 2.0];
    let err = loss
        .loss(Batch::new(&a, 2, 2).unwrap(), Targets::<f64>::Classes(&[0, 1]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                at: entropic::Position::Cell { row: 1, col: 0 },
                ..
            }
        ),
        "{err:?}"
    );
    let a = [0.0, 1.0, 3.0, 2.0];
    let err = loss
        .loss(Batch::new(&a, 2, 2).unwrap(), probs(&[0.5, 0.5, 0.0, 0.0], 2, 2))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfDomain {
                at: entropic::Position::Row(1),
                ..
            }
        ),
        "{err:?}"
    );
    let err = loss
        .loss(Batch::new(&a, 2, 2).unwrap(), probs(&[0.5, 0.5, -0.1, 1.0], 2, 2))
        .unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { .. }), "{err:?}");
    let err = loss
        .loss(Batch::new(&a, 2, 2).unwrap(), Targets::<f64>::Classes(&[0, 2]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ClassOutOfRange {
                row: 1,
                class: 2,
                classes: 2
            }
        ),
        "{err:?}"
    );
    let err = loss
        .loss(Batch::new(&a, 2, 2).unwrap(), Targets::<f64>::Classes(&[0]))
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err:?}");
    let err = loss
        .loss(
            Batch::new(&[f64::NEG_INFINITY; 2], 1, 2).unwrap(),
            Targets::<f64>::Classes(&[0]),
        )
        .unwrap_err();
    assert!(matches!(err, Error::NoFiniteLogit { .. }), "{err:?}");
    let err = loss
        .with_label_smoothing(0.1)
        .unwrap()
        .loss(Batch::new(&[1.0], 1, 1).unwrap(), Targets::<f64>::Classes(&[0]))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidShape { .. }), "{err:?}");
    let err = loss
        .loss(Batch::new(&[] as &[f64], 0, 3).unwrap(), Targets::<f64>::Classes(&[]))
        .unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err:?}");
    // Heavy-tail overflow limit: t2·ln c > 700.
    let wide = vec![0.0; 1000];
    let err = TemperedSoftmax::new(200.0).unwrap().normalize(&wide).unwrap_err();
    assert!(matches!(err, Error::InvalidParameter { .. }), "{err:?}");
    // The safety cap surfaces as NotConverged.
    let row = [0.0, -1.0, -2.5, 3.0];
    let err = TemperedSoftmax::new(1.5)
        .unwrap()
        .with_max_iterations(1)
        .unwrap()
        .normalize(&row)
        .unwrap_err();
    assert!(matches!(err, Error::NotConverged { iterations: 1, .. }), "{err:?}");
    // definition and kernel agree on errors
    let bad = [0.0, f64::INFINITY];
    let e1 = loss
        .loss(Batch::new(&bad, 1, 2).unwrap(), Targets::<f64>::Classes(&[0]))
        .unwrap_err();
    let e2 = loss
        .definition(Batch::new(&bad, 1, 2).unwrap(), Targets::<f64>::Classes(&[0]))
        .unwrap_err();
    assert_eq!(e1, e2);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn loss_is_nonnegative_shift_invariant_and_gradient_sums_to_zero(
            a in prop::collection::vec(-50.0f64..50.0, 2..8),
            t1 in 0.0f64..1.99,
            t2 in 0.05f64..5.0,
            k in 0usize..8,
            shift in -100.0f64..100.0,
        ) {
            let c = a.len();
            let k = k % c;
            let loss = BiTemperedLogisticLoss::new(t1, t2).unwrap().with_reduction(Reduction::Sum);
            let (out, grad) = loss.loss_and_grad(Batch::new(&a, 1, c).unwrap(), Targets::<f64>::Classes(&[k])).unwrap();
            let v = out.reduced.unwrap();
            prop_assert!(v >= -1e-12, "negative loss {}", v);
            prop_assert!(grad.iter().all(|g| !g.is_nan()));
            if v.is_finite() {
                let total: f64 = grad.iter().sum();
                let mag: f64 = grad.iter().map(|g| g.abs()).sum();
                prop_assert!(total.abs() <= 1e-12 * mag.max(1.0));
                let shifted: Vec<f64> = a.iter().map(|x| x + shift).collect();
                let v2 = loss.loss(Batch::new(&shifted, 1, c).unwrap(), Targets::<f64>::Classes(&[k])).unwrap().reduced.unwrap();
                // the shift rounds each logit (|a + shift| ≤ 150, ulp ~ 3e-14),
                // moving the loss by ≤ |∇|·3e-14·c
                prop_assert!((v - v2).abs() <= 1e-11 * (1.0 + mag), "{} vs {}", v, v2);
            }
        }
    }
}

/// Regression (found by the verifier, seeds 2 and 3): at t1 = t2 = 1 with
/// a spread of ~1e4 the target class's probability underflows to 0 although
/// it is positive; the loss must be the finite −ln p_y (computed from ln p),
/// not +∞, and the gradient p − y, not 0.
#[test]
fn underflowing_probability_keeps_a_finite_loss_and_its_gradient() {
    let z: [f64; 5] = [
        -5.451683699510613e2,
        8.905740547275967e3,
        8.182030312844527e3,
        -7.956308463091664e2,
        9.623950851387064e3,
    ];
    let loss = entropic::BiTemperedLogisticLoss::new(1.0, 1.0)
        .unwrap()
        .with_reduction(entropic::Reduction::Sum);
    let (out, grad) = loss
        .loss_and_grad(
            entropic::Batch::new(&z, 1, 5).unwrap(),
            entropic::Targets::<f64>::Classes(&[0]),
        )
        .unwrap();
    let expected = -entropic::log_softmax(&z).unwrap()[0];
    let v = out.reduced.unwrap();
    assert!(
        v.is_finite() && (v - expected).abs() <= 4.0 * f64::EPSILON * expected,
        "{v} vs {expected}"
    );
    let a = entropic::softmax(&z).unwrap();
    assert_eq!(grad[0], a[0] - 1.0);
    assert_eq!(grad[4], a[4]);
    // Same for t2 > 1 = t1 with a heavy tail: finite, positive.
    let loss = entropic::BiTemperedLogisticLoss::new(1.0, 1.5).unwrap();
    let out = loss
        .loss(
            entropic::Batch::new(&[1e300_f64, -1e300], 1, 2).unwrap(),
            entropic::Targets::<f64>::Classes(&[1]),
        )
        .unwrap();
    assert!(out.reduced.unwrap().is_finite(), "{:?}", out.reduced);
}

/// Gradient factors `p^{t2−t1}` beyond the `f64` range while the loss is
/// finite. With `t1 = 1.9`, `t2 = 0.99` and logits `(0, −99.96)`, the
/// labelled class has `ln p ≈ −783`: its loss term `p^{1−t1}/(t1−1) ≈ e^{705}`
/// is finite (7.25e305), its gradient `≈ −p^{t2−t1} ≈ −e^{712}` rounds to −∞,
/// and the row sums to 0 only as `(+∞, −∞)`. Without the rescaling of the
/// factors by their maximum, the escort correction forms `0·∞` (NaN).
#[test]
fn gradient_overflow_with_a_finite_loss_is_signed_infinity_not_nan() {
    let loss = BiTemperedLogisticLoss::new(1.9, 0.99)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let a = [0.0_f64, -99.96];
    let (out, grad) = loss
        .loss_and_grad(Batch::new(&a, 1, 2).unwrap(), Targets::<f64>::Classes(&[1]))
        .unwrap();
    let value = out.reduced.unwrap();
    assert!(value.is_finite() && value > 1e305, "{value}");
    assert_eq!(grad, vec![f64::INFINITY, f64::NEG_INFINITY]);
}

/// A probability below the `f64` range (`ln p ≈ −799.9`, heavy tail
/// `t2 = 1.1`) on an unlabelled class: its gradient is
/// `p·p^{t2−t1} − escort·Σg ≈ p^{1+t2−t1} = e^{0.2·ln p} ≈ 3.3e-70`, not 0.
/// Reason for the bound: `ln p` is exact to a few ε relative (|ln p| ≈ 800),
/// multiplied by 0.2 in the exponent: 1e-12 relative.
#[test]
fn underflowing_probability_keeps_its_gradient() {
    const UNDERFLOW_GRADIENT_REL: f64 = 1e-12;
    let loss = BiTemperedLogisticLoss::new(1.9, 1.1)
        .unwrap()
        .with_reduction(Reduction::Sum);
    let a = [0.0_f64, -5.5e35];
    let (out, grad) = loss
        .loss_and_grad(Batch::new(&a, 1, 2).unwrap(), Targets::<f64>::Classes(&[0]))
        .unwrap();
    // exp_t(−5.5e35) at t = 1.1: (1 + 0.1·5.5e35)^{−10}; λ is below 1e-300.
    let ln_p = -10.0 * (0.1_f64 * 5.5e35).ln_1p();
    let want = (0.2 * ln_p).exp();
    assert!(want > 1e-71 && want < 1e-69, "{want}");
    assert!(
        (grad[1] - want).abs() <= UNDERFLOW_GRADIENT_REL * want,
        "{grad:?} vs {want}"
    );
    assert_eq!(grad[0], -grad[1]);
    // The loss is the unlabelled term p^{2−t1}/(2−t1) (the labelled one is
    // O(p) against it): e^{0.1·ln p}/0.1.
    let want_loss = ((2.0 - 1.9) * ln_p).exp() / (2.0 - 1.9);
    let value = out.reduced.unwrap();
    assert!(
        (value - want_loss).abs() <= UNDERFLOW_GRADIENT_REL * want_loss,
        "{value} vs {want_loss}"
    );
}

/// At a perfect soft prediction (`z_j = log_{t2} y_j`, so `λ = 0` and
/// `p = y` up to the rounding of `z`), every class term is quadratic in
/// `ℓ_j = ln(p_j/y_j)`, a few ε: the loss is `Σ y_j^{2−t1}·ℓ_j²/2 ≲ c·(8ε)²`.
/// Summing the O(1) parts of the Bregman form separately would leave their
/// rounding, ~ε = 2e-16 (the old kernel did; so does a series/direct switch
/// on the wrong `ℓ`, a `cargo mutants` survivor). Bound: 1e-28.
#[test]
fn loss_at_a_perfect_soft_prediction_is_second_order_small() {
    const PERFECT_PREDICTION_ABS: f64 = 1e-28;
    for (t1, t2) in [(0.5, 1.5), (0.8, 1.2), (1.0, 1.0), (1.5, 0.8), (0.2, 4.0)] {
        let loss = BiTemperedLogisticLoss::new(t1, t2)
            .unwrap()
            .with_reduction(Reduction::None);
        for y in [[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]] {
            let z: Vec<f64> = y.iter().map(|&v| entropic::log_t(v, t2)).collect();
            let b = Batch::new(&z, 1, 3).unwrap();
            let fast = loss.loss(b, probs(&y, 1, 3)).unwrap().unreduced[0];
            let def = loss.definition(b, probs(&y, 1, 3)).unwrap().unreduced[0];
            for v in [fast, def] {
                assert!(
                    (0.0..=PERFECT_PREDICTION_ABS).contains(&v),
                    "t=({t1},{t2}) y={y:?}: {v:e}"
                );
            }
        }
    }
}

/// Logit gaps beyond `f64::MAX` (fourth session): the probability of the
/// low class is positive (`e^{−7075.9}` with a heavy tail) or its log is below
/// `−f64::MAX` (`t2 = 1`), and the loss is finite. Both the kernel and the
/// generic definition (in `f64`) give the finite value, and they agree;
/// before, both gave `+∞`. (The certified reference is checked in
/// `entropic-cli/tests/finiteness.rs`.)
#[test]
fn logit_gaps_beyond_the_range_give_finite_losses_in_kernel_and_definition() {
    let m = f64::MAX;
    /// Logits, labels, t1, t2, the certified loss.
    type Far<'a> = (&'a [f64], &'a [f64], f64, f64, f64);
    let cases: [Far; 4] = [
        (&[1e308, -1e308], &[0.0, 1.0], 1.0, 1.1, 7075.867707297313),
        (&[1e308, -1e308], &[0.9, 0.1], 1.0, 1.0, 2.0000000000000002e307),
        (&[m, -1e308, -m], &[0.2, 0.0, 0.1], 1.0, 1.0, 3.5953862697246315e307),
        (&[1.7e308, -1.7e308, 0.0], &[0.0, 1.0, 0.0], 1.0, 2.5, 473.8836327879309),
    ];
    for (z, y, t1, t2, exact) in cases {
        let c = z.len();
        let loss = BiTemperedLogisticLoss::new(t1, t2)
            .unwrap()
            .with_reduction(Reduction::None);
        let b = Batch::new(z, 1, c).unwrap();
        let targets = Targets::Probabilities(Batch::new(y, 1, c).unwrap());
        let (out, grad) = loss.loss_and_grad(b, targets).unwrap();
        let def = loss.definition(b, targets).unwrap().unreduced[0];
        let k = out.unreduced[0];
        // The exact values are the certified reference's (`entropic eval
        // --reference`); both sides within the kernel-vs-definition bound.
        assert!(
            (k - exact).abs() <= KERNEL_VS_DEFINITION_REL * exact,
            "kernel {k} vs {exact} for {z:?}"
        );
        assert!(
            (def - exact).abs() <= KERNEL_VS_DEFINITION_REL * exact,
            "definition {def} vs {exact} for {z:?}"
        );
        assert!(grad.iter().all(|g| g.is_finite()), "{grad:?}");
    }
}
