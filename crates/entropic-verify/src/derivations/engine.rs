//! The data model of a derivation and the machinery that checks it: steps,
//! their evaluation on generated cases, the comparison of consecutive steps,
//! and the "common mistakes" verdicts.

use crate::generate::Inputs;
use crate::tolerance::{Measured, Tally, Tolerance};

/// The seed of every generated case in the docs (fixed: output is deterministic).
pub const SEED: u64 = 2026;

/// Why generation failed. Names the derivation and step (or mistake, claim,
/// figure, file) at fault.
#[derive(Debug, Clone, PartialEq)]
pub enum DocsError {
    /// Two consecutive steps of a derivation disagree (or a step could not
    /// be evaluated) on some generated case.
    StepFailed {
        /// The derivation's id.
        derivation: &'static str,
        /// 1-based index of the failing step (it disagrees with the step before it).
        step: usize,
        /// The failing step's LaTeX.
        latex: &'static str,
        /// The counterexample and its error.
        detail: String,
    },
    /// A derivation with fewer than two steps, or whose domain produced no case.
    Malformed {
        /// The derivation's id.
        derivation: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A wrong form listed under "common mistakes" was *not* rejected by its check family.
    MistakeNotRejected {
        /// The mistake's id.
        mistake: &'static str,
        /// Cases tried.
        cases: usize,
    },
    /// A page lists a claim id that is not in the verifier's registries, or the claim fails.
    Claim {
        /// The claim's id.
        id: String,
        /// What is wrong.
        detail: String,
    },
    /// A numerics example whose production value is not finite (the point of the example).
    Numerics {
        /// The example's label.
        what: &'static str,
        /// The values found.
        detail: String,
    },
    /// Drawing a figure failed.
    Figure {
        /// The figure's file name.
        figure: &'static str,
        /// The plotting error.
        detail: String,
    },
    /// Writing a file failed.
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        detail: String,
    },
}

impl std::fmt::Display for DocsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocsError::StepFailed {
                derivation,
                step,
                latex,
                detail,
            } => write!(
                f,
                "derivation `{derivation}`, step {step} (`{latex}`) does not follow from step {}: {detail}",
                step - 1
            ),
            DocsError::Malformed { derivation, detail } => write!(f, "derivation `{derivation}`: {detail}"),
            DocsError::MistakeNotRejected { mistake, cases } => write!(
                f,
                "common mistake `{mistake}` was not rejected by its check family ({cases} cases tried): \
                 either the form is not wrong or the family cannot see it"
            ),
            DocsError::Claim { id, detail } => write!(f, "claim `{id}`: {detail}"),
            DocsError::Numerics { what, detail } => write!(f, "numerics example `{what}`: {detail}"),
            DocsError::Figure { figure, detail } => write!(f, "figure `{figure}`: {detail}"),
            DocsError::Io { path, detail } => write!(f, "{}: {detail}", path.display()),
        }
    }
}

impl std::error::Error for DocsError {}

/// One generated input. Derivations use the fields their domain fills.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Case {
    /// A probability vector (or the first of a pair).
    pub p: Vec<f64>,
    /// The second probability vector of a pair.
    pub q: Vec<f64>,
    /// A row of logits.
    pub z: Vec<f64>,
    /// Labels (soft, possibly unnormalized) or a one-hot row.
    pub y: Vec<f64>,
    /// A scalar argument.
    pub x: f64,
    /// A parameter (temperature, γ, ε, …).
    pub t: f64,
    /// A second parameter (the second temperature, …).
    pub t2: f64,
    /// A class index.
    pub k: usize,
}

impl Case {
    /// A short description of the fields in use (for counterexamples).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let v = |name: &str, v: &[f64]| format!("{name}={v:?}");
        if !self.p.is_empty() {
            parts.push(v("p", &self.p));
        }
        if !self.q.is_empty() {
            parts.push(v("q", &self.q));
        }
        if !self.z.is_empty() {
            parts.push(v("z", &self.z));
        }
        if !self.y.is_empty() {
            parts.push(v("y", &self.y));
        }
        if self.x != 0.0 {
            parts.push(format!("x={:?}", self.x));
        }
        if self.t != 0.0 {
            parts.push(format!("t={:?}", self.t));
        }
        if self.t2 != 0.0 {
            parts.push(format!("t2={:?}", self.t2));
        }
        if self.k != 0 {
            parts.push(format!("k={}", self.k));
        }
        parts.join(" ")
    }
}

/// Where a derivation is checked: fixed edge cases then seeded random ones.
#[derive(Debug, Clone, Copy)]
pub struct Domain {
    /// The domain in words (shown on the page).
    pub description: &'static str,
    /// Generates the cases: `(edge cases, random cases)`.
    pub cases: fn(&mut Inputs) -> (Vec<Case>, Vec<Case>),
}

/// How a step relates to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// `previous = this` (within the derivation's tolerance).
    Eq,
    /// `previous ≤ this` (up to the tolerance).
    Le,
}

/// The value of a step's expression on one case (a scalar is a vector of
/// length 1); `None` when the expression cannot be evaluated there.
pub type Eval = fn(&Case) -> Option<Vec<f64>>;

/// One step of a derivation: an expression, why it follows from the
/// previous one, and a function evaluating it.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The expression (LaTeX, without delimiters); for [`Relation::Le`] it is
    /// shown after `\le`.
    pub latex: &'static str,
    /// Why this step follows from the previous one (Markdown, may hold `$…$`).
    pub explanation: &'static str,
    /// Relation to the previous step.
    pub relation: Relation,
    /// Evaluates the expression.
    pub eval: Eval,
}

impl Step {
    /// An equality step.
    pub const fn eq(latex: &'static str, explanation: &'static str, eval: Eval) -> Self {
        Self {
            latex,
            explanation,
            relation: Relation::Eq,
            eval,
        }
    }
    /// An inequality step (`previous ≤ this`).
    pub const fn le(latex: &'static str, explanation: &'static str, eval: Eval) -> Self {
        Self {
            latex,
            explanation,
            relation: Relation::Le,
            eval,
        }
    }
}

/// A chain of steps, each checked against the previous one.
#[derive(Debug, Clone, Copy)]
pub struct Derivation {
    /// Stable identifier, e.g. `ce.gradient.soft`.
    pub id: &'static str,
    /// Title (shown as a heading).
    pub title: &'static str,
    /// Where it is checked.
    pub domain: Domain,
    /// The agreement required between consecutive steps, with its reason.
    pub tolerance: Tolerance,
    /// The magnitude errors are judged against on a case (errors are
    /// `|a − b| / max(scale, |a|, |b|)`).
    pub scale: fn(&Case) -> f64,
    /// The steps; the first is the quantity derived.
    pub steps: &'static [Step],
}

/// The evidence for one step: how it was checked against the previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Cases tried.
    pub cases: usize,
    /// Of which fixed edge cases.
    pub edge_cases: usize,
    /// Number of compared values (vector entries over all cases).
    pub values: usize,
    /// Largest error (for `≤` steps: the largest violation, 0 when it held).
    pub max: Measured,
    /// The case that produced it.
    pub worst: String,
}

/// A checked derivation: the evidence for steps 1.. (step 0 has none).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The derivation.
    pub derivation: Derivation,
    /// `evidence[k − 1]` is the evidence for step `k`.
    pub evidence: Vec<Evidence>,
}

/// Checks every step of `d` against the previous one on the domain's cases.
///
/// # Errors
/// [`DocsError::StepFailed`] naming the first step that disagrees with its
/// predecessor (or cannot be evaluated), [`DocsError::Malformed`] for a
/// derivation with fewer than two steps or no case.
pub fn check(d: &Derivation) -> Result<Checked, DocsError> {
    if d.steps.len() < 2 {
        return Err(DocsError::Malformed {
            derivation: d.id,
            detail: "a derivation needs at least two steps".into(),
        });
    }
    let mut inputs = Inputs::new(SEED, false);
    let (edge, random) = (d.domain.cases)(&mut inputs);
    let edge_cases = edge.len();
    let cases: Vec<Case> = edge.into_iter().chain(random).collect();
    if cases.is_empty() {
        return Err(DocsError::Malformed {
            derivation: d.id,
            detail: "the domain produced no case".into(),
        });
    }
    let fail = |k: usize, detail: String| DocsError::StepFailed {
        derivation: d.id,
        step: k,
        latex: d.steps[k].latex,
        detail,
    };
    let mut prev: Vec<Vec<f64>> = Vec::with_capacity(cases.len());
    for (ci, case) in cases.iter().enumerate() {
        match (d.steps[0].eval)(case) {
            Some(v) => prev.push(v),
            None => {
                return Err(DocsError::StepFailed {
                    derivation: d.id,
                    step: 0,
                    latex: d.steps[0].latex,
                    detail: format!("case {ci} ({}): the expression could not be evaluated", case.describe()),
                });
            }
        }
    }
    let mut evidence = Vec::new();
    for (k, step) in d.steps.iter().enumerate().skip(1) {
        let mut tally = Tally::default();
        let mut values = 0;
        let mut cur = Vec::with_capacity(cases.len());
        for (case, a) in cases.iter().zip(&prev) {
            let Some(b) = (step.eval)(case) else {
                return Err(fail(
                    k,
                    format!("at {}: the expression could not be evaluated", case.describe()),
                ));
            };
            if a.len() != b.len() {
                return Err(fail(
                    k,
                    format!("at {}: {} values against {} before", case.describe(), b.len(), a.len()),
                ));
            }
            let scale = (d.scale)(case);
            let m = a.iter().zip(&b).fold(Measured::ZERO, |m, (&x, &y)| {
                let s = scale.max(x.abs()).max(y.abs()).max(f64::MIN_POSITIVE);
                let e = match step.relation {
                    Relation::Eq => Measured::scaled(x, y, s),
                    // A violation of x ≤ y is measured as the distance from y to x; none is 0.
                    Relation::Le if x <= y => Measured::ZERO,
                    Relation::Le => Measured::scaled(x, y, s),
                };
                m.max(e)
            });
            values += a.len();
            tally.record(&d.tolerance, m, || case.describe());
            cur.push(b);
        }
        if let Some(f) = tally.failure {
            return Err(fail(k, f));
        }
        let (max, worst) = tally.worst.unwrap_or((Measured::ZERO, String::new()));
        evidence.push(Evidence {
            cases: tally.cases,
            edge_cases,
            values,
            max,
            worst,
        });
        prev = cur;
    }
    Ok(Checked {
        derivation: *d,
        evidence,
    })
}

/// A wrong form found in notes, with the check family that must reject it.
#[derive(Debug, Clone, Copy)]
pub struct Mistake {
    /// Stable identifier.
    pub id: &'static str,
    /// The wrong form (LaTeX).
    pub wrong: &'static str,
    /// The right form (LaTeX).
    pub right: &'static str,
    /// What goes wrong, in words.
    pub why: &'static str,
    /// The check family and the claim it checks (e.g. `equal_on_pairs` against `kl_divergence`).
    pub family: &'static str,
    /// Runs the family on the wrong form.
    pub run: fn(&mut Inputs) -> Tally,
}

/// The verdict on a mistake: the family rejected it with this counterexample.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Cases tried.
    pub cases: usize,
    /// The first counterexample and its error.
    pub counterexample: String,
}

/// Runs the family on the wrong form; it must be rejected.
///
/// # Errors
/// [`DocsError::MistakeNotRejected`] when every case passed.
pub fn reject(m: &Mistake) -> Result<Rejection, DocsError> {
    let mut inputs = Inputs::new(SEED, false);
    let tally = (m.run)(&mut inputs);
    match tally.failure {
        Some(counterexample) => Ok(Rejection {
            cases: tally.cases,
            counterexample,
        }),
        None => Err(DocsError::MistakeNotRejected {
            mistake: m.id,
            cases: tally.cases,
        }),
    }
}

/// A concrete extreme input where the naive formula fails.
#[derive(Debug, Clone, Copy)]
pub struct NumericsExample {
    /// Label (also the error's name).
    pub what: &'static str,
    /// The input, in words or LaTeX-free text.
    pub input: &'static str,
    /// The naive formula (LaTeX).
    pub naive_latex: &'static str,
    /// Evaluates the naive formula.
    pub naive: fn() -> f64,
    /// What the production code computes (name of the function).
    pub production_name: &'static str,
    /// Evaluates the production code.
    pub production: fn() -> f64,
    /// The exact value, in words (e.g. `1000 + ln 2`).
    pub exact: &'static str,
}

/// The values of a numerics example: `(naive, production)`.
///
/// # Errors
/// [`DocsError::Numerics`] when the production value is not finite.
pub fn evaluate_numerics(n: &NumericsExample) -> Result<(f64, f64), DocsError> {
    let (a, b) = ((n.naive)(), (n.production)());
    if !b.is_finite() {
        return Err(DocsError::Numerics {
            what: n.what,
            detail: format!("production value {b:?} is not finite (naive {a:?})"),
        });
    }
    Ok((a, b))
}
