//! # entropic-verify
//!
//! Proves the mathematics of [`entropic`] by machine:
//!
//! - **Autodiff checks** ([`ad`]): every loss and option combination is
//!   differentiated with num-dual dual numbers *through the production
//!   generic definition* and compared with the analytic gradient of the
//!   `f64` and `f32` kernels; central finite differences are a third,
//!   independent witness; Hessians from second-order duals are compared with
//!   differences of the analytic gradient; the plain and dual paths must
//!   reject the same bad inputs.
//! - **An identity catalogue** ([`claims`]): named claims (KL = CE − H,
//!   Gibbs, shift invariance, the softmax Jacobian, …) checked over edge
//!   cases, log-spaced sweeps and seeded random inputs.
//! - **A report** ([`Report`]): every claim with cases tried, max error in
//!   ulps and relative terms, worst input and verdict, as a table or JSON.
//!
//! Every check family takes the formulas under test as arguments, and the
//! test suite feeds each family deliberately wrong formulas to show it can
//! fail.
//!
//! ## Example
//! ```
//! let report = entropic_verify::run(&entropic_verify::Config::default());
//! assert!(report.passed(), "{}", report.to_table());
//! ```

pub mod ad;
pub mod claims;
pub mod derivations;
pub mod focal_claims;
pub mod generate;
pub mod loss;
pub mod losses;
pub mod precise;
pub mod report;
pub mod tempered_claims;
pub mod tolerance;

pub use report::{Outcome, Report};
pub use tolerance::{Bound, Measured, Tally, Tolerance};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Seed for the random cases (reported, so any run can be reproduced).
    pub seed: u64,
    /// Run the long sweeps (20× the random cases).
    pub extensive: bool,
}

impl Default for Config {
    /// Seed 2026, extensive when the environment sets `ENTROPIC_EXTENSIVE=1`.
    fn default() -> Self {
        Self {
            seed: 2026,
            extensive: std::env::var("ENTROPIC_EXTENSIVE").is_ok_and(|v| v == "1"),
        }
    }
}

/// Runs the whole catalogue: identity claims, then the autodiff checks of
/// every loss and option combination.
pub fn run(config: &Config) -> Report {
    run_with_progress(config, |_, _| {})
}

/// As [`run`], calling `progress(done, total)` after each claim group.
pub fn run_with_progress(config: &Config, mut progress: impl FnMut(usize, usize)) -> Report {
    let mut inputs = generate::Inputs::new(config.seed, config.extensive);
    let mut claims = claims::registry();
    claims.extend(focal_claims::registry());
    claims.extend(tempered_claims::registry());
    let total = claims.len() + 1;
    let mut outcomes = Vec::new();
    for (i, claim) in claims.iter().enumerate() {
        outcomes.push(claim.run(&mut inputs));
        progress(i + 1, total);
    }
    outcomes.extend(losses::run_all(&mut inputs));
    progress(total, total);
    Report {
        seed: config.seed,
        extensive: config.extensive,
        outcomes,
    }
}
