//! Page: the gradient of softmax cross-entropy, step by step.

use entropic::{Batch, Reduction, SoftmaxCrossEntropy, Targets};
use num_dual::Dual64;

use super::common::{argmax, ce_definition, dual_gradient, dual_jacobian, logit_rows, rows_with_soft_labels};
use super::engine::{Case, Derivation, DocsError, Domain, Mistake, Step};
use super::render::Md;
use crate::claims::{SOFTMAX_IDENTITY, equal_on_rows};
use crate::generate::Inputs;
use crate::tolerance::{Tally, Tolerance};

const SOFT: Domain = Domain {
    description: "rows of 1 to 12 logits in $[-8, 8]$ (and $\\pm 20$) with soft labels $y \\ge 0$ of total \
                  $\\sum_j y_j \\in \\lbrace 1/2, 1, 2 \\rbrace$, some entries 0",
    cases: rows_with_soft_labels,
};

const GRADIENT: Tolerance = Tolerance::relative(
    1e-13,
    "every step is a closed form with O(c) roundings (c ≤ 12) or a dual-number derivative of the production code \
     (exact formula, O(c) roundings); entries are bounded by Σy ≤ 2, so errors are judged against max(Σy, 1)",
);

fn y_scale(c: &Case) -> f64 {
    c.y.iter().sum::<f64>().max(1.0)
}

fn softmax(c: &Case) -> Option<Vec<f64>> {
    entropic::softmax(&c.z).ok()
}

fn kernel_gradient(z: &[f64], targets: Targets<'_, f64>) -> Option<Vec<f64>> {
    let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum);
    ce.loss_and_grad(Batch::single_row(z), targets).ok().map(|(_, g)| g)
}

fn softmax_jacobian(z: &[f64]) -> Option<Vec<f64>> {
    dual_jacobian(z, |d: &[Dual64]| entropic::softmax(d).ok())
}

/// `∂L/∂z = a Σy − y`.
pub const SOFT_LABELS: Derivation = Derivation {
    id: "cross_entropy.gradient.soft",
    title: "The gradient with soft labels: $a \\sum_j y_j - y$",
    domain: SOFT,
    tolerance: GRADIENT,
    scale: y_scale,
    steps: &[
        Step::eq(
            r"\frac{\partial L}{\partial z_i}, \qquad L = -\sum_j y_j \ln a_j, \quad a = \mathrm{softmax}(z)",
            "Evaluated by forward-mode dual numbers through the production definition \
             `SoftmaxCrossEntropy::definition` (reduction `Sum`, probability targets): the derivative of the \
             code itself, not of a formula.",
            |c| dual_gradient(&c.z, |d| ce_definition(d, &c.y)),
        ),
        Step::eq(
            r"-\sum_j \frac{y_j}{a_j} \frac{\partial a_j}{\partial z_i}",
            "Chain rule through $a$: $\\partial(-y_j \\ln a_j)/\\partial a_j = -y_j / a_j$. Every $z_i$ moves \
             every $a_j$, so the sum runs over all $j$. The Jacobian $\\partial a_j / \\partial z_i$ is taken \
             here by dual numbers through `entropic::softmax`.",
            |c| {
                let a = softmax(c)?;
                let jac = softmax_jacobian(&c.z)?;
                let n = a.len();
                Some(
                    (0..n)
                        .map(|i| -(0..n).map(|j| c.y[j] / a[j] * jac[j * n + i]).sum::<f64>())
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"-\sum_j \frac{y_j}{a_j}\, a_j \left(\delta_{ij} - a_i\right)",
            "The softmax Jacobian (derived below): $\\partial a_j / \\partial z_i = a_j(\\delta_{ij} - a_i)$, \
             which is $a_i(1 - a_i)$ on the diagonal and $-a_i a_j$ off it.",
            |c| {
                let a = softmax(c)?;
                let n = a.len();
                let d = |i: usize, j: usize| if i == j { 1.0 } else { 0.0 };
                Some(
                    (0..n)
                        .map(|i| -(0..n).map(|j| c.y[j] / a[j] * (a[j] * (d(i, j) - a[i]))).sum::<f64>())
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"-\sum_j y_j \left(\delta_{ij} - a_i\right)",
            "Cancel $a_j$ (every $a_j > 0$ for finite logits).",
            |c| {
                let a = softmax(c)?;
                let n = a.len();
                let d = |i: usize, j: usize| if i == j { 1.0 } else { 0.0 };
                Some(
                    (0..n)
                        .map(|i| -(0..n).map(|j| c.y[j] * (d(i, j) - a[i])).sum::<f64>())
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"-y_i + a_i \sum_j y_j",
            "The sum over $j$: the Kronecker delta keeps only $j = i$ in the first part, $-\\sum_j y_j \\delta_{ij} \
             = -y_i$, and $a_i$ does not depend on $j$, so it leaves the second sum.",
            |c| {
                let a = softmax(c)?;
                let s: f64 = c.y.iter().sum();
                Some(a.iter().zip(&c.y).map(|(ai, yi)| -yi + ai * s).collect())
            },
        ),
        Step::eq(
            r"a_i \sum_j y_j - y_i \qquad \text{(the fused kernel's gradient)}",
            "The production kernel `SoftmaxCrossEntropy::loss_and_grad` computes this form in one pass. Only \
             when the labels sum to 1 does it become $a_i - y_i$.",
            |c| kernel_gradient(&c.z, Targets::Probabilities(Batch::single_row(&c.y))),
        ),
    ],
};

fn one_hot_rows(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let (edge, random) = logit_rows(inputs);
    let label = |mut c: Case, k: usize| {
        let n = c.z.len();
        c.y = (0..n).map(|j| if j == k { 1.0 } else { 0.0 }).collect();
        c.k = k;
        c
    };
    let edge = edge
        .into_iter()
        .map(|c| {
            let k = argmax(&c.z);
            label(c, k)
        })
        .collect();
    let random = random
        .into_iter()
        .map(|c| {
            let k = inputs.below(c.z.len());
            label(c, k)
        })
        .collect();
    (edge, random)
}

/// `∂L/∂z = a − e_k`.
pub const ONE_HOT: Derivation = Derivation {
    id: "cross_entropy.gradient.one_hot",
    title: "The one-hot case: $a - y$",
    domain: Domain {
        description: "the verifier's edge logit rows ($10^8$, $\\pm 10^{300}$, `f64::MAX`, $-\\infty$, subnormal; \
                      true class = the largest logit) and seeded rows of 1 to 12 logits spread up to $10^4$ and \
                      shifted to $-10^6$, with a random true class $k$",
        cases: one_hot_rows,
    },
    tolerance: Tolerance::relative(
        1e-15,
        "entries are bounded by 1 and each side has a few roundings of probabilities: absolute error ≤ 4ε",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\frac{\partial L}{\partial z_i}, \qquad L = -\ln a_k",
            "By dual numbers through the production definition with a class target $k$.",
            |c| {
                let k = [c.k];
                dual_gradient(&c.z, |d| {
                    SoftmaxCrossEntropy::new()
                        .with_reduction(Reduction::Sum)
                        .definition(Batch::single_row(d), Targets::<f64>::Classes(&k))
                        .ok()?
                        .reduced
                })
            },
        ),
        Step::eq(
            r"a_i \sum_j y_j - y_i, \qquad y = e_k",
            "The soft-label result with the one-hot label $y_j = \\delta_{jk}$.",
            |c| {
                let a = softmax(c)?;
                let s: f64 = c.y.iter().sum();
                Some(a.iter().zip(&c.y).map(|(ai, yi)| ai * s - yi).collect())
            },
        ),
        Step::eq(r"a_i - y_i", "$\\sum_j y_j = 1$.", |c| {
            Some(softmax(c)?.iter().zip(&c.y).map(|(ai, yi)| ai - yi).collect())
        }),
        Step::eq(
            r"g^{\mathrm{kernel}}_i(z, k)",
            "The production kernel `SoftmaxCrossEntropy::loss_and_grad` with a class target.",
            |c| kernel_gradient(&c.z, Targets::Classes(&[c.k])),
        ),
    ],
};

/// The softmax Jacobian.
pub const JACOBIAN: Derivation = Derivation {
    id: "softmax.jacobian",
    title: "The softmax Jacobian and its two cases",
    domain: Domain {
        description: "the verifier's edge logit rows and seeded rows of 1 to 12 logits spread up to $10^4$; all \
                      $c^2$ entries compared",
        cases: logit_rows,
    },
    tolerance: Tolerance::relative(
        4.0 * f64::EPSILON / 0.25,
        "entries are bounded by 1/4; each side has absolute error ≤ 4ε (a from exp and a division, one product)",
    ),
    scale: |_| 0.25,
    steps: &[
        Step::eq(
            r"\frac{\partial a_j}{\partial z_i}",
            "By dual numbers through `entropic::softmax` (entry $(j, i)$, all $c^2$ of them).",
            |c| softmax_jacobian(&c.z),
        ),
        Step::eq(
            r"\frac{\delta_{ij} e^{z_j} \sum_k e^{z_k} - e^{z_j} e^{z_i}}{\left(\sum_k e^{z_k}\right)^2}",
            "Quotient rule on $a_j = e^{z_j} / \\sum_k e^{z_k}$: the numerator depends on $z_i$ only when \
             $i = j$, the denominator always, with $\\partial_{z_i} \\sum_k e^{z_k} = e^{z_i}$. (Evaluated with the \
             max shift, which cancels from numerator and denominator.)",
            |c| {
                let z = &c.z;
                let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
                let s: f64 = e.iter().sum();
                let n = z.len();
                Some(
                    (0..n * n)
                        .map(|idx| {
                            let (j, i) = (idx / n, idx % n);
                            let diag = if i == j { e[j] * s } else { 0.0 };
                            (diag - e[j] * e[i]) / (s * s)
                        })
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"a_j \left(\delta_{ij} - a_i\right)",
            "Split the fraction: $\\delta_{ij} e^{z_j} / \\sum_k e^{z_k} = \\delta_{ij} a_j$ and \
             $e^{z_j} e^{z_i} / (\\sum_k e^{z_k})^2 = a_j a_i$.",
            |c| {
                let a = softmax(c)?;
                let n = a.len();
                Some(
                    (0..n * n)
                        .map(|idx| {
                            let (j, i) = (idx / n, idx % n);
                            a[j] * (if i == j { 1.0 } else { 0.0 } - a[i])
                        })
                        .collect(),
                )
            },
        ),
        Step::eq(
            r"a_i (1 - a_i) \ \text{ if } i = j, \qquad -a_i a_j \ \text{ if } i \ne j",
            "The two cases: the diagonal is positive (raising $z_i$ raises $a_i$), the off-diagonal entries \
             are negative (it lowers every other $a_j$); each column sums to 0 because $\\sum_j a_j = 1$.",
            |c| {
                let a = softmax(c)?;
                let n = a.len();
                Some(
                    (0..n * n)
                        .map(|idx| {
                            let (j, i) = (idx / n, idx % n);
                            if i == j { a[i] * (1.0 - a[i]) } else { -a[i] * a[j] }
                        })
                        .collect(),
                )
            },
        ),
    ],
};

fn smoothing_rows(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let (edge, random) = one_hot_rows(inputs);
    let keep = |v: Vec<Case>, inputs: &mut Inputs| -> Vec<Case> {
        v.into_iter()
            .filter(|c| c.z.len() >= 2 && c.z.iter().all(|z| z.is_finite() && z.abs() <= 1e4))
            .map(|mut c| {
                c.t = inputs.pick(&[0.05, 0.1, 0.3]);
                c
            })
            .collect()
    };
    let e = keep(edge, inputs);
    let r = keep(random, inputs);
    (e, r)
}

/// PyTorch's label smoothing: `(1 − ε) e_k + ε/C`.
pub const SMOOTHING: Derivation = Derivation {
    id: "cross_entropy.label_smoothing",
    title: "Label smoothing: PyTorch's $\\varepsilon / C$",
    domain: Domain {
        description: "rows of 2 to 12 logits ($\\lvert z \\rvert \\le 10^4$) with a class target, \
                      $\\varepsilon \\in \\lbrace 0.05, 0.1, 0.3 \\rbrace$ (field `t`)",
        cases: smoothing_rows,
    },
    tolerance: Tolerance::relative(
        1e-14,
        "the same loss evaluated with the smoothing applied inside the kernel or to explicit targets: c ≤ 12 terms \
         y_j·ln a_j in the same order, targets rounded once",
    ),
    scale: |c| c.z.iter().fold(1.0f64, |m, v| m.max(v.abs())),
    steps: &[
        Step::eq(
            r"L_\varepsilon(z, k)",
            "`SoftmaxCrossEntropy::with_label_smoothing(ε)` with a class target $k$.",
            |c| {
                SoftmaxCrossEntropy::new()
                    .with_label_smoothing(c.t)
                    .ok()?
                    .with_reduction(Reduction::Sum)
                    .loss(Batch::single_row(&c.z), Targets::<f64>::Classes(&[c.k]))
                    .ok()?
                    .reduced
                    .map(|v| vec![v])
            },
        ),
        Step::eq(
            r"-\sum_j \left( (1 - \varepsilon)\, \delta_{jk} + \frac{\varepsilon}{C} \right) \ln a_j",
            "Every class, the true one included, receives $\\varepsilon / C$ (PyTorch's convention); evaluated \
             as the unsmoothed loss with these explicit probability targets.",
            |c| {
                let n = c.z.len() as f64;
                let y: Vec<f64> = c.y.iter().map(|v| (1.0 - c.t) * v + c.t / n).collect();
                SoftmaxCrossEntropy::new()
                    .with_reduction(Reduction::Sum)
                    .loss(Batch::single_row(&c.z), Targets::Probabilities(Batch::single_row(&y)))
                    .ok()?
                    .reduced
                    .map(|v| vec![v])
            },
        ),
    ],
};

fn rows(inputs: &mut Inputs, f: fn(&[f64]) -> Vec<(f64, f64)>) -> Tally {
    equal_on_rows(inputs, &SOFTMAX_IDENTITY, &f)
}

/// Unnormalized labels derived from a row: `y_j = (j + 1)/c` (sum `(c + 1)/2`).
fn ramp(c: usize) -> Vec<f64> {
    (0..c).map(|j| (j + 1) as f64 / c as f64).collect()
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        id: "cross_entropy.mixed_indices",
        why: "The loss written with mixed indices, $-\\sum_j y_i \\ln a_j$ (for the true class $i = k$, $y_k = 1$)",
        wrong: r"L = -\sum_j y_k \ln a_j = -\sum_j \ln a_j",
        right: r"L = -\sum_j y_j \ln a_j = -\ln a_k",
        family: "`equal_on_rows` against `SoftmaxCrossEntropy::loss` (class 0)",
        run: |i| {
            rows(i, |z| {
                let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum);
                match (
                    ce.loss(Batch::single_row(z), Targets::<f64>::Classes(&[0])),
                    entropic::log_softmax(z),
                ) {
                    (Ok(o), Ok(l)) => vec![(o.reduced.unwrap_or(f64::NAN), -l.iter().sum::<f64>())],
                    _ => vec![(0.0, 0.0)],
                }
            })
        },
    },
    Mistake {
        id: "cross_entropy.gradient.a_minus_y_soft",
        why: "$a - y$ used for soft labels that do not sum to 1",
        wrong: r"\frac{\partial L}{\partial z_i} = a_i - y_i \quad \text{for any } y",
        right: r"\frac{\partial L}{\partial z_i} = a_i \sum_j y_j - y_i",
        family: "`equal_on_rows` against the dual-number gradient of `SoftmaxCrossEntropy::definition` \
                 (labels $y_j = (j+1)/c$)",
        run: |i| {
            rows(i, |z| {
                if z.iter().any(|v| !v.is_finite()) {
                    return vec![(0.0, 0.0)];
                }
                let y = ramp(z.len());
                match (dual_gradient(z, |d| ce_definition(d, &y)), entropic::softmax(z)) {
                    (Some(g), Ok(a)) => g.into_iter().zip(a.iter().zip(&y).map(|(a, y)| a - y)).collect(),
                    _ => vec![],
                }
            })
        },
    },
    Mistake {
        id: "softmax.jacobian.diagonal_only",
        why: "The softmax Jacobian taken as diagonal, $\\partial a_j / \\partial z_i = a_j(1 - a_j)\\,\\delta_{ij}$ \
              (the $-a_i a_j$ coupling forgotten)",
        wrong: r"\frac{\partial a_j}{\partial z_i} = \delta_{ij}\, a_j (1 - a_j)",
        right: r"\frac{\partial a_j}{\partial z_i} = a_j (\delta_{ij} - a_i)",
        family: "`equal_on_rows` against the dual-number Jacobian of `entropic::softmax` (the family of \
                 `softmax.jacobian.off_diagonal`)",
        run: |i| {
            rows(i, |z| match (softmax_jacobian(z), entropic::softmax(z)) {
                (Some(j), Ok(a)) => {
                    let n = a.len();
                    (0..n * n)
                        .map(|idx| {
                            let (r, s) = (idx / n, idx % n);
                            (j[idx], if r == s { a[r] * (1.0 - a[r]) } else { 0.0 })
                        })
                        .collect()
                }
                _ => vec![],
            })
        },
    },
    Mistake {
        id: "cross_entropy.gradient.sign",
        why: "The gradient with its sign flipped, $y - a$ (the direction of steepest *descent*)",
        wrong: r"\frac{\partial L}{\partial z_i} = y_i - a_i",
        right: r"\frac{\partial L}{\partial z_i} = a_i - y_i",
        family: "`equal_on_rows` against `SoftmaxCrossEntropy::loss_and_grad` (class 0)",
        run: |i| {
            rows(i, |z| {
                match (kernel_gradient(z, Targets::Classes(&[0])), entropic::softmax(z)) {
                    (Some(g), Ok(a)) => g
                        .into_iter()
                        .zip(a.iter().enumerate().map(|(j, a)| if j == 0 { 1.0 - a } else { -a }))
                        .collect(),
                    _ => vec![(0.0, 0.0)],
                }
            })
        },
    },
];

/// `cross_entropy_gradient.md`.
pub fn page() -> Result<String, DocsError> {
    let mut md = Md::new("The gradient of softmax cross-entropy, step by step");
    md.para(
        "For logits $z \\in \\mathbb{R}^C$, probabilities $a = \\mathrm{softmax}(z)$ and labels $y$ (one-hot, \
         or soft: any $y_j \\ge 0$), the loss is $L = -\\sum_j y_j \\ln a_j$. Its gradient with respect to the \
         logits is $a \\sum_j y_j - y$, which is $a - y$ for one-hot labels. Each line below is an expression \
         that was evaluated on the cases listed and compared with the line before it. The first line is the \
         derivative of the production code by dual numbers, the last the production kernel's fused gradient.",
    );
    md.h2("Derivations");
    md.derivation(&JACOBIAN)?;
    md.derivation(&SOFT_LABELS)?;
    md.derivation(&ONE_HOT)?;
    md.para(
        "Consequences: the gradient sums to $\\sum_i a_i \\sum_j y_j - \\sum_i y_i = 0$ (claim \
         `cross_entropy.gradient_sums_to_zero`), matching the loss's invariance to adding a constant to every \
         logit; the Hessian is $(\\sum_j y_j)(\\mathrm{diag}(a) - a a^\\top)$, positive semidefinite, so the \
         loss is convex in $z$ (claim `cross_entropy.hessian`).",
    );
    md.derivation(&SMOOTHING)?;
    md.para(
        "The bi-tempered loss uses a different convention, $\\varepsilon / (C - 1)$ on the wrong classes only \
         (see [the bi-tempered page](bi_tempered.md#label-smoothing)).",
    );
    md.h2("Numerics");
    md.para(
        "The kernel never divides by $a_j$ (step 2 above does, and would produce $0 \\cdot \\infty$ where $a_j$ \
         underflows): it computes $a$ once with the max shift and writes $a_i \\sum_j y_j - y_i$ directly.",
    );
    md.numerics(&[super::engine::NumericsExample {
        what: "gradient through $1/a_j$",
        input: "$z = (0, -800)$, $y = (0, 1)$, entry 1",
        naive_latex: r"-\frac{y_1}{a_1} \frac{\partial a_1}{\partial z_1}",
        naive: || {
            let a = entropic::softmax(&[0.0f64, -800.0]).unwrap_or_default();
            -(1.0 / a[1]) * (a[1] * (1.0 - a[1]))
        },
        production_name: "SoftmaxCrossEntropy::loss_and_grad",
        production: || {
            let y = [0.0f64, 1.0];
            kernel_gradient(&[0.0, -800.0], Targets::Probabilities(Batch::single_row(&y))).map_or(f64::NAN, |g| g[1])
        },
        exact: "$a_1 - 1 \\approx -1$",
    }])?;
    md.mistakes(MISTAKES)?;
    md.claims(&[
        "softmax.jacobian.diagonal",
        "softmax.jacobian.off_diagonal",
        "cross_entropy.gradient_sums_to_zero",
        "cross_entropy.hessian",
    ])?;
    Ok(md.finish())
}
