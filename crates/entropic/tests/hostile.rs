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
