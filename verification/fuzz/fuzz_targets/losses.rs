//! Every loss's batch path (softmax CE, BCE, sigmoid and softmax focal, KL,
//! bi-tempered) on arbitrary shapes, values and options: Ok or a typed
//! error, never a panic; for inputs without NaN, no NaN in any Ok value or
//! gradient (the finiteness contract: +∞ only where exact).
#![no_main]

use arbitrary::Arbitrary;
use entropic::{
    Batch, BiTemperedLogisticLoss, BinaryCrossEntropyWithLogits, KlDiv, Reduction, SigmoidFocalLoss,
    SoftmaxCrossEntropy, SoftmaxFocalLoss, Targets,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    n: u8,
    c: u8,
    logits: Vec<f64>,
    targets: Vec<f64>,
    classes: Vec<u8>,
    smoothing: f64,
    t1: f64,
    t2: f64,
    alpha: f64,
    gamma: f64,
    use_alpha: bool,
    reduction: u8,
    use_f32: bool,
}

fn no_nan(xs: &[f64]) -> bool {
    xs.iter().all(|x| !x.is_nan())
}

fn check<T: entropic::Float>(inp: &Input, logits: &[T], targets: &[T]) {
    let (n, c) = (usize::from(inp.n % 8), usize::from(inp.c % 9));
    let reduction = [Reduction::None, Reduction::Sum, Reduction::Mean, Reduction::BatchMean][usize::from(inp.reduction % 4)];
    let classes: Vec<usize> = inp.classes.iter().map(|&k| usize::from(k % 10)).collect();
    let clean = no_nan(&logits.iter().map(|v| v.to_f64()).collect::<Vec<_>>())
        && no_nan(&targets.iter().map(|v| v.to_f64()).collect::<Vec<_>>());
    let (Ok(b), Ok(t)) = (Batch::new(logits, n, c), Batch::new(targets, n, c)) else { return };
    let ok = |r: entropic::Result<(entropic::LossOutput<T>, Vec<T>)>| {
        if let Ok((out, g)) = r {
            if clean {
                assert!(g.iter().all(|v| !v.to_f64().is_nan()), "NaN gradient");
                assert!(out.unreduced.iter().all(|v| !v.to_f64().is_nan()), "NaN loss");
            }
        }
    };
    if let Ok(ce) = SoftmaxCrossEntropy::new().with_reduction(reduction).with_label_smoothing(inp.smoothing) {
        ok(ce.loss_and_grad(b, Targets::<f64>::Classes(&classes)));
        ok(ce.clone().with_ignore_index(Some(0)).loss_and_grad(b, Targets::<f64>::Classes(&classes)));
        ok(ce.loss_and_grad(b, Targets::Probabilities(t)));
    }
    ok(BinaryCrossEntropyWithLogits::new().with_reduction(reduction).loss_and_grad(b, t));
    let alpha = inp.use_alpha.then_some(inp.alpha);
    if let Ok(focal) = SigmoidFocalLoss::new(alpha, inp.gamma) {
        ok(focal.with_reduction(reduction).loss_and_grad(b, t));
    }
    if let Ok(focal) = SoftmaxFocalLoss::new(inp.gamma) {
        let focal = focal.with_reduction(reduction).with_ignore_index(Some(0));
        ok(focal.loss_and_grad(b, &classes));
        if let Ok(weighted) = focal.clone().with_alpha(vec![inp.alpha; c]) {
            ok(weighted.loss_and_grad(b, &classes));
        }
    }
    ok(KlDiv::new(reduction).loss_and_grad(b, t));
    ok(KlDiv::new(reduction).with_log_target(true).loss_and_grad(b, t));
    if let Ok(bt) = BiTemperedLogisticLoss::new(inp.t1, inp.t2).and_then(|l| l.with_label_smoothing(inp.smoothing)) {
        let bt = bt.with_reduction(reduction).with_max_iterations(64).unwrap_or(bt);
        ok(bt.loss_and_grad(b, Targets::<f64>::Classes(&classes)));
        ok(bt.loss_and_grad(b, Targets::Probabilities(t)));
        ok(bt.binary_loss_and_grad(b, t));
    }
    for row in b.rows() {
        let _ = entropic::softmax(row);
        let _ = entropic::logsumexp(row);
        let _ = entropic::tempered_softmax(row, inp.t2);
    }
}

fuzz_target!(|inp: Input| {
    if inp.use_f32 {
        let l: Vec<f32> = inp.logits.iter().map(|&v| v as f32).collect();
        let t: Vec<f32> = inp.targets.iter().map(|&v| v as f32).collect();
        check(&inp, &l, &t);
    } else {
        check(&inp, &inp.logits, &inp.targets);
    }
});
