//! Automatic-differentiation checks of one loss over many cases: value
//! (kernel vs definition), gradient (dual numbers vs analytic vs finite
//! differences), `f32` path, Hessian, and agreement on errors.

use nalgebra::DVector;
use num_dual::Dual64;

use crate::loss::{Case, LossUnderTest};
use crate::report::Outcome;
use crate::tolerance::{Measured, Tally, Tolerance};

/// Kernel value vs generic definition value (both `f64`).
pub const VALUE_KERNEL_VS_DEFINITION: Tolerance = Tolerance::relative(
    1e-13,
    "kernel and definition add the same n·c ≤ 64 terms in different association orders (the kernel shares \
     ln Σe^(z−m) across a row); each addition rounds once, so they differ by ≤ n·c·ε ≈ 1.4e-14 relative to the \
     sum of magnitudes, with margin for mixed-sign kl_div terms",
);

/// Analytic gradient vs the dual-number gradient of the definition.
pub const GRADIENT_DUAL: Tolerance = Tolerance::relative(
    1e-12,
    "both are exact closed forms evaluated in f64 with O(c) roundings each, compared relative to \
     max(‖g‖∞, 1) (see GRADIENT_SCALE_FLOOR): agreement to ~c·ε ≈ 1e-15 (≤ 8e-16 observed over 5 seeds); \
     1e-12 leaves margin for the tempered normalizer's conditioning, and a wrong formula is off by O(1)",
);

/// The smallest scale a gradient comparison is judged against.
///
/// Reason: every gradient here is a sum of terms bounded by O(1) (probabilities
/// and labels times weights, divided by the reduction's denominator). Where
/// those terms cancel to a tiny result (e.g. the escort correction of the
/// bi-tempered gradient at huge spreads), both evaluations keep absolute
/// errors of a few ε of the *terms*, so comparing relative to the tiny result
/// would call two correct evaluations different.
pub const GRADIENT_SCALE_FLOOR: f64 = 1.0;

/// Analytic gradient vs central finite differences of the definition.
pub const GRADIENT_FD: Tolerance = Tolerance::relative(
    1e-6,
    "central differences at Stan's step h = cbrt(ε)·max(1,|x|) and at h/2, relative to max(‖g‖∞, 1); only the \
     disagreement beyond 2·|D(h) − D(h/2)| counts (that difference estimates the truncation error, ≈ 1e-10 for \
     smooth rows, larger near a finite-support edge where the third derivative is unbounded); rounding \
     ε·|f|/h ≈ 1e-10 for |logits| ≤ 8. 1e-6 leaves margin and still rejects any O(1) formula error",
);

/// The `f32` kernel vs the `f64` kernel on the same (f32-rounded) inputs.
pub const F32_PATH: Tolerance = Tolerance::ulps(
    1.0,
    "the f32 kernel computes in f64 and rounds each output (unreduced values, reduced value, gradient) once: \
     it must equal the f64 kernel's output rounded to f32, up to 1 ulp for double rounding",
);

/// The `f32` softmax cross-entropy kernel with class targets (no label
/// smoothing) vs the `f64` kernel on the same (f32-rounded) inputs.
pub const F32_CLASS_CE_PATH: Tolerance = Tolerance::ulps(
    3.0,
    "with class targets the f32 kernel computes e^{z−m} in f32 (the exact difference as a TwoSum pair, ≤ 2 ulps, \
     measured 1.23 against a 200-bit reference), sums in f64, and multiplies each gradient entry by the rounded \
     f32 factor w_k/s (½ ulp each for the factor and the product); the loss and the target and argmax entries \
     are formed in f64 from those sums; plus ½ ulp for rounding the f64 kernel's output to compare. The bound \
     applies to every case of a configuration without label smoothing (probability-target cases still take \
     the f64 path and measure ≤ 1)",
);

/// The `f32` binary cross-entropy kernel (no weights) vs the `f64` kernel
/// on the same (f32-rounded) inputs.
pub const F32_SIGMOID_BCE_PATH: Tolerance = Tolerance::ulps(
    6.0,
    "with hard labels the unweighted f32 kernel computes t = e^(−|x|) (≤ 2 ulps) and ln(1 + t) (≤ 2 ulps, plus ≤ 2 \
     inherited from t) in f32; σ(±x) = 1/(1 + t) or t/(1 + t) (≤ 2 and ≤ 4.5 ulps) and softplus(±x) = max(±x, 0) + \
     ln(1 + t) (a sum of non-negative terms, ≤ 4.5 ulps); the value is a softplus, the gradient a σ times the \
     rounded scale (≤ 5.5 ulps); plus ½ ulp for rounding the f64 kernel's output. Soft labels take the f64 path \
     (≤ 1 ulp)",
);

/// The `f32` sigmoid focal kernel vs the `f64` kernel on the same
/// (f32-rounded) inputs, for focusing parameter `γ`: `17 + 3γ` ulps.
pub fn f32_sigmoid_focal_path(gamma: f64) -> Tolerance {
    Tolerance::ulps(
        17.0 + (3.0 * gamma).ceil(),
        "with hard labels the f32 kernel forms the pieces of binary cross-entropy's f32 path (σ(±x) ≤ 4.5 ulps, \
         softplus ≤ 4.5 ulps) and from them, without cancellation, the value α_t·q^γ·b (≤ 6 ulps beyond the error of \
         q^γ) and the gradient ∓α_t·q^γ·(γ·p_t·b + q) (≤ 12.5 ulps beyond it); q^γ is exact at γ = 0, q (4.5) at \
         γ = 1, q·q (9.5) at γ = 2, otherwise e^(−γ·(max(u, 0) + ln(1 + t))) by the f32 exponential of the exact \
         pair (≤ 2 ulps), which inherits γ times the ≤ 4-ulp error of ln(1 + t) ≤ ln 2 (≤ 2.8γ + 2.5); all ≤ 3γ + 4; plus ½ ulp for rounding the f64 kernel's \
         output. Soft labels take the f64 path (≤ 1 ulp)",
    )
}

/// Dual-number Hessian of the definition vs finite differences of the analytic gradient.
pub const HESSIAN_FD: Tolerance = Tolerance::relative(
    1e-5,
    "central differences of the analytic gradient at Stan's step and half of it, relative to max(‖H‖, 1), \
     judged beyond twice their step-halving truncation estimate: rounding ε·|g|/h ≈ 1e-10 and truncation \
     ≈ 1e-9 for |logits| ≤ 8",
);

/// `x` as dual numbers with the derivative seeded at entry `j` (the
/// directional derivative along the `j`-th unit vector).
pub fn seed_derivative(x: &[f64], j: usize) -> Vec<Dual64> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if i == j {
                Dual64::from_re(v).derivative()
            } else {
                Dual64::from_re(v)
            }
        })
        .collect()
}

/// Central-difference step (Stan Math): `cbrt(ε)·max(1, |x|)`.
pub fn fd_step(x: f64) -> f64 {
    f64::EPSILON.cbrt() * x.abs().max(1.0)
}

fn max_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Dual-number gradient of the definition at the case's logits.
///
/// # Errors
/// Whatever the definition rejects.
pub fn dual_gradient<L: LossUnderTest>(loss: &L, case: &Case) -> Result<Vec<f64>, entropic::Error> {
    let x = &case.logits;
    (0..x.len())
        .map(|j| loss.value(case, &seed_derivative(x, j)).map(|v| v.eps))
        .collect()
}

/// Central differences of a vector-valued function of one variable at `x0`
/// with step `h` and `h/2`: returns the `h/2` estimate and, per component,
/// `|D(h) − D(h/2)|`, which bounds the truncation error of `D(h/2)` by
/// about a third of itself for smooth functions (Richardson) and grows with
/// it where the function is not smooth (a finite-support edge).
///
/// # Errors
/// Whatever `f` returns.
pub fn halved_difference(
    mut f: impl FnMut(f64) -> Result<Vec<f64>, entropic::Error>,
    x0: f64,
    h: f64,
) -> Result<(Vec<f64>, Vec<f64>), entropic::Error> {
    let mut central = |h: f64| -> Result<Vec<f64>, entropic::Error> {
        let up = f(x0 + h)?;
        let down = f(x0 - h)?;
        Ok(up.iter().zip(&down).map(|(u, d)| (u - d) / (2.0 * h)).collect())
    };
    let coarse = central(h)?;
    let fine = central(0.5 * h)?;
    let err = coarse.iter().zip(&fine).map(|(a, b)| (a - b).abs()).collect();
    Ok((fine, err))
}

/// Finite-difference gradient of the definition in `f64` (central
/// differences at Stan's step and half of it), with the per-coordinate
/// truncation-error estimate.
///
/// # Errors
/// Whatever the definition rejects.
pub fn fd_gradient<L: LossUnderTest>(loss: &L, case: &Case) -> Result<(Vec<f64>, Vec<f64>), entropic::Error> {
    let mut x = case.logits.clone();
    let (mut d, mut e) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
    for j in 0..x.len() {
        let x0 = x[j];
        let (dj, ej) = halved_difference(
            |v| {
                x[j] = v;
                loss.value(case, &x).map(|y| vec![y])
            },
            x0,
            fd_step(x0),
        )?;
        x[j] = x0;
        d.push(dj[0]);
        e.push(ej[0]);
    }
    Ok((d, e))
}

/// The Hessian of the definition by second-order dual numbers.
///
/// # Errors
/// Whatever the definition rejects.
pub fn dual_hessian<L: LossUnderTest>(loss: &L, case: &Case) -> Result<nalgebra::DMatrix<f64>, entropic::Error> {
    let x = DVector::from_vec(case.logits.clone());
    let (_, _, h) = num_dual::hessian(|v: DVector<num_dual::Dual2DVec64>| loss.value(case, v.as_slice()), &x)?;
    Ok(h)
}

/// Results of [`check_loss`], one tally per mode.
#[derive(Debug, Default)]
pub struct LossChecks {
    /// Kernel value vs definition value.
    pub value: Tally,
    /// Analytic gradient vs dual-number gradient.
    pub gradient: Tally,
    /// Analytic gradient vs finite differences (moderate cases only).
    pub finite_difference: Tally,
    /// f32 path vs f64 path.
    pub f32_path: Tally,
    /// The bound `f32_path` was judged by (the loss's
    /// [`LossUnderTest::f32_tolerance`]; [`F32_PATH`] when unset).
    pub f32_tolerance: Option<Tolerance>,
    /// Dual Hessian vs finite differences of the analytic gradient.
    pub hessian: Tally,
}

impl LossChecks {
    /// The five outcomes, ids `{prefix}.value`, `.grad`, `.grad_fd`, `.f32`, `.hessian`.
    pub fn outcomes(self, prefix: &str, statement: &str, domain: &str) -> Vec<Outcome> {
        vec![
            Outcome::from_tally(
                format!("{prefix}.value"),
                format!("kernel = definition: {statement}"),
                domain,
                VALUE_KERNEL_VS_DEFINITION,
                self.value,
            ),
            Outcome::from_tally(
                format!("{prefix}.grad"),
                format!("analytic gradient = autodiff of {statement}"),
                domain,
                GRADIENT_DUAL,
                self.gradient,
            ),
            Outcome::from_tally(
                format!("{prefix}.grad_fd"),
                format!("analytic gradient = central differences of {statement}"),
                domain,
                GRADIENT_FD,
                self.finite_difference,
            ),
            Outcome::from_tally(
                format!("{prefix}.f32"),
                format!("f32 path = f64 path rounded: {statement}"),
                domain,
                self.f32_tolerance.unwrap_or(F32_PATH),
                self.f32_path,
            ),
            Outcome::from_tally(
                format!("{prefix}.hessian"),
                format!("autodiff Hessian = differences of the analytic gradient: {statement}"),
                domain,
                HESSIAN_FD,
                self.hessian,
            ),
        ]
    }

    /// True when every tally is non-empty and free of failures.
    pub fn passed(&self) -> bool {
        [
            &self.value,
            &self.gradient,
            &self.finite_difference,
            &self.f32_path,
            &self.hessian,
        ]
        .iter()
        .all(|t| t.cases > 0 && t.failure.is_none())
    }
}

/// Checks one loss in every mode: `cases` for value, gradient and f32 (any
/// magnitude), `moderate` additionally for finite differences and the
/// Hessian (where a finite-difference step is meaningful).
pub fn check_loss<L: LossUnderTest>(loss: &L, cases: &[Case], moderate: &[Case]) -> LossChecks {
    let mut r = LossChecks {
        f32_tolerance: Some(loss.f32_tolerance()),
        ..LossChecks::default()
    };
    let fail = |t: &mut Tally, case: &Case, e: entropic::Error| {
        t.require(false, || format!("{}: unexpected error {e}", case.describe()));
    };
    for case in cases.iter().chain(moderate) {
        let (v64, g64) = match loss.kernel_f64(case) {
            Ok(x) => x,
            Err(e) => {
                fail(&mut r.value, case, e);
                continue;
            }
        };
        match loss.value(case, &case.logits) {
            Ok(v) => r
                .value
                .record(&VALUE_KERNEL_VS_DEFINITION, Measured::between(v64, v), || {
                    case.describe()
                }),
            Err(e) => fail(&mut r.value, case, e),
        }
        if v64.is_infinite() {
            // A loss of +∞ (exact: a positive label on a masked class) has no
            // derivative to compare; the analytic gradient must still be
            // free of NaN (it reports the limit, e.g. α(a − e_k)).
            r.gradient.require(!g64.iter().any(|g: &f64| g.is_nan()), || {
                format!("{}: loss {v64} with NaN in the gradient {g64:?}", case.describe())
            });
        } else {
            match dual_gradient(loss, case) {
                Ok(d) => {
                    let scale = max_norm(&d).max(max_norm(&g64)).max(GRADIENT_SCALE_FLOOR);
                    let e = g64
                        .iter()
                        .zip(&d)
                        .fold(Measured::ZERO, |m, (a, b)| m.max(Measured::scaled(*a, *b, scale)));
                    let e = if g64.len() == d.len() {
                        e
                    } else {
                        Measured {
                            ulps: f64::INFINITY,
                            rel: f64::INFINITY,
                        }
                    };
                    r.gradient.record(&GRADIENT_DUAL, e, || {
                        format!("{}: analytic {g64:?} vs dual {d:?}", case.describe())
                    });
                }
                Err(e) => fail(&mut r.gradient, case, e),
            }
        }
        // f32: the kernel on f32-rounded logits vs the f64 kernel on the same
        // values; logits beyond f32's range have no f32 counterpart.
        if case
            .logits
            .iter()
            .any(|z| z.is_finite() && z.abs() > f64::from(f32::MAX))
        {
            continue;
        }
        let rounded: Vec<f64> = case.logits.iter().map(|&v| f64::from(v as f32)).collect();
        let x32: Vec<f32> = case.logits.iter().map(|&v| v as f32).collect();
        match (loss.kernel(case, &x32), loss.kernel(case, &rounded)) {
            (Ok((o32, g32)), Ok((o64, g64))) => {
                let v32 = o32.unreduced.iter().chain(&o32.reduced).chain(&g32);
                let v64 = o64.unreduced.iter().chain(&o64.reduced).chain(&g64);
                let e = v32
                    .zip(v64)
                    .fold(Measured::ZERO, |m, (a, b)| m.max(Measured::between_f32(*a, *b as f32)));
                r.f32_path
                    .record(&loss.f32_tolerance(), e, || format!("f32-rounded {}", case.describe()));
            }
            (Err(e), _) | (_, Err(e)) => fail(&mut r.f32_path, case, e),
        }
    }
    for case in moderate {
        let Ok((_, g64)) = loss.kernel_f64(case) else { continue };
        match fd_gradient(loss, case) {
            Ok((d, err)) => {
                let scale = max_norm(&d).max(max_norm(&g64)).max(GRADIENT_SCALE_FLOOR);
                let e = g64
                    .iter()
                    .zip(d.iter().zip(&err))
                    .fold(Measured::ZERO, |m, (a, (b, eb))| {
                        m.max(beyond_estimate(*a, *b, *eb, scale))
                    });
                r.finite_difference.record(&GRADIENT_FD, e, || {
                    format!(
                        "{}: analytic {g64:?} vs fd {d:?} (fd error estimate {err:?})",
                        case.describe()
                    )
                });
            }
            Err(e) => fail(&mut r.finite_difference, case, e),
        }
        match (dual_hessian(loss, case), hessian_of_gradient(loss, case)) {
            (Ok(h), Ok((fd, err))) => {
                let scale = h.amax().max(fd.amax()).max(GRADIENT_SCALE_FLOOR);
                let e = h
                    .iter()
                    .zip(fd.iter().zip(err.iter()))
                    .fold(Measured::ZERO, |m, (a, (b, eb))| {
                        m.max(beyond_estimate(*a, *b, *eb, scale))
                    });
                r.hessian.record(&HESSIAN_FD, e, || {
                    format!("{}: dual {h:.6e} vs fd {fd:.6e}", case.describe())
                });
            }
            (Err(e), _) | (_, Err(e)) => fail(&mut r.hessian, case, e),
        }
    }
    r
}

/// Central differences of the analytic `f64` gradient (step and half step):
/// column `j` is the derivative of the gradient along `e_j`, with its
/// truncation-error estimate.
///
/// # Errors
/// Whatever the kernel rejects.
pub fn hessian_of_gradient<L: LossUnderTest>(
    loss: &L,
    case: &Case,
) -> Result<(nalgebra::DMatrix<f64>, nalgebra::DMatrix<f64>), entropic::Error> {
    let k = case.logits.len();
    let mut h = nalgebra::DMatrix::zeros(k, k);
    let mut err = nalgebra::DMatrix::zeros(k, k);
    let mut shifted = case.clone();
    for j in 0..k {
        let x0 = case.logits[j];
        let (col, col_err) = halved_difference(
            |v| {
                shifted.logits[j] = v;
                loss.kernel_f64(&shifted).map(|(_, g)| g)
            },
            x0,
            fd_step(x0),
        )?;
        shifted.logits[j] = x0;
        for i in 0..k {
            h[(i, j)] = col[i];
            err[(i, j)] = col_err[i];
        }
    }
    Ok((h, err))
}

/// `|a − d|` beyond `2·err` (the finite difference's own error estimate),
/// relative to `scale`.
fn beyond_estimate(a: f64, d: f64, err: f64, scale: f64) -> Measured {
    if a.is_nan() || d.is_nan() {
        return Measured {
            ulps: f64::INFINITY,
            rel: f64::INFINITY,
        };
    }
    let excess = ((a - d).abs() - 2.0 * err).max(0.0);
    Measured {
        ulps: (excess / crate::tolerance::ulp_of(scale)).ceil(),
        rel: excess / scale,
    }
}

/// Checks that the plain kernels and the dual-number definition reject each
/// bad case, with the same message.
pub fn check_errors<L: LossUnderTest>(loss: &L, bad: &[Case]) -> Tally {
    let mut t = Tally::default();
    for case in bad {
        let xs: Vec<Dual64> = case.logits.iter().map(|&v| Dual64::from_re(v)).collect();
        let k = loss.kernel_f64(case).err().map(|e| e.to_string());
        let d = loss.value(case, &xs).err().map(|e| e.to_string());
        let x32: Vec<f32> = case.logits.iter().map(|&v| v as f32).collect();
        let f = loss.kernel(case, &x32).err().map(|e| e.to_string());
        let ok = k.is_some() && k == d && f.is_some();
        t.require(ok, || {
            format!("{}: kernel {k:?}, dual {d:?}, f32 {f:?}", case.describe())
        });
    }
    t
}
