//! Page: softmax, log-sum-exp and the overflow-safe form.

use super::engine::{Case, Derivation, DocsError, Domain, Mistake, NumericsExample, Step};
use super::render::Md;
use crate::claims::{SOFTMAX_IDENTITY, equal_on_rows};
use crate::generate::Inputs;
use crate::tolerance::{Tally, Tolerance};

fn moderate_rows(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let edge = [
        vec![0.0, 0.0, 0.0, 0.0],
        vec![3.0],
        vec![700.0, -700.0, 0.5],
        vec![-700.0, -700.0],
        vec![1e-300, -1e-300, 5e-324],
        vec![0.0, f64::NEG_INFINITY, 1.0],
    ]
    .into_iter()
    .map(|z| Case { z, ..Case::default() })
    .collect();
    let random = (0..150)
        .map(|_| {
            let c = 1 + inputs.below(32);
            let spread = inputs.pick(&[1.0, 10.0, 100.0]);
            Case {
                z: (0..c).map(|_| inputs.uniform(-spread, spread)).collect(),
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

const MODERATE: Domain = Domain {
    description: "rows of 1 to 32 logits with $\\lvert z \\rvert \\le 700$ (where the unshifted form is still \
                  finite), a masked $-\\infty$ class and subnormal logits",
    cases: moderate_rows,
};

fn max_of(z: &[f64]) -> f64 {
    z.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn one(v: f64) -> Option<Vec<f64>> {
    Some(vec![v])
}

const LSE_TOLERANCE: Tolerance = Tolerance::relative(
    1e-14,
    "a sum of c ≤ 32 exponentials (each within 1 ulp) and one logarithm: the log-sum-exp is within a few ulps \
     of max|z| + ln c, the scale used",
);

/// `ln Σ e^z = m + ln Σ e^{z − m}`.
pub const LOGSUMEXP: Derivation = Derivation {
    id: "logsumexp.shift",
    title: "Log-sum-exp: factor out the largest exponential",
    domain: MODERATE,
    tolerance: LSE_TOLERANCE,
    scale: |c| c.z.iter().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs())) + (c.z.len() as f64).ln() + 1.0,
    steps: &[
        Step::eq(
            r"\mathrm{lse}(z) = \ln \sum_j e^{z_j}",
            "The literal formula, evaluated as written.",
            |c| one(c.z.iter().map(|v| v.exp()).sum::<f64>().ln()),
        ),
        Step::eq(
            r"\ln \left( e^{m} \sum_j e^{z_j - m} \right), \qquad m = \max_j z_j",
            "Multiply and divide every term by $e^{m}$; $e^{z_j} = e^{m} e^{z_j - m}$.",
            |c| {
                let m = max_of(&c.z);
                one((m.exp() * c.z.iter().map(|v| (v - m).exp()).sum::<f64>()).ln())
            },
        ),
        Step::eq(
            r"m + \ln \sum_j e^{z_j - m}",
            "$\\ln(e^m s) = m + \\ln s$. Now every exponent is $\\le 0$ and the largest term is $e^0 = 1$, so \
             the sum lies in $[1, c]$: it can neither overflow nor underflow to 0, whatever the logits.",
            |c| {
                let m = max_of(&c.z);
                one(m + c.z.iter().map(|v| (v - m).exp()).sum::<f64>().ln())
            },
        ),
        Step::eq(
            r"\texttt{entropic::logsumexp}(z)",
            "The production function computes exactly this form.",
            |c| one(entropic::logsumexp(&c.z).ok()?),
        ),
    ],
};

/// `e^{z_i}/Σ e^z = exp(z_i − lse(z))`.
pub const SOFTMAX: Derivation = Derivation {
    id: "softmax.shift",
    title: "Softmax: the same shift, exact because it cancels",
    domain: MODERATE,
    tolerance: Tolerance::relative(
        1e-13,
        "one exponential and one division per entry on each side; exp(z_i − lse) inherits the rounding of lse \
         times |z_i − lse| ≤ 1400: relative to max(1e-300, |a_i|) it stays below 1400·2ε ≈ 6e-13 only in \
         the worst case, so entries are judged against the scale 1 (probabilities are ≤ 1)",
    ),
    scale: |_| 1.0,
    steps: &[
        Step::eq(r"a_i = \frac{e^{z_i}}{\sum_j e^{z_j}}", "The literal formula.", |c| {
            let s: f64 = c.z.iter().map(|v| v.exp()).sum();
            Some(c.z.iter().map(|v| v.exp() / s).collect())
        }),
        Step::eq(
            r"\frac{e^{z_i - m}}{\sum_j e^{z_j - m}}",
            "Multiply numerator and denominator by $e^{-m}$, $m = \\max_j z_j$: the factor cancels exactly \
             (shift invariance, claim `softmax.shift_invariant`), so any $m$ gives the same $a$.",
            |c| {
                let m = max_of(&c.z);
                let s: f64 = c.z.iter().map(|v| (v - m).exp()).sum();
                Some(c.z.iter().map(|v| (v - m).exp() / s).collect())
            },
        ),
        Step::eq(
            r"\exp\left(z_i - \mathrm{lse}(z)\right)",
            "Write the quotient as one exponential, with the log-sum-exp derived above \
             (`entropic::logsumexp`). Taking its logarithm gives $\\ln a_i = z_i - \\mathrm{lse}(z)$, the \
             log-softmax, without ever forming a tiny $a_i$.",
            |c| {
                let l = entropic::logsumexp(&c.z).ok()?;
                Some(c.z.iter().map(|v| (v - l).exp()).collect())
            },
        ),
        Step::eq(r"\texttt{entropic::softmax}(z)_i", "The production function.", |c| {
            entropic::softmax(&c.z).ok()
        }),
    ],
};

fn naive_softmax(z: &[f64]) -> Vec<f64> {
    let s: f64 = z.iter().map(|v| v.exp()).sum();
    z.iter().map(|v| v.exp() / s).collect()
}

fn rows(inputs: &mut Inputs, f: fn(&[f64]) -> Vec<(f64, f64)>) -> Tally {
    equal_on_rows(inputs, &SOFTMAX_IDENTITY, &f)
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        id: "softmax.no_max_shift",
        why: "Softmax without the max shift",
        wrong: r"a_i = e^{z_i} \Big/ \sum_j e^{z_j} \quad \text{evaluated as written}",
        right: r"a_i = e^{z_i - m} \Big/ \sum_j e^{z_j - m}, \quad m = \max_j z_j",
        family: "`equal_on_rows` against `entropic::softmax` (the family of `softmax.normalized`)",
        run: |i| {
            rows(i, |z| match entropic::softmax(z) {
                Ok(a) => a.into_iter().zip(naive_softmax(z)).collect(),
                Err(_) => vec![],
            })
        },
    },
    Mistake {
        id: "logsumexp.no_max_shift",
        why: "Log-sum-exp without the max shift",
        wrong: r"\mathrm{lse}(z) = \ln \sum_j e^{z_j} \quad \text{evaluated as written}",
        right: r"\mathrm{lse}(z) = m + \ln \sum_j e^{z_j - m}",
        family: "`equal_on_rows` against `entropic::logsumexp`",
        run: |i| {
            rows(i, |z| match entropic::logsumexp(z) {
                Ok(l) => vec![(l, z.iter().map(|v| v.exp()).sum::<f64>().ln())],
                Err(_) => vec![],
            })
        },
    },
    Mistake {
        id: "log_softmax.log_of_softmax",
        why: "Log-softmax as the logarithm of the softmax",
        wrong: r"\ln a_i = \ln\left(\mathrm{softmax}(z)_i\right) \quad \text{(a rounded probability first)}",
        right: r"\ln a_i = z_i - \mathrm{lse}(z)",
        family: "`equal_on_rows` against `entropic::log_softmax` (the family of `log_softmax.definition`)",
        run: |i| {
            rows(i, |z| match (entropic::log_softmax(z), entropic::softmax(z)) {
                (Ok(l), Ok(a)) => l
                    .into_iter()
                    .zip(a)
                    .zip(z)
                    .filter(|(_, v)| v.is_finite())
                    .map(|((x, y), _)| (x, y.ln()))
                    .collect(),
                _ => vec![],
            })
        },
    },
];

const NUMERICS: &[NumericsExample] = &[
    NumericsExample {
        what: "log-sum-exp, overflow",
        input: "$z = (1000, 1000)$",
        naive_latex: r"\ln(e^{1000} + e^{1000})",
        naive: || (1000f64.exp() + 1000f64.exp()).ln(),
        production_name: "entropic::logsumexp",
        production: || entropic::logsumexp(&[1000.0f64, 1000.0]).unwrap_or(f64::NAN),
        exact: "$1000 + \\ln 2$",
    },
    NumericsExample {
        what: "log-sum-exp, underflow",
        input: "$z = (-1000, -1000)$",
        naive_latex: r"\ln(e^{-1000} + e^{-1000})",
        naive: || ((-1000f64).exp() + (-1000f64).exp()).ln(),
        production_name: "entropic::logsumexp",
        production: || entropic::logsumexp(&[-1000.0f64, -1000.0]).unwrap_or(f64::NAN),
        exact: "$-1000 + \\ln 2$",
    },
    NumericsExample {
        what: "softmax, overflow",
        input: "$z = (1000, 999)$, first entry",
        naive_latex: r"e^{1000} / (e^{1000} + e^{999})",
        naive: || naive_softmax(&[1000.0, 999.0])[0],
        production_name: "entropic::softmax",
        production: || entropic::softmax(&[1000.0f64, 999.0]).map_or(f64::NAN, |a| a[0]),
        exact: "$1/(1 + e^{-1}) \\approx 0.7311$",
    },
    NumericsExample {
        what: "log-softmax of a vanishing class",
        input: "$z = (0, -800)$, second entry",
        naive_latex: r"\ln\left(e^{-800} / (1 + e^{-800})\right)",
        naive: || naive_softmax(&[0.0, -800.0])[1].ln(),
        production_name: "entropic::log_softmax",
        production: || entropic::log_softmax(&[0.0f64, -800.0]).map_or(f64::NAN, |l| l[1]),
        exact: "$-800 - \\ln(1 + e^{-800}) \\approx -800$",
    },
];

/// `softmax.md`.
pub fn page() -> Result<String, DocsError> {
    let mut md = Md::new("Softmax, log-sum-exp and the overflow-safe form");
    md.para(
        "The softmax $a = \\mathrm{softmax}(z)$, $a_i = e^{z_i} / \\sum_j e^{z_j}$, turns logits into \
         probabilities; its logarithm is $\\ln a_i = z_i - \\mathrm{lse}(z)$ with the log-sum-exp \
         $\\mathrm{lse}(z) = \\ln \\sum_j e^{z_j}$, whose gradient is the softmax. In `f64`, $e^{z}$ overflows \
         for $z > 709.78$ and underflows to 0 below $-745.13$, so the literal formulas fail at logits that \
         trained networks do produce. The fix is one exact identity.",
    );
    md.h2("Derivations");
    md.derivation(&LOGSUMEXP)?;
    md.derivation(&SOFTMAX)?;
    md.h2("Numerics");
    md.para("Computed at generation time, the literal formula against the production function:");
    md.numerics(NUMERICS)?;
    md.para(
        "The production functions (`crates/entropic/src/softmax.rs`) use the shift for every scalar type, \
         dual numbers included: the shift is chosen by the real part, and its derivative parts cancel \
         exactly as the value does.",
    );
    md.mistakes(MISTAKES)?;
    md.claims(&[
        "softmax.normalized",
        "softmax.shift_invariant",
        "log_softmax.definition",
    ])?;
    Ok(md.finish())
}
