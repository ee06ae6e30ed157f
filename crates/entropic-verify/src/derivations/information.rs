//! Pages: information content and entropy; KL divergence and cross-entropy.

use super::common::{info_scale, simplex_pairs, xlnx};
use super::engine::{Case, Derivation, DocsError, Domain, Mistake, Step};
use super::render::Md;
use crate::claims::{INEQUALITY, INFO_IDENTITY, equal_on_pairs};
use crate::generate::Inputs;
use crate::tolerance::{Tally, Tolerance};

fn one(v: f64) -> Option<Vec<f64>> {
    Some(vec![v])
}

const PAIRS: Domain = Domain {
    description: "pairs of probability vectors $P, Q$ of length 1 to 64 ($P$ with zero entries, $Q > 0$), \
                  the verifier's `simplex_pairs`",
    cases: simplex_pairs,
};

fn scalar_pairs(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let edge = [(1.0, 1.0), (0.5, 0.5), (1e-150, 1e-150), (1.0, 1e-300), (0.3, 0.7)]
        .iter()
        .map(|&(x, t)| Case {
            x,
            t,
            ..Case::default()
        })
        .collect();
    let random = (0..100)
        .map(|_| Case {
            x: inputs.log_uniform(1e-12, 1.0),
            t: inputs.log_uniform(1e-12, 1.0),
            ..Case::default()
        })
        .collect();
    (edge, random)
}

/// `I(pq) = I(p) + I(q)`.
pub const INFORMATION_ADDITIVE: Derivation = Derivation {
    id: "information.additive",
    title: "Information adds over independent events",
    domain: Domain {
        description: "probabilities $p$ (field `x`) and $q$ (field `t`) in $[10^{-300}, 1]$ with $pq$ a normal \
                      number: 5 edge pairs and seeded log-uniform ones in $[10^{-12}, 1]$",
        cases: scalar_pairs,
    },
    tolerance: Tolerance::relative(
        4.0 * f64::EPSILON,
        "three logarithms (each within 1 ulp) and one addition, relative to max(1, |I|)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"I(pq)",
            "The information of two independent events that happen together, with $I(p) = -\\ln p$ \
             (`entropic::information`).",
            |c| one(entropic::information(c.x * c.t).ok()?),
        ),
        Step::eq(r"-\ln(pq)", "Definition of $I$.", |c| one(-(c.x * c.t).ln())),
        Step::eq(r"-\ln p - \ln q", "The logarithm turns products into sums.", |c| {
            one(-c.x.ln() - c.t.ln())
        }),
        Step::eq(
            r"I(p) + I(q)",
            "Definition of $I$ again, evaluated by `entropic::information`.",
            |c| one(entropic::information(c.x).ok()? + entropic::information(c.t).ok()?),
        ),
    ],
};

/// `H(P) = E[I] = −Σ p ln p = ln 2 · H_2`.
pub const ENTROPY: Derivation = Derivation {
    id: "entropy.expectation",
    title: "Entropy is the expected information",
    domain: PAIRS,
    tolerance: INFO_IDENTITY,
    scale: info_scale,
    steps: &[
        Step::eq(
            r"H(P)",
            "The entropy as computed by `entropic::entropy` (in nats).",
            |c| one(entropic::entropy(&c.p).ok()?),
        ),
        Step::eq(
            r"\mathbb{E}_{X \sim P}\left[I(p_X)\right] = \sum_{i:\,p_i > 0} p_i\, I(p_i)",
            "Entropy is defined as the expected information of the outcome. Outcomes with $p_i = 0$ never \
             happen, so they are left out of the expectation (this is the convention $0 \\ln 0 = 0$).",
            |c| {
                let mut s = 0.0;
                for &p in c.p.iter().filter(|&&p| p > 0.0) {
                    s += p * entropic::information(p).ok()?;
                }
                one(s)
            },
        ),
        Step::eq(
            r"-\sum_{i:\,p_i > 0} p_i \ln p_i",
            "Substitute $I(p) = -\\ln p$.",
            |c| one(-c.p.iter().map(|&p| xlnx(p)).sum::<f64>()),
        ),
        Step::eq(
            r"\ln 2 \cdot \left(-\sum_{i:\,p_i > 0} p_i \log_2 p_i\right) = \ln 2 \cdot H_2(P)",
            "Change of base, $\\ln p = \\ln 2 \\cdot \\log_2 p$: the entropy in bits is the entropy in nats \
             divided by $\\ln 2$.",
            |c| one(std::f64::consts::LN_2 * -c.p.iter().filter(|&&p| p > 0.0).map(|&p| p * p.log2()).sum::<f64>()),
        ),
    ],
};

/// `D_KL = H(P, Q) − H(P)`.
pub const KL_DECOMPOSITION: Derivation = Derivation {
    id: "kl.cross_entropy_minus_entropy",
    title: "KL divergence = cross-entropy − entropy",
    domain: PAIRS,
    tolerance: INFO_IDENTITY,
    scale: info_scale,
    steps: &[
        Step::eq(r"D_{KL}(P \| Q)", "As computed by `entropic::kl_divergence`.", |c| {
            one(entropic::kl_divergence(&c.p, &c.q).ok()?)
        }),
        Step::eq(
            r"\sum_{i:\,p_i > 0} p_i \ln \frac{p_i}{q_i}",
            "Definition: the expected log-ratio under $P$ (terms with $p_i = 0$ vanish).",
            |c| {
                one(c
                    .p
                    .iter()
                    .zip(&c.q)
                    .filter(|(p, _)| **p > 0.0)
                    .map(|(p, q)| p * (p / q).ln())
                    .sum())
            },
        ),
        Step::eq(
            r"\sum_{i:\,p_i > 0} p_i \ln p_i - \sum_{i:\,p_i > 0} p_i \ln q_i",
            "The logarithm of a quotient is a difference of logarithms; split the sum.",
            |c| {
                let a: f64 = c.p.iter().map(|&p| xlnx(p)).sum();
                let b: f64 =
                    c.p.iter()
                        .zip(&c.q)
                        .filter(|(p, _)| **p > 0.0)
                        .map(|(p, q)| p * q.ln())
                        .sum();
                one(a - b)
            },
        ),
        Step::eq(
            r"H(P, Q) - H(P)",
            "The second sum is minus the cross-entropy $H(P, Q) = -\\sum_i p_i \\ln q_i$, the first is minus \
             the entropy; evaluated by `entropic::cross_entropy` and `entropic::entropy`.",
            |c| one(entropic::cross_entropy(&c.p, &c.q).ok()? - entropic::entropy(&c.p).ok()?),
        ),
    ],
};

fn gibbs_sum(c: &Case, f: impl Fn(f64, f64) -> f64) -> f64 {
    c.p.iter()
        .zip(&c.q)
        .filter(|(p, _)| **p > 0.0)
        .map(|(&p, &q)| f(p, q))
        .sum()
}

/// Gibbs' inequality by `ln x ≤ x − 1`.
pub const GIBBS: Derivation = Derivation {
    id: "kl.gibbs",
    title: "Gibbs' inequality: $D_{KL} \\ge 0$",
    domain: PAIRS,
    tolerance: INEQUALITY,
    scale: |c| info_scale(c).max(1.0),
    steps: &[
        Step::eq(
            r"-D_{KL}(P \| Q)",
            "Start from minus the divergence (`entropic::kl_divergence`).",
            |c| one(-entropic::kl_divergence(&c.p, &c.q).ok()?),
        ),
        Step::eq(
            r"\sum_{i:\,p_i > 0} p_i \ln \frac{q_i}{p_i}",
            "Definition, with the ratio turned over (which flips the sign of the logarithm).",
            |c| one(gibbs_sum(c, |p, q| p * (q / p).ln())),
        ),
        Step::le(
            r"\sum_{i:\,p_i > 0} p_i \left(\frac{q_i}{p_i} - 1\right)",
            "$\\ln x \\le x - 1$ for every $x > 0$ (the tangent of the concave logarithm at $x = 1$), with \
             equality only at $x = 1$.",
            |c| one(gibbs_sum(c, |p, q| p * (q / p - 1.0))),
        ),
        Step::eq(
            r"\sum_{i:\,p_i > 0} q_i - \sum_{i:\,p_i > 0} p_i = \sum_{i:\,p_i > 0} q_i - 1",
            "Multiply out; the $p_i$ sum to 1.",
            |c| one(gibbs_sum(c, |_, q| q) - 1.0),
        ),
        Step::le(
            r"0",
            "The $q_i$ over part of the outcomes sum to at most 1. Hence $D_{KL}(P \\| Q) \\ge 0$, with \
             equality only when every ratio $q_i/p_i$ is 1, i.e. $P = Q$.",
            |_| one(0.0),
        ),
    ],
};

fn run_pairs(
    inputs: &mut Inputs,
    lhs: fn(&[f64], &[f64]) -> Option<f64>,
    rhs: fn(&[f64], &[f64]) -> Option<f64>,
) -> Tally {
    equal_on_pairs(inputs, &INFO_IDENTITY, &lhs, &rhs)
}

fn entropy_of(p: &[f64], _: &[f64]) -> Option<f64> {
    entropic::entropy(p).ok()
}

fn kl_of(p: &[f64], q: &[f64]) -> Option<f64> {
    entropic::kl_divergence(p, q).ok()
}

fn ce_of(p: &[f64], q: &[f64]) -> Option<f64> {
    entropic::cross_entropy(p, q).ok()
}

const ENTROPY_MISTAKES: &[Mistake] = &[
    Mistake {
        id: "entropy.sign",
        why: "Entropy written without its minus sign",
        wrong: r"H(P) = \sum_i p_i \ln p_i",
        right: r"H(P) = -\sum_i p_i \ln p_i",
        family: "`equal_on_pairs` against `entropic::entropy` (the family of `entropy.expectation`)",
        run: |i| run_pairs(i, entropy_of, |p, _| Some(p.iter().map(|&x| xlnx(x)).sum())),
    },
    Mistake {
        id: "entropy.zero_log_zero",
        why: "$0 \\ln 0$ evaluated literally (a zero-probability outcome multiplies $-\\infty$)",
        wrong: r"H(P) = -\sum_{i} p_i \ln p_i \quad \text{summed over every } i \text{ in floating point}",
        right: r"H(P) = -\sum_{i:\,p_i > 0} p_i \ln p_i \quad (0 \ln 0 = 0)",
        family: "`equal_on_pairs` against `entropic::entropy`",
        run: |i| run_pairs(i, entropy_of, |p, _| Some(-p.iter().map(|&x| x * x.ln()).sum::<f64>())),
    },
];

const KL_MISTAKES: &[Mistake] = &[
    Mistake {
        id: "kl.ratio_of_logs",
        why: "KL divergence written as a ratio of logarithms, $\\sum P \\log P / \\log Q$",
        wrong: r"D_{KL}(P \| Q) = \sum_i p_i \frac{\ln p_i}{\ln q_i}",
        right: r"D_{KL}(P \| Q) = \sum_i p_i \ln \frac{p_i}{q_i}",
        family: "`equal_on_pairs` against `entropic::kl_divergence` (the family of `cross_entropy.decomposition`)",
        run: |i| {
            run_pairs(i, kl_of, |p, q| {
                Some(
                    p.iter()
                        .zip(q)
                        .filter(|(a, _)| **a > 0.0)
                        .map(|(a, b)| a * a.ln() / b.ln())
                        .sum(),
                )
            })
        },
    },
    Mistake {
        id: "cross_entropy.missing_minus",
        why: "\"$\\sum P \\log Q$ is the cross-entropy\" (the minus sign is missing)",
        wrong: r"H(P, Q) = \sum_i p_i \ln q_i",
        right: r"H(P, Q) = -\sum_i p_i \ln q_i",
        family: "`equal_on_pairs` against `entropic::cross_entropy`",
        run: |i| {
            run_pairs(i, ce_of, |p, q| {
                Some(
                    p.iter()
                        .zip(q)
                        .filter(|(a, _)| **a > 0.0)
                        .map(|(a, b)| a * b.ln())
                        .sum(),
                )
            })
        },
    },
    Mistake {
        id: "cross_entropy.mixed_indices",
        why: "Cross-entropy with mixed indices, $-\\sum_j y_i \\ln a_j$ (the label's index is not the summed one, \
              so the only reading sums over both)",
        wrong: r"H(P, Q) = -\sum_i \sum_j p_i \ln q_j = -\sum_j \ln q_j",
        right: r"H(P, Q) = -\sum_j p_j \ln q_j",
        family: "`equal_on_pairs` against `entropic::cross_entropy`",
        run: |i| {
            run_pairs(i, ce_of, |p, q| {
                Some(-p.iter().map(|a| q.iter().map(|b| a * b.ln()).sum::<f64>()).sum::<f64>())
            })
        },
    },
    Mistake {
        id: "kl.entropy_minus_cross_entropy",
        why: "KL divergence as entropy minus cross-entropy (the decomposition turned around)",
        wrong: r"D_{KL}(P \| Q) = H(P) - H(P, Q)",
        right: r"D_{KL}(P \| Q) = H(P, Q) - H(P)",
        family: "`equal_on_pairs` against `entropic::kl_divergence`",
        run: |i| {
            run_pairs(i, kl_of, |p, q| {
                Some(entropic::entropy(p).ok()? - entropic::cross_entropy(p, q).ok()?)
            })
        },
    },
    Mistake {
        id: "kl.symmetric",
        why: "KL divergence treated as symmetric (a distance)",
        wrong: r"D_{KL}(P \| Q) = D_{KL}(Q \| P)",
        right: r"D_{KL}(P \| Q) \ne D_{KL}(Q \| P) \text{ in general}",
        family: "`equal_on_pairs` against `entropic::kl_divergence`",
        run: |i| run_pairs(i, kl_of, |p, q| entropic::kl_divergence(q, p).ok()),
    },
];

/// `information.md`.
pub fn information_page() -> Result<String, DocsError> {
    let mut md = Md::new("Information content and entropy");
    md.para(
        "The information content of an outcome of probability $p$ is $I(p) = -\\ln p$ nats: certain outcomes \
         carry none, rare ones a lot, and independent outcomes add. The entropy of a distribution is the \
         information of its outcome on average. Every displayed step below was evaluated numerically and \
         compared with the step before it; the line after each step is the evidence.",
    );
    md.h2("Derivations");
    md.derivation(&INFORMATION_ADDITIVE)?;
    md.derivation(&ENTROPY)?;
    md.para(
        "Bounds: $0 \\le H(P) \\le \\ln n$, with $H = 0$ for a certain outcome and $H = \\ln n$ for the \
         uniform distribution over $n$ outcomes (claim `entropy.bounds` below).",
    );
    md.h2("Numerics");
    md.numerics(&[super::engine::NumericsExample {
        what: "entropy with a zero entry",
        input: "$P = (1, 0)$",
        naive_latex: r"-\sum_i p_i \ln p_i",
        naive: || -(1.0f64 * 1.0f64.ln() + 0.0 * 0.0f64.ln()),
        production_name: "entropic::entropy",
        production: || entropic::entropy(&[1.0f64, 0.0]).unwrap_or(f64::NAN),
        exact: "0",
    }])?;
    md.para(
        "The production code skips zero-probability terms instead of multiplying $0$ by $-\\infty$ (invariant 4 \
         of the architecture).",
    );
    md.mistakes(ENTROPY_MISTAKES)?;
    md.claims(&[
        "information.additive",
        "entropy.expectation",
        "entropy.bounds",
        "entropy.bits",
        "statrs.categorical_entropy",
    ])?;
    Ok(md.finish())
}

/// `kl_divergence.md`.
pub fn kl_page() -> Result<String, DocsError> {
    let mut md = Md::new("KL divergence and cross-entropy");
    md.para(
        "The cross-entropy $H(P, Q) = -\\sum_i p_i \\ln q_i$ is the average information of outcomes drawn from \
         $P$ when they are coded for $Q$. The KL divergence is what this costs beyond the entropy of $P$, and \
         Gibbs' inequality says the cost is never negative. Training a classifier with the cross-entropy loss \
         therefore minimizes $D_{KL}(P \\| Q)$ in $Q$: the entropy of the labels does not depend on the model.",
    );
    md.h2("Derivations");
    md.derivation(&KL_DECOMPOSITION)?;
    md.derivation(&GIBBS)?;
    md.h2("Numerics");
    md.numerics(&[super::engine::NumericsExample {
        what: "KL divergence with a vanishing $p_i$",
        input: "$P = (1, 0)$, $Q = (1/2, 1/2)$",
        naive_latex: r"\sum_i p_i \ln (p_i / q_i)",
        naive: || 1.0f64 * (1.0f64 / 0.5).ln() + 0.0 * (0.0f64 / 0.5).ln(),
        production_name: "entropic::kl_divergence",
        production: || entropic::kl_divergence(&[1.0f64, 0.0], &[0.5, 0.5]).unwrap_or(f64::NAN),
        exact: "$\\ln 2$",
    }])?;
    md.para(
        "A term with $p_i > 0 = q_i$ makes both the cross-entropy and the divergence $+\\infty$, which is their \
         exact value; the production code returns it instead of an error or NaN.",
    );
    md.mistakes(KL_MISTAKES)?;
    md.claims(&[
        "cross_entropy.decomposition",
        "kl.gibbs",
        "kl.asymmetric",
        "kl.additive",
        "js.bounds",
        "cross_entropy.monte_carlo",
    ])?;
    Ok(md.finish())
}
