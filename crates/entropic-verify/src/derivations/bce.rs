//! Page: binary cross-entropy from logits.

use entropic::{Batch, BinaryCrossEntropyWithLogits, Reduction, log_sigmoid, sigmoid, softplus};
use num_dual::Dual64;

use super::engine::{Case, Derivation, DocsError, Domain, Mistake, NumericsExample, Step};
use super::render::Md;
use crate::claims::{DERIVATIVE_IDENTITY, derivative_identity};
use crate::generate::Inputs;
use crate::tolerance::{Tally, Tolerance};

fn one(v: f64) -> Option<Vec<f64>> {
    Some(vec![v])
}

fn cases(inputs: &mut Inputs, lo: f64, hi: f64, edge_x: &[f64]) -> (Vec<Case>, Vec<Case>) {
    let mut edge = Vec::new();
    for &x in edge_x {
        for t in [0.0, 1.0, 0.3] {
            edge.push(Case {
                x,
                t,
                ..Case::default()
            });
        }
    }
    let random = (0..150)
        .map(|_| {
            let x = inputs.uniform(lo, hi);
            let t = if inputs.below(2) == 0 {
                inputs.pick(&[0.0, 1.0])
            } else {
                inputs.unit()
            };
            Case {
                x,
                t,
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

fn bce_kernel(x: f64, y: f64) -> Option<(f64, f64)> {
    let (out, g) = BinaryCrossEntropyWithLogits::new()
        .with_reduction(Reduction::Sum)
        .loss_and_grad(Batch::single_row(&[x]), Batch::single_row(&[y]))
        .ok()?;
    Some((out.reduced?, g[0]))
}

fn bce_definition(x: Dual64, y: f64) -> Option<Dual64> {
    BinaryCrossEntropyWithLogits::new()
        .with_reduction(Reduction::Sum)
        .definition(Batch::single_row(&[x]), Batch::single_row(&[y]))
        .ok()?
        .reduced
}

/// From the probability form to softplus.
pub const VALUE: Derivation = Derivation {
    id: "bce.softplus",
    title: "From probabilities to logits: softplus",
    domain: Domain {
        description: "logits $x \\in [-4, 4]$ (where $1 - \\sigma(x)$ keeps its digits, see Numerics) and labels \
                      $y$ (field `t`) in $\\lbrace 0, 1/2, 1 \\rbrace$ and $[0, 1]$",
        cases: |i| cases(i, -4.0, 4.0, &[0.0, -4.0, 4.0, 1e-300]),
    },
    tolerance: Tolerance::relative(
        1e-13,
        "a few logarithms and exponentials of moderate arguments; 1 − σ(x) ≥ 0.018 loses at most ε/0.018 ≈ 6e-15 \
         relative; judged against max(1, |ℓ|)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\ell(x, y) = -y \ln \sigma(x) - (1 - y) \ln\left(1 - \sigma(x)\right), \qquad \sigma(x) = \frac{1}{1 + e^{-x}}",
            "The cross-entropy of the Bernoulli label $(y, 1-y)$ against the predicted $(\\sigma(x), 1 - \\sigma(x))$, \
             evaluated as written.",
            |c| {
                let s = 1.0 / (1.0 + (-c.x).exp());
                one(-c.t * s.ln() - (1.0 - c.t) * (1.0 - s).ln())
            },
        ),
        Step::eq(
            r"y \ln\left(1 + e^{-x}\right) + (1 - y) \ln\left(1 + e^{x}\right)",
            "$-\\ln \\sigma(x) = \\ln(1 + e^{-x})$, and $1 - \\sigma(x) = \\sigma(-x)$, so \
             $-\\ln(1 - \\sigma(x)) = \\ln(1 + e^{x})$.",
            |c| one(c.t * (-c.x).exp().ln_1p() + (1.0 - c.t) * c.x.exp().ln_1p()),
        ),
        Step::eq(
            r"y\thinspace \mathrm{softplus}(-x) + (1 - y)\thinspace \mathrm{softplus}(x)",
            "With $\\mathrm{softplus}(x) = \\ln(1 + e^x) = \\max(x, 0) + \\ln(1 + e^{-\\lvert x \\rvert})$, \
             which never overflows (`entropic::softplus`).",
            |c| one(c.t * softplus(-c.x) + (1.0 - c.t) * softplus(c.x)),
        ),
        Step::eq(
            r"\mathrm{softplus}(x) - x y",
            "$\\mathrm{softplus}(-x) = \\mathrm{softplus}(x) - x$ (since $\\ln(1 + e^{-x}) = \\ln(1 + e^{x}) - x$).",
            |c| one(softplus(c.x) - c.x * c.t),
        ),
        Step::eq(
            r"\ell^{\mathrm{kernel}}(x, y)",
            "The production kernel `BinaryCrossEntropyWithLogits::loss` (it evaluates the softplus form of step 3, \
             skipping a term whose coefficient is 0).",
            |c| one(bce_kernel(c.x, c.t)?.0),
        ),
    ],
};

/// The gradient `σ(x) − y`.
pub const GRADIENT: Derivation = Derivation {
    id: "bce.gradient",
    title: "The gradient: $\\sigma(x) - y$",
    domain: Domain {
        description: "logits $x \\in [-40, 40]$ and $\\pm 700$, $\\pm 10^{300}$, labels as above",
        cases: |i| cases(i, -40.0, 40.0, &[0.0, 700.0, -700.0, 1e300, -1e300]),
    },
    tolerance: Tolerance::relative(
        4.0 * f64::EPSILON,
        "σ and the dual derivative of softplus are each within 2 ulps; the gradient is bounded by 1, the scale used",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(
            r"\frac{\partial \ell}{\partial x}",
            "By dual numbers through `BinaryCrossEntropyWithLogits::definition`.",
            |c| one(bce_definition(Dual64::from_re(c.x).derivative(), c.t)?.eps),
        ),
        Step::eq(
            r"-y\thinspace \sigma(-x) + (1 - y)\thinspace \sigma(x)",
            "$\\frac{d}{dx}\\mathrm{softplus}(x) = \\frac{e^x}{1 + e^x} = \\sigma(x)$ and \
             $\\frac{d}{dx}\\mathrm{softplus}(-x) = -\\sigma(-x)$.",
            |c| one(-c.t * sigmoid(-c.x) + (1.0 - c.t) * sigmoid(c.x)),
        ),
        Step::eq(
            r"\sigma(x) - y",
            "$\\sigma(-x) = 1 - \\sigma(x)$; collect terms. (The kernel keeps the form of step 1: for $y = 1$ \
             and large $x$, $\\sigma(x) - 1$ cancels to 0 while $-\\sigma(-x)$ keeps its digits.)",
            |c| one(sigmoid(c.x) - c.t),
        ),
        Step::eq(
            r"g^{\mathrm{kernel}}(x, y)",
            "The production kernel `BinaryCrossEntropyWithLogits::loss_and_grad`.",
            |c| one(bce_kernel(c.x, c.t)?.1),
        ),
    ],
};

fn xs() -> Vec<f64> {
    (-20..=20).map(|k| f64::from(k) * 0.75).collect()
}

fn derivative_of_bce(df: fn(f64) -> f64) -> Tally {
    let y = 0.3;
    derivative_identity(&DERIVATIVE_IDENTITY, &xs(), &|x| bce_definition(x, y), &|x| Some(df(x)))
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        id: "bce.gradient.sign",
        why: "The gradient with its sign flipped, $y - \\sigma(x)$",
        wrong: r"\frac{\partial \ell}{\partial x} = y - \sigma(x)",
        right: r"\frac{\partial \ell}{\partial x} = \sigma(x) - y",
        family: "`derivative_identity` against the dual-number derivative of \
                 `BinaryCrossEntropyWithLogits::definition` ($y = 0.3$, $x \\in [-15, 15]$)",
        run: |_: &mut Inputs| derivative_of_bce(|x| 0.3 - sigmoid(x)),
    },
    Mistake {
        id: "bce.gradient.sigmoid_derivative",
        why: "The derivative of the sigmoid taken for the derivative of the loss",
        wrong: r"\frac{\partial \ell}{\partial x} = \sigma(x)\left(1 - \sigma(x)\right)",
        right: r"\frac{\partial \ell}{\partial x} = \sigma(x) - y",
        family: "`derivative_identity` against the dual-number derivative of \
                 `BinaryCrossEntropyWithLogits::definition` ($y = 0.3$)",
        run: |_: &mut Inputs| derivative_of_bce(|x| sigmoid(x) * sigmoid(-x)),
    },
];

const NUMERICS: &[NumericsExample] = &[
    NumericsExample {
        what: "confident wrong negative",
        input: "$x = 40$, $y = 0$",
        naive_latex: r"-\ln\left(1 - \sigma(40)\right)",
        naive: || -(1.0 - 1.0 / (1.0 + (-40f64).exp())).ln(),
        production_name: "BinaryCrossEntropyWithLogits::loss",
        production: || bce_kernel(40.0, 0.0).map_or(f64::NAN, |v| v.0),
        exact: "$40 + \\ln(1 + e^{-40}) \\approx 40$",
    },
    NumericsExample {
        what: "confident wrong positive",
        input: "$x = -800$, $y = 1$",
        naive_latex: r"-\ln \sigma(-800)",
        naive: || -(1.0 / (1.0 + 800f64.exp())).ln(),
        production_name: "BinaryCrossEntropyWithLogits::loss",
        production: || bce_kernel(-800.0, 1.0).map_or(f64::NAN, |v| v.0),
        exact: "$800$",
    },
    NumericsExample {
        what: "soft label, large logit",
        input: "$x = 800$, $y = 1/2$",
        naive_latex: r"-\tfrac12 \ln \sigma(800) - \tfrac12 \ln(1 - \sigma(800))",
        naive: || {
            let s = 1.0 / (1.0 + (-800f64).exp());
            -0.5 * s.ln() - 0.5 * (1.0 - s).ln()
        },
        production_name: "BinaryCrossEntropyWithLogits::loss",
        production: || bce_kernel(800.0, 0.5).map_or(f64::NAN, |v| v.0),
        exact: "$400$",
    },
    NumericsExample {
        what: "log-sigmoid",
        input: "$x = -800$",
        naive_latex: r"\ln\left(1 / (1 + e^{800})\right)",
        naive: || (1.0 / (1.0 + 800f64.exp())).ln(),
        production_name: "entropic::log_sigmoid",
        production: || log_sigmoid(-800.0f64),
        exact: "$-800$",
    },
];

/// `binary_cross_entropy.md`.
pub fn page() -> Result<String, DocsError> {
    let mut md = Md::new("Binary cross-entropy from logits");
    md.para(
        "One logit $x$ per binary question (binary or multi-label classification), probability \
         $\\sigma(x)$, label $y \\in [0, 1]$. The loss is the cross-entropy of two-outcome distributions; written \
         in the logit it needs no probability at all, which is what `F.binary_cross_entropy_with_logits` and \
         `entropic::BinaryCrossEntropyWithLogits` compute.",
    );
    md.h2("Derivations");
    md.derivation(&VALUE)?;
    md.derivation(&GRADIENT)?;
    md.h2("Numerics");
    md.para(
        "In `f64`, $\\sigma(x)$ rounds to exactly 1 for $x > 36.7$, so $1 - \\sigma(x)$ is 0 and its logarithm \
         $-\\infty$; $e^{-x}$ overflows for $x < -709.8$. The softplus form has neither problem:",
    );
    md.numerics(NUMERICS)?;
    md.mistakes(MISTAKES)?;
    md.h2("Verifier checks behind this page");
    md.para(
        "No identity in the claim registries is specific to binary cross-entropy; the autodiff checks \
         `grad.bce.*` (`entropic_verify::losses`, run by `entropic verify`) compare the kernel's value and \
         gradient with the dual-number derivative of the definition and with finite differences, for every \
         option combination (`weight`, `pos_weight`, reductions).",
    );
    Ok(md.finish())
}
