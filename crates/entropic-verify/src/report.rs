//! The verification report: every claim with its cases, worst error and verdict.

use serde::Serialize;

use crate::tolerance::{Measured, Tally, Tolerance};

/// The verdict on one claim.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Stable identifier, e.g. `kl.gibbs`.
    pub id: String,
    /// The claim in LaTeX.
    pub statement: String,
    /// The input domain it was checked over.
    pub domain: String,
    /// The tolerance and its reason.
    pub tolerance: Tolerance,
    /// Cases tried.
    pub cases: usize,
    /// Largest error seen.
    pub max_error: Measured,
    /// The input that produced it.
    pub worst_input: String,
    /// Whether every case held.
    pub passed: bool,
    /// The first failure, if any.
    pub failure: Option<String>,
}

impl Outcome {
    /// Builds an outcome from a tally. A claim with zero cases fails: a
    /// check that tried nothing proves nothing.
    pub fn from_tally(
        id: impl Into<String>,
        statement: impl Into<String>,
        domain: impl Into<String>,
        tolerance: Tolerance,
        tally: Tally,
    ) -> Self {
        let (max_error, worst_input) = tally.worst.unwrap_or((Measured::ZERO, String::new()));
        let failure = if tally.cases == 0 {
            Some("no case was tried".to_string())
        } else {
            tally.failure
        };
        Self {
            id: id.into(),
            statement: statement.into(),
            domain: domain.into(),
            tolerance,
            cases: tally.cases,
            max_error,
            worst_input,
            passed: failure.is_none(),
            failure,
        }
    }
}

/// Every claim's outcome from one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The seed of the random cases (log it to reproduce a run).
    pub seed: u64,
    /// Whether the extensive sweeps ran.
    pub extensive: bool,
    /// One outcome per claim, in registry order.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// True when every claim held.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.passed)
    }

    /// Number of claims that failed.
    pub fn failures(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.passed).count()
    }

    /// A plain-text table: claim, cases, max error (ulps, relative), tolerance, status.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "{:<40} {:>7} {:>10} {:>10} {:>16}  {}\n",
            "claim", "cases", "max ulp", "max rel", "tolerance", "status"
        );
        s.push_str(&"-".repeat(96));
        s.push('\n');
        for o in &self.outcomes {
            let ulps = if o.max_error.ulps.is_finite() {
                format!("{}", o.max_error.ulps)
            } else {
                "inf".into()
            };
            s.push_str(&format!(
                "{:<40} {:>7} {:>10} {:>10.2e} {:>16}  {}\n",
                o.id,
                o.cases,
                ulps,
                o.max_error.rel,
                o.tolerance.describe(),
                if o.passed { "ok" } else { "FAILED" }
            ));
            if let Some(f) = &o.failure {
                s.push_str(&format!("    {f}\n"));
            }
        }
        s.push_str(&format!(
            "{} claims, {} passed, {} failed (seed {}{})\n",
            self.outcomes.len(),
            self.outcomes.len() - self.failures(),
            self.failures(),
            self.seed,
            if self.extensive { ", extensive" } else { "" }
        ));
        s
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
