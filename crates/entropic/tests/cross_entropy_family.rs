//! The cross-entropy family: hand-computed values, extreme inputs, PyTorch
//! option semantics, dual-number gradients of the generic definitions
//! against the analytic gradients, and fast path vs definition.

mod common;

use common::{SplitMix, close, dual_gradient, ulps32, ulps64};
use entropic::{
    Batch, BinaryCrossEntropyWithLogits, Error, KlDiv, Reduction, SoftmaxCrossEntropy, Targets, log_softmax, logsumexp,
    softmax,
};
use num_dual::{Dual2SVec64, DualDVec64, DualNum, DualSVec64, HyperDual64};

/// Fast f64 kernel vs generic f64 definition. Both accumulate in f64 but in
/// different association orders (the kernel sums `q·(l − (z − m))` with
/// `l` and `m` shared); each of the ≤ c additions may round once, so the two
/// agree within a few ulps of the row sum for the c ≤ 16 used here.
const KERNEL_VS_DEFINITION_ULPS: u64 = 16;

/// Analytic gradient vs dual-number gradient of the definition, relative
/// error. Both are exact formulas evaluated in f64 with O(c) roundings; the
/// dual path differentiates `ln Σ e^{z−m}` term by term, so they agree to
/// ~c·ε relative to the largest gradient entry (≤ 1 here). 64 ε covers
/// c ≤ 16 with margin.
const GRADIENT_REL: f64 = 64.0 * f64::EPSILON;

/// The f32 path rounds the f64 result once: within 1 ulp of f32 of the f64
/// kernel's result (0.5 ulp rounding + the f64 error far below it).
const F32_ROUNDING_ULPS: u64 = 1;

/// With class targets and no label smoothing the f32 kernel computes the
/// exponentials in f32 (≤ 2 ulps, measured 1.23) and scales the gradient by
/// a rounded f32 factor (½ ulp for the factor, ½ for the product); the loss
/// and the target and argmax entries are formed in f64 from f64 sums. With
/// the ½ ulp of rounding the f64 result to compare against: 3 ulps.
const F32_CLASS_PATH_ULPS: u64 = 3;

fn classes<'a>(y: &'a [usize]) -> Targets<'a, f64> {
    Targets::Classes(y)
}

#[test]
fn two_equal_huge_logits_give_ln2() {
    let ce = SoftmaxCrossEntropy::new();
    let out = ce
        .loss(Batch::new(&[1e8_f64, 1e8], 1, 2).unwrap(), classes(&[0]))
        .unwrap();
    assert_eq!(out.reduced, Some(std::f64::consts::LN_2));
    let out = ce
        .loss(Batch::new(&[1e8_f32, 1e8], 1, 2).unwrap(), classes(&[1]))
        .unwrap();
    assert_eq!(out.reduced, Some(std::f32::consts::LN_2));
    let def = ce
        .definition(Batch::new(&[1e8_f64, 1e8], 1, 2).unwrap(), classes(&[0]))
        .unwrap();
    assert_eq!(def.reduced, Some(std::f64::consts::LN_2));
}

#[test]
fn c_equal_huge_logits_give_ln_c_in_f32_and_f64() {
    let ce = SoftmaxCrossEntropy::new();
    for c in [2usize, 3, 10, 1000, 32000] {
        for z in [1e6f32, 1e8, 3e38, -3e38] {
            let logits = vec![z; c];
            let out = ce.loss(Batch::new(&logits, 1, c).unwrap(), classes(&[c / 2])).unwrap();
            let expected = (c as f64).ln() as f32;
            assert!(
                ulps32(out.reduced.unwrap(), expected) <= 2,
                "c={c} z={z}: {:?}",
                out.reduced
            );
            let def = ce
                .definition(Batch::new(&logits, 1, c).unwrap(), classes(&[0]))
                .unwrap();
            assert!(
                ulps32(def.reduced.unwrap(), expected) <= 2 * c as u64,
                "definition c={c} z={z}"
            );
        }
        for z in [1e6f64, 1e8, 1e300, -1e300, f64::MAX] {
            let logits = vec![z; c];
            let out = ce.loss(Batch::new(&logits, 1, c).unwrap(), classes(&[0])).unwrap();
            assert!(ulps64(out.reduced.unwrap(), (c as f64).ln()) <= 2, "c={c} z={z}");
        }
    }
}

#[test]
fn hand_computed_values() {
    // −ln softmax([1,2,3])_2 = ln(1 + e^{-1} + e^{-2}) = 0.40760596444438030448…
    // (Python `decimal` at 60 digits); the literal is its correctly rounded f64.
    let expected = 0.407_605_964_444_380_3_f64;
    let out = SoftmaxCrossEntropy::new()
        .loss(Batch::new(&[1.0, 2.0, 3.0], 1, 3).unwrap(), classes(&[2]))
        .unwrap();
    assert!(ulps64(out.reduced.unwrap(), expected) <= 1);

    // Label smoothing, PyTorch convention: (1−ε)·nll + ε/C·Σ_c (−ln a_c).
    let ls = log_softmax(&[1.0, 2.0, 3.0]).unwrap();
    let eps = 0.1;
    let expected = (1.0 - eps) * -ls[2] + eps / 3.0 * -(ls[0] + ls[1] + ls[2]);
    let ce = SoftmaxCrossEntropy::new().with_label_smoothing(eps).unwrap();
    let out = ce
        .loss(Batch::new(&[1.0, 2.0, 3.0], 1, 3).unwrap(), classes(&[2]))
        .unwrap();
    assert!(
        ulps64(out.reduced.unwrap(), expected) <= 4,
        "{:?} vs {expected}",
        out.reduced
    );
}

#[test]
fn weighted_mean_divides_by_weight_of_present_targets() {
    // Two rows, targets 0 and 1, weights [2, 0.5]: mean = (2·l0 + 0.5·l1)/(2.5).
    let z = [0.3, -1.2, 2.0, 0.7];
    let l0 = -log_softmax(&z[..2]).unwrap()[0];
    let l1 = -log_softmax(&z[2..]).unwrap()[1];
    let ce = SoftmaxCrossEntropy::new().with_weight(vec![2.0, 0.5]).unwrap();
    let out = ce.loss(Batch::new(&z, 2, 2).unwrap(), classes(&[0, 1])).unwrap();
    assert!(ulps64(out.reduced.unwrap(), (2.0 * l0 + 0.5 * l1) / 2.5) <= 2);
    assert!(ulps64(out.unreduced[0], 2.0 * l0) <= 1 && ulps64(out.unreduced[1], 0.5 * l1) <= 1);
    // Sum reduction: no denominator.
    let out = ce
        .with_reduction(Reduction::Sum)
        .loss(Batch::new(&z, 2, 2).unwrap(), classes(&[0, 1]))
        .unwrap();
    assert!(ulps64(out.reduced.unwrap(), 2.0 * l0 + 0.5 * l1) <= 2);
}

#[test]
fn ignored_rows_contribute_nothing_and_masked_logits_give_no_nan() {
    let z = [f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY, 1.0, 2.0];
    let ce = SoftmaxCrossEntropy::new().with_ignore_index(Some(7));
    let (out, grad) = ce
        .loss_and_grad(Batch::new(&z, 3, 2).unwrap(), classes(&[7, 0, 1]))
        .unwrap();
    assert_eq!(out.unreduced[0], 0.0);
    assert_eq!(out.unreduced[1], 0.0); // class 0 has all the mass
    assert!(grad.iter().all(|g| g.is_finite()), "{grad:?}");
    assert_eq!(&grad[..2], &[0.0, 0.0]);
    // mean over the 2 present rows
    let l2 = -log_softmax(&[1.0, 2.0]).unwrap()[1];
    assert!(ulps64(out.reduced.unwrap(), l2 / 2.0) <= 2);
    // all ignored: mean has nothing to average
    let err = ce.loss(Batch::new(&z[..2], 1, 2).unwrap(), classes(&[7])).unwrap_err();
    assert!(matches!(err, Error::ZeroTotalWeight { .. }), "{err}");
    // an all −∞ row that is not ignored is an error naming the row
    let err = ce.loss(Batch::new(&z, 3, 2).unwrap(), classes(&[0, 0, 1])).unwrap_err();
    assert_eq!(err, Error::NoFiniteLogit { what: "logits", row: 0 });
}

#[test]
fn probability_targets_mean_divides_by_n_and_gradient_is_a_sum_y_minus_y() {
    let z = [0.5, -0.25, 1.5, 3.0, 0.0, -2.0];
    let y = [0.2, 0.3, 0.4, 0.0, 1.0, 0.5]; // unnormalized soft labels allowed
    let ce = SoftmaxCrossEntropy::new();
    let (out, grad) = ce
        .loss_and_grad(
            Batch::new(&z, 2, 3).unwrap(),
            Targets::Probabilities(Batch::new(&y, 2, 3).unwrap()),
        )
        .unwrap();
    for r in 0..2 {
        let ls = log_softmax(&z[3 * r..3 * r + 3]).unwrap();
        let a = softmax(&z[3 * r..3 * r + 3]).unwrap();
        let yr = &y[3 * r..3 * r + 3];
        let l: f64 = -(0..3).map(|j| yr[j] * ls[j]).sum::<f64>();
        assert!(ulps64(out.unreduced[r], l) <= 4);
        let sy: f64 = yr.iter().sum();
        for j in 0..3 {
            assert!(close(
                grad[3 * r + j],
                (a[j] * sy - yr[j]) / 2.0,
                4.0 * f64::EPSILON,
                1e-17
            ));
        }
    }
    assert!(ulps64(out.reduced.unwrap(), (out.unreduced[0] + out.unreduced[1]) / 2.0) <= 1);
}

#[test]
fn binary_cross_entropy_extremes_and_pos_weight() {
    let bce = BinaryCrossEntropyWithLogits::new().with_reduction(Reduction::None);
    let x = [
        1e9_f64,
        -1e9,
        1e9,
        -1e9,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::INFINITY,
    ];
    let y = [0.0, 1.0, 1.0, 0.0, 0.9, 1.0, 0.1];
    let (out, grad) = bce
        .loss_and_grad(Batch::new(&x, 1, 7).unwrap(), Batch::new(&y, 1, 7).unwrap())
        .unwrap();
    assert_eq!(
        out.unreduced,
        vec![1e9, 1e9, 0.0, 0.0, f64::INFINITY, 0.0, f64::INFINITY]
    );
    assert_eq!(grad, vec![1.0, -1.0, 0.0, 0.0, -0.9, 0.0, 0.9]);
    // pos_weight r: ℓ = −[r·y·ln σ(x) + (1−y)·ln(1−σ(x))] at x = 0.4, y = 0.7, r = 3
    let (x, y, r) = (0.4f64, 0.7, 3.0);
    let s = 1.0 / (1.0 + (-x).exp());
    let expected = -(r * y * s.ln() + (1.0 - y) * (1.0 - s).ln());
    let bce = BinaryCrossEntropyWithLogits::new().with_pos_weight(vec![r]).unwrap();
    let (out, grad) = bce
        .loss_and_grad(Batch::new(&[x], 1, 1).unwrap(), Batch::new(&[y], 1, 1).unwrap())
        .unwrap();
    assert!(ulps64(out.reduced.unwrap(), expected) <= 4);
    let expected_grad = (1.0 - y) * s - r * y * (1.0 - s);
    assert!(close(grad[0], expected_grad, 8.0 * f64::EPSILON, 0.0));
}

#[test]
fn kl_div_matches_kl_divergence_and_log_target() {
    let p = [0.1, 0.6, 0.1, 0.2];
    let q = [0.25, 0.25, 0.3, 0.2];
    let ln_q: Vec<f64> = q.iter().map(|v: &f64| v.ln()).collect();
    let ln_p: Vec<f64> = p.iter().map(|v: &f64| v.ln()).collect();
    let kl = entropic::kl_divergence(&p, &q).unwrap();
    let out = KlDiv::new(Reduction::BatchMean)
        .loss(Batch::new(&ln_q, 1, 4).unwrap(), Batch::new(&p, 1, 4).unwrap())
        .unwrap();
    assert!(close(out.reduced.unwrap(), kl, 8.0 * f64::EPSILON, 0.0));
    let out2 = KlDiv::new(Reduction::BatchMean)
        .with_log_target(true)
        .loss(Batch::new(&ln_q, 1, 4).unwrap(), Batch::new(&ln_p, 1, 4).unwrap())
        .unwrap();
    assert!(close(out2.reduced.unwrap(), kl, 8.0 * f64::EPSILON, 0.0));
    // Mean divides by n·c, BatchMean by n.
    let out3 = KlDiv::new(Reduction::Mean)
        .loss(Batch::new(&ln_q, 1, 4).unwrap(), Batch::new(&p, 1, 4).unwrap())
        .unwrap();
    assert!(ulps64(out3.reduced.unwrap() * 4.0, out.reduced.unwrap()) <= 1);
    // zero targets: zero loss and zero (finite) gradient even at ln q = −∞
    let (o, g) = KlDiv::new(Reduction::Sum)
        .loss_and_grad(
            Batch::new(&[f64::NEG_INFINITY, 0.0], 1, 2).unwrap(),
            Batch::new(&[0.0, 1.0], 1, 2).unwrap(),
        )
        .unwrap();
    assert_eq!(o.reduced, Some(0.0));
    assert_eq!(g, vec![0.0, -1.0]);
}

/// Random batches for the gradient checks, including huge and masked logits.
fn random_case(rng: &mut SplitMix) -> (Vec<f64>, usize, usize, Vec<usize>, Vec<f64>) {
    let n = 1 + rng.below(3);
    let c = 1 + rng.below(6);
    let spread = [1.0, 10.0, 100.0, 1e4][rng.below(4)];
    let z: Vec<f64> = (0..n * c).map(|_| rng.uniform(-spread, spread)).collect();
    let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
    let p: Vec<f64> = (0..n).flat_map(|_| rng.simplex(c)).collect();
    (z, n, c, y, p)
}

fn assert_grad_close(analytic: &[f64], dual: &[f64], what: &str) {
    let scale = analytic.iter().chain(dual).fold(1e-300f64, |m, g| m.max(g.abs()));
    for (a, d) in analytic.iter().zip(dual) {
        assert!(
            (a - d).abs() <= GRADIENT_REL * scale,
            "{what}: analytic {analytic:?} vs dual {dual:?}"
        );
    }
}

#[test]
fn softmax_cross_entropy_dual_gradient_matches_analytic() {
    let mut rng = SplitMix(1);
    for case in 0..200 {
        let (z, n, c, y, p) = random_case(&mut rng);
        let eps = [0.0, 0.1, 0.5][case % 3];
        let reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][case % 3];
        let weight: Vec<f64> = (0..c).map(|_| rng.uniform(0.1, 2.0)).collect();
        let ce = SoftmaxCrossEntropy::new()
            .with_label_smoothing(eps)
            .unwrap()
            .with_weight(weight)
            .unwrap()
            .with_reduction(reduction);
        for targets in [
            Targets::Classes(&y),
            Targets::Probabilities(Batch::new(&p, n, c).unwrap()),
        ] {
            let (out, grad) = ce.loss_and_grad(Batch::new(&z, n, c).unwrap(), targets).unwrap();
            let total = |o: entropic::LossOutput<num_dual::Dual64>| match o.reduced {
                Some(v) => v,
                None => o.unreduced.into_iter().sum(),
            };
            let dual = dual_gradient(&z, |zd| {
                total(ce.definition(Batch::new(zd, n, c).unwrap(), targets).unwrap())
            });
            assert_grad_close(&grad, &dual, &format!("case {case} {targets:?}"));
            let def = ce.definition(Batch::new(&z, n, c).unwrap(), targets).unwrap();
            for (k, d) in out.unreduced.iter().zip(&def.unreduced) {
                assert!(
                    ulps64(*k, *d) <= KERNEL_VS_DEFINITION_ULPS || (k - d).abs() < 1e-300,
                    "case {case}: {k} vs {d}"
                );
            }
            // f32 path: the f64 result rounded once, or the f32 class path.
            let bound = match targets {
                Targets::Classes(_) if eps == 0.0 => F32_CLASS_PATH_ULPS,
                _ => F32_ROUNDING_ULPS,
            };
            let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
            let z32_64: Vec<f64> = z32.iter().map(|&v| f64::from(v)).collect();
            let (o32, g32) = ce.loss_and_grad(Batch::new(&z32, n, c).unwrap(), targets).unwrap();
            let (o64, g64) = ce.loss_and_grad(Batch::new(&z32_64, n, c).unwrap(), targets).unwrap();
            for (a, b) in o32.unreduced.iter().zip(&o64.unreduced).chain(g32.iter().zip(&g64)) {
                assert!(ulps32(*a, *b as f32) <= bound, "case {case}: f32 {a} vs f64 {b}");
            }
        }
    }
}

#[test]
fn binary_cross_entropy_and_kl_div_dual_gradients_match_analytic() {
    let mut rng = SplitMix(2);
    for case in 0..200 {
        let (z, n, c, _, p) = random_case(&mut rng);
        let labels: Vec<f64> = (0..n * c)
            .map(|_| [0.0, 1.0, rng.uniform(0.0, 1.0)][rng.below(3)])
            .collect();
        let w: Vec<f64> = (0..c).map(|_| rng.uniform(0.0, 2.0)).collect();
        let pw: Vec<f64> = (0..c).map(|_| rng.uniform(0.0, 3.0)).collect();
        let bce = BinaryCrossEntropyWithLogits::new()
            .with_weight(w)
            .unwrap()
            .with_pos_weight(pw)
            .unwrap();
        let (_, grad) = bce
            .loss_and_grad(Batch::new(&z, n, c).unwrap(), Batch::new(&labels, n, c).unwrap())
            .unwrap();
        let dual = dual_gradient(&z, |zd| {
            bce.definition(Batch::new(zd, n, c).unwrap(), Batch::new(&labels, n, c).unwrap())
                .unwrap()
                .reduced
                .unwrap()
        });
        assert_grad_close(&grad, &dual, &format!("bce case {case}"));

        let ln_q: Vec<f64> = (0..n)
            .flat_map(|r| log_softmax(&z[r * c..(r + 1) * c]).unwrap())
            .collect();
        let kl = KlDiv::new(Reduction::BatchMean);
        let (_, grad) = kl
            .loss_and_grad(Batch::new(&ln_q, n, c).unwrap(), Batch::new(&p, n, c).unwrap())
            .unwrap();
        let dual = dual_gradient(&ln_q, |x| {
            kl.definition(Batch::new(x, n, c).unwrap(), Batch::new(&p, n, c).unwrap())
                .unwrap()
                .reduced
                .unwrap()
        });
        assert_grad_close(&grad, &dual, &format!("kl_div case {case}"));
    }
}

#[test]
fn information_gradients_match_dual_numbers() {
    let mut rng = SplitMix(3);
    for _ in 0..100 {
        let c = 2 + rng.below(6);
        let p = rng.simplex(c);
        let q = rng.simplex(c);
        // Perturbing one coordinate leaves the simplex, so differentiate the
        // formulas (validation happens on the real parts, which stay valid).
        let g = entropic::entropy_grad(&p).unwrap();
        let d = dual_gradient(&p, |x| -x.iter().map(|v| *v * v.ln()).sum::<num_dual::Dual64>());
        assert_grad_close(&g, &d, "entropy");
        for (name, f, gf) in [
            (
                "cross_entropy",
                entropic::cross_entropy::<num_dual::Dual64> as fn(&[_], &[_]) -> _,
                entropic::cross_entropy_grad::<f64> as fn(&[f64], &[f64]) -> _,
            ),
            (
                "kl_divergence",
                entropic::kl_divergence::<num_dual::Dual64>,
                entropic::kl_divergence_grad::<f64>,
            ),
            (
                "js_divergence",
                entropic::js_divergence::<num_dual::Dual64>,
                entropic::js_divergence_grad::<f64>,
            ),
        ] {
            let (gp, gq) = gf(&p, &q).unwrap();
            let qd: Vec<num_dual::Dual64> = q.iter().map(|&v| num_dual::Dual64::from_re(v)).collect();
            let pd: Vec<num_dual::Dual64> = p.iter().map(|&v| num_dual::Dual64::from_re(v)).collect();
            let dp = dual_gradient(&p, |x| f(x, &qd).unwrap());
            let dq = dual_gradient(&q, |x| f(&pd, x).unwrap());
            assert_grad_close(&gp, &dp, name);
            assert_grad_close(&gq, &dq, name);
        }
    }
}

/// One generic function exercised with every scalar type the design
/// promises: the real parts must agree with f64, and the first-derivative
/// parts with the analytic gradient.
#[test]
fn generic_definitions_run_with_every_scalar_type() {
    let z = [0.25, -1.5, 2.0];
    let ce = SoftmaxCrossEntropy::new().with_label_smoothing(0.05).unwrap();
    let t = Targets::<f64>::Classes(&[1]);
    let (out, grad) = ce.loss_and_grad(Batch::new(&z, 1, 3).unwrap(), t).unwrap();
    let value = out.reduced.unwrap();

    let f32z: Vec<f32> = z.iter().map(|&v| v as f32).collect();
    let v32 = ce
        .definition(Batch::new(&f32z, 1, 3).unwrap(), t)
        .unwrap()
        .reduced
        .unwrap();
    assert!(ulps32(v32, value as f32) <= 4);

    // DualSVec64<3>: the whole gradient in one evaluation.
    let zs: Vec<DualSVec64<3>> = (0..3)
        .map(|i| {
            let mut e = nalgebra::SVector::<f64, 3>::zeros();
            e[i] = 1.0;
            DualSVec64::new(z[i], num_dual::Derivative::some(e))
        })
        .collect();
    let v = ce
        .definition(Batch::new(&zs, 1, 3).unwrap(), t)
        .unwrap()
        .reduced
        .unwrap();
    assert!(ulps64(v.re, value) <= 4);
    let g = v.eps.unwrap_generic(nalgebra::U3, nalgebra::U1);
    assert_grad_close(&grad, g.as_slice(), "DualSVec64");

    // DualDVec64 (not Copy): the same through the clone path.
    let zd: Vec<DualDVec64> = (0..3)
        .map(|i| {
            DualDVec64::new(
                z[i],
                num_dual::Derivative::some(nalgebra::DVector::from_fn(3, |k, _| if k == i { 1.0 } else { 0.0 })),
            )
        })
        .collect();
    let v = ce
        .definition(Batch::new(&zd, 1, 3).unwrap(), t)
        .unwrap()
        .reduced
        .unwrap();
    let g = v.eps.unwrap_generic(nalgebra::Dyn(3), nalgebra::U1);
    assert_grad_close(&grad, g.as_slice(), "DualDVec64");

    // Dual2SVec64<3>: gradient and Hessian; the Hessian of softmax CE is
    // (Σq)(diag(a) − a aᵀ).
    let z2: Vec<Dual2SVec64<3>> = (0..3)
        .map(|i| {
            let mut e = nalgebra::SVector::<f64, 3>::zeros();
            e[i] = 1.0;
            Dual2SVec64::new(
                z[i],
                num_dual::Derivative::some(e.transpose()),
                num_dual::Derivative::none(),
            )
        })
        .collect();
    let v = ce
        .definition(Batch::new(&z2, 1, 3).unwrap(), t)
        .unwrap()
        .reduced
        .unwrap();
    let h = v.v2.unwrap_generic(nalgebra::U3, nalgebra::U3);
    let a = softmax(&z).unwrap();
    for i in 0..3 {
        for j in 0..3 {
            let expected = if i == j { a[i] - a[i] * a[j] } else { -a[i] * a[j] };
            assert!((h[(i, j)] - expected).abs() <= 16.0 * f64::EPSILON, "H[{i},{j}]");
        }
    }

    // HyperDual64: the mixed second derivative ∂²/∂z0∂z2 = −a0 a2.
    let zh: Vec<HyperDual64> = (0..3)
        .map(|i| {
            HyperDual64::new(
                z[i],
                if i == 0 { 1.0 } else { 0.0 },
                if i == 2 { 1.0 } else { 0.0 },
                0.0,
            )
        })
        .collect();
    let v = ce
        .definition(Batch::new(&zh, 1, 3).unwrap(), t)
        .unwrap()
        .reduced
        .unwrap();
    assert!((v.eps1eps2 + a[0] * a[2]).abs() <= 16.0 * f64::EPSILON);
    assert!(ulps64(v.re, value) <= 4);
}

#[test]
fn logsumexp_family_extremes() {
    assert_eq!(logsumexp(&[f64::MAX, f64::MAX]).unwrap(), f64::MAX); // ln 2 is far below half an ulp
    assert_eq!(logsumexp(&[-1e300, -1e300]).unwrap(), -1e300);
    assert_eq!(softmax(&[3e38f32, -3e38]).unwrap(), vec![1.0, 0.0]);
    assert_eq!(softmax(&[0.0, f64::NEG_INFINITY]).unwrap(), vec![1.0, 0.0]);
    assert_eq!(
        log_softmax(&[0.0, f64::NEG_INFINITY]).unwrap(),
        vec![0.0, f64::NEG_INFINITY]
    );
    let s: f64 = softmax(&[1.0, 2.0, 3.0, 4.0]).unwrap().iter().sum();
    assert!(ulps64(s, 1.0) <= 2);
}

#[test]
fn errors_name_the_offending_value() {
    let ce = SoftmaxCrossEntropy::new();
    let z = [0.0, f64::NAN, 1.0, 2.0];
    let err = ce.loss(Batch::new(&z, 2, 2).unwrap(), classes(&[0, 1])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                at: entropic::Position::Cell { row: 0, col: 1 },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("NaN"), "{err}");
    let err = ce
        .loss(Batch::new(&[0.0, f64::INFINITY], 1, 2).unwrap(), classes(&[0]))
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }));
    let err = ce
        .loss(Batch::new(&[0.0, 1.0], 1, 2).unwrap(), classes(&[2]))
        .unwrap_err();
    assert_eq!(
        err,
        Error::ClassOutOfRange {
            row: 0,
            class: 2,
            classes: 2
        }
    );
    let err = ce
        .loss(Batch::new(&[0.0, 1.0], 1, 2).unwrap(), classes(&[0, 1]))
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { what: "targets", .. }));
    assert!(matches!(
        SoftmaxCrossEntropy::new().with_label_smoothing(1.5).unwrap_err(),
        Error::InvalidParameter {
            name: "label_smoothing",
            ..
        }
    ));
    assert!(SoftmaxCrossEntropy::new().with_label_smoothing(f64::NAN).is_err());
    assert!(matches!(
        SoftmaxCrossEntropy::new().with_weight(vec![1.0, -1.0]).unwrap_err(),
        Error::OutOfDomain { what: "weight", .. }
    ));
    let err = SoftmaxCrossEntropy::new()
        .with_weight(vec![1.0])
        .unwrap()
        .loss(Batch::new(&[0.0, 1.0], 1, 2).unwrap(), classes(&[0]))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ShapeMismatch {
            what: "weight",
            expected: 2,
            actual: 1
        }
    ));
    let err = ce
        .loss(Batch::<f64>::new(&[], 0, 3).unwrap(), classes(&[]))
        .unwrap_err();
    assert_eq!(err, Error::Empty { what: "batch" });
    assert!(Batch::new(&[0.0; 3], 2, 2).is_err());
    assert!(Batch::<f64>::new(&[], usize::MAX, 2).is_err());
    let err = entropic::entropy(&[0.5, 0.6]).unwrap_err();
    assert!(matches!(err, Error::NotNormalized { .. }), "{err}");
    let err = entropic::entropy(&[1.5, -0.5]).unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { .. }), "{err}");
    let err = BinaryCrossEntropyWithLogits::new()
        .loss(Batch::new(&[0.0], 1, 1).unwrap(), Batch::new(&[1.5], 1, 1).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::OutOfDomain { what: "labels", .. }));
    let err = ce.loss(
        Batch::new(&[0.0, 1.0], 1, 2).unwrap(),
        Targets::Probabilities(Batch::new(&[0.5, 0.5], 1, 2).unwrap()),
    );
    assert!(err.is_ok());
    let err = ce
        .clone()
        .with_ignore_index(Some(0))
        .loss(
            Batch::new(&[0.0, 1.0], 1, 2).unwrap(),
            Targets::Probabilities(Batch::new(&[0.5, 0.5], 1, 2).unwrap()),
        )
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions(_)));
}

/// The dual path and the plain path reject the same inputs with the same error.
#[test]
fn definition_and_kernel_agree_on_errors() {
    let ce = SoftmaxCrossEntropy::new();
    for (z, y) in [
        (vec![0.0, f64::NAN], vec![0usize]),
        (vec![f64::NEG_INFINITY, f64::NEG_INFINITY], vec![0]),
        (vec![0.0, 1.0], vec![5]),
        (vec![0.0, f64::INFINITY], vec![0]),
    ] {
        let k = ce.loss(Batch::new(&z, 1, 2).unwrap(), classes(&y)).unwrap_err();
        let zd: Vec<num_dual::Dual64> = z.iter().map(|&v| num_dual::Dual64::from_re(v)).collect();
        let d = ce.definition(Batch::new(&zd, 1, 2).unwrap(), classes(&y)).unwrap_err();
        // NaN != NaN, so compare the rendered errors (they name value and place).
        assert_eq!(k.to_string(), d.to_string());
    }
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1e4f64..1e4,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(f64::MAX),
            1 => Just(-f64::MAX),
            1 => Just(5e-324),
            1 => Just(0.0),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Random shapes (n, c ≥ 0, inconsistent lengths) and values: every
        /// entry point returns Ok or a typed error; whenever it returns Ok on
        /// finite-or-masked logits the gradient has no NaN.
        #[test]
        fn every_entry_point_is_total(
            n in 0usize..4, c in 0usize..5,
            data in proptest::collection::vec(value(), 0..20),
            labels in proptest::collection::vec(0usize..6, 0..5),
            probs in proptest::collection::vec(value(), 0..20),
            eps in -0.5f64..1.5,
        ) {
            let _ = logsumexp(&data);
            let _ = softmax(&data);
            let _ = log_softmax(&data);
            let _ = entropic::entropy(&data);
            let _ = entropic::kl_divergence(&data, &probs);
            let _ = entropic::js_divergence(&data, &probs);
            let _ = entropic::cross_entropy_grad(&data, &probs);
            if let Ok(b) = Batch::new(&data, n, c) {
                let mut out = vec![0.0; data.len()];
                let _ = entropic::softmax_batch_into(b, &mut out);
                for ce in [SoftmaxCrossEntropy::new(), SoftmaxCrossEntropy::new().with_ignore_index(Some(0))] {
                    let ce = ce.with_label_smoothing(eps).unwrap_or_default();
                    if let Ok((out, g)) = ce.loss_and_grad(b, classes(&labels)) {
                        prop_assert!(g.iter().all(|v| !v.is_nan()));
                        prop_assert!(out.unreduced.iter().all(|v| !v.is_nan()));
                    }
                    if let Ok(p) = Batch::new(&probs, n, c) {
                        if let Ok((_, g)) = ce.loss_and_grad(b, Targets::Probabilities(p)) {
                            prop_assert!(g.iter().all(|v| !v.is_nan()));
                        }
                        let _ = BinaryCrossEntropyWithLogits::new().loss_and_grad(b, p);
                        let _ = KlDiv::new(Reduction::Mean).loss_and_grad(b, p);
                        let _ = KlDiv::new(Reduction::BatchMean).with_log_target(true).loss_and_grad(b, p);
                    }
                }
            }
        }
    }
}

/// The `_into` variants write the same gradient as the allocating ones
/// (bit for bit: the same kernel) and reject a buffer of the wrong length
/// with `ShapeMismatch` naming the gradient buffer, for every loss type.
#[test]
fn into_variants_match_and_reject_wrong_buffers() {
    use entropic::{BiTemperedLogisticLoss, SigmoidFocalLoss, SoftmaxFocalLoss};
    let z = [0.3, -1.2, 2.5, 0.0, 4.0, -0.5];
    let b = Batch::new(&z, 2, 3).unwrap();
    let labels = [1.0, 0.0, 0.5, 0.0, 1.0, 0.25];
    let l = Batch::new(&labels, 2, 3).unwrap();
    let y = [2usize, 0];
    type IntoFn<'a> = &'a dyn Fn(&mut [f64]) -> Result<Option<f64>, Error>;
    let check = |name: &str, alloc: &dyn Fn() -> (Vec<f64>, Option<f64>), into: IntoFn<'_>| {
        let (g, v) = alloc();
        let mut buf = vec![f64::NAN; z.len()];
        assert_eq!(into(&mut buf).unwrap(), v, "{name}: value");
        assert_eq!(buf, g, "{name}: gradient");
        for len in [0, z.len() - 1, z.len() + 1] {
            let mut short = vec![0.0; len];
            match into(&mut short) {
                Err(Error::ShapeMismatch { expected, actual, .. }) => {
                    assert_eq!((expected, actual), (z.len(), len), "{name}")
                }
                other => panic!("{name}: buffer of {len} gave {other:?}"),
            }
        }
    };
    let ce = SoftmaxCrossEntropy::new();
    check(
        "softmax cross-entropy",
        &|| {
            let (o, g) = ce.loss_and_grad(b, classes(&y)).unwrap();
            (g, o.reduced)
        },
        &|g| ce.loss_and_grad_into(b, classes(&y), g).map(|o| o.reduced),
    );
    let bce = BinaryCrossEntropyWithLogits::new();
    check(
        "binary cross-entropy",
        &|| {
            let (o, g) = bce.loss_and_grad(b, l).unwrap();
            (g, o.reduced)
        },
        &|g| bce.loss_and_grad_into(b, l, g).map(|o| o.reduced),
    );
    let sf = SigmoidFocalLoss::torchvision();
    check(
        "sigmoid focal",
        &|| {
            let (o, g) = sf.loss_and_grad(b, l).unwrap();
            (g, o.reduced)
        },
        &|g| sf.loss_and_grad_into(b, l, g).map(|o| o.reduced),
    );
    // The reduced-only variants: the same value and gradient without the
    // per-element values (f32 with hard labels too, the f32 path).
    let bce_sum = BinaryCrossEntropyWithLogits::new().with_reduction(Reduction::Sum);
    let sf_mean = SigmoidFocalLoss::torchvision().with_reduction(Reduction::Mean);
    check(
        "binary cross-entropy, reduced only",
        &|| {
            let (o, g) = bce_sum.loss_and_grad(b, l).unwrap();
            (g, o.reduced)
        },
        &|g| bce_sum.reduced_loss_and_grad_into(b, l, g).map(Some),
    );
    check(
        "sigmoid focal, reduced only",
        &|| {
            let (o, g) = sf_mean.loss_and_grad(b, l).unwrap();
            (g, o.reduced)
        },
        &|g| sf_mean.reduced_loss_and_grad_into(b, l, g).map(Some),
    );
    let (x32, y32) = (z.map(|v| v as f32), [1.0f32, 0.0, 0.0, 0.0, 1.0, 1.0]);
    let (b32, l32) = (Batch::new(&x32, 2, 3).unwrap(), Batch::new(&y32, 2, 3).unwrap());
    let mut g32 = [f32::NAN; 6];
    let v = sf_mean.reduced_loss_and_grad_into(b32, l32, &mut g32).unwrap();
    let (o, g) = sf_mean.loss_and_grad(b32, l32).unwrap();
    assert_eq!((Some(v), g32.to_vec()), (o.reduced, g));
    let v = bce_sum.reduced_loss_and_grad_into(b32, l32, &mut g32).unwrap();
    let (o, g) = bce_sum.loss_and_grad(b32, l32).unwrap();
    assert_eq!((Some(v), g32.to_vec()), (o.reduced, g));
    // Reduction::None has no single value.
    let mut buf = vec![0.0; z.len()];
    for err in [
        BinaryCrossEntropyWithLogits::new()
            .with_reduction(Reduction::None)
            .reduced_loss_and_grad_into(b, l, &mut buf)
            .unwrap_err(),
        SigmoidFocalLoss::torchvision()
            .reduced_loss_and_grad_into(b, l, &mut buf)
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::IncompatibleOptions(m) if m.contains("Reduction::None")),
            "{err}"
        );
    }
    let mf = SoftmaxFocalLoss::new(2.0).unwrap();
    check(
        "softmax focal",
        &|| {
            let (o, g) = mf.loss_and_grad(b, &y).unwrap();
            (g, o.reduced)
        },
        &|g| mf.loss_and_grad_into(b, &y, g).map(|o| o.reduced),
    );
    let bt = BiTemperedLogisticLoss::new(0.8, 1.2).unwrap();
    check(
        "bi-tempered",
        &|| {
            let (o, g) = bt.loss_and_grad(b, classes(&y)).unwrap();
            (g, o.reduced)
        },
        &|g| bt.loss_and_grad_into(b, classes(&y), g).map(|o| o.reduced),
    );
}
