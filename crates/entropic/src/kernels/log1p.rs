//! A branch-free `ln(1 + t)` on `t ∈ [0, 1]` that auto-vectorizes, and the
//! logistic pieces (softplus, sigmoid) of a logit built from it and
//! [`super::exp::exp`].
//!
//! The sigmoid-family kernels (binary cross-entropy, sigmoid focal loss)
//! need `ln(1 + e^{−|x|})` for every element; `t = e^{−|x|}` is always in
//! `[0, 1]`, so no range reduction is needed.
//!
//! # Error bound
//! [`ln_1p_unit`] is within 2 ulps on `[0, 1]` (measured ≤ 1 ulp against a
//! 200-bit `dashu-float` reference over a dense sweep, see the tests below).
//! A priori: with `s = t/(2 + t)` (two roundings, ≤ 1 ulp of `s`) and the
//! identity `ln(1 + t) = 2 artanh(s) = t − s·(t − R(s²))`, the leading term
//! `t` is exact; the correction `s·(t − R)` is at most 0.45 of the result,
//! so its few ulps of error weigh ≤ 1 ulp of the result, plus ½ ulp for the
//! final subtraction. The series `R(z) = 2 Σ_{n≥1} zⁿ/(2n+1)` is cut after
//! `n = 15`: the first omitted term is `≤ (1/9)^16/33 < 2e-17` relative
//! (`s ≤ 1/3`).

use super::exp;

/// `2/(2n + 1)` for `n = 1..=15`.
const ARTANH_COEFFICIENTS: [f64; 15] = [
    2.0 / 3.0,
    2.0 / 5.0,
    2.0 / 7.0,
    2.0 / 9.0,
    2.0 / 11.0,
    2.0 / 13.0,
    2.0 / 15.0,
    2.0 / 17.0,
    2.0 / 19.0,
    2.0 / 21.0,
    2.0 / 23.0,
    2.0 / 25.0,
    2.0 / 27.0,
    2.0 / 29.0,
    2.0 / 31.0,
];

/// `ln(1 + t)` for `t ∈ [0, 1]` (NaN gives NaN), branch-free; see the
/// module docs for the error bound. Outside `[0, 1]` the result is not
/// accurate (callers pass `t = e^{−|x|}`).
#[inline(always)]
pub(crate) fn ln_1p_unit(t: f64) -> f64 {
    let s = t / (2.0 + t);
    let z = s * s;
    let mut p = ARTANH_COEFFICIENTS[14];
    for &a in ARTANH_COEFFICIENTS[..14].iter().rev() {
        p = p.mul_add(z, a);
    }
    // R(z) = z·p; ln(1 + t) = t − s·(t − R).
    t - s * (-z).mul_add(p, t)
}

/// The logistic pieces of one logit `x`, from `t = e^{−|x|}`:
/// `(softplus(x), softplus(−x), σ(x), σ(−x))`, where
/// `softplus(±x) = max(±x, 0) + ln(1 + t)` and `σ(±x)` is `1/(1 + t)` on the
/// side of the sign of `x` and `t/(1 + t)` on the other. Branch-free (the
/// sign choices are selects); exact at `x = ±∞` (`(∞, 0, 1, 0)` for `+∞`);
/// NaN gives NaN everywhere.
#[inline(always)]
pub(crate) fn logistic(x: f64) -> (f64, f64, f64, f64) {
    let t = exp::exp(-x.abs());
    let l = ln_1p_unit(t);
    let v = 1.0 / (1.0 + t);
    let tv = t * v;
    let pos = if x > 0.0 { x } else { 0.0 };
    let neg = if x < 0.0 { -x } else { 0.0 };
    let nonneg = x >= 0.0;
    (
        pos + l,
        neg + l,
        if nonneg { v } else { tv },
        if nonneg { tv } else { v },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound claimed in the module docs (a priori ≤ 1.5 ulp, see there;
    /// 2 leaves the margin the "≤ 2 ulps" allows).
    const LN_1P_ULPS: f64 = 2.0;

    /// `|ln_1p_unit(t) − ln(1 + t)|` in ulps of the correctly rounded
    /// result (dashu-float at 200 bits; the difference is formed exactly).
    fn ulp_error(t: f64) -> f64 {
        ulp_error_of(ln_1p_unit(t), t)
    }

    fn ulp_error_of(got: f64, t: f64) -> f64 {
        use dashu_float::FBig;
        use dashu_float::round::mode::HalfEven;
        type F = FBig<HalfEven, 2>;
        // 1 + t must not round: 200 bits beyond t's own scale.
        let bits = 200 + if t > 0.0 { (-t.log2()).max(0.0) as usize } else { 0 };
        let one_plus = F::try_from(t).unwrap().with_precision(bits).value() + F::ONE;
        let reference = one_plus.ln();
        let r64 = reference.to_f64().value();
        if r64 == 0.0 {
            return if got == 0.0 { 0.0 } else { f64::INFINITY };
        }
        let ulp = f64::from_bits(r64.to_bits() + 1) - r64;
        let diff = (F::try_from(got).unwrap().with_precision(bits).value() - reference)
            .to_f64()
            .value();
        diff.abs() / ulp
    }

    #[test]
    fn ln_1p_unit_within_two_ulps_of_high_precision_reference() {
        let mut ts = vec![0.0, 1.0, f64::MIN_POSITIVE, f64::from_bits(1), 0.5, 1.0 - f64::EPSILON];
        let n = 20_000;
        for i in 0..n {
            let u = (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64;
            ts.push(u);
            // Log-spaced from 1e-300 to 1 (tiny t: ln(1 + t) = t exactly).
            ts.push(1e-300f64 * 1e300f64.powf(u));
        }
        let mut worst = (0.0, 0.0);
        for &t in &ts {
            let e = ulp_error(t);
            if e > worst.0 {
                worst = (e, t);
            }
        }
        assert!(worst.0 <= LN_1P_ULPS, "ln_1p_unit({}) off by {} ulps", worst.1, worst.0);
        eprintln!(
            "ln_1p_unit: max error {:.3} ulps at t = {} over {} points",
            worst.0,
            worst.1,
            ts.len()
        );
    }

    #[test]
    fn logistic_special_values() {
        assert_eq!(logistic(f64::INFINITY), (f64::INFINITY, 0.0, 1.0, 0.0));
        assert_eq!(logistic(f64::NEG_INFINITY), (0.0, f64::INFINITY, 0.0, 1.0));
        let (a, b, c, d) = logistic(0.0);
        assert_eq!((a, b, c, d), (std::f64::consts::LN_2, std::f64::consts::LN_2, 0.5, 0.5));
        let (a, b, c, d) = logistic(f64::NAN);
        assert!(a.is_nan() && b.is_nan() && c.is_nan() && d.is_nan());
        // Far tails: softplus(−x) = e^{−x} to full relative accuracy.
        let (_, sp_neg, _, sig_neg) = logistic(700.0);
        assert!(((sp_neg - (-700f64).exp()) / (-700f64).exp()).abs() <= 4.0 * f64::EPSILON);
        assert!(((sig_neg - (-700f64).exp()) / (-700f64).exp()).abs() <= 4.0 * f64::EPSILON);
    }

    /// The sweep's measure can fail: a result 3 ulps off, and a series cut
    /// one term too early, are both rejected.
    #[test]
    fn the_ulp_measure_rejects_wrong_logarithms() {
        let t = 0.75f64;
        let good = ln_1p_unit(t);
        assert!(ulp_error_of(f64::from_bits(good.to_bits() + 3), t) > LN_1P_ULPS);
        let s = t / (2.0 + t);
        let z = s * s;
        let short = ARTANH_COEFFICIENTS[..3].iter().rev().fold(0.0, |p, &a| p * z + a);
        assert!(ulp_error_of(t - s * (t - z * short), t) > LN_1P_ULPS);
    }
}
