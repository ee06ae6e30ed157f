//! Claims about the focal losses: the γ = 0 reduction to cross-entropy and
//! the bound by cross-entropy (easy examples are down-weighted, never
//! up-weighted).

use entropic::{
    Batch, BinaryCrossEntropyWithLogits, Reduction, SigmoidFocalLoss, SoftmaxCrossEntropy, SoftmaxFocalLoss, Targets,
};

use crate::claims::Claim;
use crate::generate::Inputs;
use crate::tolerance::{Measured, Tally, Tolerance};

/// Per-element BCE and sigmoid-focal values at one random batch.
fn sigmoid_pair(inputs: &mut Inputs, gamma: f64) -> Option<(Vec<f64>, Vec<f64>, String)> {
    let c = 1 + inputs.below(8);
    let x = inputs.logits(c);
    let y: Vec<f64> = (0..c).map(|_| inputs.pick(&[0.0, 1.0, 0.3, 0.85])).collect();
    let b = Batch::new(&x, 1, c).ok()?;
    let l = Batch::new(&y, 1, c).ok()?;
    let bce = BinaryCrossEntropyWithLogits::new()
        .with_reduction(Reduction::None)
        .loss(b, l)
        .ok()?;
    let focal = SigmoidFocalLoss::new(None, gamma)
        .ok()?
        .with_reduction(Reduction::None)
        .loss(b, l)
        .ok()?;
    Some((focal.unreduced, bce.unreduced, format!("x {x:?} y {y:?} γ {gamma}")))
}

/// Per-row CE and softmax-focal values at one random batch.
fn softmax_pair(inputs: &mut Inputs, gamma: f64) -> Option<(Vec<f64>, Vec<f64>, String)> {
    let (n, c) = (1 + inputs.below(3), 1 + inputs.below(8));
    let z: Vec<f64> = (0..n).flat_map(|_| inputs.logits(c)).collect();
    let y: Vec<usize> = (0..n).map(|_| inputs.below(c)).collect();
    let b = Batch::new(&z, n, c).ok()?;
    let ce = SoftmaxCrossEntropy::new()
        .with_reduction(Reduction::None)
        .loss(b, Targets::<f64>::Classes(&y))
        .ok()?;
    let focal = SoftmaxFocalLoss::new(gamma)
        .ok()?
        .with_reduction(Reduction::None)
        .loss(b, &y)
        .ok()?;
    Some((focal.unreduced, ce.unreduced, format!("z {z:?} y {y:?} γ {gamma}")))
}

type Pair = fn(&mut Inputs, f64) -> Option<(Vec<f64>, Vec<f64>, String)>;

fn check_gamma_zero(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for pair in [sigmoid_pair as Pair, softmax_pair] {
        for _ in 0..inputs.count(100) {
            match pair(inputs, 0.0) {
                Some((f, ce, s)) => {
                    // Judged relative to max(ℓ, 1): CE's ln Σe has absolute error (c+1)ε.
                    let e = f.iter().zip(&ce).fold(Measured::ZERO, |m, (a, b)| {
                        m.max(Measured::scaled(*a, *b, a.abs().max(b.abs()).max(1.0)))
                    });
                    t.record(tol, e, || s);
                }
                None => t.require(false, || "evaluation failed".into()),
            }
        }
    }
    t
}

fn check_focal_below_ce(inputs: &mut Inputs, _tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for pair in [sigmoid_pair as Pair, softmax_pair] {
        for gamma in [0.5, 1.0, 2.0, 5.0] {
            for _ in 0..inputs.count(25) {
                match pair(inputs, gamma) {
                    Some((f, ce, s)) => {
                        let ok = f
                            .iter()
                            .zip(&ce)
                            .all(|(a, b)| *a <= b * (1.0 + 16.0 * f64::EPSILON) + 16.0 * f64::EPSILON);
                        t.require(ok, || format!("{s}: focal {f:?} > CE {ce:?}"));
                    }
                    None => t.require(false, || "evaluation failed".into()),
                }
            }
        }
    }
    t
}

/// The focal claims, in report order.
pub fn registry() -> Vec<Claim> {
    vec![
        Claim {
            id: "focal.gamma_zero_is_cross_entropy",
            statement: r"\gamma = 0,\ \text{no } \alpha:\ FL = \text{BCE (sigmoid)},\ FL = \text{CE (softmax)}",
            domain: "seeded batches, logits spread up to 1e4 with shifts to -1e6, soft and hard labels",
            tolerance: Tolerance::relative(
                16.0 * f64::EPSILON,
                "focal and CE compute −ln p through different but equivalent log-space forms; each has ≤ (c+1)ε \
                 absolute error from the log-sum-exp (c ≤ 8), judged relative to max(ℓ, 1)",
            ),
            check: check_gamma_zero,
        },
        Claim {
            id: "focal.at_most_cross_entropy",
            statement: r"\gamma \ge 0,\ \text{no } \alpha:\ 0 \le FL \le CE \text{ (the factor } (1-p_t)^\gamma \le 1)",
            domain: "γ ∈ {0.5, 1, 2, 5}, seeded batches as above",
            tolerance: Tolerance::relative(
                16.0 * f64::EPSILON,
                "an inequality allowed to fail by the rounding of both sides",
            ),
            check: check_focal_below_ce,
        },
    ]
}
