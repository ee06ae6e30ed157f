//! Claims about the tempered functions and the bi-tempered loss, and about
//! curvature (Hessians): identities of `log_t`/`exp_t`, the normalization
//! of the tempered softmax (with λ differentiated implicitly by num-dual),
//! limits as `t → 1` with their first-order rates, the Bregman properties
//! of the bi-tempered loss, the softmax cross-entropy Hessian and the
//! non-convexity of the bi-tempered loss for `t1 < 1`.

use entropic::{Batch, BiTemperedLogisticLoss, Reduction, SoftmaxCrossEntropy, Targets, exp_t, log_t};
use nalgebra::{DMatrix, DVector};
use num_dual::{Dual, Dual64, DualNum};

use crate::claims::{Claim, derivative_identity, limit_rate};
use crate::generate::Inputs;
use crate::tolerance::{Measured, Tally, Tolerance};

/// Temperatures the identities are checked at.
pub const TEMPERATURES: [f64; 9] = [0.1, 0.5, 0.9, 0.99, 1.0, 1.01, 1.5, 2.0, 4.0];

fn xs(inputs: &mut Inputs) -> Vec<f64> {
    let mut v = Inputs::spaced(1e-3, 1e3, 25);
    for _ in 0..inputs.count(40) {
        v.push(inputs.log_uniform(1e-3, 1e3));
    }
    v
}

fn check_log_t_at_one(_: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for &temp in &TEMPERATURES {
        t.record(tol, Measured::between(log_t(1.0f64, temp), 0.0), || {
            format!("t = {temp}")
        });
    }
    t
}

fn check_log_t_derivative(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let xs = xs(inputs);
    let mut t = Tally::default();
    for &temp in &TEMPERATURES {
        let part = derivative_identity(tol, &xs, &|x| Some(log_t(x, temp)), &|x| Some(x.powf(-temp)));
        t.absorb(tol, part);
    }
    t
}

fn check_exp_t_derivative(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for &temp in &TEMPERATURES {
        // Inside the domain: 1 + (1−t)x > 0 and away from the pole.
        let pts: Vec<f64> = xs(inputs)
            .iter()
            .map(|x| (x.ln() / 3.0).clamp(-0.9 / (1.0 - temp).abs().max(1e-9), 0.9 / (1.0 - temp).abs().max(1e-9)))
            .collect();
        let part = derivative_identity(tol, &pts, &|x| Some(exp_t(x, temp)), &|x| {
            Some(exp_t(x, temp).powf(temp))
        });
        t.absorb(tol, part);
    }
    t
}

fn check_exp_t_inverts_log_t(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for &temp in &TEMPERATURES {
        for x in xs(inputs) {
            let y = exp_t(log_t(x, temp), temp);
            // Condition number of the round trip: |d ln exp_t/du · u| with u = log_t(x)
            // is |log_t(x)|·x^{t−1}; each of log_t and exp_t has a few ulps.
            let cond = (log_t(x, temp) * x.powf(temp - 1.0)).abs().max(1.0);
            t.record(tol, Measured::scaled(y, x, x * cond), || {
                format!("x = {x:e}, t = {temp}")
            });
        }
    }
    t
}

fn check_log_t_product(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    let xs = xs(inputs);
    for &temp in &TEMPERATURES {
        for w in xs.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (la, lb) = (log_t(a, temp), log_t(b, temp));
            let rhs = la + lb + (1.0 - temp) * la * lb;
            let lhs = log_t(a * b, temp);
            let scale = la.abs() + lb.abs() + ((1.0 - temp) * la * lb).abs() + lhs.abs();
            t.record(tol, Measured::scaled(lhs, rhs, scale), || {
                format!("a = {a:e}, b = {b:e}, t = {temp}")
            });
        }
    }
    t
}

fn check_tempered_softmax_normalized(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for &temp in &TEMPERATURES {
        for c in [2usize, 3, 10, 100, 1000] {
            let row = inputs.logits(c);
            match entropic::tempered_softmax(&row, temp) {
                Ok(p) => {
                    let s: f64 = p.iter().sum();
                    // Relative to c·ε: the bound is "a few ulps of the row length".
                    let e = Measured {
                        ulps: ((s - 1.0).abs() / f64::EPSILON).ceil(),
                        rel: (s - 1.0).abs() / (c as f64 * f64::EPSILON),
                    };
                    t.record(tol, e, || {
                        format!("c = {c}, t = {temp}, spread row[0..2] = {:?}", &row[..2])
                    });
                }
                Err(e) => t.require(false, || format!("c = {c}, t = {temp}: {e}")),
            }
        }
    }
    t
}

fn check_lambda_implicit(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for &temp in &TEMPERATURES {
        for _ in 0..inputs.count(4) {
            let c = 2 + inputs.below(6);
            let row = inputs.moderate_logits(c);
            let Ok(norm) = entropic::TemperedSoftmax::new(temp).and_then(|s| s.normalize(&row)) else {
                t.require(false, || format!("normalize failed at t = {temp}, row {row:?}"));
                continue;
            };
            // Escort weights from the production probabilities.
            let pt: Vec<f64> = norm.probabilities.iter().map(|p| p.powf(temp)).collect();
            let z: f64 = pt.iter().sum();
            for (i, &pti) in pt.iter().enumerate() {
                // num-dual's implicit differentiation of Σ exp_t(a_j − λ) − 1 = 0.
                let args = crate::ad::seed_derivative(&row, i);
                let lam: Dual64 = num_dual::implicit_derivative(
                    |l: Dual<Dual64>, a: &Vec<Dual<Dual64>>| {
                        a.iter()
                            .map(|aj| exp_t(*aj - l, temp))
                            .fold(Dual::from_re(Dual64::from_re(-1.0)), |s, v| s + v)
                    },
                    norm.lambda,
                    &args,
                );
                let escort = pti / z;
                t.record(tol, Measured::scaled(lam.eps, escort, 1.0), || {
                    format!("t = {temp}, row {row:?}, i = {i}")
                });
            }
        }
    }
    t
}

fn rate_tally(tol: &Tolerance, fits: impl IntoIterator<Item = (String, crate::claims::RateFit)>) -> Tally {
    let mut t = Tally::default();
    for (input, fit) in fits {
        // Report the coefficient's relative error; the order must be 1 ± 0.05.
        let e = Measured {
            ulps: 0.0,
            rel: fit.coefficient_rel_error,
        };
        t.record(tol, e, || format!("{input}: fitted order {:.4}", fit.order));
        t.require((fit.order - 1.0).abs() <= 0.05, || {
            format!("{input}: fitted order {:.4}, expected 1", fit.order)
        });
    }
    t
}

fn check_log_t_rate(_: &mut Inputs, tol: &Tolerance) -> Tally {
    rate_tally(
        tol,
        [0.1, 0.5, 2.0, 10.0, 1e3].map(|x: f64| {
            (
                format!("x = {x}"),
                limit_rate(&|d| log_t(x, 1.0 - d) - x.ln(), x.ln().powi(2) / 2.0),
            )
        }),
    )
}

fn check_exp_t_rate(_: &mut Inputs, tol: &Tolerance) -> Tally {
    rate_tally(
        tol,
        [-3.0, -1.0, -0.25, 0.5, 2.0].map(|x: f64| {
            (
                format!("x = {x}"),
                limit_rate(&|d| exp_t(x, 1.0 - d) - x.exp(), -x.exp() * x * x / 2.0),
            )
        }),
    )
}

fn check_tempered_softmax_rate(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut fits = Vec::new();
    for _ in 0..3 {
        let row = inputs.moderate_logits(4);
        let s = entropic::softmax(&row).unwrap_or_default();
        let lse = entropic::logsumexp(&row).unwrap_or(f64::NAN);
        let u: Vec<f64> = row.iter().map(|a| a - lse).collect();
        let mean_u2: f64 = s.iter().zip(&u).map(|(si, ui)| si * ui * ui).sum();
        // p_i(1−δ) − s_i ≈ δ·s_i(E_s[u²] − u_i²)/2 with u = a − lse(a).
        let i = 0;
        let coef = s[i] * (mean_u2 - u[i] * u[i]) / 2.0;
        let r = row.clone();
        fits.push((
            format!("row {row:?}, i = {i}"),
            limit_rate(
                &|d| entropic::tempered_softmax(&r, 1.0 - d).map_or(f64::NAN, |p| p[i]) - s[i],
                coef,
            ),
        ));
    }
    rate_tally(tol, fits)
}

fn check_bi_tempered_limit(inputs: &mut Inputs, _tol: &Tolerance) -> Tally {
    // L_{t,t}(a, y) → KL(y‖softmax(a)) as t → 1, at first order.
    let mut t = Tally::default();
    for _ in 0..3 {
        let c = 4;
        let a = inputs.moderate_logits(c);
        let y = inputs.simplex(c, false);
        let kl = entropic::kl_divergence(&y, &entropic::softmax(&a).unwrap_or_default()).unwrap_or(f64::NAN);
        let err = |d: f64| {
            BiTemperedLogisticLoss::new(1.0 - d, 1.0 - d)
                .map(|l| l.with_reduction(Reduction::Sum))
                .and_then(|l| l.loss(Batch::new(&a, 1, c)?, Targets::Probabilities(Batch::new(&y, 1, c)?)))
                .map_or(f64::NAN, |o| o.reduced.unwrap_or(f64::NAN))
                - kl
        };
        let fit = limit_rate(&err, 1.0);
        t.require((fit.order - 1.0).abs() <= 0.05, || {
            format!("a {a:?}, y {y:?}: fitted order {:.4}", fit.order)
        });
    }
    t
}

fn check_bregman_zero(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for (t1, t2) in [(0.5, 1.5), (0.8, 1.2), (1.0, 1.0), (0.2, 4.0), (0.9, 0.6)] {
        for _ in 0..inputs.count(5) {
            let c = 2 + inputs.below(6);
            let a = inputs.moderate_logits(c);
            let Ok(p) = entropic::tempered_softmax(&a, t2) else {
                continue;
            };
            let Ok(loss) = BiTemperedLogisticLoss::new(t1, t2).map(|l| l.with_reduction(Reduction::Sum)) else {
                continue;
            };
            let at_p = loss.loss(
                Batch::new(&a, 1, c).unwrap_or(Batch::single_row(&a)),
                Targets::Probabilities(Batch::single_row(&p)),
            );
            match at_p {
                // Zero at y = p: judged against the loss's natural scale 1/(2−t1).
                Ok(o) => t.record(tol, Measured::scaled(o.reduced.unwrap_or(f64::NAN), 0.0, 1.0), || {
                    format!("t1 {t1} t2 {t2} a {a:?}")
                }),
                Err(e) => t.require(false, || format!("t1 {t1} t2 {t2}: {e}")),
            }
            let y = inputs.simplex(c, false);
            if y.iter().zip(&p).any(|(u, v)| (u - v).abs() > 1e-3)
                && let Ok(o) = loss.loss(Batch::single_row(&a), Targets::Probabilities(Batch::single_row(&y)))
            {
                t.require(o.reduced.unwrap_or(f64::NAN) > 0.0, || {
                    format!("L = {:?} ≤ 0 at y ≠ p: t1 {t1} t2 {t2} a {a:?} y {y:?}", o.reduced)
                });
            }
        }
    }
    t
}

fn check_bounded(inputs: &mut Inputs, _tol: &Tolerance) -> Tally {
    let mut t = Tally::default();
    for (t1, t2) in [(0.5, 1.5), (0.8, 1.2), (0.2, 4.0), (0.9, 0.6), (0.0, 2.0)] {
        let bound = 1.0 / (1.0 - t1);
        for _ in 0..inputs.count(10) {
            let c = 2 + inputs.below(10);
            let a = inputs.logits(c);
            let k = inputs.below(c);
            let Ok(loss) = BiTemperedLogisticLoss::new(t1, t2) else {
                continue;
            };
            match loss.loss(Batch::single_row(&a), Targets::<f64>::Classes(&[k])) {
                Ok(o) => {
                    let v = o.reduced.unwrap_or(f64::NAN);
                    t.require(v <= bound * (1.0 + 4.0 * f64::EPSILON), || {
                        format!("L = {v} > 1/(1−t1) = {bound}: t1 {t1} t2 {t2} a {a:?} class {k}")
                    });
                }
                Err(e) => t.require(false, || format!("t1 {t1} t2 {t2}: {e}")),
            }
        }
    }
    t
}

fn ce_hessian_dual(a: &[f64], y: &[f64]) -> Option<DMatrix<f64>> {
    let c = a.len();
    let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum);
    let x = DVector::from_vec(a.to_vec());
    num_dual::hessian(
        |v: DVector<num_dual::Dual2DVec64>| {
            ce.definition(
                Batch::new(v.as_slice(), 1, c).unwrap_or(Batch::single_row(v.as_slice())),
                Targets::Probabilities(Batch::single_row(y)),
            )
            .map(|o| o.reduced.unwrap_or_else(|| num_dual::Dual2DVec64::from_re(f64::NAN)))
        },
        &x,
    )
    .ok()
    .map(|(_, _, h)| h)
}

/// An analytic Hessian `H(z, y)` to check.
pub type HessianFormula<'a> = &'a dyn Fn(&[f64], &[f64]) -> DMatrix<f64>;

/// Family: the dual Hessian of the CE definition equals `analytic(a, y)`
/// and is positive semidefinite.
pub fn check_ce_hessian_with(inputs: &mut Inputs, tol: &Tolerance, analytic: HessianFormula<'_>) -> Tally {
    let mut t = Tally::default();
    for _ in 0..inputs.count(40) {
        let c = 1 + inputs.below(8);
        let a = inputs.logits(c);
        let scale_y = inputs.pick(&[1.0, 0.5, 2.0]);
        let y: Vec<f64> = inputs.simplex(c, true).iter().map(|v| v * scale_y).collect();
        let Some(h) = ce_hessian_dual(&a, &y) else {
            t.require(false, || format!("dual Hessian failed at a {a:?}"));
            continue;
        };
        let expected = analytic(&a, &y);
        let e = h
            .iter()
            .zip(expected.iter())
            .fold(Measured::ZERO, |m, (u, v)| m.max(Measured::scaled(*u, *v, 1.0)));
        t.record(tol, e, || format!("a {a:?} y {y:?}"));
        let min_eig = h.clone().symmetric_eigen().eigenvalues.min();
        t.require(min_eig >= -1e-12, || {
            format!("negative eigenvalue {min_eig} at a {a:?}")
        });
    }
    t
}

/// `(Σy)(diag(a) − a aᵀ)`.
pub fn ce_hessian_analytic(z: &[f64], y: &[f64]) -> DMatrix<f64> {
    let a = entropic::softmax(z).unwrap_or_default();
    let s: f64 = y.iter().sum();
    let c = a.len();
    DMatrix::from_fn(c, c, |i, j| s * (if i == j { a[i] } else { 0.0 } - a[i] * a[j]))
}

fn check_ce_hessian(inputs: &mut Inputs, tol: &Tolerance) -> Tally {
    check_ce_hessian_with(inputs, tol, &ce_hessian_analytic)
}

fn check_bi_tempered_nonconvex(_: &mut Inputs, _tol: &Tolerance) -> Tally {
    // Witness: for t1 < 1 some Hessian of L(·, y) has a negative eigenvalue.
    let mut t = Tally::default();
    let loss = BiTemperedLogisticLoss::new(0.5, 1.0).map(|l| l.with_reduction(Reduction::Sum));
    let mut found = None;
    if let Ok(loss) = loss {
        'search: for a0 in [-8.0, -4.0, -2.0, 0.0] {
            for a1 in [-2.0, 0.0, 2.0, 4.0, 8.0] {
                let a = [a0, a1, 0.0];
                let x = DVector::from_vec(a.to_vec());
                let h = num_dual::hessian(
                    |v: DVector<num_dual::Dual2DVec64>| {
                        loss.definition(Batch::single_row(v.as_slice()), Targets::<f64>::Classes(&[0]))
                            .map(|o| o.reduced.unwrap_or_else(|| num_dual::Dual2DVec64::from_re(f64::NAN)))
                    },
                    &x,
                );
                if let Ok((_, _, h)) = h {
                    let m = h.symmetric_eigen().eigenvalues.min();
                    if m < -1e-6 {
                        found = Some((a, m));
                        break 'search;
                    }
                }
            }
        }
    }
    t.require(found.is_some(), || {
        "no negative Hessian eigenvalue found for t1 = 0.5".into()
    });
    if let Some((a, m)) = found {
        t.worst = Some((
            Measured::ZERO,
            format!("a = {a:?}, class 0, t1 = 0.5, t2 = 1: eigenvalue {m:.4}"),
        ));
    }
    t
}

/// Tolerance of the rate fits: the coefficient at δ = 1e-6.
pub const RATE: Tolerance = Tolerance::relative(
    1e-3,
    "(F(δ) − F(0))/δ at δ = 1e-6 differs from the leading coefficient by the O(δ) second-order term \
     (≤ 1e-4 relative for these inputs, whose u² reach ~100) plus rounding ≈ ε|F|/(δ|coef|) ≤ 1e-8; 1e-3 \
     leaves margin and rejects any wrong coefficient (off by O(1))",
);

/// The tempered and curvature claims, in report order.
pub fn registry() -> Vec<Claim> {
    let few_ulps = Tolerance::relative(
        16.0 * f64::EPSILON,
        "log_t/exp_t use one ln/exp and one expm1/ln1p (each ≤ 1 ulp) plus a division; derivative formulas x^{-t}, exp_t^t one powf: ≤ 16ε relative",
    );
    vec![
        Claim {
            id: "tempered.log_t_at_one",
            statement: r"\log_t(1) = 0",
            domain: "t ∈ {0.1, 0.5, 0.9, 0.99, 1, 1.01, 1.5, 2, 4}",
            tolerance: Tolerance::ulps(0.0, "expm1(0) = 0 exactly"),
            check: check_log_t_at_one,
        },
        Claim {
            id: "tempered.log_t_derivative",
            statement: r"\tfrac{d}{dx}\log_t x = x^{-t}",
            domain: "x log-spaced in [1e-3, 1e3], the 9 temperatures",
            tolerance: few_ulps,
            check: check_log_t_derivative,
        },
        Claim {
            id: "tempered.exp_t_derivative",
            statement: r"\tfrac{d}{dx}\exp_t x = \exp_t(x)^t",
            domain: "x in the support, the 9 temperatures",
            tolerance: few_ulps,
            check: check_exp_t_derivative,
        },
        Claim {
            id: "tempered.exp_t_inverts_log_t",
            statement: r"\exp_t(\log_t x) = x",
            domain: "x log-spaced in [1e-3, 1e3], the 9 temperatures",
            tolerance: Tolerance::relative(
                16.0 * f64::EPSILON,
                "relative to x times the round trip's condition number |log_t x|·x^{t−1}; each function within a few ulps",
            ),
            check: check_exp_t_inverts_log_t,
        },
        Claim {
            id: "tempered.log_t_product",
            statement: r"\log_t(ab) = \log_t a + \log_t b + (1-t)\log_t a \log_t b",
            domain: "consecutive x pairs, the 9 temperatures",
            tolerance: Tolerance::relative(
                32.0 * f64::EPSILON,
                "three log_t evaluations (few ulps each) and three products/sums, relative to the sum of the terms' magnitudes",
            ),
            check: check_log_t_product,
        },
        Claim {
            id: "tempered.softmax_normalized",
            statement: r"\sum_i \exp_t(a_i - \lambda(a)) = 1",
            domain: "rows of 2..1000 logits, spread up to 1e4, shifts to -1e6, the 9 temperatures",
            tolerance: Tolerance::relative(
                2.0,
                "|Σp − 1| in units of c·ε (rel column): the solver stops when a step would change Σp by about one rounding, and the sum of c rounded terms adds ≤ c·ε/2",
            ),
            check: check_tempered_softmax_normalized,
        },
        Claim {
            id: "tempered.lambda_implicit",
            statement: r"\partial\lambda/\partial a_i = \tilde e_i = p_i^t / \textstyle\sum_j p_j^t",
            domain: "rows of 2..7 moderate logits, the 9 temperatures; num-dual implicit differentiation of Σ exp_t(a − λ) = 1",
            tolerance: Tolerance::relative(
                1e-13,
                "one Newton step in dual numbers from the f64 root: derivative exact up to the root's rounding (≈ ε·cond) and the escort's powf/sum (few ulps)",
            ),
            check: check_lambda_implicit,
        },
        Claim {
            id: "tempered.limit.log_t",
            statement: r"\log_t x - \ln x = \tfrac{(1-t)}{2}(\ln x)^2 + O((1-t)^2)",
            domain: "x ∈ {0.1, 0.5, 2, 10, 1000}; δ = 1−t = 10^-k, k = 2..10 for the order fit, coefficient at δ = 1e-6",
            tolerance: RATE,
            check: check_log_t_rate,
        },
        Claim {
            id: "tempered.limit.exp_t",
            statement: r"\exp_t x - e^x = -(1-t)\tfrac{x^2}{2}e^x + O((1-t)^2)",
            domain: "x ∈ {−3, −1, −0.25, 0.5, 2}",
            tolerance: RATE,
            check: check_exp_t_rate,
        },
        Claim {
            id: "tempered.limit.softmax",
            statement: r"p_i(t) - a_i = (1-t)\,\tfrac{a_i}{2}\left(\mathbb{E}_a[u^2] - u_i^2\right) + O((1-t)^2),\ u = z - \mathrm{lse}(z)",
            domain: "3 random rows of 4 moderate logits",
            tolerance: RATE,
            check: check_tempered_softmax_rate,
        },
        Claim {
            id: "bi_tempered.limit.kl",
            statement: r"L_{t,t}(a, y) \to D_{KL}(y \,\|\, \mathrm{softmax}(a)) \text{ at first order as } t \to 1",
            domain: "3 random rows of 4 moderate logits, soft labels",
            tolerance: RATE,
            check: check_bi_tempered_limit,
        },
        Claim {
            id: "bi_tempered.bregman_zero",
            statement: r"L(a, y) = 0 \iff y = \mathrm{softmax}_{t_2}(a),\ L > 0 \text{ otherwise}",
            domain: "(t1, t2) ∈ {(.5,1.5), (.8,1.2), (1,1), (.2,4), (.9,.6)}, rows of 2..7 logits",
            tolerance: Tolerance::relative(
                1e-14,
                "at y = p every term cancels exactly in exact arithmetic; c ≤ 7 terms of size ≤ 1/(2−t1) each round once",
            ),
            check: check_bregman_zero,
        },
        Claim {
            id: "bi_tempered.bounded",
            statement: r"L(a, e_k) \le \tfrac{1}{1 - t_1} \text{ for } t_1 < 1",
            domain: "one-hot labels, rows of 2..11 logits spread up to 1e4, five (t1, t2) pairs",
            tolerance: Tolerance::relative(
                4.0 * f64::EPSILON,
                "an inequality, allowed to be violated by the rounding of the bound",
            ),
            check: check_bounded,
        },
        Claim {
            id: "cross_entropy.hessian",
            statement: r"\nabla^2_z L = \left(\textstyle\sum_i y_i\right)\left(\mathrm{diag}(a) - a a^\top\right) \succeq 0",
            domain: "rows of 1..8 logits spread up to 1e4, soft labels scaled by {0.5, 1, 2}",
            tolerance: Tolerance::relative(
                1e-14,
                "entries bounded by Σy ≤ 2 in magnitude; both sides a few roundings: judged in absolute terms (scale 1)",
            ),
            check: check_ce_hessian,
        },
        Claim {
            id: "bi_tempered.nonconvex",
            statement: r"t_1 < 1:\ \exists a:\ \lambda_{\min}(\nabla^2_a L) < 0",
            domain: "grid search over a ∈ [−8, 8]², t1 = 0.5, t2 = 1",
            tolerance: Tolerance::relative(0.0, "a witness: one negative eigenvalue (below −1e-6) suffices"),
            check: check_bi_tempered_nonconvex,
        },
    ]
}
