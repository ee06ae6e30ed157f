//! Page: the bi-tempered logistic loss.

use entropic::{Batch, BiTemperedLogisticLoss, Reduction, SoftmaxCrossEntropy, Targets, TemperedSoftmax, exp_t, log_t};
use num_dual::{Dual64, DualNum};

use super::common::{dual_gradient, dual_jacobian};
use super::engine::{Case, Derivation, DocsError, Domain, Mistake, NumericsExample, Step};
use super::render::Md;
use crate::claims::{DERIVATIVE_IDENTITY, SOFTMAX_IDENTITY, derivative_identity, equal_on_rows};
use crate::generate::Inputs;
use crate::tolerance::{Tally, Tolerance};

fn one(v: f64) -> Option<Vec<f64>> {
    Some(vec![v])
}

const TS: [f64; 6] = [0.2, 0.5, 0.8, 1.5, 2.0, 4.0];

fn log_t_cases(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let mut edge = Vec::new();
    for x in [1.0, 1e-3, 1e3, 0.5, 2.0] {
        for t in TS {
            edge.push(Case {
                x,
                t,
                ..Case::default()
            });
        }
    }
    let random = (0..200)
        .map(|_| Case {
            x: inputs.log_uniform(1e-3, 1e3),
            t: inputs.pick(&TS),
            ..Case::default()
        })
        .collect();
    (edge, random)
}

const LOG_T_DOMAIN: Domain = Domain {
    description: "$x \\in [10^{-3}, 10^3]$ (log-uniform, and $1$, $1/2$, $2$), $t \\in \\lbrace 0.2, 0.5, 0.8, 1.5, 2, 4 \
                  \\rbrace$",
    cases: log_t_cases,
};

/// `log_t` from the definition to the production form.
pub const LOG_T: Derivation = Derivation {
    id: "tempered.log_t",
    title: "$\\log_t$: from the definition to the accurate form",
    domain: LOG_T_DOMAIN,
    tolerance: Tolerance::relative(
        1e-13,
        "x^{1−t} − 1 cancels near x = 1, so values are compared in absolute terms (scale max(1, |log_t x|)); a power, \
         an exponential or expm1 and a division each within 1 ulp of values ≤ 10^3",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\log_t x = \frac{x^{1-t} - 1}{1 - t}",
            "Amid et al. (2019), Eq. (1): a logarithm that is bounded below by $-1/(1-t)$ for $t < 1$ and equals \
             $\\ln$ in the limit $t \\to 1$. Evaluated as written.",
            |c| one((c.x.powf(1.0 - c.t) - 1.0) / (1.0 - c.t)),
        ),
        Step::eq(
            r"\frac{e^{(1-t)\ln x} - 1}{1 - t}",
            "$x^{1-t} = e^{(1-t) \\ln x}$.",
            |c| one((((1.0 - c.t) * c.x.ln()).exp() - 1.0) / (1.0 - c.t)),
        ),
        Step::eq(
            r"\frac{\mathrm{expm1}\left((1-t)\ln x\right)}{1 - t}",
            "$\\mathrm{expm1}(u) = e^u - 1$ computed without cancellation: as $t \\to 1$ the numerator is tiny and \
             the literal form loses every digit (see Numerics).",
            |c| one(((1.0 - c.t) * c.x.ln()).exp_m1() / (1.0 - c.t)),
        ),
        Step::eq(
            r"\log_t^{\mathrm{entropic}}(x)",
            "The production function `entropic::log_t`.",
            |c| one(log_t(c.x, c.t)),
        ),
    ],
};

/// `d/dx log_t x = x^{-t}`.
pub const LOG_T_DERIVATIVE: Derivation = Derivation {
    id: "tempered.log_t.derivative",
    title: "The derivative of $\\log_t$",
    domain: LOG_T_DOMAIN,
    tolerance: Tolerance::relative(16.0 * f64::EPSILON, "one powf and the dual derivative of expm1 and ln"),
    scale: |_| 0.0,
    steps: &[
        Step::eq(
            r"\frac{d}{dx} \log_t x",
            "By dual numbers through `entropic::log_t`.",
            |c| one(log_t(Dual64::from_re(c.x).derivative(), c.t).eps),
        ),
        Step::eq(
            r"\frac{(1-t)\thinspace x^{-t}}{1 - t}",
            "Power rule on $x^{1-t}$.",
            |c| one((1.0 - c.t) * c.x.powf(-c.t) / (1.0 - c.t)),
        ),
        Step::eq(
            r"x^{-t}",
            "At $t = 1$ this is $1/x$, the derivative of $\\ln$. For $t < 1$ the slope at 0 is finite, which is \
             why the loss built on $\\log_t$ stays bounded.",
            |c| one(c.x.powf(-c.t)),
        ),
    ],
};

fn exp_t_cases(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let mut edge = Vec::new();
    for x in [0.0, -1.0, -5.0, 0.25] {
        for t in TS {
            edge.push(Case {
                x,
                t,
                ..Case::default()
            });
        }
    }
    let random = (0..200)
        .map(|_| {
            let t = inputs.pick(&TS);
            let hi = if t > 1.0 { 0.9 / (t - 1.0) } else { 5.0 };
            Case {
                x: inputs.uniform(-5.0, hi.min(5.0)),
                t,
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

/// `exp_t` from the definition to the production form.
pub const EXP_T: Derivation = Derivation {
    id: "tempered.exp_t",
    title: "$\\exp_t$, the inverse of $\\log_t$",
    domain: Domain {
        description: "$x \\in [-5, 5]$ (below the pole $1/(t-1)$ for $t > 1$), the six temperatures",
        cases: exp_t_cases,
    },
    tolerance: Tolerance::relative(
        1e-13,
        "a power with exponent 1/(1−t) ≤ 5 in magnitude amplifies the base's rounding at most 5×; absolute terms \
         near the edge of the support, scale max(1, |exp_t|)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\exp_t x = \left[1 + (1 - t) x\right]_+^{1/(1-t)}",
            "Amid et al. (2019), Eq. (2), solving $\\log_t y = x$ for $y$; $[u]_+ = \\max(u, 0)$. For $t < 1$ it is \
             0 below $x = -1/(1-t)$ (finite support); for $t > 1$ it decays like a power (heavy tail) and has a \
             pole at $x = 1/(t - 1)$.",
            |c| {
                let b = (1.0 + (1.0 - c.t) * c.x).max(0.0);
                one(b.powf(1.0 / (1.0 - c.t)))
            },
        ),
        Step::eq(
            r"\exp\left(\frac{\ln\left(1 + (1-t)x\right)}{1 - t}\right)",
            "$y^{a} = e^{a \\ln y}$ inside the support (0 outside it), with $\\ln(1 + u)$ evaluated by `ln1p`.",
            |c| {
                let u = (1.0 - c.t) * c.x;
                one(if u <= -1.0 {
                    0.0
                } else {
                    (u.ln_1p() / (1.0 - c.t)).exp()
                })
            },
        ),
        Step::eq(
            r"\exp_t^{\mathrm{entropic}}(x)",
            "The production function (`ln1p`, accurate as $t \\to 1$).",
            |c| one(exp_t(c.x, c.t)),
        ),
    ],
};

fn rows_t(inputs: &mut Inputs, temps: &[f64]) -> (Vec<Case>, Vec<Case>) {
    let mut edge = Vec::new();
    for z in [
        vec![0.0, 0.0, 0.0, 0.0],
        vec![5.0, 0.0],
        vec![4.0, -3.0, -6.0],
        vec![0.0, f64::NEG_INFINITY, 1.0],
    ] {
        for &t in temps {
            edge.push(Case {
                z: z.clone(),
                t,
                ..Case::default()
            });
        }
    }
    let random = (0..120)
        .map(|_| {
            let c = 2 + inputs.below(7);
            Case {
                z: inputs.moderate_logits(c),
                t: inputs.pick(temps),
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

const SOFTMAX_TEMPS: [f64; 5] = [0.2, 0.5, 1.0, 1.5, 4.0];

fn normalize(z: &[f64], t: f64) -> Option<entropic::TemperedNormalization<f64>> {
    TemperedSoftmax::new(t).ok()?.normalize(z).ok()
}

fn dual_lambda(z: &[f64], t: f64) -> Option<Vec<f64>> {
    let s = TemperedSoftmax::new(t).ok()?;
    dual_gradient(z, |d| s.normalize(d).ok().map(|n| n.lambda))
}

fn escort(p: &[f64], t: f64) -> Vec<f64> {
    let w: Vec<f64> = p.iter().map(|v| v.powf(t)).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|v| v / s).collect()
}

const ROWS_DOMAIN: Domain = Domain {
    description: "rows of 2 to 8 logits in $[-8, 8]$ and the rows $(0,0,0,0)$, $(5, 0)$, $(4, -3, -6)$, \
                  $(0, -\\infty, 1)$; $t \\in \\lbrace 0.2, 0.5, 1, 1.5, 4 \\rbrace$",
    cases: |i| rows_t(i, &SOFTMAX_TEMPS),
};

/// `Σ p = 1`.
pub const NORMALIZATION: Derivation = Derivation {
    id: "tempered.softmax.normalization",
    title: "The normalizer $\\lambda(a)$",
    domain: ROWS_DOMAIN,
    tolerance: Tolerance::relative(
        64.0 * f64::EPSILON,
        "the solver stops when a step would change Σp by about one rounding; a sum of c ≤ 8 rounded terms adds c·ε/2",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\sum_i p_i, \qquad p = \mathrm{softmax}_t(a)",
            "The production `entropic::tempered_softmax`.",
            |c| one(entropic::tempered_softmax(&c.z, c.t).ok()?.iter().sum()),
        ),
        Step::eq(
            r"\sum_i \exp_t\left(a_i - \lambda(a)\right)",
            "Definition (Eq. (5) of the paper): $p_i = \\exp_t(a_i - \\lambda(a))$ with the $\\lambda$ returned by \
             `TemperedSoftmax::normalize`.",
            |c| {
                let n = normalize(&c.z, c.t)?;
                one(c.z.iter().map(|a| exp_t(a - n.lambda, c.t)).sum())
            },
        ),
        Step::eq(
            r"1",
            "$\\lambda$ is defined as the root of this equation; it has no closed form for $t \\ne 1$ \
             (at $t = 1$ it is the log-sum-exp).",
            |_| one(1.0),
        ),
    ],
};

/// `∂λ/∂a_i` = escort.
pub const ESCORT: Derivation = Derivation {
    id: "tempered.softmax.escort",
    title: "The derivative of the normalizer: escort weights",
    domain: ROWS_DOMAIN,
    tolerance: Tolerance::relative(
        1e-13,
        "dual numbers lift λ by a Newton step from its converged value (exact derivative up to the root's \
         rounding); the escort takes c powers and a sum; entries ≤ 1, scale 1",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\frac{\partial \lambda}{\partial a_i}",
            "By dual numbers through `TemperedSoftmax::normalize` (which never differentiates through its loop: \
             $\\lambda$ is lifted from the converged value by a Newton step in the dual type).",
            |c| dual_lambda(&c.z, c.t),
        ),
        Step::eq(
            r"\frac{\exp_t'(a_i - \lambda)}{\sum_j \exp_t'(a_j - \lambda)}",
            "Differentiate $\\sum_j \\exp_t(a_j - \\lambda(a)) = 1$ in $a_i$ (implicit function theorem): \
             $\\exp_t'(a_i - \\lambda) - \\sum_j \\exp_t'(a_j - \\lambda) \\partial_i \\lambda = 0$. The \
             derivative $\\exp_t'$ is taken by dual numbers through `entropic::exp_t`.",
            |c| {
                let n = normalize(&c.z, c.t)?;
                let d: Vec<f64> =
                    c.z.iter()
                        .map(|a| exp_t(Dual64::from_re(a - n.lambda).derivative(), c.t).eps)
                        .collect();
                let s: f64 = d.iter().sum();
                Some(d.iter().map(|v| v / s).collect())
            },
        ),
        Step::eq(
            r"\tilde e_i = \frac{p_i^{t}}{\sum_j p_j^{t}}",
            "$\\exp_t'(u) = \\exp_t(u)^t$, so $\\exp_t'(a_i - \\lambda) = p_i^t$: the escort distribution of $p$. At \
             $t = 1$ it is $p$ itself ($\\partial\\, \\mathrm{lse} / \\partial a = \\mathrm{softmax}$).",
            |c| Some(escort(&entropic::tempered_softmax(&c.z, c.t).ok()?, c.t)),
        ),
    ],
};

/// `∂p_j/∂a_i = p_j^t (δ_ij − ẽ_i)`.
pub const JACOBIAN: Derivation = Derivation {
    id: "tempered.softmax.jacobian",
    title: "The Jacobian of the tempered softmax",
    domain: ROWS_DOMAIN,
    tolerance: Tolerance::relative(1e-13, "as the escort weights; entries bounded by 1, scale 1"),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\frac{\partial p_j}{\partial a_i}",
            "By dual numbers through `entropic::tempered_softmax` (all $c^2$ entries).",
            |c| dual_jacobian(&c.z, |d: &[Dual64]| entropic::tempered_softmax(d, c.t).ok()),
        ),
        Step::eq(
            r"\exp_t'(a_j - \lambda)\left(\delta_{ij} - \frac{\partial \lambda}{\partial a_i}\right)",
            "Chain rule on $p_j = \\exp_t(a_j - \\lambda(a))$, with $\\partial\\lambda/\\partial a_i$ by dual numbers.",
            |c| {
                let n = normalize(&c.z, c.t)?;
                let dl = dual_lambda(&c.z, c.t)?;
                let m = c.z.len();
                Some(
                    (0..m * m)
                        .map(|idx| {
                            let (j, i) = (idx / m, idx % m);
                            let d = exp_t(Dual64::from_re(c.z[j] - n.lambda).derivative(), c.t).eps;
                            d * (if i == j { 1.0 } else { 0.0 } - dl[i])
                        })
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"p_j^{t}\left(\delta_{ij} - \tilde e_i\right)",
            "The escort result. At $t = 1$: $a_j(\\delta_{ij} - a_i)$, the softmax Jacobian.",
            |c| {
                let p = entropic::tempered_softmax(&c.z, c.t).ok()?;
                let e = escort(&p, c.t);
                let m = p.len();
                Some(
                    (0..m * m)
                        .map(|idx| {
                            let (j, i) = (idx / m, idx % m);
                            p[j].powf(c.t) * (if i == j { 1.0 } else { 0.0 } - e[i])
                        })
                        .collect(),
                )
            },
        ),
    ],
};

const PAIRS: [(f64, f64); 5] = [(0.5, 1.5), (0.8, 1.2), (0.2, 4.0), (1.0, 1.0), (0.9, 0.6)];

fn loss_cases(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let mut edge = Vec::new();
    for (t, t2) in PAIRS {
        edge.push(Case {
            z: vec![-0.5, 0.1, 2.0],
            y: vec![0.2, 0.3, 0.5],
            t,
            t2,
            ..Case::default()
        });
        edge.push(Case {
            z: vec![0.0, 0.0],
            y: vec![1.0, 0.0],
            t,
            t2,
            ..Case::default()
        });
    }
    let random = (0..120)
        .map(|_| {
            let c = 2 + inputs.below(6);
            let (t, t2) = inputs.pick(&PAIRS);
            Case {
                z: inputs.moderate_logits(c),
                y: inputs.simplex(c, true),
                t,
                t2,
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

const LOSS_DOMAIN: Domain = Domain {
    description: "rows of 2 to 7 logits in $[-8, 8]$ with probability labels (some zero); $(t_1, t_2)$ (fields `t`, \
                  `t2`) in $\\lbrace (0.5, 1.5), (0.8, 1.2), (0.2, 4), (1, 1), (0.9, 0.6) \\rbrace$",
    cases: loss_cases,
};

fn bt(c: &Case) -> Option<BiTemperedLogisticLoss> {
    Some(
        BiTemperedLogisticLoss::new(c.t, c.t2)
            .ok()?
            .with_reduction(Reduction::Sum),
    )
}

fn bt_loss(c: &Case, y: &[f64]) -> Option<f64> {
    bt(c)?
        .loss(Batch::single_row(&c.z), Targets::Probabilities(Batch::single_row(y)))
        .ok()?
        .reduced
}

/// The Bregman form of the loss.
pub const BREGMAN: Derivation = Derivation {
    id: "bi_tempered.bregman",
    title: "The loss as a Bregman divergence",
    domain: LOSS_DOMAIN,
    tolerance: Tolerance::relative(
        1e-13,
        "c ≤ 7 terms of size ≤ 1/(2 − t1) each with a few roundings (log_t, powers); scale max(1, |L|)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"L_{t_1, t_2}(a, y)",
            "The production `BiTemperedLogisticLoss::loss` (reduction `Sum`).",
            |c| one(bt_loss(c, &c.y)?),
        ),
        Step::eq(
            r"\sum_i \left[ y_i \left(\log_{t_1} y_i - \log_{t_1} p_i\right) - \frac{y_i^{2-t_1} - p_i^{2-t_1}}{2 - t_1} \right], \qquad p = \mathrm{softmax}_{t_2}(a)",
            "Amid et al. (2019), Eq. (6): the Bregman divergence $F(y) - F(p) - \\nabla F(p) \\cdot (y - p)$ of the \
             convex $F(x) = \\sum_i x_i \\log_{t_1} x_i - x_i^{2-t_1}/(2-t_1)$ (each term $\\ge 0$; \
             $y \\log_{t_1} y = 0$ at $y = 0$). Evaluated from `entropic::log_t` and `entropic::tempered_softmax`.",
            |c| {
                let p = entropic::tempered_softmax(&c.z, c.t2).ok()?;
                let t1 = c.t;
                let s: f64 =
                    c.y.iter()
                        .zip(&p)
                        .map(|(&y, &p)| {
                            let ylog = if y == 0.0 {
                                0.0
                            } else {
                                y * (log_t(y, t1) - log_t(p, t1))
                            };
                            ylog - (y.powf(2.0 - t1) - p.powf(2.0 - t1)) / (2.0 - t1)
                        })
                        .sum();
                one(s)
            },
        ),
    ],
};

fn w_terms(p: &[f64], y: &[f64], t1: f64, t2: f64) -> Vec<f64> {
    p.iter()
        .zip(y)
        .map(|(&p, &y)| if p > 0.0 { (p - y) * p.powf(t2 - t1) } else { 0.0 })
        .collect()
}

/// The gradient with escort weights.
pub const GRADIENT: Derivation = Derivation {
    id: "bi_tempered.gradient",
    title: "The gradient",
    domain: LOSS_DOMAIN,
    tolerance: Tolerance::relative(
        1e-12,
        "as the verifier's GRADIENT_DUAL: closed forms with O(c) roundings, the tempered normalizer's conditioning; \
         scale max(1, ‖g‖)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\frac{\partial L}{\partial a_i}",
            "By dual numbers through `BiTemperedLogisticLoss::definition`.",
            |c| {
                let l = bt(c)?;
                dual_gradient(&c.z, |d| {
                    l.definition(Batch::single_row(d), Targets::Probabilities(Batch::single_row(&c.y)))
                        .ok()?
                        .reduced
                })
            },
        ),
        Step::eq(
            r"\sum_j \frac{\partial L}{\partial p_j} \frac{\partial p_j}{\partial a_i}, \qquad \frac{\partial L}{\partial p_j} = -y_j p_j^{-t_1} + p_j^{1-t_1} = (p_j - y_j)\thinspace p_j^{-t_1}",
            "Chain rule through $p$; $\\frac{d}{dp}\\log_{t_1} p = p^{-t_1}$. The Jacobian is taken by dual numbers \
             through `entropic::tempered_softmax`; classes with $p_j = 0$ (finite support) are locally constant \
             and contribute 0.",
            |c| {
                let p = entropic::tempered_softmax(&c.z, c.t2).ok()?;
                let jac = dual_jacobian(&c.z, |d: &[Dual64]| entropic::tempered_softmax(d, c.t2).ok())?;
                let m = p.len();
                Some(
                    (0..m)
                        .map(|i| {
                            (0..m)
                                .filter(|&j| p[j] > 0.0)
                                .map(|j| (p[j] - c.y[j]) * p[j].powf(-c.t) * jac[j * m + i])
                                .sum()
                        })
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"\sum_j (p_j - y_j)\thinspace p_j^{-t_1} \cdot p_j^{t_2} \left(\delta_{ij} - \tilde e_i\right)",
            "The tempered softmax Jacobian derived above.",
            |c| {
                let p = entropic::tempered_softmax(&c.z, c.t2).ok()?;
                let e = escort(&p, c.t2);
                let m = p.len();
                Some(
                    (0..m)
                        .map(|i| {
                            (0..m)
                                .filter(|&j| p[j] > 0.0)
                                .map(|j| {
                                    (p[j] - c.y[j])
                                        * p[j].powf(-c.t)
                                        * p[j].powf(c.t2)
                                        * (if i == j { 1.0 } else { 0.0 } - e[i])
                                })
                                .sum()
                        })
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"(p_i - y_i)\thinspace p_i^{t_2 - t_1} - \tilde e_i \sum_j (p_j - y_j)\thinspace p_j^{t_2 - t_1}",
            "The sum over $j$: the Kronecker delta keeps $j = i$; $\\tilde e_i$ leaves the rest. At \
             $t_1 = t_2 = 1$ (and $\\sum y = 1$) this is $p - y$.",
            |c| {
                let p = entropic::tempered_softmax(&c.z, c.t2).ok()?;
                let e = escort(&p, c.t2);
                let w = w_terms(&p, &c.y, c.t, c.t2);
                let s: f64 = w.iter().sum();
                Some(w.iter().zip(&e).map(|(wi, ei)| wi - ei * s).collect())
            },
        ),
        Step::eq(
            r"g^{\mathrm{kernel}}_i",
            "The production kernel `BiTemperedLogisticLoss::loss_and_grad`.",
            |c| {
                bt(c)?
                    .loss_and_grad(Batch::single_row(&c.z), Targets::Probabilities(Batch::single_row(&c.y)))
                    .ok()
                    .map(|(_, g)| g)
            },
        ),
    ],
};

fn bounded_cases(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let mut edge = Vec::new();
    for t in [0.2, 0.5, 0.8] {
        for (z, k) in [
            (vec![1e4, -1e4, 0.0], 1),
            (vec![0.0, 0.0], 0),
            (vec![30.0, 0.0, -30.0], 2),
        ] {
            edge.push(Case {
                z,
                k,
                t,
                t2: 1.0,
                ..Case::default()
            });
        }
    }
    let random = (0..150)
        .map(|_| {
            let c = 2 + inputs.below(10);
            Case {
                z: inputs.logits(c),
                k: inputs.below(c),
                t: inputs.pick(&[0.2, 0.5, 0.8]),
                t2: inputs.pick(&[0.6, 1.0, 1.5, 4.0]),
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

fn class_loss(c: &Case) -> Option<f64> {
    bt(c)?
        .loss(Batch::single_row(&c.z), Targets::<f64>::Classes(&[c.k]))
        .ok()?
        .reduced
}

/// `L(a, e_k) ≤ 1/(1 − t1)`.
pub const BOUNDED: Derivation = Derivation {
    id: "bi_tempered.bounded",
    title: "Boundedness for $t_1 < 1$",
    domain: Domain {
        description: "one-hot labels $e_k$, rows of 2 to 11 logits spread up to $10^4$ and shifted to $-10^6$ \
                      (and $\\pm 10^4$ rows), $t_1 \\in \\lbrace 0.2, 0.5, 0.8 \\rbrace$, \
                      $t_2 \\in \\lbrace 0.6, 1, 1.5, 4 \\rbrace$",
        cases: bounded_cases,
    },
    tolerance: Tolerance::relative(
        1e-13,
        "the loss is computed from ln p, the closed form from p (which may underflow): they differ by far less \
         than ε·1/(1 − t1), the scale",
    ),
    scale: |c| 1.0 / (1.0 - c.t),
    steps: &[
        Step::eq(
            r"L_{t_1, t_2}(a, e_k)",
            "The production loss with a class target.",
            |c| one(class_loss(c)?),
        ),
        Step::eq(
            r"-\log_{t_1} p_k - \frac{1 - \sum_i p_i^{2-t_1}}{2 - t_1}",
            "The Bregman form with $y = e_k$: $\\log_{t_1} 1 = 0$ and $1^{2-t_1} = 1$.",
            |c| {
                let p = entropic::tempered_softmax(&c.z, c.t2).ok()?;
                let s: f64 = p.iter().map(|v| v.powf(2.0 - c.t)).sum();
                one(-log_t(p[c.k], c.t) - (1.0 - s) / (2.0 - c.t))
            },
        ),
        Step::le(
            r"-\log_{t_1} p_k",
            "$p_i \\le 1$ and $2 - t_1 > 1$, so $\\sum_i p_i^{2-t_1} \\le \\sum_i p_i = 1$: the subtracted term is \
             $\\ge 0$.",
            |c| {
                let p = entropic::tempered_softmax(&c.z, c.t2).ok()?;
                one(-log_t(p[c.k], c.t))
            },
        ),
        Step::le(
            r"\frac{1}{1 - t_1}",
            "$\\log_{t_1} p = (p^{1-t_1} - 1)/(1 - t_1) \\ge -1/(1 - t_1)$ for $t_1 < 1$: however wrong the \
             prediction, the loss is at most $1/(1 - t_1)$. The logistic loss ($t_1 = 1$) has no such bound, \
             which is what lets a single mislabeled example dominate.",
            |c| one(1.0 / (1.0 - c.t)),
        ),
    ],
};

fn smoothing_cases(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let edge = vec![Case {
        z: vec![0.0, 0.0, 0.0, 0.0],
        k: 0,
        x: 0.1,
        t: 0.5,
        t2: 1.5,
        ..Case::default()
    }];
    let random = (0..80)
        .map(|_| {
            let c = 2 + inputs.below(8);
            let (t, t2) = inputs.pick(&PAIRS);
            Case {
                z: inputs.moderate_logits(c),
                k: inputs.below(c),
                x: inputs.pick(&[0.05, 0.1, 0.3]),
                t,
                t2,
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

/// Google's label smoothing `ε/(C − 1)`.
pub const SMOOTHING: Derivation = Derivation {
    id: "bi_tempered.label_smoothing",
    title: "Label smoothing: the reference's $\\varepsilon / (C - 1)$",
    domain: Domain {
        description: "rows of 2 to 9 logits in $[-8, 8]$, a class target, $\\varepsilon \\in \\lbrace 0.05, 0.1, 0.3 \
                      \\rbrace$ (field `x`), the five $(t_1, t_2)$ pairs",
        cases: smoothing_cases,
    },
    tolerance: Tolerance::relative(1e-14, "the same loss with the same targets, rounded once"),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"L^{\varepsilon}_{t_1, t_2}(a, k)",
            "`BiTemperedLogisticLoss::with_label_smoothing(ε)` with a class target $k$.",
            |c| {
                bt(c)?
                    .with_label_smoothing(c.x)
                    .ok()?
                    .loss(Batch::single_row(&c.z), Targets::<f64>::Classes(&[c.k]))
                    .ok()?
                    .reduced
                    .map(|v| vec![v])
            },
        ),
        Step::eq(
            r"L_{t_1, t_2}\left(a,\ (1 - \varepsilon)\thinspace e_k + \tfrac{\varepsilon}{C - 1} (\mathbf{1} - e_k)\right)",
            "The true class keeps $1 - \\varepsilon$, the other $C - 1$ classes share $\\varepsilon$ \
             (google/bi-tempered-loss); PyTorch's cross-entropy instead gives every class $\\varepsilon / C$ \
             (true class $1 - \\varepsilon + \\varepsilon / C$). The two conventions differ: see Common mistakes.",
            |c| {
                let n = c.z.len();
                let y: Vec<f64> = (0..n)
                    .map(|j| if j == c.k { 1.0 - c.x } else { c.x / (n as f64 - 1.0) })
                    .collect();
                one(bt_loss(c, &y)?)
            },
        ),
    ],
};

/// google/bi-tempered-loss `compute_normalization_fixed_point` with 5 iterations, then `exp_t(a − λ)`.
fn google_fixed_point(a: &[f64], t: f64) -> Vec<f64> {
    let mu = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let step0: Vec<f64> = a.iter().map(|v| v - mu).collect();
    let mut norm = step0.clone();
    for _ in 0..5 {
        let z: f64 = norm.iter().map(|v| exp_t(*v, t)).sum();
        norm = step0.iter().map(|v| v * z.powf(1.0 - t)).collect();
    }
    let z: f64 = norm.iter().map(|v| exp_t(*v, t)).sum();
    let lambda = -log_t(1.0 / z, t) + mu;
    a.iter().map(|v| exp_t(v - lambda, t)).collect()
}

const NUMERICS: &[NumericsExample] = &[
    NumericsExample {
        what: "$\\log_t$ near $t = 1$",
        input: "$x = 2$, $t = 1 - 10^{-15}$",
        naive_latex: r"(x^{1-t} - 1)/(1 - t)",
        naive: || {
            let t = 1.0 - 1e-15;
            (2f64.powf(1.0 - t) - 1.0) / (1.0 - t)
        },
        production_name: "entropic::log_t",
        production: || log_t(2.0f64, 1.0 - 1e-15),
        exact: "$\\ln 2 + O(10^{-15}) = 0.693147180559945\\ldots$",
    },
    NumericsExample {
        what: "$\\log_t$ at $t = 1$",
        input: "$x = 2$, $t = 1$",
        naive_latex: r"(x^{1-t} - 1)/(1 - t) = 0/0",
        naive: || {
            let t = 1.0f64;
            (2f64.powf(1.0 - t) - 1.0) / (1.0 - t)
        },
        production_name: "entropic::log_t",
        production: || log_t(2.0f64, 1.0),
        exact: "$\\ln 2$",
    },
    NumericsExample {
        what: "$\\exp_t$ at $t = 1$",
        input: "$x = 2$, $t = 1$",
        naive_latex: r"(1 + (1-t)x)^{1/(1-t)} = 1^{\infty}",
        naive: || {
            let t = 1.0f64;
            (1.0 + (1.0 - t) * 2.0).powf(1.0 / (1.0 - t))
        },
        production_name: "entropic::exp_t",
        production: || exp_t(2.0f64, 1.0),
        exact: "$e^2 = 7.38905609893065\\ldots$",
    },
    NumericsExample {
        what: "the tempered softmax by 5 fixed-point iterations (the reference implementation)",
        input: "$a = (4, -3, -6)$, $t = 4$, first entry",
        naive_latex: r"p_0 \text{ after 5 iterations}",
        naive: || google_fixed_point(&[4.0, -3.0, -6.0], 4.0)[0],
        production_name: "entropic::tempered_softmax",
        production: || entropic::tempered_softmax(&[4.0f64, -3.0, -6.0], 4.0).map_or(f64::NAN, |p| p[0]),
        exact: "the root of $\\sum_i p_i = 1$; the fixed point's $\\sum_i p_i$ is not 1 (next line)",
    },
    NumericsExample {
        what: "the sum of those 5-iteration probabilities",
        input: "$a = (4, -3, -6)$, $t = 4$",
        naive_latex: r"\sum_i p_i \text{ after 5 iterations}",
        naive: || google_fixed_point(&[4.0, -3.0, -6.0], 4.0).iter().sum(),
        production_name: "the sum of entropic::tempered_softmax",
        production: || entropic::tempered_softmax(&[4.0f64, -3.0, -6.0], 4.0).map_or(f64::NAN, |p| p.iter().sum()),
        exact: "1",
    },
    NumericsExample {
        what: "the loss from an underflowing probability",
        input: "$a = (0, -800)$, class 1, $t_1 = t_2 = 1$",
        naive_latex: r"-\log_{t_1} p_1, \quad p = \mathrm{softmax}_{t_2}(a)",
        naive: || {
            -log_t(
                entropic::tempered_softmax(&[0.0f64, -800.0], 1.0).map_or(f64::NAN, |p| p[1]),
                1.0,
            )
        },
        production_name: "BiTemperedLogisticLoss::loss",
        production: || {
            let c = Case {
                z: vec![0.0, -800.0],
                k: 1,
                t: 1.0,
                t2: 1.0,
                ..Case::default()
            };
            class_loss(&c).unwrap_or(f64::NAN)
        },
        exact: "$800 + \\ln(1 + e^{-800}) \\approx 800$",
    },
];

fn rows(inputs: &mut Inputs, f: fn(&[f64]) -> Vec<(f64, f64)>) -> Tally {
    equal_on_rows(inputs, &SOFTMAX_IDENTITY, &f)
}

fn usable(z: &[f64]) -> bool {
    z.len() >= 2 && z.iter().all(|v| v.is_finite() && v.abs() <= 1e4)
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        id: "tempered.log_t.one_plus_t",
        why: "$\\log_t$ written with $1 + t$ instead of $1 - t$",
        wrong: r"\log_t x = \frac{x^{1+t} - 1}{1 + t}",
        right: r"\log_t x = \frac{x^{1-t} - 1}{1 - t}",
        family: "`derivative_identity` with the claim `tempered.log_t_derivative` ($\\frac{d}{dx}\\log_t x = x^{-t}$, \
                 $t = 0.5$, $x \\in [10^{-3}, 10^3]$)",
        run: |_: &mut Inputs| {
            let xs = Inputs::spaced(1e-3, 1e3, 25);
            derivative_identity(&DERIVATIVE_IDENTITY, &xs, &|x| Some((x.powf(1.5) - 1.0) / 1.5), &|x| {
                Some(x.powf(-0.5))
            })
        },
    },
    Mistake {
        id: "tempered.exp_t.no_positive_part",
        why: "$\\exp_t$ without the positive part $[\\cdot]_+$ (for $t < 1$)",
        wrong: r"\exp_t x = \left(1 + (1 - t)x\right)^{1/(1-t)}",
        right: r"\exp_t x = \left[1 + (1 - t)x\right]_+^{1/(1-t)}",
        family: "`derivative_identity` with the claim `tempered.exp_t_derivative` \
                 ($\\frac{d}{dx}\\exp_t x = \\exp_t(x)^t$ from `entropic::exp_t`, $t = 0.5$, $x \\in [-4, 1]$)",
        run: |_: &mut Inputs| {
            let xs: Vec<f64> = (0..=20).map(|k| -4.0 + 0.25 * f64::from(k)).collect();
            derivative_identity(&DERIVATIVE_IDENTITY, &xs, &|x| Some((x * 0.5 + 1.0).powf(2.0)), &|x| {
                Some(exp_t(x, 0.5).powf(0.5))
            })
        },
    },
    Mistake {
        id: "tempered.lambda.softmax_derivative",
        why: "$\\partial\\lambda / \\partial a_i = p_i$, the softmax's answer, kept for $t \\ne 1$",
        wrong: r"\frac{\partial \lambda}{\partial a_i} = p_i",
        right: r"\frac{\partial \lambda}{\partial a_i} = \frac{p_i^t}{\sum_j p_j^t}",
        family: "`equal_on_rows` against the dual-number derivative of `TemperedSoftmax::normalize` ($t = 2$)",
        run: |i| {
            rows(i, |z| {
                if !usable(z) {
                    return vec![(0.0, 0.0)];
                }
                match (dual_lambda(z, 2.0), entropic::tempered_softmax(z, 2.0)) {
                    (Some(d), Ok(p)) => d.into_iter().zip(p).collect(),
                    _ => vec![],
                }
            })
        },
    },
    Mistake {
        id: "bi_tempered.smoothing.pytorch",
        why: "PyTorch's label smoothing $\\varepsilon / C$ assumed for the bi-tempered loss",
        wrong: r"y = (1 - \varepsilon)\thinspace e_k + \tfrac{\varepsilon}{C} \mathbf{1}",
        right: r"y = (1 - \varepsilon)\thinspace e_k + \tfrac{\varepsilon}{C - 1} (\mathbf{1} - e_k)",
        family: "`equal_on_rows` against `BiTemperedLogisticLoss::with_label_smoothing(0.1)` \
                 ($t_1 = 0.5$, $t_2 = 1.5$, class 0)",
        run: |i| {
            rows(i, |z| {
                if !usable(z) {
                    return vec![(0.0, 0.0)];
                }
                let n = z.len();
                let y: Vec<f64> = (0..n)
                    .map(|j| if j == 0 { 0.9 } else { 0.0 } + 0.1 / n as f64)
                    .collect();
                let Ok(loss) = BiTemperedLogisticLoss::new(0.5, 1.5).map(|l| l.with_reduction(Reduction::Sum)) else {
                    return vec![];
                };
                let smoothed = loss
                    .with_label_smoothing(0.1)
                    .and_then(|l| l.loss(Batch::single_row(z), Targets::<f64>::Classes(&[0])));
                let explicit = loss.loss(Batch::single_row(z), Targets::Probabilities(Batch::single_row(&y)));
                match (smoothed, explicit) {
                    (Ok(a), Ok(b)) => vec![(a.reduced.unwrap_or(f64::NAN), b.reduced.unwrap_or(f64::NAN))],
                    _ => vec![],
                }
            })
        },
    },
    Mistake {
        id: "bi_tempered.t1_is_cross_entropy",
        why: "\"At $t_1 = t_2 = 1$ the bi-tempered loss is the cross-entropy\" (true for one-hot labels only)",
        wrong: r"L_{1,1}(a, y) = -\sum_i y_i \ln \mathrm{softmax}(a)_i",
        right: r"L_{1,1}(a, y) = D_{KL}\left(y \Vert \mathrm{softmax}(a)\right) = -\sum_i y_i \ln \mathrm{softmax}(a)_i - H(y)",
        family: "`equal_on_rows` against `BiTemperedLogisticLoss::new(1, 1)` with soft labels $y_j \\propto j + 1$",
        run: |i| {
            rows(i, |z| {
                if !usable(z) {
                    return vec![(0.0, 0.0)];
                }
                let n = z.len();
                let total = (n * (n + 1) / 2) as f64;
                let y: Vec<f64> = (0..n).map(|j| (j + 1) as f64 / total).collect();
                let yb = Batch::single_row(&y);
                let bt = BiTemperedLogisticLoss::new(1.0, 1.0)
                    .map(|l| l.with_reduction(Reduction::Sum))
                    .and_then(|l| l.loss(Batch::single_row(z), Targets::Probabilities(yb)));
                let ce = SoftmaxCrossEntropy::new()
                    .with_reduction(Reduction::Sum)
                    .loss(Batch::single_row(z), Targets::Probabilities(yb));
                match (bt, ce) {
                    (Ok(a), Ok(b)) => vec![(a.reduced.unwrap_or(f64::NAN), b.reduced.unwrap_or(f64::NAN))],
                    _ => vec![],
                }
            })
        },
    },
];

fn limit_table() -> String {
    let mut s = String::from(
        "| $1 - t$ | $\\log_t 2 - \\ln 2$ (production) | $(1 - t)(\\ln 2)^2 / 2$ | ratio |\n| --- | --- | --- | --- |\n",
    );
    for k in [1, 2, 4, 6, 8] {
        let d = 10f64.powi(-k);
        let err = log_t(2.0f64, 1.0 - d) - std::f64::consts::LN_2;
        let pred = d * std::f64::consts::LN_2.powi(2) / 2.0;
        s.push_str(&format!("| 1e-{k} | {err:.6e} | {pred:.6e} | {:.6} |\n", err / pred));
    }
    s.push('\n');
    s
}

/// `bi_tempered.md`.
pub fn page() -> Result<String, DocsError> {
    let mut md = Md::new("The bi-tempered logistic loss");
    md.para(
        "Amid, Warmuth, Anil and Koren (NeurIPS 2019) replace the logarithm and the exponential of the logistic \
         loss by tempered versions: a temperature $t_1 < 1$ in the loss's logarithm makes it bounded (robust to \
         mislabeled examples far from the boundary), a temperature $t_2 > 1$ in the softmax gives it heavy tails \
         (robust to examples near it). At $t_1 = t_2 = 1$ it is the KL divergence from the labels to the \
         softmax. Everything below is bound to `crates/entropic/src/tempered.rs`.",
    );
    md.h2("The tempered logarithm and exponential");
    md.figure("log_t.svg", "log_t for several t", "$\\log_t x$ for $t \\in \\lbrace 0.2, 0.5, 0.8, 1, 1.5 \\rbrace$ (`entropic::log_t`): bounded below by $-1/(1-t)$ for $t < 1$.");
    md.derivation(&LOG_T)?;
    md.derivation(&LOG_T_DERIVATIVE)?;
    md.derivation(&EXP_T)?;
    md.figure("exp_t.svg", "exp_t for several t", "$\\exp_t x$ (`entropic::exp_t`): finite support for $t < 1$ (left), polynomial tails for $t > 1$ (right, log scale).");
    md.h2("Limits as t → 1");
    md.para("Both functions tend to $\\ln$ and $\\exp$ at first order in $1 - t$:");
    md.math(r"\log_t x - \ln x = \frac{1 - t}{2} (\ln x)^2 + O\left((1-t)^2\right), \qquad \exp_t x - e^x = -(1 - t) \frac{x^2}{2} e^x + O\left((1-t)^2\right)");
    md.para(
        "(expand $x^{1-t} = e^{(1-t)\\ln x} = 1 + (1-t)\\ln x + \\tfrac12 (1-t)^2 (\\ln x)^2 + \\dots$). Production \
         values at $x = 2$, computed now:",
    );
    md.raw(&limit_table());
    md.figure("log_t_convergence.svg", "convergence of log_t to ln", "$\\lvert \\log_t x - \\ln x \\rvert$ against $1 - t$, log-log: slope 1 with coefficient $(\\ln x)^2/2$ (claims `tempered.limit.log_t`, `tempered.limit.exp_t`).");
    md.h2("The tempered softmax and its normalization");
    md.para(
        "$p_i = \\exp_t(a_i - \\lambda(a))$ with the scalar $\\lambda(a)$ chosen so that $\\sum_i p_i = 1$. For \
         $t \\ne 1$ there is no closed form. The production solver shifts by the max logit ($z = a - \\max a$, so \
         the shifted root lies in $[0, -\\log_t(1/c)]$), then runs Newton's method on \
         $F(\\lambda) = \\log_t \\sum_i \\exp_t(z_i - \\lambda)$, which is exactly linear when all logits are equal \
         and at $t = 1$. Every evaluation tightens a bracket; a Newton point outside it is replaced by a Newton \
         step on $S(\\lambda) = \\sum_i \\exp_t(z_i - \\lambda)$ itself (convex and decreasing, so it never passes \
         the root from the left) or by bisection. It stops when a step would change $\\sum p$ by about one \
         rounding: at most 12 evaluations were observed, against the reference implementation's fixed 5 \
         fixed-point iterations, which stop short of normalization (see Numerics).",
    );
    md.derivation(&NORMALIZATION)?;
    md.derivation(&ESCORT)?;
    md.derivation(&JACOBIAN)?;
    md.figure("tempered_softmax.svg", "tempered softmax of one logit vector", "$\\mathrm{softmax}_t(3, 1.5, 0.5, -1, -3)$ for $t \\in \\lbrace 0.5, 1, 1.5, 4 \\rbrace$ (`entropic::tempered_softmax`): $t < 1$ zeroes the smallest classes, $t > 1$ spreads mass to them.");
    md.h2("The loss as a Bregman divergence");
    md.derivation(&BREGMAN)?;
    md.para(
        "A Bregman divergence is 0 exactly when $y = p$ and positive otherwise (claim `bi_tempered.bregman_zero`). \
         At $t_1 = t_2 = 1$ it is $\\sum_i y_i \\ln(y_i/p_i)$, the KL divergence (claim `bi_tempered.limit.kl`), \
         which differs from the cross-entropy by the entropy of the labels.",
    );
    md.h2("Boundedness");
    md.derivation(&BOUNDED)?;
    md.figure("bi_tempered_vs_logistic.svg", "bi-tempered vs logistic loss over the margin", "Two classes, activations $(0, m)$, true class 1: the logistic loss grows linearly as $m \\to -\\infty$; the bi-tempered losses level off at $1/(1 - t_1)$ (short line segments at the left edge), drawn from `BiTemperedLogisticLoss::loss`.");
    md.h2("The gradient");
    md.derivation(&GRADIENT)?;
    md.h2("Label smoothing");
    md.derivation(&SMOOTHING)?;
    md.h2("Numerics");
    md.numerics(NUMERICS)?;
    md.mistakes(MISTAKES)?;
    md.claims(&[
        "tempered.log_t_at_one",
        "tempered.log_t_derivative",
        "tempered.exp_t_derivative",
        "tempered.exp_t_inverts_log_t",
        "tempered.log_t_product",
        "tempered.softmax_normalized",
        "tempered.lambda_implicit",
        "tempered.limit.log_t",
        "tempered.limit.exp_t",
        "tempered.limit.softmax",
        "bi_tempered.limit.kl",
        "bi_tempered.bregman_zero",
        "bi_tempered.bounded",
        "bi_tempered.nonconvex",
    ])?;
    Ok(md.finish())
}
