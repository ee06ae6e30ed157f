//! Page: focal loss (bound to `entropic::SigmoidFocalLoss`).

use entropic::{Batch, BinaryCrossEntropyWithLogits, Reduction, SigmoidFocalLoss, log_sigmoid, sigmoid};
use num_dual::Dual64;

use super::engine::{Case, Derivation, DocsError, Domain, Mistake, NumericsExample, Step};
use super::render::Md;
use crate::claims::{DERIVATIVE_IDENTITY, derivative_identity};
use crate::generate::Inputs;
use crate::tolerance::{Tally, Tolerance};

/// The focusing parameters of the derivations and the figure.
pub const GAMMAS: [f64; 5] = [0.0, 0.5, 1.0, 2.0, 5.0];

fn one(v: f64) -> Option<Vec<f64>> {
    Some(vec![v])
}

fn focal(gamma: f64) -> Option<SigmoidFocalLoss> {
    Some(SigmoidFocalLoss::new(None, gamma).ok()?.with_reduction(Reduction::Sum))
}

fn focal_kernel(x: f64, y: f64, gamma: f64) -> Option<(f64, f64)> {
    let (out, g) = focal(gamma)?
        .loss_and_grad(Batch::single_row(&[x]), Batch::single_row(&[y]))
        .ok()?;
    Some((out.reduced?, g[0]))
}

fn focal_definition(x: Dual64, y: f64, gamma: f64) -> Option<Dual64> {
    focal(gamma)?
        .definition(Batch::single_row(&[x]), Batch::single_row(&[y]))
        .ok()?
        .reduced
}

fn bce(x: f64, y: f64) -> Option<f64> {
    BinaryCrossEntropyWithLogits::new()
        .with_reduction(Reduction::Sum)
        .loss(Batch::single_row(&[x]), Batch::single_row(&[y]))
        .ok()?
        .reduced
}

/// Hard labels in `k`, γ in `t`, the logit in `x`.
fn hard_cases(inputs: &mut Inputs, lo: f64, hi: f64, edge_x: &[f64]) -> (Vec<Case>, Vec<Case>) {
    let mut edge = Vec::new();
    for &x in edge_x {
        for gamma in GAMMAS {
            for k in [0, 1] {
                edge.push(Case {
                    x,
                    t: gamma,
                    k,
                    ..Case::default()
                });
            }
        }
    }
    let random = (0..150)
        .map(|_| Case {
            x: inputs.uniform(lo, hi),
            t: inputs.pick(&GAMMAS),
            k: inputs.below(2),
            ..Case::default()
        })
        .collect();
    (edge, random)
}

/// `p_t` and `1 − p_t` without cancellation: `(σ(±x), σ(∓x))`.
fn pt(c: &Case) -> (f64, f64) {
    if c.k == 1 {
        (sigmoid(c.x), sigmoid(-c.x))
    } else {
        (sigmoid(-c.x), sigmoid(c.x))
    }
}

/// The paper's form to the production definition.
pub const VALUE: Derivation = Derivation {
    id: "focal.value",
    title: "From the paper's form to the log-space evaluation",
    domain: Domain {
        description: "logits $x \\in [-8, 8]$ and $0, \\pm 8$, hard labels $y \\in \\lbrace 0, 1 \\rbrace$ (field `k`), \
                      $\\gamma \\in \\lbrace 0, 0.5, 1, 2, 5 \\rbrace$ (field `t`)",
        cases: |i| hard_cases(i, -8.0, 8.0, &[0.0, 8.0, -8.0]),
    },
    tolerance: Tolerance::relative(
        1e-14,
        "one power or exponential of a logarithm and a product per side; (1 − p_t)^γ in two ways differs by \
         ≤ γ·|ln(1 − p_t)|·ε ≤ 5·9·ε; judged against max(1, |FL|)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\mathrm{FL}(x, y) = -(1 - p_t)^{\gamma} \ln p_t, \qquad p_t = \sigma(x) \text{ if } y = 1, \quad p_t = 1 - \sigma(x) \text{ if } y = 0",
            "Lin et al. (2017), Eq. (4) (without $\\alpha$): the cross-entropy $-\\ln p_t$ of the true class, \
             multiplied by the modulating factor $(1 - p_t)^\\gamma$. Evaluated as written, with \
             $p_t$ and $1 - p_t$ as $\\sigma(\\pm x)$.",
            |c| {
                let (p, q) = pt(c);
                one(-q.powf(c.t) * p.ln())
            },
        ),
        Step::eq(
            r"(1 - p_t)^{\gamma} \cdot \mathrm{BCE}(x, y)",
            "For a hard label $-\\ln p_t$ is the binary cross-entropy from logits \
             (`BinaryCrossEntropyWithLogits`, see [its page](binary_cross_entropy.md)).",
            |c| {
                let (_, q) = pt(c);
                one(q.powf(c.t) * bce(c.x, c.k as f64)?)
            },
        ),
        Step::eq(
            r"\exp\left(\gamma \ln(1 - p_t)\right) \cdot \mathrm{BCE}(x, y), \qquad \ln(1 - p_t) = \ln \sigma(\mp x)",
            "Write the factor through its logarithm, which is a log-sigmoid of the logit: no probability is \
             rounded before its logarithm is taken (the factor is skipped when $\\gamma = 0$).",
            |c| {
                let lq = if c.k == 1 { log_sigmoid(-c.x) } else { log_sigmoid(c.x) };
                let m = if c.t == 0.0 { 1.0 } else { (c.t * lq).exp() };
                one(m * bce(c.x, c.k as f64)?)
            },
        ),
        Step::eq(
            r"\mathrm{FL}^{\mathrm{kernel}}(x, y)",
            "The production kernel `SigmoidFocalLoss::loss` ($\\alpha$ disabled).",
            |c| one(focal_kernel(c.x, c.k as f64, c.t)?.0),
        ),
    ],
};

/// The gradient for `y = 1`.
pub const GRADIENT: Derivation = Derivation {
    id: "focal.gradient",
    title: "The gradient ($y = 1$)",
    domain: Domain {
        description: "logits $x \\in [-12, 12]$ and $0, \\pm 30$, label $y = 1$, \
                      $\\gamma \\in \\lbrace 0, 0.5, 1, 2, 5 \\rbrace$ (field `t`)",
        cases: |i| {
            let keep = |v: Vec<Case>| v.into_iter().filter(|c| c.k == 1).collect();
            let (e, r) = hard_cases(i, -12.0, 12.0, &[0.0, 30.0, -30.0]);
            (keep(e), keep(r))
        },
    },
    tolerance: Tolerance::relative(
        1e-13,
        "closed forms with a power, a logarithm and a few products against the dual derivative of the \
         definition (the same operations); the gradient's scale is max(1, |∂FL/∂x|)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\frac{\partial\thinspace \mathrm{FL}}{\partial x}",
            "By dual numbers through `SigmoidFocalLoss::definition`.",
            |c| one(focal_definition(Dual64::from_re(c.x).derivative(), 1.0, c.t)?.eps),
        ),
        Step::eq(
            r"\frac{d (1 - p)^{\gamma}}{dx} (-\ln p) + (1 - p)^{\gamma} \frac{d (-\ln p)}{dx}, \qquad p = \sigma(x)",
            "Product rule.",
            |c| {
                let (p, q) = (sigmoid(c.x), sigmoid(-c.x));
                // d(1−p)^γ/dx = γ(1−p)^(γ−1)·(−p(1−p)) = −γ p (1−p)^γ; d(−ln p)/dx = −(1−p).
                let dm = if c.t == 0.0 { 0.0 } else { -c.t * p * q.powf(c.t) };
                one(dm * -p.ln() + q.powf(c.t) * -q)
            },
        ),
        Step::eq(
            r"\gamma (1 - p)^{\gamma - 1} \left(-p(1 - p)\right) (-\ln p) - (1 - p)^{\gamma} (1 - p)",
            "$\\frac{dp}{dx} = p(1 - p)$, so $\\frac{d(1-p)^\\gamma}{dx} = -\\gamma(1-p)^{\\gamma-1} p (1-p)$ and \
             $\\frac{d(-\\ln p)}{dx} = -(1 - p)$.",
            |c| {
                let (p, q) = (sigmoid(c.x), sigmoid(-c.x));
                let first = if c.t == 0.0 {
                    0.0
                } else {
                    c.t * q.powf(c.t - 1.0) * (-p * q) * -p.ln()
                };
                one(first - q.powf(c.t) * q)
            },
        ),
        Step::eq(
            r"(1 - p)^{\gamma} \left[ \gamma\thinspace p \ln p - (1 - p) \right]",
            "Factor $(1 - p)^\\gamma$ out (it absorbs the $(1 - p)$ of the first term). The first term in the \
             bracket is the focal term: with $\\gamma = 0$ the bracket is $p - 1$, the cross-entropy gradient.",
            |c| {
                let (p, q) = (sigmoid(c.x), sigmoid(-c.x));
                one(q.powf(c.t) * (c.t * p * p.ln() - q))
            },
        ),
        Step::eq(
            r"g^{\mathrm{kernel}}(x, 1)",
            "The production kernel `SigmoidFocalLoss::loss_and_grad`, which writes the gradient with bounded \
             factors only: the factor $(1 - p)^{\\gamma - 1}$, unbounded as $p \\to 1$ for $\\gamma < 1$, never \
             appears on its own.",
            |c| one(focal_kernel(c.x, 1.0, c.t)?.1),
        ),
    ],
};

fn soft_cases(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let edge = [
        (0.0, 0.0),
        (1e4, 0.0),
        (-1e4, 1.0),
        (1e4, 1.0),
        (37.0, 0.0),
        (-800.0, 0.5),
    ]
    .iter()
    .map(|&(x, y)| Case {
        x,
        y: vec![y],
        ..Case::default()
    })
    .collect();
    let random = (0..150)
        .map(|_| {
            let spread = inputs.pick(&[1.0, 10.0, 100.0, 1e4]);
            Case {
                x: inputs.uniform(-spread, spread),
                y: vec![if inputs.below(2) == 0 {
                    inputs.pick(&[0.0, 1.0])
                } else {
                    inputs.unit()
                }],
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

/// `γ = 0` is BCE.
pub const GAMMA_ZERO: Derivation = Derivation {
    id: "focal.gamma_zero",
    title: "$\\gamma = 0$: binary cross-entropy",
    domain: Domain {
        description: "logits up to $\\pm 10^4$ (and $37$, $-800$), hard and soft labels $y \\in [0, 1]$",
        cases: soft_cases,
    },
    tolerance: Tolerance::relative(
        16.0 * f64::EPSILON,
        "with γ = 0 the kernel skips the factor and evaluates BCE's softplus form (0 ulp expected); the bound \
         allows the rounding of an equivalent log-space form, relative to max(1, ℓ)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\mathrm{FL}_{\gamma = 0}(x, y)",
            "`SigmoidFocalLoss::new(None, 0)` (soft labels as in optax).",
            |c| one(focal_kernel(c.x, c.y[0], 0.0)?.0),
        ),
        Step::eq(
            r"(1 - p_t)^0 \cdot \mathrm{BCE}(x, y) = \mathrm{BCE}(x, y)",
            "The modulating factor is 1: the focal loss is a generalization of the cross-entropy \
             (`BinaryCrossEntropyWithLogits`).",
            |c| one(bce(c.x, c.y[0])?),
        ),
    ],
};

fn derivative_at_y1(df: fn(f64) -> f64) -> Tally {
    let xs: Vec<f64> = (-20..=20).map(|k| f64::from(k) * 0.5).collect();
    derivative_identity(&DERIVATIVE_IDENTITY, &xs, &|x| focal_definition(x, 1.0, 2.0), &|x| {
        Some(df(x))
    })
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        id: "focal.gradient.missing_gamma_term",
        why: "The focal gradient without the $\\gamma$ term (the modulating factor treated as a constant)",
        wrong: r"\frac{\partial\thinspace \mathrm{FL}}{\partial x} = (1 - p)^{\gamma} (p - 1)",
        right: r"\frac{\partial\thinspace \mathrm{FL}}{\partial x} = (1 - p)^{\gamma} \left[\gamma\thinspace p \ln p - (1 - p)\right]",
        family: "`derivative_identity` against the dual-number derivative of `SigmoidFocalLoss::definition` \
                 ($y = 1$, $\\gamma = 2$, $x \\in [-10, 10]$)",
        run: |_: &mut Inputs| derivative_at_y1(|x| sigmoid(-x).powi(2) * -sigmoid(-x)),
    },
    Mistake {
        id: "focal.gradient.power_rule_sign",
        why: "The chain rule through $1 - p$ dropped (the sign of the focal term flipped)",
        wrong: r"\frac{\partial\thinspace \mathrm{FL}}{\partial x} = (1 - p)^{\gamma} \left[-\gamma\thinspace p \ln p - (1 - p)\right]",
        right: r"\frac{\partial\thinspace \mathrm{FL}}{\partial x} = (1 - p)^{\gamma} \left[\gamma\thinspace p \ln p - (1 - p)\right]",
        family: "`derivative_identity` against the dual-number derivative of `SigmoidFocalLoss::definition` \
                 ($y = 1$, $\\gamma = 2$)",
        run: |_: &mut Inputs| {
            derivative_at_y1(|x| {
                let (p, q) = (sigmoid(x), sigmoid(-x));
                q.powi(2) * (-2.0 * p * p.ln() - q)
            })
        },
    },
];

const NUMERICS: &[NumericsExample] = &[
    NumericsExample {
        what: "confident wrong negative",
        input: "$x = 40$, $y = 0$, $\\gamma = 2$",
        naive_latex: r"-\sigma(40)^2 \ln(1 - \sigma(40))",
        naive: || {
            let p = 1.0 / (1.0 + (-40f64).exp());
            -(p * p) * (1.0 - p).ln()
        },
        production_name: "SigmoidFocalLoss::loss",
        production: || focal_kernel(40.0, 0.0, 2.0).map_or(f64::NAN, |v| v.0),
        exact: "$\\approx 40$",
    },
    NumericsExample {
        what: "gradient by naive autodiff, $\\gamma < 1$",
        input: "$x = 40$, $y = 1$, $\\gamma = 0.5$",
        naive_latex: r"\gamma (1 - p)^{\gamma - 1} \cdot \left(-p(1-p)\right) \cdot (-\ln p) + \dots \text{ with } p = \sigma(40) = 1",
        naive: || {
            let p = 1.0 / (1.0 + (-40f64).exp());
            let q = 1.0 - p;
            0.5 * q.powf(-0.5) * (-p * q) * -p.ln() - q.powf(0.5) * q
        },
        production_name: "SigmoidFocalLoss::loss_and_grad",
        production: || focal_kernel(40.0, 1.0, 0.5).map_or(f64::NAN, |v| v.1),
        exact: "$\\approx -e^{-60}$",
    },
];

fn downweight_table() -> Result<String, DocsError> {
    let mut s = String::from(
        "| $p_t$ | cross-entropy $-\\ln p_t$ | focal, $\\gamma = 2$ | ratio $(1 - p_t)^2$ |\n| --- | --- | --- | --- |\n",
    );
    for p_t in [0.1f64, 0.5, 0.9, 0.99, 0.999] {
        let x = (p_t / (1.0 - p_t)).ln();
        let (Some(ce), Some((fl, _))) = (bce(x, 1.0), focal_kernel(x, 1.0, 2.0)) else {
            return Err(DocsError::Numerics {
                what: "focal down-weighting table",
                detail: format!("evaluation failed at p_t = {p_t}"),
            });
        };
        s.push_str(&format!("| {p_t} | {ce:.4e} | {fl:.4e} | {:.4e} |\n", fl / ce));
    }
    s.push('\n');
    Ok(s)
}

/// `focal.md`.
pub fn page() -> Result<String, DocsError> {
    let mut md = Md::new("Focal loss");
    md.para(
        "The focal loss (Lin, Goyal, Girshick, He, Dollár, ICCV 2017) multiplies the cross-entropy of the true \
         class by $(1 - p_t)^\\gamma$, where $p_t$ is the predicted probability of the true class. Everything \
         below is bound to the production `entropic::SigmoidFocalLoss` (sigmoid variant, torchvision/optax \
         semantics; $\\alpha$ disabled unless stated).",
    );
    md.h2("Why it down-weights easy examples");
    md.para(
        "An example the model already gets right has $p_t$ near 1, so $(1 - p_t)^\\gamma$ is near 0 and the \
         example contributes little; a hard example ($p_t$ small) keeps almost its whole cross-entropy. With \
         many easy negatives (dense detection), their summed loss no longer swamps the few hard ones. Values \
         from the production code at generation time:",
    );
    md.raw(&downweight_table()?);
    md.figure(
        "focal_loss.svg",
        "focal loss against p_t",
        "Focal loss against $p_t$ for $\\gamma \\in \\lbrace 0, 0.5, 1, 2, 5 \\rbrace$, drawn from `SigmoidFocalLoss::loss`.",
    );
    md.h2("Derivations");
    md.derivation(&VALUE)?;
    md.derivation(&GRADIENT)?;
    md.derivation(&GAMMA_ZERO)?;
    md.h2("Numerics");
    md.numerics(NUMERICS)?;
    md.para(
        "The second line is why the definition uses $\\exp(\\gamma \\ln(1 - p_t))$ with a log-sigmoid inside: \
         automatic differentiation of $(1 - p)^\\gamma$ at $1 - p = 0$ multiplies $\\infty$ by 0.",
    );
    md.mistakes(MISTAKES)?;
    md.claims(&["focal.gamma_zero_is_cross_entropy", "focal.at_most_cross_entropy"])?;
    md.para(
        "The autodiff checks `grad.sigmoid_focal.*` and `grad.softmax_focal.*` (`entropic_verify::losses`, run by \
         `entropic verify`) compare the kernels' gradients with the dual-number derivative of the definitions \
         and with finite differences, for γ below and above 1, with and without α.",
    );
    Ok(md.finish())
}
