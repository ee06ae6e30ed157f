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

/// `2/(2n + 1)` for `n = 1..=7`, in `f32`.
const ARTANH_COEFFICIENTS_F32: [f32; 7] = [
    2.0 / 3.0,
    2.0 / 5.0,
    2.0 / 7.0,
    2.0 / 9.0,
    2.0 / 11.0,
    2.0 / 13.0,
    2.0 / 15.0,
];

/// [`ln_1p_unit`] in `f32` arithmetic (8 lanes with AVX2), for the `f32`
/// sigmoid-family path: the same `t − s·(t − R(s²))` with the series cut
/// after `n = 7` (first omitted term `≤ (1/9)^8·2/17 < 3e-9` relative, a
/// twentieth of an `f32` ulp). Within 2 `f32` ulps on `[0, 1]` (the a priori
/// argument of the module docs; measured in the tests below).
#[inline(always)]
pub(crate) fn ln_1p_unit32(t: f32) -> f32 {
    let s = t / (2.0 + t);
    let z = s * s;
    let mut p = ARTANH_COEFFICIENTS_F32[6];
    for &a in ARTANH_COEFFICIENTS_F32[..6].iter().rev() {
        p = p.mul_add(z, a);
    }
    t - s * (-z).mul_add(p, t)
}

/// `ln x` in `f32` arithmetic (8 lanes with AVX2) for a positive normal or
/// infinite `x` (`+∞` gives about 88.7, not `+∞`; zero, subnormals,
/// negatives and NaN give unspecified values), branch-free: the reduction
/// `x = 2^e·m`, `m ∈ [√½, √2)`, of [`ln`], then [`ln_1p_unit32`] of the
/// exact `m − 1 ∈ [√½ − 1, √2 − 1)` (there `|s| ≤ 0.172`: the first omitted
/// term of its series is below `10^-14` relative). For the `f32` first phase of the tempered normalizer,
/// whose result is only a starting point for the `f64` solver: within 2
/// `f32` ulps or `2^-24` absolute (measured 0.66 ulps in the tests below).
#[inline(always)]
pub(crate) fn ln32(x: f32) -> f32 {
    use super::exp32::{LN2_HI, LN2_LO};
    let bits = x.to_bits();
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = (((bits >> 23) & 0xff) as i32 - 127 + i32::from(big)) as f32;
    // ln m = ln(1 + f) with f = m − 1 exact, |f| ≤ √2 − 1.
    e.mul_add(LN2_HI, e.mul_add(LN2_LO, ln_1p_unit32(m - 1.0)))
}

/// High part of `ln 2` with 32 trailing zero bits (`e · LN2_HI` exact for
/// `|e| < 2^21`); fdlibm's `ln2_hi`.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// `ln 2 − LN2_HI` rounded; fdlibm's `ln2_lo`.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// `ln(1 + v)` for any `v` (branch-free; `−1` gives `−∞`, below `−1` and NaN
/// give NaN, `+∞` gives `+∞`), for the vectorized tempered normalizer.
///
/// `u = 1 + v` is rounded, and its rounding error is added back to first
/// order, `c = (v − (u − 1))/u` (or `(1 − (u − v))/u` for `u ≥ 2`, fdlibm's
/// form); `u = 2^e·(1 + f)` with `1 + f ∈ [√½, √2)` (`f` exact), so
/// `ln(1 + v) = e·ln 2 + ln(1 + f) + c` with `ln(1 + f)` from the same
/// `artanh` series as [`ln_1p_unit`], cut after 10 terms (`|s| ≤ 0.172`:
/// the first omitted term is below `7e-19` relative). Error: within 2 ulps
/// (measured 1.17 in the tests below).
#[inline(always)]
pub(crate) fn ln_1p(v: f64) -> f64 {
    let u = 1.0 + v;
    let c = if u >= 2.0 { 1.0 - (u - v) } else { v - (u - 1.0) } / u;
    let (e, ln_m) = reduced_log(u);
    let r = e.mul_add(LN2_HI, ln_m + e.mul_add(LN2_LO, c));
    // Special values as selects: u = 0 (v = −1) → −∞; v < −1 or NaN → NaN;
    // v = +∞ → +∞ (the bit manipulation gives garbage there).
    let r = if u == 0.0 { f64::NEG_INFINITY } else { r };
    let r = if v < -1.0 || v.is_nan() { f64::NAN } else { r };
    if v == f64::INFINITY { f64::INFINITY } else { r }
}

/// `ln x` for any `x` (branch-free; subnormals scaled by `2^54` first; `0`
/// gives `−∞`, negative and NaN give NaN, `+∞` gives `+∞`): [`ln_1p`]'s
/// reduction and series with an exact argument, within 2 ulps (measured in
/// the tests below). For the vectorized bi-tempered gradient.
#[inline(always)]
pub(crate) fn ln(x: f64) -> f64 {
    const TWO_54: f64 = 18_014_398_509_481_984.0;
    let tiny = x < f64::MIN_POSITIVE;
    let (e, ln_m) = reduced_log(if tiny { x * TWO_54 } else { x });
    let e = if tiny { e - 54.0 } else { e };
    let r = e.mul_add(LN2_HI, ln_m + e * LN2_LO);
    let r = if x == 0.0 { f64::NEG_INFINITY } else { r };
    let r = if x < 0.0 || x.is_nan() { f64::NAN } else { r };
    if x == f64::INFINITY { f64::INFINITY } else { r }
}

/// Terms of the `artanh` series after the reduction to `m ∈ [√½, √2)`.
const REDUCED_TERMS: usize = 10;

/// `(e, ln m)` with `u = 2^e·m`, `m ∈ [√½, √2)` (`u` positive and normal):
/// the shared reduction and `artanh` series of [`ln_1p`] and [`ln`].
#[inline(always)]
fn reduced_log(u: f64) -> (f64, f64) {
    let bits = u.to_bits();
    // The biased exponent as an f64 without an integer conversion (AVX2 has
    // no packed i64 → f64): 2^52 + b − 2^52, exact.
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    let biased = f64::from_bits(TWO_52.to_bits() | ((bits >> 52) & 0x7ff)) - TWO_52;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = biased - 1023.0 + if big { 1.0 } else { 0.0 };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // |s| ≤ 0.1716 (z ≤ 0.0295): the series cut after n = REDUCED_TERMS,
    // whose first omitted term is below z^11/23 < 7e-19 relative.
    let mut p = ARTANH_COEFFICIENTS[REDUCED_TERMS - 1];
    for &a in ARTANH_COEFFICIENTS[..REDUCED_TERMS - 1].iter().rev() {
        p = p.mul_add(z, a);
    }
    (e, f - s * (-z).mul_add(p, f))
}

/// The logistic pieces of one logit `x`, from `t = e^{−|x|}`:
/// `(softplus(x), softplus(−x), σ(x), σ(−x))`, where
/// `softplus(±x) = max(±x, 0) + ln(1 + t)` and `σ(±x)` is `1/(1 + t)` on the
/// side of the sign of `x` and `t/(1 + t)` on the other. Branch-free (the
/// sign choices are selects); exact at `x = ±∞` (`(∞, 0, 1, 0)` for `+∞`);
/// NaN gives NaN everywhere.
#[inline(always)]
pub(crate) fn logistic(x: f64) -> (f64, f64, f64, f64) {
    let (pos, neg, l, sig_pos, sig_neg) = logistic_parts(x);
    (pos + l, neg + l, sig_pos, sig_neg)
}

/// The parts of [`logistic`] before the softplus sums: `(max(x, 0),
/// max(−x, 0), ln(1 + e^{−|x|}), σ(x), σ(−x))` (the sigmoid focal loss
/// keeps the exact `max(±x, 0)` apart from the rounded logarithm).
#[inline(always)]
pub(crate) fn logistic_parts(x: f64) -> (f64, f64, f64, f64, f64) {
    let t = exp::exp(-x.abs());
    let l = ln_1p_unit(t);
    let v = 1.0 / (1.0 + t);
    let tv = t * v;
    let pos = if x > 0.0 { x } else { 0.0 };
    let neg = if x < 0.0 { -x } else { 0.0 };
    let nonneg = x >= 0.0;
    (pos, neg, l, if nonneg { v } else { tv }, if nonneg { tv } else { v })
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
        let bits = 200
            + if t != 0.0 {
                (-t.abs().log2()).max(0.0) as usize
            } else {
                0
            };
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

    /// `(largest error, its argument)` of `err` over `xs`.
    fn worst_of(xs: &[f64], err: impl Fn(f64) -> f64) -> (f64, f64) {
        xs.iter().fold((0.0, 0.0), |w, &x| {
            let e = err(x);
            if e > w.0 { (e, x) } else { w }
        })
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
        let worst = worst_of(&ts, ulp_error);
        assert!(worst.0 <= LN_1P_ULPS, "ln_1p_unit({}) off by {} ulps", worst.1, worst.0);
        eprintln!(
            "ln_1p_unit: max error {:.3} ulps at t = {} over {} points",
            worst.0,
            worst.1,
            ts.len()
        );
    }

    /// `|ln_1p_unit32(t) − ln(1 + t)|` in `f32` ulps of the correctly
    /// rounded result (subnormal spacing below `2^-126`).
    fn ulp_error32(got: f32, t: f32) -> f64 {
        use dashu_float::FBig;
        use dashu_float::round::mode::HalfEven;
        type F = FBig<HalfEven, 2>;
        let big = |v: f32| F::try_from(f64::from(v)).unwrap().with_precision(400).value();
        let reference = (big(t) + F::ONE).ln();
        let r32 = reference.to_f64().value() as f32;
        if r32 == 0.0 {
            return if got == 0.0 { 0.0 } else { f64::INFINITY };
        }
        let ulp = if r32 < f32::MIN_POSITIVE {
            f64::from(f32::from_bits(1))
        } else {
            f64::from(f32::from_bits(r32.to_bits() + 1) - r32)
        };
        (big(got) - reference).to_f64().value().abs() / ulp
    }

    #[test]
    fn ln_1p_unit32_within_two_ulps_of_high_precision_reference() {
        let mut ts = vec![
            0.0f32,
            1.0,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            0.5,
            1.0 - f32::EPSILON,
        ];
        let n = 20_000;
        for i in 0..n {
            let u = (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64;
            ts.push(u as f32);
            // Log-spaced from 1e-45 to 1.
            ts.push((1e-45f64 * 1e45f64.powf(u)) as f32);
        }
        let worst = ts.iter().fold((0.0, 0.0f32), |w, &t| {
            let e = ulp_error32(ln_1p_unit32(t), t);
            if e > w.0 { (e, t) } else { w }
        });
        assert!(
            worst.0 <= LN_1P_ULPS,
            "ln_1p_unit32({}) off by {} ulps",
            worst.1,
            worst.0
        );
        // The measure can fail: 3 ulps off, and the series cut after
        // n = 3, are rejected.
        let t = 1.0f32;
        assert!(ulp_error32(f32::from_bits(ln_1p_unit32(t).to_bits() + 3), t) > LN_1P_ULPS);
        let (s, z) = (t / (2.0 + t), (t / (2.0 + t)).powi(2));
        let short = ARTANH_COEFFICIENTS_F32[..3].iter().rev().fold(0.0, |p, &a| p * z + a);
        assert!(ulp_error32(t - s * (t - z * short), t) > LN_1P_ULPS);
        eprintln!(
            "ln_1p_unit32: max error {:.3} ulps at t = {} over {} points",
            worst.0,
            worst.1,
            ts.len()
        );
    }

    /// The bound claimed for [`ln32`]: 2 `f32` ulps of the correctly rounded
    /// result, or `2^-24` absolute near `x = 1` (where the result is tiny
    /// and only the normalizer's start depends on it). Reason: the same
    /// a priori argument as [`ln_1p_unit32`] (≤ 1.5 ulps) plus the
    /// two-part `e·ln 2` (its low part is rounded: ≤ ½ ulp).
    const LN32_ULPS: f64 = 2.0;
    const LN32_ABSOLUTE: f64 = 5.960464477539063e-8;

    /// `|ln32(x) − ln x|` within the bound, against `f64`'s `ln` (within
    /// 1 `f64` ulp, `2^-29` of an `f32` ulp: a reference for `f32` ulps).
    fn ln32_error(got: f32, x: f32) -> f64 {
        let reference = f64::from(x).ln();
        let r32 = reference as f32;
        let ulp = f64::from(f32::from_bits(r32.abs().to_bits() + 1) - r32.abs());
        let err = (f64::from(got) - reference).abs();
        if err <= LN32_ABSOLUTE { 0.0 } else { err / ulp }
    }

    #[test]
    fn ln32_within_its_bound_of_f64_ln() {
        let mut xs = vec![1.0f32, f32::MIN_POSITIVE, f32::MAX, 2.0, 0.5, std::f32::consts::SQRT_2];
        let n = 40_000;
        for i in 0..n {
            let u = (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64;
            // Log-spaced over the normal range, and dense around 1.
            xs.push((1e-37f64 * 1e75f64.powf(u)) as f32);
            xs.push((0.5 + 1.5 * u) as f32);
        }
        let worst = xs.iter().fold((0.0, 0.0f32), |w, &x| {
            let e = ln32_error(ln32(x), x);
            if e > w.0 { (e, x) } else { w }
        });
        assert!(worst.0 <= LN32_ULPS, "ln32({}) off by {} ulps", worst.1, worst.0);
        // The measure can fail: 3 ulps off is rejected.
        let x = 10.0f32;
        assert!(ln32_error(f32::from_bits(ln32(x).to_bits() + 3), x) > LN32_ULPS);
        // +∞ gives a finite value near 88.7 (documented).
        assert!((ln32(f32::INFINITY) - 88.72).abs() < 0.01);
        eprintln!(
            "ln32: max error {:.3} ulps at x = {} over {} points",
            worst.0,
            worst.1,
            xs.len()
        );
    }

    #[test]
    fn ln_1p_within_two_ulps_of_high_precision_reference() {
        let mut vs = vec![
            0.0,
            1.0,
            -0.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            1e300,
            f64::MAX,
            -1.0 + f64::EPSILON / 2.0,
            std::f64::consts::SQRT_2 - 1.0,
            std::f64::consts::FRAC_1_SQRT_2 - 1.0,
        ];
        let n = 20_000;
        for i in 0..n {
            let u = (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64;
            vs.push(u);
            vs.push(-u);
            vs.push(1e-300f64 * 1e300f64.powf(u));
            vs.push(-1e-300f64 * 1e300f64.powf(u));
            vs.push(1e300f64.powf(u));
            // Near the reduction boundaries 1 + v = 2^e·√2.
            vs.push(std::f64::consts::SQRT_2 * 2f64.powi((i % 40) - 10) * (1.0 + 1e-9 * (u - 0.5)) - 1.0);
        }
        let worst = worst_of(&vs, |v| ulp_error_of(ln_1p(v), v));
        assert!(worst.0 <= LN_1P_ULPS, "ln_1p({}) off by {} ulps", worst.1, worst.0);
        eprintln!(
            "ln_1p: max error {:.3} ulps at v = {} over {} points",
            worst.0,
            worst.1,
            vs.len()
        );
    }

    /// `|ln(x) − ln x|` in ulps (dashu-float at 200 bits).
    fn ln_ulp_error(x: f64) -> f64 {
        use dashu_float::FBig;
        use dashu_float::round::mode::HalfEven;
        type F = FBig<HalfEven, 2>;
        let reference = F::try_from(x).unwrap().with_precision(200).value().ln();
        let r64 = reference.to_f64().value();
        if r64 == 0.0 {
            return if ln(x) == 0.0 { 0.0 } else { f64::INFINITY };
        }
        let ulp = f64::from_bits(r64.abs().to_bits() + 1) - r64.abs();
        let diff = (F::try_from(ln(x)).unwrap().with_precision(200).value() - reference)
            .to_f64()
            .value();
        diff.abs() / ulp
    }

    #[test]
    fn ln_within_two_ulps_of_high_precision_reference() {
        let mut xs = vec![
            1.0,
            2.0,
            0.5,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::MAX,
            1.0 + f64::EPSILON,
            1.0 - f64::EPSILON / 2.0,
        ];
        let n = 20_000;
        for i in 0..n {
            let u = (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64;
            // Log-spaced over the whole range, subnormals included.
            xs.push(f64::from_bits(1) * 2f64.powf(2097.0 * u));
            xs.push(0.5 + 1.5 * u);
            xs.push(std::f64::consts::SQRT_2 * 2f64.powi((i % 40) - 20) * (1.0 + 1e-9 * (u - 0.5)));
        }
        let xs: Vec<f64> = xs.into_iter().filter(|x| x.is_finite() && *x > 0.0).collect();
        let worst = worst_of(&xs, ln_ulp_error);
        assert!(worst.0 <= LN_1P_ULPS, "ln({}) off by {} ulps", worst.1, worst.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert_eq!(ln(1.0), 0.0);
        // The measure can fail: 3 ulps off is rejected.
        let x = 0.3f64;
        let off = f64::from_bits(ln(x).to_bits() + 3);
        use dashu_float::FBig;
        use dashu_float::round::mode::HalfEven;
        let r = FBig::<HalfEven, 2>::try_from(x)
            .unwrap()
            .with_precision(200)
            .value()
            .ln();
        let ulp = f64::from_bits(ln(x).abs().to_bits() + 1) - ln(x).abs();
        let e = (FBig::<HalfEven, 2>::try_from(off).unwrap().with_precision(200).value() - r)
            .to_f64()
            .value()
            .abs()
            / ulp;
        assert!(e > LN_1P_ULPS);
        eprintln!(
            "ln: max error {:.3} ulps at x = {} over {} points",
            worst.0,
            worst.1,
            xs.len()
        );
    }

    #[test]
    fn ln_1p_special_values() {
        assert_eq!(ln_1p(-1.0), f64::NEG_INFINITY);
        assert!(ln_1p(-1.5).is_nan());
        assert!(ln_1p(f64::NAN).is_nan());
        assert_eq!(ln_1p(f64::INFINITY), f64::INFINITY);
        assert_eq!(ln_1p(0.0), 0.0);
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
