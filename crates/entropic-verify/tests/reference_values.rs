//! Reference values at canonical inputs (including extreme ones), printed
//! to 17 significant digits and kept as insta snapshots: any change in a
//! value or gradient fails CI (`INSTA_UPDATE=no`).

use entropic::{Batch, BinaryCrossEntropyWithLogits, KlDiv, Reduction, SoftmaxCrossEntropy, Targets};
use std::fmt::Write;

fn fmt(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.16e}")).collect::<Vec<_>>().join(", ")
}

fn fmt32(v: &[f32]) -> String {
    v.iter().map(|x| format!("{x:.8e}")).collect::<Vec<_>>().join(", ")
}

#[test]
fn information_functions() {
    let mut s = String::new();
    for p in [
        [0.5, 0.5, 0.0, 0.0],
        [0.1, 0.2, 0.3, 0.4],
        [1.0, 0.0, 0.0, 0.0],
        [0.25; 4],
    ] {
        let q = [0.4, 0.3, 0.2, 0.1];
        let _ = writeln!(
            s,
            "p=[{}]\n  entropy {:.16e}\n  entropy_bits {:.16e}\n  cross_entropy(p,q) {:.16e}\n  kl(p||q) {:.16e}\n  js(p,q) {:.16e}\n  d kl/dq [{}]",
            fmt(&p),
            entropic::entropy(&p).unwrap(),
            entropic::Base::Bits.from_nats(entropic::entropy(&p).unwrap()),
            entropic::cross_entropy(&p, &q).unwrap(),
            entropic::kl_divergence(&p, &q).unwrap(),
            entropic::js_divergence(&p, &q).unwrap(),
            fmt(&entropic::kl_divergence_grad(&p, &q).unwrap().1),
        );
    }
    for p in [1.0, 0.5, 1e-300, 0.0] {
        let _ = writeln!(s, "information({p:e}) = {:.16e}", entropic::information(p).unwrap());
    }
    insta::assert_snapshot!(s);
}

#[test]
fn softmax_family() {
    let mut s = String::new();
    for row in [
        vec![1.0, 2.0, 3.0],
        vec![1e8, 1e8],
        vec![1e300, -1e300, 0.0],
        vec![0.0, f64::NEG_INFINITY, -1.0],
        vec![-745.0, 0.0, 709.0],
    ] {
        let _ = writeln!(
            s,
            "z=[{}]\n  logsumexp {:.16e}\n  softmax [{}]\n  log_softmax [{}]",
            fmt(&row),
            entropic::logsumexp(&row).unwrap(),
            fmt(&entropic::softmax(&row).unwrap()),
            fmt(&entropic::log_softmax(&row).unwrap())
        );
    }
    insta::assert_snapshot!(s);
}

#[test]
fn cross_entropy_family_losses() {
    let mut s = String::new();
    let z = [
        2.0,
        1.0,
        0.1,
        -1.0,
        0.5,
        2.5,
        0.3,
        0.0,
        1e8,
        1e8,
        1e8,
        f64::NEG_INFINITY,
    ];
    let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
    let y = [0usize, 1, 2];
    for (name, ce) in [
        ("mean", SoftmaxCrossEntropy::new()),
        (
            "sum smoothing 0.1",
            SoftmaxCrossEntropy::new()
                .with_reduction(Reduction::Sum)
                .with_label_smoothing(0.1)
                .unwrap(),
        ),
        (
            "weighted mean",
            SoftmaxCrossEntropy::new()
                .with_weight(vec![1.0, 2.0, 0.5, 1.0])
                .unwrap(),
        ),
        (
            "ignore 1, none",
            SoftmaxCrossEntropy::new()
                .with_ignore_index(Some(1))
                .with_reduction(Reduction::None),
        ),
    ] {
        let (o, g) = ce
            .loss_and_grad(Batch::new(&z, 3, 4).unwrap(), Targets::<f64>::Classes(&y))
            .unwrap();
        let (o32, g32) = ce
            .loss_and_grad(Batch::new(&z32, 3, 4).unwrap(), Targets::<f32>::Classes(&y))
            .unwrap();
        let _ = writeln!(
            s,
            "softmax_cross_entropy {name}\n  unreduced [{}]\n  reduced {:?}\n  grad [{}]\n  f32 unreduced [{}]\n  f32 grad [{}]",
            fmt(&o.unreduced),
            o.reduced.map(|v| format!("{v:.16e}")),
            fmt(&g),
            fmt32(&o32.unreduced),
            fmt32(&g32)
        );
    }
    let p = [0.7, 0.2, 0.1, 0.0, 0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 1.0, 0.0];
    let (o, g) = SoftmaxCrossEntropy::new()
        .loss_and_grad(
            Batch::new(&z, 3, 4).unwrap(),
            Targets::Probabilities(Batch::new(&p, 3, 4).unwrap()),
        )
        .unwrap();
    let _ = writeln!(
        s,
        "softmax_cross_entropy probabilities mean\n  unreduced [{}]\n  grad [{}]",
        fmt(&o.unreduced),
        fmt(&g)
    );

    let x = [1e9, -1e9, 0.0, 3.5, -36.0, 40.0];
    let l = [0.0, 1.0, 0.3, 1.0, 0.9, 0.0];
    let bce = BinaryCrossEntropyWithLogits::new()
        .with_pos_weight(vec![2.0, 0.5, 1.0])
        .unwrap()
        .with_reduction(Reduction::None);
    let (o, g) = bce
        .loss_and_grad(Batch::new(&x, 2, 3).unwrap(), Batch::new(&l, 2, 3).unwrap())
        .unwrap();
    let _ = writeln!(
        s,
        "binary_cross_entropy_with_logits pos_weight [2, 0.5, 1], none\n  unreduced [{}]\n  grad [{}]",
        fmt(&o.unreduced),
        fmt(&g)
    );

    let lq = entropic::log_softmax(&[0.5, 1.5, -0.5, 0.0]).unwrap();
    let pt = [0.1, 0.6, 0.0, 0.3];
    for (name, kl) in [
        ("batchmean", KlDiv::new(Reduction::BatchMean)),
        ("mean", KlDiv::new(Reduction::Mean)),
    ] {
        let (o, g) = kl
            .loss_and_grad(Batch::new(&lq, 1, 4).unwrap(), Batch::new(&pt, 1, 4).unwrap())
            .unwrap();
        let _ = writeln!(
            s,
            "kl_div {name}\n  reduced {:?}\n  grad [{}]",
            o.reduced.map(|v| format!("{v:.16e}")),
            fmt(&g)
        );
    }
    insta::assert_snapshot!(s);
}
