//! The identity catalogue: named claims about the mathematics, each checked
//! over edge cases, log-spaced sweeps and seeded random inputs.
//!
//! Each claim binds production functions into a *check family* (equality
//! of two expressions, an inequality, a derivative identity, a limit rate).
//! The families take the functions under test as arguments, so the
//! mutation tests can feed them deliberately wrong formulas and watch them
//! fail.

use num_dual::Dual64;

use crate::generate::Inputs;
use crate::report::Outcome;
use crate::tolerance::{Measured, Tally, Tolerance};

/// One named claim.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// Stable identifier, e.g. `kl.gibbs`.
    pub id: &'static str,
    /// The claim in LaTeX.
    pub statement: &'static str,
    /// Where it is checked.
    pub domain: &'static str,
    /// Tolerance with its reason.
    pub tolerance: Tolerance,
    /// The check.
    pub check: fn(&mut Inputs, &Tolerance) -> Tally,
}

impl Claim {
    /// Runs the check and builds the outcome.
    pub fn run(&self, inputs: &mut Inputs) -> Outcome {
        let tally = (self.check)(inputs, &self.tolerance);
        Outcome::from_tally(self.id, self.statement, self.domain, self.tolerance, tally)
    }
}

/// Rounding of a sum of `c ≤ 64` terms each within a few ulps: the two
/// sides of an information identity are different sums of the same
/// `p ln p`-type terms.
pub const INFO_IDENTITY: Tolerance = Tolerance::relative(
    1e-13,
    "both sides sum ≤ 64 terms p·ln(·) in f64, each term within 2 ulps; the sums' rounding errors are \
     ≤ c·ε·Σ|terms|, taken relative to Σ|terms| (so cancellation near 0 is not misjudged)",
);

/// Inequalities hold exactly up to rounding of a sum.
pub const INEQUALITY: Tolerance = Tolerance::relative(
    1e-13,
    "an inequality between sums of ≤ 64 terms may be violated by their rounding (≤ c·ε of the magnitudes)",
);

/// Softmax-family identities on one row.
pub const SOFTMAX_IDENTITY: Tolerance = Tolerance::ulps(
    8.0,
    "softmax/log_softmax entries are each within ~2 ulps of exact (one exp, one division or subtraction \
     after an exact max shift); comparing two such evaluations, or a sum of c ≤ 64 of them to 1, stays \
     within 8 ulps",
);

/// Derivative identities by dual numbers.
pub const DERIVATIVE_IDENTITY: Tolerance = Tolerance::relative(
    1e-13,
    "dual-number derivatives are exact formulas evaluated in f64 (a few roundings) against closed forms with \
     a few roundings, compared relative to the larger magnitude",
);

/// Monte-Carlo agreement is statistical, not a rounding bound.
pub const MONTE_CARLO: Tolerance = Tolerance::relative(
    0.0,
    "the Monte-Carlo estimate must lie within 5 standard errors of the exact value (chance of a false \
     alarm < 1e-6); the reported rel is the distance in standard errors / 1e6 (0 means inside)",
);

/// A function of two probability vectors that may fail (`None`).
pub type PairFn<'a> = &'a dyn Fn(&[f64], &[f64]) -> Option<f64>;
/// A property of two probability vectors: `Err(detail)` where it fails.
pub type PairProperty<'a> = &'a dyn Fn(&[f64], &[f64]) -> Result<(), String>;
/// Pairs of values (computed, expected) from one logit row.
pub type RowPairs<'a> = &'a dyn Fn(&[f64]) -> Vec<(f64, f64)>;

/// Records `|a − b|` relative to `scale`.
fn eq_scaled(t: &mut Tally, tol: &Tolerance, a: f64, b: f64, scale: f64, input: impl FnOnce() -> String) {
    t.record(tol, Measured::scaled(a, b, scale.max(f64::MIN_POSITIVE)), input);
}

/// Pairs of probability vectors: fixed edge cases then seeded random ones.
pub fn simplex_pairs(inputs: &mut Inputs, n: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut v = vec![
        (vec![1.0], vec![1.0]),
        (vec![0.5, 0.5], vec![0.5, 0.5]),
        (vec![1.0, 0.0], vec![0.5, 0.5]),
        (vec![0.0, 1.0], vec![1e-300, 1.0 - 1e-300]),
        (vec![0.25; 4], vec![0.1, 0.2, 0.3, 0.4]),
        (vec![1e-300, 1.0 - 1e-300], vec![0.5, 0.5]),
    ];
    for _ in 0..inputs.count(n) {
        let c = 1 + inputs.below(64);
        let zeros = inputs.below(2) == 0;
        let p = inputs.simplex(c, zeros);
        let q = inputs.simplex(c, false);
        v.push((p, q));
    }
    v
}

fn sum_abs(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&a, &b)| {
            let la = if a > 0.0 { (a * a.ln()).abs() } else { 0.0 };
            let lb = if a > 0.0 && b > 0.0 { (a * b.ln()).abs() } else { 0.0 };
            la + lb
        })
        .sum::<f64>()
        .max(1e-300)
}

/// Family: `lhs(p, q) = rhs(p, q)` on pairs of probability vectors.
pub fn equal_on_pairs(inputs: &mut Inputs, tol: &Tolerance, lhs: PairFn<'_>, rhs: PairFn<'_>) -> Tally {
    let mut t = Tally::default();
    for (p, q) in simplex_pairs(inputs, 200) {
        match (lhs(&p, &q), rhs(&p, &q)) {
            (Some(a), Some(b)) => eq_scaled(&mut t, tol, a, b, sum_abs(&p, &q), || format!("p={p:?} q={q:?}")),
            (a, b) => t.require(false, || format!("p={p:?} q={q:?}: evaluation failed ({a:?}, {b:?})")),
        }
    }
    t
}

/// Family: `pred(p, q)` returns `Err(detail)` where the claim fails.
pub fn holds_on_pairs(inputs: &mut Inputs, pred: PairProperty<'_>) -> Tally {
    let mut t = Tally::default();
    for (p, q) in simplex_pairs(inputs, 200) {
        let r = pred(&p, &q);
        t.require(r.is_ok(), || {
            format!("p={p:?} q={q:?}: {}", r.err().unwrap_or_default())
        });
    }
    t
}

/// Logit rows: edge cases plus seeded random rows of length 1..64.
pub fn logit_rows(inputs: &mut Inputs, n: usize) -> Vec<Vec<f64>> {
    let mut rows = Inputs::edge_logit_rows();
    for _ in 0..inputs.count(n) {
        let c = 1 + inputs.below(64);
        rows.push(inputs.logits(c));
    }
    rows
}

/// Family: `f(row)` returns pairs `(a, b)` that must agree within `tol` (ulps).
pub fn equal_on_rows(inputs: &mut Inputs, tol: &Tolerance, f: RowPairs<'_>) -> Tally {
    let mut t = Tally::default();
    for row in logit_rows(inputs, 200) {
        let pairs = f(&row);
        if pairs.is_empty() {
            t.require(false, || format!("row {row:?}: evaluation failed"));
        }
        let e = pairs
            .iter()
            .fold(Measured::ZERO, |m, &(a, b)| m.max(Measured::between(a, b)));
        t.record(tol, e, || format!("row {row:?}"));
    }
    t
}

/// Family: derivative identity `d/dx f(x) = df(x)` by dual numbers, at `xs`.
pub fn derivative_identity(
    tol: &Tolerance,
    xs: &[f64],
    f: &dyn Fn(Dual64) -> Option<Dual64>,
    df: &dyn Fn(f64) -> Option<f64>,
) -> Tally {
    let mut t = Tally::default();
    for &x in xs {
        match (f(Dual64::from_re(x).derivative()), df(x)) {
            (Some(d), Some(e)) => t.record(tol, Measured::between(d.eps, e), || format!("x = {x:e}")),
            _ => t.require(false, || format!("x = {x:e}: evaluation failed")),
        }
    }
    t
}

/// The result of fitting `err(δ) ≈ k·δ^s` over `δ = 10^-k`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateFit {
    /// Fitted exponent `s` (1 for a first-order limit).
    pub order: f64,
    /// `err(δ)/δ` at the smallest δ before rounding dominates, relative to the predicted coefficient.
    pub coefficient_rel_error: f64,
}

/// Family: a limit `F(δ) → F(0)` as `δ → 0` that is first order with a
/// predicted leading coefficient: `F(δ) − F(0) ≈ coef·δ`. Fits the order
/// by least squares on `ln|err|` against `ln δ` over `δ = 10^-k`,
/// `k = 2 … 10` (at `k = 1` second-order terms still weigh in, beyond 10
/// rounding does), and compares `err(δ)/δ` at `δ = 10^-6` with `coef`.
pub fn limit_rate(err: &dyn Fn(f64) -> f64, coef: f64) -> RateFit {
    let ks: Vec<f64> = (2..=10).map(f64::from).collect();
    let pts: Vec<(f64, f64)> = ks
        .iter()
        .map(|k| (-k * std::f64::consts::LN_10, err(10f64.powf(-k)).abs().max(1e-300).ln()))
        .collect();
    let n = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    let order = sxy / sxx;
    let d = 1e-6;
    let c = err(d) / d;
    RateFit {
        order,
        coefficient_rel_error: ((c - coef) / coef).abs(),
    }
}

fn ok<T>(r: entropic::Result<T>) -> Option<T> {
    r.ok()
}

fn check_information(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    // I(p·q) = I(p) + I(q): independent events add their information.
    let mut t = Tally::default();
    // p·q must stay a normal number, so p, q ≥ 1e-150.
    let mut xs = Inputs::spaced(1e-150, 1.0, 40);
    for _ in 0..inputs.count(100) {
        xs.push(inputs.log_uniform(1e-12, 1.0));
    }
    for w in xs.windows(2) {
        let (p, q) = (w[0], w[1]);
        if let (Some(a), Some(b), Some(c)) = (
            ok(entropic::information(p * q)),
            ok(entropic::information(p)),
            ok(entropic::information(q)),
        ) {
            eq_scaled(&mut t, tol, a, b + c, a.abs().max(1.0), || format!("p={p:e} q={q:e}"));
        } else {
            t.require(false, || format!("information failed at p={p:e} q={q:e}"));
        }
    }
    t
}

fn check_entropy_expectation(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    equal_on_pairs(inputs, tol, &|p, _| ok(entropic::entropy(p)), &|p, _| {
        p.iter()
            .filter(|&&x| x > 0.0)
            .map(|&x| ok(entropic::information(x)).map(|i| x * i))
            .sum::<Option<f64>>()
    })
}

fn check_entropy_bounds(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = holds_on_pairs(inputs, &|p, _| {
        let h = entropic::entropy(p).map_err(|e| e.to_string())?;
        let ln_n = (p.len() as f64).ln();
        let slack = 64.0 * f64::EPSILON * ln_n.max(1.0);
        if h < -slack || h > ln_n + slack {
            Err(format!("H = {h} outside [0, ln n = {ln_n}]"))
        } else {
            Ok(())
        }
    });
    for n in [1usize, 2, 3, 10, 1000] {
        let u = vec![1.0 / n as f64; n];
        let h = entropic::entropy(&u).unwrap_or(f64::NAN);
        t.record(tol, Measured::between(h, (n as f64).ln()), || format!("uniform n={n}"));
    }
    t
}

fn check_bits(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    equal_on_pairs(
        inputs,
        tol,
        &|p, _| ok(entropic::entropy(p)).map(|h| entropic::Base::Bits.from_nats(h)),
        &|p, _| Some(-p.iter().filter(|&&x| x > 0.0).map(|&x| x * x.log2()).sum::<f64>()),
    )
}

fn check_ce_decomposition(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    equal_on_pairs(inputs, tol, &|p, q| ok(entropic::cross_entropy(p, q)), &|p, q| {
        Some(ok(entropic::entropy(p))? + ok(entropic::kl_divergence(p, q))?)
    })
}

fn check_gibbs(inputs: &mut Inputs, _tol: &Tolerance) -> Tally {
    holds_on_pairs(inputs, &|p, q| {
        let kl = entropic::kl_divergence(p, q).map_err(|e| e.to_string())?;
        let self_kl = entropic::kl_divergence(p, p).map_err(|e| e.to_string())?;
        let slack = 64.0 * f64::EPSILON;
        if kl < -slack {
            return Err(format!("KL = {kl} < 0"));
        }
        if self_kl.abs() > slack {
            return Err(format!("KL(P||P) = {self_kl} != 0"));
        }
        if p != q && p.iter().zip(q).any(|(a, b)| (a - b).abs() > 1e-6) && kl <= 0.0 {
            return Err(format!("P != Q but KL = {kl}"));
        }
        Ok(())
    })
}

fn check_kl_asymmetry(_inputs: &mut Inputs, _tol: &Tolerance) -> Tally {
    // A witness: KL(P‖Q) ≠ KL(Q‖P) for P = (1/2, 1/2), Q = (1/10, 9/10).
    let mut t = Tally::default();
    let (p, q) = ([0.5, 0.5], [0.1, 0.9]);
    let (a, b): (entropic::Result<f64>, entropic::Result<f64>) =
        (entropic::kl_divergence(&p, &q), entropic::kl_divergence(&q, &p));
    t.require(matches!((&a, &b), (Ok(a), Ok(b)) if (a - b).abs() > 0.1), || {
        format!("KL(P||Q) = {a:?}, KL(Q||P) = {b:?}")
    });
    t
}

fn check_kl_additivity(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    let pairs = simplex_pairs(inputs, 100);
    for w in pairs.windows(2) {
        let ((p1, q1), (p2, q2)) = (&w[0], &w[1]);
        if p1.len() * p2.len() > 1024 {
            continue;
        }
        let prod = |a: &[f64], b: &[f64]| {
            a.iter()
                .flat_map(|x| b.iter().map(move |y| x * y))
                .collect::<Vec<f64>>()
        };
        let (pp, qq) = (prod(p1, p2), prod(q1, q2));
        match (
            entropic::kl_divergence(&pp, &qq),
            entropic::kl_divergence(p1, q1),
            entropic::kl_divergence(p2, q2),
        ) {
            (Ok(a), Ok(b), Ok(c)) => {
                let scale = sum_abs(&pp, &qq);
                eq_scaled(&mut t, tol, a, b + c, scale, || {
                    format!("P1={p1:?} Q1={q1:?} P2={p2:?} Q2={q2:?}")
                });
            }
            (a, b, c) => t.require(false, || format!("KL failed: {a:?} {b:?} {c:?}")),
        }
    }
    t
}

fn check_js_bound(inputs: &mut Inputs, _tol: &Tolerance) -> Tally {
    holds_on_pairs(inputs, &|p, q| {
        let js = entropic::js_divergence(p, q).map_err(|e| e.to_string())?;
        let slack = 64.0 * f64::EPSILON;
        if js < -slack || js > std::f64::consts::LN_2 + slack {
            Err(format!("JS = {js}"))
        } else {
            Ok(())
        }
    })
}

fn check_softmax_sums_to_one(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    equal_on_rows(inputs, tol, &|row| match entropic::softmax(row) {
        Ok(a) => vec![(a.iter().sum::<f64>(), 1.0)],
        Err(_) => vec![],
    })
}

fn check_softmax_shift(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    equal_on_rows(inputs, tol, &|row| {
        // Quantize to multiples of 2^-20 (|z| ≤ 1e6, so < 2^40 of them) so that
        // z + 1024 is exact: the shift then changes nothing but the max shift's
        // operands, and the results must agree to rounding.
        let q = (1u64 << 20) as f64;
        if row.iter().any(|z| z.is_finite() && z.abs() > 1e6) {
            return vec![(0.0, 0.0)];
        }
        let z: Vec<f64> = row.iter().map(|v| (v * q).round() / q).collect();
        let shifted: Vec<f64> = z.iter().map(|v| v + 1024.0).collect();
        match (entropic::softmax(&z), entropic::softmax(&shifted)) {
            (Ok(a), Ok(b)) => a.into_iter().zip(b).collect(),
            _ => vec![],
        }
    })
}

fn check_log_softmax_definition(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for row in logit_rows(inputs, 200) {
        match (entropic::log_softmax(&row), entropic::logsumexp(&row)) {
            (Ok(l), Ok(lse)) => {
                // z − lse(z) cancels when z ≈ lse: judge relative to |z| + |lse|.
                for (li, zi) in l.iter().zip(&row) {
                    if zi.is_finite() {
                        let scale = zi.abs() + lse.abs();
                        eq_scaled(&mut t, tol, *li, zi - lse, scale, || format!("row {row:?}"));
                    }
                }
            }
            _ => t.require(false, || format!("row {row:?}: evaluation failed")),
        }
    }
    t
}

fn softmax_jacobian_dual(row: &[f64], i: usize) -> Option<Vec<f64>> {
    let z = crate::ad::seed_derivative(row, i);
    entropic::softmax(&z).ok().map(|a| a.iter().map(|d| d.eps).collect())
}

fn check_softmax_jacobian(inputs: &mut Inputs, tol: &Tolerance, diagonal: bool) -> Tally {
    let mut t = Tally::default();
    for row in logit_rows(inputs, 100) {
        let Ok(a) = entropic::softmax(&row) else { continue };
        for i in 0..row.len() {
            let Some(col) = softmax_jacobian_dual(&row, i) else {
                t.require(false, || format!("row {row:?}: dual softmax failed"));
                continue;
            };
            for (j, &d) in col.iter().enumerate() {
                if (i == j) == diagonal {
                    let expected = if diagonal { a[i] * (1.0 - a[i]) } else { -a[i] * a[j] };
                    eq_scaled(&mut t, tol, d, expected, 0.25, || format!("row {row:?}, i={i}, j={j}"));
                }
            }
        }
    }
    t
}

/// A vector–Jacobian product under test: `(a, v) ↦ ∂(v·f(z))/∂z` from
/// `a = softmax(z)` and the upstream gradient `v` (`None` on error).
pub type VjpFn<'a> = &'a dyn Fn(&[f64], &[f64]) -> Option<Vec<f64>>;

/// The VJP tolerance: a sum of `c ≤ 64` products `v_j·∂f_j/∂z_i` on each side.
pub const VJP_IDENTITY: Tolerance = Tolerance::relative(
    1e-13,
    "each side sums c ≤ 64 products of entries of a (≤ 2 ulps each) and v; the rounding of such sums is \
     ≤ c·ε·Σ|terms|, judged relative to max(Σ_j |v_j|, 1)·max|a| ≥ Σ|terms| (so cancellation is not misjudged)",
);

/// Family: `vjp(softmax(z), v)` equals the dual-number derivative of
/// `Σ_j v_j·f_j(z)` with respect to each `z_i`, where `f` is the generic
/// softmax (`log = false`) or log-softmax (`log = true`); rows with a
/// masked (`−∞`) entry are skipped for log-softmax (its `−∞` outputs have no
/// derivative).
pub fn vjp_identity(inputs: &mut Inputs, tol: &Tolerance, log: bool, vjp: VjpFn<'_>) -> Tally {
    let mut t = Tally::default();
    for row in logit_rows(inputs, 100) {
        if log && row.iter().any(|z| !z.is_finite()) {
            continue;
        }
        let Ok(a) = entropic::softmax(&row) else { continue };
        let v: Vec<f64> = (0..row.len()).map(|_| inputs.uniform(-1.0, 1.0)).collect();
        let Some(got) = vjp(&a, &v) else {
            t.require(false, || format!("row {row:?}: the VJP failed"));
            continue;
        };
        if got.len() != row.len() {
            t.require(false, || format!("row {row:?}: VJP of length {}", got.len()));
            continue;
        }
        let scale = v.iter().map(|x| x.abs()).sum::<f64>().max(1.0) * a.iter().fold(0.0f64, |m, x| m.max(*x));
        for (i, &got_i) in got.iter().enumerate() {
            let z = crate::ad::seed_derivative(&row, i);
            let f = if log {
                entropic::log_softmax(&z)
            } else {
                entropic::softmax(&z)
            };
            let Ok(f) = f else {
                t.require(false, || format!("row {row:?}: dual evaluation failed"));
                continue;
            };
            let expected: f64 = f.iter().zip(&v).map(|(d, v)| d.eps * v).sum();
            eq_scaled(&mut t, tol, got_i, expected, scale, || {
                format!("row {row:?}, v {v:?}, i={i}")
            });
        }
    }
    t
}

fn check_ce_gradient_sums_to_zero(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for row in logit_rows(inputs, 200) {
        let c = row.len();
        let p = inputs.simplex(c, true);
        let ce = entropic::SoftmaxCrossEntropy::new().with_reduction(entropic::Reduction::Sum);
        let Ok(b) = entropic::Batch::new(&row, 1, c) else {
            continue;
        };
        let Ok(tp) = entropic::Batch::new(&p, 1, c) else {
            continue;
        };
        match ce.loss_and_grad(b, entropic::Targets::Probabilities(tp)) {
            Ok((_, g)) => {
                let s: f64 = g.iter().sum();
                let scale: f64 = g.iter().map(|x| x.abs()).sum::<f64>().max(1.0);
                eq_scaled(&mut t, tol, s, 0.0, scale, || format!("row {row:?} p {p:?}"));
            }
            Err(_) if row.iter().any(|z| z.is_infinite()) => {}
            Err(e) => t.require(false, || format!("row {row:?}: {e}")),
        }
    }
    t
}

fn check_statrs_entropy(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    use statrs::statistics::Distribution;
    let mut t = Tally::default();
    for (p, _) in simplex_pairs(inputs, 100) {
        match (
            statrs::distribution::Categorical::new(&p)
                .ok()
                .and_then(|c| c.entropy()),
            entropic::entropy(&p),
        ) {
            (Some(a), Ok(b)) => eq_scaled(&mut t, tol, b, a, sum_abs(&p, &p), || format!("p={p:?}")),
            (a, b) => t.require(false, || format!("p={p:?}: statrs {a:?}, entropic {b:?}")),
        }
    }
    t
}

fn check_monte_carlo_cross_entropy(inputs: &mut Inputs, _tol: &Tolerance) -> Tally {
    use rand::SeedableRng;
    use rand::distr::Distribution;
    let mut t = Tally::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(inputs.below(u32::MAX as usize) as u64);
    for _ in 0..inputs.count(5) {
        let c = 2 + inputs.below(8);
        let p = inputs.simplex(c, false);
        let q = inputs.simplex(c, false);
        let Ok(cat) = statrs::distribution::Categorical::new(&p) else {
            t.require(false, || format!("statrs rejected {p:?}"));
            continue;
        };
        let samples = 20_000;
        let draws: Vec<f64> = (0..samples)
            .map(|_| -q[Distribution::<usize>::sample(&cat, &mut rng)].ln())
            .collect();
        let mean = draws.iter().sum::<f64>() / samples as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (samples - 1) as f64;
        let se = (var / samples as f64).sqrt();
        let exact = entropic::cross_entropy(&p, &q).unwrap_or(f64::NAN);
        let z = (mean - exact).abs() / se;
        t.require(z <= 5.0, || {
            format!("p={p:?} q={q:?}: MC {mean} vs exact {exact}, {z:.1} standard errors")
        });
    }
    t
}

/// The catalogue, in report order.
pub fn registry() -> Vec<Claim> {
    vec![
        Claim {
            id: "information.additive",
            statement: r"I(pq) = I(p) + I(q),\quad I(p) = -\ln p",
            domain: "p, q log-spaced in [1e-150, 1] (pq stays normal) and seeded log-uniform in [1e-12, 1]",
            tolerance: Tolerance::relative(
                4.0 * f64::EPSILON,
                "three logarithms, each within 1 ulp, and one addition; relative to max(|I(pq)|, 1)",
            ),
            check: check_information,
        },
        Claim {
            id: "entropy.expectation",
            statement: r"H(P) = \mathbb{E}_P[I(X)] = \sum_i p_i I(p_i)",
            domain: "probability vectors of length 1..64, with zero entries",
            tolerance: INFO_IDENTITY,
            check: check_entropy_expectation,
        },
        Claim {
            id: "entropy.bounds",
            statement: r"0 \le H(P) \le \ln n,\ \text{equality at } P = U_n",
            domain: "probability vectors of length 1..64; uniform n ∈ {1, 2, 3, 10, 1000}",
            tolerance: Tolerance::relative(
                1000.0 * f64::EPSILON,
                "H(U_n) sums n ≤ 1000 terms (1/n)·ln n, 1/n rounded: a sequential sum of n rounded terms is within n·ε relative",
            ),
            check: check_entropy_bounds,
        },
        Claim {
            id: "entropy.bits",
            statement: r"H_2(P) = H(P)/\ln 2 = -\sum_i p_i \log_2 p_i",
            domain: "probability vectors of length 1..64",
            tolerance: INFO_IDENTITY,
            check: check_bits,
        },
        Claim {
            id: "cross_entropy.decomposition",
            statement: r"H(P, Q) = H(P) + D_{KL}(P \,\|\, Q)",
            domain: "pairs of probability vectors of length 1..64, P with zeros",
            tolerance: INFO_IDENTITY,
            check: check_ce_decomposition,
        },
        Claim {
            id: "kl.gibbs",
            statement: r"D_{KL}(P \,\|\, Q) \ge 0,\ = 0 \iff P = Q",
            domain: "pairs of probability vectors of length 1..64",
            tolerance: INEQUALITY,
            check: check_gibbs,
        },
        Claim {
            id: "kl.asymmetric",
            statement: r"\exists P, Q:\ D_{KL}(P \,\|\, Q) \ne D_{KL}(Q \,\|\, P)",
            domain: "witness P = (1/2, 1/2), Q = (1/10, 9/10)",
            tolerance: INEQUALITY,
            check: check_kl_asymmetry,
        },
        Claim {
            id: "kl.additive",
            statement: r"D_{KL}(P_1 \otimes P_2 \,\|\, Q_1 \otimes Q_2) = D_{KL}(P_1\|Q_1) + D_{KL}(P_2\|Q_2)",
            domain: "consecutive pairs of probability vectors, product size ≤ 1024",
            tolerance: Tolerance::relative(
                1e-12,
                "the product distribution's KL sums up to 1024 terms whose products p1·p2 are rounded once: ≤ 1024·ε·Σ|terms|",
            ),
            check: check_kl_additivity,
        },
        Claim {
            id: "js.bounds",
            statement: r"0 \le JS(P, Q) \le \ln 2",
            domain: "pairs of probability vectors of length 1..64",
            tolerance: INEQUALITY,
            check: check_js_bound,
        },
        Claim {
            id: "softmax.normalized",
            statement: r"\sum_i \mathrm{softmax}(z)_i = 1",
            domain: "edge rows (1e8, ±1e300, f64::MAX, -inf, subnormal) and rows of length 1..64, spread up to 1e4",
            tolerance: SOFTMAX_IDENTITY,
            check: check_softmax_sums_to_one,
        },
        Claim {
            id: "softmax.shift_invariant",
            statement: r"\mathrm{softmax}(z + k\mathbf{1}) = \mathrm{softmax}(z)",
            domain: "rows as softmax.normalized with |z| ≤ 1e6, quantized to 2^-20 so that k = 1024 shifts exactly",
            tolerance: SOFTMAX_IDENTITY,
            check: check_softmax_shift,
        },
        Claim {
            id: "log_softmax.definition",
            statement: r"\ln \mathrm{softmax}(z)_i = z_i - \ln\sum_j e^{z_j}",
            domain: "as softmax.normalized",
            tolerance: Tolerance::relative(
                4.0 * f64::EPSILON,
                "both sides subtract the same log-sum-exp (each within 1 ulp) from z_i; relative to |z_i| + |lse|",
            ),
            check: check_log_softmax_definition,
        },
        Claim {
            id: "softmax.jacobian.diagonal",
            statement: r"\partial a_i / \partial z_i = a_i (1 - a_i)",
            domain: "as softmax.normalized (autodiff of the generic softmax)",
            tolerance: Tolerance::relative(
                4.0 * f64::EPSILON / 0.25,
                "entries are bounded by 1/4 in magnitude and each side has absolute error ≤ 4ε (a from exp and a division, then one product): ≤ 4ε relative to the scale 1/4",
            ),
            check: |i, t| check_softmax_jacobian(i, t, true),
        },
        Claim {
            id: "softmax.jacobian.off_diagonal",
            statement: r"\partial a_j / \partial z_i = -a_i a_j \quad (i \ne j)",
            domain: "as softmax.normalized (autodiff of the generic softmax)",
            tolerance: Tolerance::relative(
                4.0 * f64::EPSILON / 0.25,
                "entries are bounded by 1/4 in magnitude and each side has absolute error ≤ 4ε (a from exp and a division, then one product): ≤ 4ε relative to the scale 1/4",
            ),
            check: |i, t| check_softmax_jacobian(i, t, false),
        },
        Claim {
            id: "softmax.vjp",
            statement: r"\mathrm{vjp}(a, v)_i = a_i (v_i - \textstyle\sum_j a_j v_j) = \partial (v \cdot \mathrm{softmax}(z)) / \partial z_i",
            domain: "rows as softmax.normalized, v uniform in [-1, 1] (autodiff of the generic softmax)",
            tolerance: VJP_IDENTITY,
            check: |i, t| vjp_identity(i, t, false, &|a: &[f64], v: &[f64]| entropic::softmax_vjp(a, v).ok()),
        },
        Claim {
            id: "log_softmax.vjp",
            statement: r"\mathrm{vjp}(a, v)_i = v_i - a_i \textstyle\sum_j v_j = \partial (v \cdot \ln\mathrm{softmax}(z)) / \partial z_i",
            domain: "rows as softmax.normalized without masked entries, v uniform in [-1, 1] (autodiff of the generic log-softmax)",
            tolerance: VJP_IDENTITY,
            check: |i, t| vjp_identity(i, t, true, &|a: &[f64], v: &[f64]| entropic::log_softmax_vjp(a, v).ok()),
        },
        Claim {
            id: "cross_entropy.gradient_sums_to_zero",
            statement: r"\sum_i \partial L / \partial z_i = 0 \quad \text{for } \textstyle\sum_i y_i = 1",
            domain: "logit rows as softmax.normalized with random probability targets",
            tolerance: Tolerance::relative(
                1e-15,
                "c ≤ 64 gradient entries, one of them computed as minus the sum of the others: exact up to the rounding of that sum",
            ),
            check: check_ce_gradient_sums_to_zero,
        },
        Claim {
            id: "statrs.categorical_entropy",
            statement: r"H(P) = H(\mathrm{Categorical}(P)) \text{ (statrs)}",
            domain: "probability vectors of length 1..64",
            tolerance: INFO_IDENTITY,
            check: check_statrs_entropy,
        },
        Claim {
            id: "cross_entropy.monte_carlo",
            statement: r"\tfrac1N \sum_{k} -\ln q_{X_k} \to H(P, Q),\ X_k \sim P",
            domain: "5 random pairs of length 2..9, 20 000 samples each (statrs Categorical, seeded)",
            tolerance: MONTE_CARLO,
            check: check_monte_carlo_cross_entropy,
        },
    ]
}
