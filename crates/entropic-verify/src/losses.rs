//! Every loss and option combination, with the cases it is checked on.

use entropic::{
    BiTemperedLogisticLoss, BinaryCrossEntropyWithLogits, KlDiv, Reduction, SigmoidFocalLoss, SoftmaxCrossEntropy,
    SoftmaxFocalLoss,
};

use crate::ad::{check_errors, check_loss};
use crate::generate::Inputs;
use crate::loss::{Case, Loss, Target};
use crate::report::Outcome;
use crate::tolerance::Tolerance;

/// What kind of targets a loss takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Class indices.
    Classes,
    /// Probability rows (soft labels).
    Probabilities,
    /// Labels in [0, 1] per element.
    Binary,
    /// `kl_div`: the logits become log-probabilities, targets are probability rows.
    KlDiv,
}

/// One configured loss with a stable id and its statement.
#[derive(Debug, Clone)]
pub struct Configured {
    /// Id prefix, e.g. `ce.classes.smoothing.mean`.
    pub id: String,
    /// What is being differentiated.
    pub statement: String,
    /// The loss.
    pub loss: Loss,
    /// Its target kind.
    pub kind: TargetKind,
    /// The number of classes its per-class options are sized for (cases
    /// use exactly this `c`), or `None` for any `c`.
    pub classes: Option<usize>,
}

/// All option combinations of the cross-entropy family.
pub fn configurations() -> Vec<Configured> {
    let mut v = Vec::new();
    let reductions = [
        ("mean", Reduction::Mean),
        ("sum", Reduction::Sum),
        ("none", Reduction::None),
    ];
    for (rname, r) in reductions {
        for (oname, smoothing, weighted, ignore) in [
            ("plain", 0.0, false, false),
            ("smoothing", 0.2, false, false),
            ("weight", 0.0, true, false),
            ("ignore", 0.0, false, true),
            ("all", 0.1, true, true),
        ] {
            for kind in [TargetKind::Classes, TargetKind::Probabilities] {
                if ignore && kind == TargetKind::Probabilities {
                    continue;
                }
                let mut ce = SoftmaxCrossEntropy::new().with_reduction(r);
                if smoothing > 0.0 {
                    ce = ce.with_label_smoothing(smoothing).unwrap_or_default();
                }
                if weighted {
                    // Weights for up to 8 classes; cases use c ≤ 8.
                    ce = ce
                        .with_weight(vec![0.5, 2.0, 1.0, 0.25, 3.0, 1.5, 0.75, 1.25])
                        .unwrap_or_default();
                }
                if ignore {
                    ce = ce.with_ignore_index(Some(1));
                }
                let k = if kind == TargetKind::Classes {
                    "classes"
                } else {
                    "probs"
                };
                v.push(Configured {
                    id: format!("grad.ce.{k}.{oname}.{rname}"),
                    statement: format!("softmax cross-entropy ({k}, {oname}, {rname})"),
                    loss: Loss::SoftmaxCrossEntropy(ce),
                    kind,
                    classes: weighted.then_some(8),
                });
            }
        }
        for (oname, w, pw) in [
            ("plain", false, false),
            ("weight", true, false),
            ("pos_weight", false, true),
            ("both", true, true),
        ] {
            let mut l = BinaryCrossEntropyWithLogits::new().with_reduction(r);
            if w {
                l = l
                    .with_weight(vec![0.5, 2.0, 1.0, 0.25, 3.0, 1.5, 0.75, 1.25])
                    .unwrap_or_default();
            }
            if pw {
                l = l
                    .with_pos_weight(vec![3.0, 0.5, 1.0, 2.0, 0.1, 1.0, 4.0, 1.0])
                    .unwrap_or_default();
            }
            v.push(Configured {
                id: format!("grad.bce.{oname}.{rname}"),
                statement: format!("binary cross-entropy with logits ({oname}, {rname})"),
                loss: Loss::BinaryCrossEntropy(l),
                kind: TargetKind::Binary,
                classes: (w || pw).then_some(8),
            });
        }
    }
    for (rname, r) in [
        ("mean", Reduction::Mean),
        ("sum", Reduction::Sum),
        ("batchmean", Reduction::BatchMean),
        ("none", Reduction::None),
    ] {
        for log_target in [false, true] {
            v.push(Configured {
                id: format!(
                    "grad.kl_div.{}.{rname}",
                    if log_target { "log_target" } else { "prob_target" }
                ),
                statement: format!("kl_div (log_target = {log_target}, {rname})"),
                loss: Loss::KlDiv(KlDiv::new(r).with_log_target(log_target)),
                kind: TargetKind::KlDiv,
                classes: None,
            });
        }
    }
    for gamma in FOCAL_GAMMAS {
        for (aname, alpha) in [("no_alpha", None), ("alpha", Some(0.25))] {
            for (rname, r) in [
                ("mean", Reduction::Mean),
                ("sum", Reduction::Sum),
                ("none", Reduction::None),
            ] {
                if let Ok(l) = SigmoidFocalLoss::new(alpha, gamma) {
                    v.push(Configured {
                        id: format!("grad.sigmoid_focal.gamma_{gamma}.{aname}.{rname}"),
                        statement: format!("sigmoid focal loss (γ = {gamma}, α = {alpha:?}, {rname})"),
                        loss: Loss::SigmoidFocal(l.with_reduction(r)),
                        kind: TargetKind::Binary,
                        classes: None,
                    });
                }
            }
            let mut l = match SoftmaxFocalLoss::new(gamma) {
                Ok(l) => l,
                Err(_) => continue,
            };
            if alpha.is_some() {
                l = match l.with_alpha(vec![0.25, 0.5, 0.75, 1.0, 0.1, 0.9, 0.6, 0.3]) {
                    Ok(l) => l,
                    Err(_) => continue,
                };
            }
            for (iname, ignore) in [("plain", None), ("ignore", Some(1))] {
                v.push(Configured {
                    id: format!("grad.softmax_focal.gamma_{gamma}.{aname}.{iname}"),
                    statement: format!(
                        "softmax focal loss (γ = {gamma}, per-class α: {}, {iname}, mean)",
                        alpha.is_some()
                    ),
                    loss: Loss::SoftmaxFocal(l.clone().with_ignore_index(ignore)),
                    kind: TargetKind::Classes,
                    classes: alpha.map(|_| 8),
                });
            }
        }
    }
    for (t1, t2) in BI_TEMPERED_PAIRS {
        for (sname, smoothing) in [("plain", 0.0), ("smoothing", 0.1)] {
            for kind in [TargetKind::Classes, TargetKind::Probabilities] {
                let Ok(l) = BiTemperedLogisticLoss::new(t1, t2).and_then(|l| l.with_label_smoothing(smoothing)) else {
                    continue;
                };
                let k = if kind == TargetKind::Classes {
                    "classes"
                } else {
                    "probs"
                };
                v.push(Configured {
                    id: format!("grad.bi_tempered.t1_{t1}.t2_{t2}.{k}.{sname}"),
                    statement: format!("bi-tempered logistic loss (t1 = {t1}, t2 = {t2}, {k}, {sname}, mean)"),
                    loss: Loss::BiTempered(l),
                    kind,
                    // Label smoothing needs at least 2 classes.
                    classes: (smoothing > 0.0).then_some(5),
                });
            }
        }
        if let Ok(l) = BiTemperedLogisticLoss::new(t1, t2) {
            v.push(Configured {
                id: format!("grad.bi_tempered_binary.t1_{t1}.t2_{t2}"),
                statement: format!("binary bi-tempered logistic loss (t1 = {t1}, t2 = {t2}, mean)"),
                loss: Loss::BiTemperedBinary(l),
                kind: TargetKind::Binary,
                classes: None,
            });
        }
    }
    v
}

/// Focusing parameters of the focal-loss gradient checks (γ < 1 is where
/// naive autodiff of the power fails).
pub const FOCAL_GAMMAS: [f64; 5] = [0.0, 0.5, 1.0, 2.0, 5.0];

/// Temperature pairs `(t1, t2)` of the gradient checks: bounded and
/// unbounded, heavy-tailed and finite-support, t2 < t1, the paper's values.
pub const BI_TEMPERED_PAIRS: [(f64, f64); 7] = [
    (0.5, 1.5),
    (0.8, 1.2),
    (1.0, 1.0),
    (0.2, 4.0),
    (0.9, 0.6),
    (0.5, 0.8),
    (0.8, 2.0),
];

/// Builds a case of the given kind from logits.
pub fn case(inputs: &mut Inputs, kind: TargetKind, n: usize, c: usize, logits: Vec<f64>) -> Case {
    match kind {
        TargetKind::Classes => {
            let mut y: Vec<usize> = (0..n).map(|_| inputs.below(c)).collect();
            // Class 1 is the ignored class of some configurations: keep one
            // row not ignored so that a mean has something to average.
            if c > 1 && y.iter().all(|&k| k == 1) {
                y[0] = 0;
            }
            Case {
                n,
                c,
                logits,
                target: Target::Classes(y),
            }
        }
        TargetKind::Probabilities => {
            let p = (0..n).flat_map(|_| inputs.simplex(c, true)).collect();
            Case {
                n,
                c,
                logits,
                target: Target::Dense(p),
            }
        }
        TargetKind::Binary => {
            // Every other case has hard labels only: the f32 kernels take
            // their own path there (a soft label sends a whole group of rows
            // to the f64 path).
            let pool: &[f64] = if inputs.below(2) == 0 {
                &[0.0, 1.0]
            } else {
                &[0.0, 1.0, 0.3, 0.85]
            };
            let y = (0..n * c).map(|_| inputs.pick(pool)).collect();
            Case {
                n,
                c,
                logits,
                target: Target::Dense(y),
            }
        }
        TargetKind::KlDiv => {
            let ln_q: Vec<f64> = logits
                .chunks(c)
                .flat_map(|row| entropic::log_softmax(row).unwrap_or_else(|_| vec![0.0; row.len()]))
                .collect();
            let p = (0..n).flat_map(|_| inputs.simplex(c, true)).collect();
            Case {
                n,
                c,
                logits: ln_q,
                target: Target::Dense(p),
            }
        }
    }
}

/// Random cases at any magnitude and moderate cases for finite differences;
/// `classes` fixes `c` (edge rows are then repeated cyclically to that length).
pub fn cases(inputs: &mut Inputs, kind: TargetKind, classes: Option<usize>, k: usize) -> (Vec<Case>, Vec<Case>) {
    let mut wide = Vec::new();
    let mut moderate = Vec::new();
    // Edge rows, one at a time.
    for row in Inputs::edge_logit_rows() {
        let row: Vec<f64> = match classes {
            Some(c) => row.iter().cycle().take(c).copied().collect(),
            None => row,
        };
        let c = row.len();
        if c > 8 || (kind == TargetKind::Probabilities && row.iter().any(|z| z.is_infinite())) {
            continue;
        }
        if kind == TargetKind::Binary && row.iter().any(|z| z.abs() > 1e300) {
            continue;
        }
        wide.push(case(inputs, kind, 1, c, row));
    }
    for _ in 0..inputs.count(k) {
        let (n, c) = (1 + inputs.below(3), classes.unwrap_or_else(|| 1 + inputs.below(8)));
        let logits: Vec<f64> = (0..n).flat_map(|_| inputs.logits(c)).collect();
        wide.push(case(inputs, kind, n, c, logits));
        let logits: Vec<f64> = (0..n).flat_map(|_| inputs.moderate_logits(c)).collect();
        moderate.push(case(inputs, kind, n, c, logits));
    }
    (wide, moderate)
}

/// Bad inputs every loss must reject the same way on every path.
pub fn bad_cases(kind: TargetKind) -> Vec<Case> {
    let dense = |v: Vec<f64>| Target::Dense(v);
    match kind {
        TargetKind::Classes => vec![
            Case {
                n: 1,
                c: 2,
                logits: vec![0.0, f64::NAN],
                target: Target::Classes(vec![0]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![0.0, f64::INFINITY],
                target: Target::Classes(vec![0]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![0.0, 1.0],
                target: Target::Classes(vec![9]),
            },
            Case {
                n: 2,
                c: 2,
                logits: vec![0.0, 1.0, 2.0, 3.0],
                target: Target::Classes(vec![0]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![f64::NEG_INFINITY; 2],
                target: Target::Classes(vec![0]),
            },
        ],
        TargetKind::Probabilities | TargetKind::KlDiv => vec![
            Case {
                n: 1,
                c: 2,
                logits: vec![0.0, f64::NAN],
                target: dense(vec![0.5, 0.5]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![-1.0, -1.0],
                target: dense(vec![if kind == TargetKind::KlDiv { f64::INFINITY } else { -0.5 }, 1.5]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![-1.0, -1.0],
                target: dense(vec![0.5]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![-1.0, -1.0],
                target: dense(vec![f64::NAN, 0.5]),
            },
        ],
        TargetKind::Binary => vec![
            Case {
                n: 1,
                c: 2,
                logits: vec![0.0, f64::NAN],
                target: dense(vec![0.5, 0.5]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![0.0, 1.0],
                target: dense(vec![0.5, 1.5]),
            },
            Case {
                n: 1,
                c: 2,
                logits: vec![0.0, 1.0],
                target: dense(vec![0.5]),
            },
        ],
    }
}

/// Agreement on errors between plain and dual paths.
pub const ERRORS_AGREE: Tolerance = Tolerance::ulps(
    0.0,
    "an error is a yes/no outcome: the kernels and the dual definition must reject each bad input with the same message",
);

/// Runs `check_loss` and `check_errors` on every configuration.
pub fn run_all(inputs: &mut Inputs) -> Vec<Outcome> {
    let mut out = Vec::new();
    for cfg in configurations() {
        let (wide, moderate) = cases(inputs, cfg.kind, cfg.classes, 12);
        let checks = check_loss(&cfg.loss, &wide, &moderate);
        out.extend(checks.outcomes(&cfg.id, &cfg.statement, "edge rows, seeded random batches (n ≤ 3, c ≤ 8, spread ≤ 1e4, shifts to -1e6); moderate |z| ≤ 8 for differences"));
        let tally = check_errors(&cfg.loss, &bad_cases(cfg.kind));
        out.push(Outcome::from_tally(
            format!("{}.errors", cfg.id),
            format!("kernels and dual definition reject the same inputs: {}", cfg.statement),
            "NaN/+inf logits, out-of-range classes, bad shapes, invalid targets",
            ERRORS_AGREE,
            tally,
        ));
    }
    out
}
