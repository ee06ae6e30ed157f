//! Hostile inputs: named regressions from the field and shapes that once
//! aborted. Every entry point must return Ok or a typed error.

use entropic::{
    Batch, BiTemperedLogisticLoss, BinaryCrossEntropyWithLogits, KlDiv, Reduction, SigmoidFocalLoss,
    SoftmaxCrossEntropy, SoftmaxFocalLoss, Targets,
};

/// `n = 0` with a huge `c` is a valid empty batch (`n·c = 0`); no loss may
/// allocate a row buffer of `c` entries for it (that aborted before).
#[test]
fn empty_batch_with_huge_class_count_does_not_allocate_or_abort() {
    let empty: [f64; 0] = [];
    let b = Batch::new(&empty, 0, usize::MAX).unwrap();
    for r in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        let ce = SoftmaxCrossEntropy::new().with_reduction(r);
        let _ = ce.loss(b, Targets::<f64>::Classes(&[]));
        let _ = ce.loss_and_grad(b, Targets::<f64>::Classes(&[]));
        let _ = ce.definition(b, Targets::<f64>::Classes(&[]));
        let _ = ce.loss_and_grad(b, Targets::Probabilities(b));
        let _ = BinaryCrossEntropyWithLogits::new()
            .with_reduction(r)
            .loss_and_grad(b, b);
        let _ = KlDiv::new(r).loss_and_grad(b, b);
        let bt = BiTemperedLogisticLoss::new(0.5, 1.5).unwrap().with_reduction(r);
        let _ = bt.loss_and_grad(b, Targets::<f64>::Classes(&[]));
        let _ = bt.definition(b, Targets::<f64>::Classes(&[]));
        let _ = bt.binary_loss_and_grad(b, b);
        let _ = SigmoidFocalLoss::new(None, 2.0)
            .unwrap()
            .with_reduction(r)
            .loss_and_grad(b, b);
        let _ = SoftmaxFocalLoss::new(2.0)
            .unwrap()
            .with_reduction(r)
            .loss_and_grad(b, &[]);
    }
    // Sum over nothing is 0; a mean over nothing is an error, not NaN.
    let out = SoftmaxCrossEntropy::new()
        .with_reduction(Reduction::Sum)
        .loss(b, Targets::<f64>::Classes(&[]))
        .unwrap();
    assert_eq!(out.reduced, Some(0.0));
    assert!(
        SoftmaxCrossEntropy::new()
            .loss(b, Targets::<f64>::Classes(&[]))
            .is_err()
    );
}

mod no_nan_anywhere {
    use super::*;
    use proptest::prelude::*;

    /// Finite values over the whole range, with subnormals, zeros and −∞ masks.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1e4f64..1e4,
            2 => proptest::num::f64::NORMAL,
            1 => proptest::num::f64::SUBNORMAL,
            1 => Just(f64::MAX),
            1 => Just(-f64::MAX),
            1 => Just(0.0),
            1 => Just(f64::NEG_INFINITY),
        ]
    }

    fn label() -> impl Strategy<Value = f64> {
        prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0]
    }

    fn no_nan<T: entropic::Float>(out: &entropic::LossOutput<T>, g: &[T]) -> bool {
        out.unreduced
            .iter()
            .chain(&out.reduced)
            .chain(g)
            .all(|v| !v.to_f64().is_nan())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Every loss, f64 and f32, random shapes (c = 1 and n = 0 included)
        /// and values up to ±f64::MAX: Ok or a typed error, and an Ok result
        /// never holds NaN (in the loss or the gradient).
        #[test]
        fn every_loss_is_nan_free_on_nan_free_input(
            n in 0usize..4, c in 1usize..6,
            z in proptest::collection::vec(value(), 24),
            y in proptest::collection::vec(label(), 24),
            k in proptest::collection::vec(0usize..6, 4),
            gamma in prop_oneof![Just(0.0), Just(0.5), Just(2.0), 0.0f64..6.0],
            (t1, t2) in prop_oneof![Just((0.5, 1.5)), Just((0.8, 1.2)), Just((0.9, 0.6)), Just((1.0, 1.0)), Just((0.8, 2.0))],
            f32_path in any::<bool>(),
        ) {
            let (z, y) = (&z[..n * c], &y[..n * c]);
            let classes: Vec<usize> = k[..n].iter().map(|&k| k % c).collect();
            fn run<T: entropic::Float>(z: &[T], y: &[T], (n, c): (usize, usize), classes: &[usize], gamma: f64, (t1, t2): (f64, f64)) -> Result<(), TestCaseError> {
                let b = Batch::new(z, n, c).unwrap();
                let l = Batch::new(y, n, c).unwrap();
                let finite_logits = z.iter().all(|v| v.to_f64().is_finite());
                let reversed: Vec<T> = z.iter().rev().copied().collect();
                let mut outs = vec![
                    SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum).loss_and_grad(b, Targets::<f64>::Classes(classes)),
                    SoftmaxCrossEntropy::new().loss_and_grad(b, Targets::Probabilities(l)),
                    BinaryCrossEntropyWithLogits::new().loss_and_grad(b, l),
                    KlDiv::new(Reduction::Sum).loss_and_grad(b, l),
                    // Log targets: the logits reversed, so that extremes of
                    // both signs meet (e^t·(t − x) with e^t = 0, t − x = −∞).
                    KlDiv::new(Reduction::None).with_log_target(true).loss_and_grad(b, Batch::new(&reversed, n, c).unwrap()),
                    SoftmaxFocalLoss::new(gamma).unwrap().with_reduction(Reduction::Sum).loss_and_grad(b, classes),
                ];
                if finite_logits {
                    outs.push(SigmoidFocalLoss::new(Some(0.25), gamma).unwrap().loss_and_grad(b, l));
                }
                let bt = BiTemperedLogisticLoss::new(t1, t2).unwrap().with_reduction(Reduction::Sum);
                outs.push(bt.loss_and_grad(b, Targets::<f64>::Classes(classes)));
                outs.push(bt.binary_loss_and_grad(b, l));
                for (out, g) in outs.into_iter().flatten() {
                    prop_assert!(no_nan(&out, &g), "NaN in {:?} / {:?}", out, g);
                }
                Ok(())
            }
            if f32_path {
                let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
                let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
                run(&z32, &y32, (n, c), &classes, gamma, (t1, t2))?;
            } else {
                run(z, y, (n, c), &classes, gamma, (t1, t2))?;
            }
        }
    }
}

mod long_bi_tempered_rows {
    use super::*;
    use proptest::prelude::*;

    /// Mostly ordinary logits, some hostile ones that leave the row
    /// unconfident (subnormals, zeros, −∞ masks, huge negative logits), so
    /// that it takes the normalizer's series move (at least 64 classes, the
    /// top entries under half the mass).
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            12 => -8.0f64..8.0,
            1 => proptest::num::f64::SUBNORMAL,
            1 => Just(0.0),
            1 => Just(-f64::MAX),
            1 => Just(f64::NEG_INFINITY),
            1 => -1e300f64..-1e3,
        ]
    }

    /// As [`value`], with positive extremes as well (confident rows, the
    /// `f64` pass).
    fn any_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => value(),
            1 => proptest::num::f64::NORMAL,
            1 => Just(f64::MAX),
        ]
    }

    /// Kernel against definition on a long row, relative. Reason: the two
    /// solve λ differently (the kernel's series move, the reference's
    /// confirmed root) and agree to its rounding and to the last bits of
    /// each `ln p`; measured 1.75e-15 (8ε) over the 1 194 finite rows of
    /// 3 000 cases, so 64ε leaves a margin of 8. A row left at the `f32`
    /// start (the series move dropped) is about 1e-9 off, which fails.
    const LONG_ROW_REL: f64 = 64.0 * f64::EPSILON;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Rows of 64–96 classes (where the kernel's normalizer moves the row
        /// by a series instead of another pass, see `kernels::tempered`):
        /// Ok or a typed error, never NaN, and the kernel's loss is finite
        /// exactly where the definition's is, and then within
        /// [`LONG_ROW_REL`] of it.
        #[test]
        fn long_rows_are_nan_free_and_agree_with_the_definition(
            c in 64usize..97,
            z in prop_oneof![3 => proptest::collection::vec(value(), 96), 1 => proptest::collection::vec(any_value(), 96)],
            k in 0usize..96,
            smoothing in prop_oneof![Just(0.0), Just(0.1)],
            (t1, t2) in prop_oneof![Just((0.5, 1.5)), Just((0.8, 1.2)), Just((0.5, 0.8)), Just((0.8, 2.0)), Just((1.2, 0.7))],
            f32_path in any::<bool>(),
        ) {
            let z = &z[..c];
            let classes = [k % c];
            let bt = BiTemperedLogisticLoss::new(t1, t2).unwrap().with_label_smoothing(smoothing).unwrap().with_reduction(Reduction::Sum);
            let definition = bt.definition(Batch::new(z, 1, c).unwrap(), Targets::<f64>::Classes(&classes));
            let kernel = if f32_path {
                let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
                bt.loss_and_grad(Batch::new(&z32, 1, c).unwrap(), Targets::<f32>::Classes(&classes))
                    .map(|(o, g)| (f64::from(o.reduced.unwrap()), g.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()))
            } else {
                bt.loss_and_grad(Batch::new(z, 1, c).unwrap(), Targets::<f64>::Classes(&classes))
                    .map(|(o, g)| (o.reduced.unwrap(), g))
            };
            if let Ok((loss, g)) = &kernel {
                prop_assert!(!loss.is_nan() && g.iter().all(|v| !v.is_nan()), "NaN: {loss} / {g:?}");
            }
            if let (Ok((loss, _)), Ok(d), false) = (&kernel, &definition, f32_path) {
                let d = d.reduced.unwrap();
                prop_assert_eq!(loss.is_finite(), d.is_finite(), "kernel {} vs definition {}", loss, d);
                if d.is_finite() && d != 0.0 {
                    prop_assert!((loss - d).abs() <= LONG_ROW_REL * d.abs(), "kernel {} vs definition {}", loss, d);
                }
            }
        }
    }
}

/// Regression (cargo fuzz, losses target): a log target whose e^t underflows
/// (t = −9.2e32) against ln q = −∞ gave 0·∞ = NaN; the exact term is +∞.
#[test]
fn kl_div_underflowing_log_target_against_masked_input_is_infinite_not_nan() {
    for reduction in [Reduction::None, Reduction::Sum, Reduction::BatchMean] {
        let kl = KlDiv::new(reduction).with_log_target(true);
        let (out, g) = kl
            .loss_and_grad(
                Batch::new(&[f32::NEG_INFINITY], 1, 1).unwrap(),
                Batch::new(&[-9.2e32_f32], 1, 1).unwrap(),
            )
            .unwrap();
        assert_eq!(out.unreduced, vec![f32::INFINITY]);
        assert!(out.reduced.is_none_or(|v| v == f32::INFINITY));
        assert!(g.iter().all(|v| !v.is_nan()));
        let d = kl
            .definition(
                Batch::new(&[f64::NEG_INFINITY], 1, 1).unwrap(),
                Batch::new(&[-9.2e32], 1, 1).unwrap(),
            )
            .unwrap();
        assert_eq!(d.unreduced, vec![f64::INFINITY]);
    }
}

/// Regression (cargo fuzz, losses target): a log target t = 5.4e67 equal to
/// the input gave e^t·(t − x) = ∞·0 = NaN; the exact term is 0.
#[test]
fn kl_div_overflowing_log_target_equal_to_input_is_zero_not_nan() {
    let kl = KlDiv::new(Reduction::None).with_log_target(true);
    let x = [5.391_989_333_430_006_4e67, 1.0];
    let (out, _) = kl
        .loss_and_grad(Batch::new(&x, 1, 2).unwrap(), Batch::new(&x, 1, 2).unwrap())
        .unwrap();
    assert_eq!(out.unreduced, vec![0.0, 0.0]);
    let d = kl
        .definition(Batch::new(&x, 1, 2).unwrap(), Batch::new(&x, 1, 2).unwrap())
        .unwrap();
    assert_eq!(d.unreduced, vec![0.0, 0.0]);
}

/// Regression (cargo fuzz, losses target, sixth session): a log target
/// t = −1.6e308 (e^t underflows to 0) against an input x = 1.7e308 gave
/// e^t·(t − x) = 0·(−∞) = NaN; the exact term is below the range: 0.
#[test]
fn kl_div_underflowing_log_target_with_overflowing_difference_is_zero_not_nan() {
    let kl = KlDiv::new(Reduction::None).with_log_target(true);
    let x = [1.736_346_189_553_511_2e308_f64, 0.5];
    let t = [-1.629_307_700_261_388_1e308, -0.5];
    let (out, g) = kl
        .loss_and_grad(Batch::new(&x, 1, 2).unwrap(), Batch::new(&t, 1, 2).unwrap())
        .unwrap();
    assert_eq!(out.unreduced[0], 0.0);
    assert!(out.unreduced[1].is_finite());
    assert_eq!(g[0], 0.0);
    let d = kl
        .definition(Batch::new(&x, 1, 2).unwrap(), Batch::new(&t, 1, 2).unwrap())
        .unwrap();
    assert_eq!(d.unreduced[0], 0.0);
    // The same in f32 (the input rounds to +∞ there, an error; so a smaller pair).
    let (out32, _) = kl
        .loss_and_grad(
            Batch::new(&[3.0e38_f32], 1, 1).unwrap(),
            Batch::new(&[-3.0e38_f32], 1, 1).unwrap(),
        )
        .unwrap();
    assert_eq!(out32.unreduced, vec![0.0]);
}

/// Regression (cargo fuzz, losses target): t1 near 2 with a subnormal
/// smoothed label overflowed y·log_t(y) (tiny × huge) to −∞, and the loss
/// to −∞ or NaN; a Bregman divergence is ≥ 0, here finite.
#[test]
fn bi_tempered_with_t1_near_two_and_tiny_labels_is_never_negative_or_nan() {
    let a: [f64; 4] = [
        -5.817442067576509e304,
        -3.1050124950553314e231,
        -1.263964376637771e285,
        0.9117431643844608,
    ];
    let y = [1.9305918745272572e-197, 2.588500506541281e-43, 7.476394e-318, 0.0];
    let l = BiTemperedLogisticLoss::new(1.9999991697542896, 2.70456e-319)
        .unwrap()
        .with_label_smoothing(1.0321387494876e-310)
        .unwrap()
        .with_reduction(Reduction::None);
    let (out, g) = l
        .binary_loss_and_grad(Batch::new(&a, 4, 1).unwrap(), Batch::new(&y, 4, 1).unwrap())
        .unwrap();
    assert!(out.unreduced.iter().all(|v| !v.is_nan() && *v >= 0.0), "{out:?}");
    assert!(g.iter().all(|v| !v.is_nan()));
    assert!(out.unreduced[3].is_finite());
}

/// A NaN logit is a typed error naming its cell in every loss, in the
/// value-only path as in the gradient path, for f32 and f64 (the value-only
/// BCE row flagged NaN without any test reading the flag: two mutants of
/// `bce_row_loss` survived `cargo mutants`).
#[test]
fn nan_logits_are_errors_naming_the_cell_in_every_path() {
    fn check<T: entropic::Float>(z: &[T], label: &[T]) {
        let b = Batch::new(z, 2, 2).unwrap();
        let y = Batch::new(label, 2, 2).unwrap();
        let classes = [0usize, 1];
        let is_nan_at_1_0 = |r: entropic::Result<entropic::LossOutput<T>>, what: &str| {
            let err = r.expect_err(what);
            assert!(
                matches!(err, entropic::Error::NonFinite { at: entropic::Position::Cell { row: 1, col: 0 }, value, .. } if value.is_nan()),
                "{what}: {err}"
            );
        };
        let grad = |r: entropic::Result<(entropic::LossOutput<T>, Vec<T>)>| r.map(|(out, _)| out);
        let bce = BinaryCrossEntropyWithLogits::new();
        is_nan_at_1_0(bce.loss(b, y), "BCE loss");
        is_nan_at_1_0(grad(bce.loss_and_grad(b, y)), "BCE loss_and_grad");
        let focal = SigmoidFocalLoss::new(Some(0.25), 2.0).unwrap();
        is_nan_at_1_0(focal.loss(b, y), "sigmoid focal loss");
        is_nan_at_1_0(grad(focal.loss_and_grad(b, y)), "sigmoid focal loss_and_grad");
        let sfocal = SoftmaxFocalLoss::new(2.0).unwrap();
        is_nan_at_1_0(sfocal.loss(b, &classes), "softmax focal loss");
        is_nan_at_1_0(grad(sfocal.loss_and_grad(b, &classes)), "softmax focal loss_and_grad");
        let ce = SoftmaxCrossEntropy::new();
        is_nan_at_1_0(ce.loss(b, Targets::<f64>::Classes(&classes)), "CE loss");
        is_nan_at_1_0(
            grad(ce.loss_and_grad(b, Targets::<f64>::Classes(&classes))),
            "CE loss_and_grad",
        );
        let kl = KlDiv::new(Reduction::Sum);
        is_nan_at_1_0(kl.loss(b, y), "kl_div loss");
        is_nan_at_1_0(grad(kl.loss_and_grad(b, y)), "kl_div loss_and_grad");
        let bt = BiTemperedLogisticLoss::new(0.8, 1.2).unwrap();
        is_nan_at_1_0(bt.loss(b, Targets::<f64>::Classes(&classes)), "bi-tempered loss");
        is_nan_at_1_0(
            grad(bt.loss_and_grad(b, Targets::<f64>::Classes(&classes))),
            "bi-tempered loss_and_grad",
        );
    }
    check::<f64>(&[0.5, -1.0, f64::NAN, 2.0], &[1.0, 0.0, 0.0, 1.0]);
    check::<f32>(&[0.5, -1.0, f32::NAN, 2.0], &[1.0, 0.0, 0.0, 1.0]);
}

/// Logits `(f64::MAX, −f64::MAX)`: `z − max z` overflows to −∞ although the
/// logit is finite, and `−ln a = 2·f64::MAX` overflows too, but a
/// coefficient below ½ brings the exact loss back into range: label
/// smoothing 0.1 gives `0.05·2·MAX = 0.1·MAX`, a class weight of ¼ gives
/// `0.5·MAX`, softmax focal with `α = ¼` the same. They were +∞ (found by
/// the extensive finiteness run). Reason for the bound: two roundings of
/// products and one of a sum, 4 ε relative.
#[test]
fn logits_at_both_ends_of_the_range_give_the_finite_exact_loss() {
    const REL: f64 = 4.0 * f64::EPSILON;
    let z = [f64::MAX, -f64::MAX];
    let b = Batch::new(&z, 1, 2).unwrap();
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            got.is_finite() && (got - want).abs() <= REL * want,
            "{what}: {got} vs {want}"
        );
    };
    let none = Reduction::None;
    let ce = SoftmaxCrossEntropy::new().with_reduction(none);
    let smoothed = ce.clone().with_label_smoothing(0.1).unwrap();
    for r in [
        smoothed.loss(b, Targets::<f64>::Classes(&[0])).unwrap(),
        smoothed.definition(b, Targets::<f64>::Classes(&[0])).unwrap(),
    ] {
        close(r.unreduced[0], 0.1 * f64::MAX, "CE, smoothing 0.1");
    }
    let weighted = ce.with_weight(vec![1.0, 0.25]).unwrap();
    let (out, g) = weighted.loss_and_grad(b, Targets::<f64>::Classes(&[1])).unwrap();
    close(out.unreduced[0], 0.5 * f64::MAX, "CE, weight 1/4");
    assert_eq!(g, vec![0.25, -0.25]);
    let focal = SoftmaxFocalLoss::new(2.0)
        .unwrap()
        .with_reduction(none)
        .with_alpha(vec![1.0, 0.25])
        .unwrap();
    let (out, _) = focal.loss_and_grad(b, &[1]).unwrap();
    close(out.unreduced[0], 0.5 * f64::MAX, "softmax focal, alpha 1/4");
    close(
        focal.definition(b, &[1]).unwrap().unreduced[0],
        0.5 * f64::MAX,
        "softmax focal definition",
    );
    // Without the small coefficient the exact value is beyond the range.
    let plain = SoftmaxCrossEntropy::new().with_reduction(none);
    assert_eq!(
        plain.loss(b, Targets::<f64>::Classes(&[1])).unwrap().unreduced[0],
        f64::INFINITY
    );
}
