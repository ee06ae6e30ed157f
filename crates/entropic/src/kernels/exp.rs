//! A branch-free `f64` `exp` that auto-vectorizes.
//!
//! It is plain arithmetic (no table lookups, no branches: clamps and
//! choices are selects), so a loop calling them compiles to SIMD code
//! (4 `f64` lanes with AVX2 + FMA, chosen at run time by `multiversion`).
//! `f64::mul_add` is a fused multiply–add: a single instruction with FMA, a
//! correctly rounded library call otherwise, so every target computes the
//! same bits (only the speed differs).
//!
//! # Error bounds
//! Measured against a 200-bit `dashu-float` reference in
//! `crates/entropic/tests/kernels.rs` (dense sweeps, see there):
//! [`exp`] is within 1 ulp over the whole range, including the gradual-underflow
//!   range (results below `2^-1022` are rounded twice: ≤ 1 ulp of the
//!   subnormal spacing) and the exact-zero cutoff (`x < −745.13…` gives `+0`,
//!   `−∞` gives `+0`); `+0` → exactly 1. A priori: reduction error ≤ ½ ulp of
//!   `r` (≤ 0.25 ulp of the result), Horner tail ≤ 0.2 ulp, final rounding ½ ulp.

/// `1.5 · 2^52`: adding it rounds an `f64` below `2^51` to an integer (ties
/// to even), which then sits in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;
/// High part of `ln 2` with 32 trailing zero bits (`k · LN2_HI` is exact for
/// `|k| < 2^21`); fdlibm's `ln2_hi`.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// `ln 2 − LN2_HI` rounded; fdlibm's `ln2_lo`.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// Inputs are clamped to `[EXP_LO, EXP_HI]` (a select, NaN passes through):
/// below `−1100` the result is `+0` anyway, above `710` it is `+∞`.
const EXP_LO: f64 = -1100.0;
/// Below this the result rounds to `+0` (`e^{−746} < 2^-1075`, half the
/// smallest subnormal): the second scale factor is then 0 itself, so that
/// the result is an exact 0, not an underflow. An underflowing multiply is
/// microcoded on x86 unless flush-to-zero is set: rows of the tempered
/// softmax with most entries outside a finite support (`e^{−∞}`) ran up to
/// twice as slow.
const EXP_ZERO: f64 = -746.0;
const EXP_HI: f64 = 710.0;

/// `1/n!` for `n = 2..=13` (Taylor coefficients; the truncation error of
/// degree 13 on `|r| ≤ ln2/2` is `r^14/14! < 5e-18`, far below ½ ulp).
const INV_FACT: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// `e^x` in `f64`, branch-free (see the module docs for the error bound).
///
/// `x = k·ln 2 + r` with `k = round(x / ln 2)` and `|r| ≤ ln2/2` (Cody–Waite
/// reduction with a two-part `ln 2`), `e^r` by a degree-13 Taylor polynomial
/// (Horner with FMA), and `2^k` applied as two exact power-of-two factors
/// `2^⌊k/2⌋ · 2^(k−⌊k/2⌋)`, so that results in the subnormal range and the
/// underflow to 0 round once, correctly, and overflow gives `+∞`.
/// NaN in gives NaN out; `−∞` gives `+0`, `+∞` gives `+∞`.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    let (p, s1, s2, _) = reduced(x);
    p * s1 * s2
}

/// `e^{x + δ}` for a correction `|δ| ≤ ulp(x)` (the low part of an exact
/// pair): [`exp`] with the factor `1 + δ` applied before the scaling (so a
/// subnormal result still rounds once); `δ` is ignored where `x` is clamped
/// (`x < −1100`, also `−∞` with a NaN `δ` from its TwoSum). Within 1.5
/// ulps: [`exp`]'s bound plus ½ ulp for the product with `1 + δ`.
#[inline(always)]
pub(crate) fn exp_pair(x: f64, delta: f64) -> f64 {
    let (p, s1, s2, clamped) = reduced(x);
    let delta = if clamped { 0.0 } else { delta };
    p.mul_add(delta, p) * s1 * s2
}

/// The shared body of [`exp`] and [`exp_pair`]: `(e^r, 2^⌊k/2⌋,
/// 2^(k−⌊k/2⌋), x < EXP_LO)`.
#[inline(always)]
fn reduced(x: f64) -> (f64, f64, f64, bool) {
    // Selects, not `f64::max`/`min`, so that a NaN argument stays NaN.
    let clamped = x < EXP_LO;
    let x = if clamped { EXP_LO } else { x };
    let x = if x > EXP_HI { EXP_HI } else { x };
    let t = x.mul_add(std::f64::consts::LOG2_E, SHIFTER);
    let k = t - SHIFTER;
    let r = (-k).mul_add(LN2_HI, x);
    let r = (-k).mul_add(LN2_LO, r);
    let mut p = INV_FACT[11];
    p = p.mul_add(r, INV_FACT[10]);
    p = p.mul_add(r, INV_FACT[9]);
    p = p.mul_add(r, INV_FACT[8]);
    p = p.mul_add(r, INV_FACT[7]);
    p = p.mul_add(r, INV_FACT[6]);
    p = p.mul_add(r, INV_FACT[5]);
    p = p.mul_add(r, INV_FACT[4]);
    p = p.mul_add(r, INV_FACT[3]);
    p = p.mul_add(r, INV_FACT[2]);
    p = p.mul_add(r, INV_FACT[1]);
    p = p.mul_add(r, INV_FACT[0]);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    // k is an integer in [−1587, 1024]; read it from the low bits of t.
    let ki = (t.to_bits() as i64).wrapping_sub(SHIFTER.to_bits() as i64);
    let k1 = ki >> 1;
    let k2 = ki - k1;
    let s1 = f64::from_bits(((k1 + 1023) as u64) << 52);
    let s2 = f64::from_bits(((k2 + 1023) as u64) << 52);
    let s2 = if x < EXP_ZERO { 0.0 } else { s2 };
    (p, s1, s2, clamped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(-746.0), 0.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert!(exp(-745.0) > 0.0);
        // Below EXP_ZERO an exact 0 from a zero scale factor: the same
        // value as the rounded e^x (below half the smallest subnormal).
        assert_eq!(exp(-745.2), 0.0);
        assert_eq!(exp_pair(-746.5, 1e-14), 0.0);
        assert_eq!(exp_pair(f64::NEG_INFINITY, f64::NAN), 0.0);
    }

    /// The ulp bound claimed in the module docs.
    ///
    /// Reason: a priori ≤ 0.25 (reduction) + 0.2 (Horner tail) + 0.5 (final
    /// rounding) < 1 ulp, and the second power-of-two factor rounds once more
    /// only where the result is subnormal (≤ 1 ulp of the subnormal spacing).
    const EXP_ULPS: f64 = 1.0;

    /// `|got − e^x|` in ulps of the correctly rounded result, with `e^x` from
    /// dashu-float at 200 bits (the difference is formed exactly in
    /// high precision and only then converted).
    fn ulp_error(x: f64) -> f64 {
        ulp_error_pair(exp(x), x, 0.0)
    }

    /// `|got − e^{x+δ}|` in ulps of the correctly rounded result.
    fn ulp_error_pair(got: f64, x: f64, delta: f64) -> f64 {
        use dashu_float::FBig;
        use dashu_float::round::mode::HalfEven;
        type F = FBig<HalfEven, 2>;
        let big = |v: f64| F::try_from(v).unwrap().with_precision(200).value();
        let reference = (big(x) + big(delta)).exp();
        let r64 = reference.to_f64().value();
        let ulp = if r64 < f64::MIN_POSITIVE {
            f64::from_bits(1)
        } else {
            f64::from_bits(r64.to_bits() + 1) - r64
        };
        let diff = (F::try_from(got).unwrap().with_precision(200).value() - reference)
            .to_f64()
            .value();
        diff.abs() / ulp
    }

    /// The bound of [`exp_pair`]: [`exp`]'s plus ½ ulp for the rounding of
    /// the product with `1 + δ` (the `δ²/2` it drops is below 2^-100).
    const EXP_PAIR_ULPS: f64 = 1.5;

    /// `exp_pair(x, δ)` is within 1.5 ulps of `e^{x+δ}` for corrections up to
    /// an ulp of `x` (what a TwoSum or FMA error term is), and `exp_pair(x,
    /// 0)` is `exp(x)` bit for bit.
    #[test]
    fn exp_pair_within_its_bound_of_high_precision_reference() {
        let mut worst = (0.0, 0.0, 0.0);
        let n = 6000;
        for i in 0..n {
            let x = -745.0 + 1450.0 * (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64;
            let ulp = f64::from_bits(x.abs().to_bits() + 1) - x.abs();
            for delta in [0.0, 0.49 * ulp, -0.37 * ulp, ulp, -ulp] {
                let got = exp_pair(x, delta);
                if delta == 0.0 {
                    assert_eq!(got.to_bits(), exp(x).to_bits(), "{x}");
                }
                let e = ulp_error_pair(got, x, delta);
                if e > worst.0 {
                    worst = (e, x, delta);
                }
            }
        }
        assert!(
            worst.0 <= EXP_PAIR_ULPS,
            "exp_pair({}, {}) off by {} ulps",
            worst.1,
            worst.2,
            worst.0
        );
        // The measure sees the correction: ignoring δ = ulp(x) at x = 600
        // is 600·2^-43/2^-52 ≈ 3e5 ulps off.
        let x = 600.0f64;
        let ulp = f64::from_bits(x.to_bits() + 1) - x;
        assert!(ulp_error_pair(exp(x), x, ulp) > EXP_PAIR_ULPS);
        assert_eq!(exp_pair(f64::NEG_INFINITY, f64::NAN), 0.0);
        eprintln!(
            "exp_pair: max error {:.3} ulps at x = {}, δ = {}",
            worst.0, worst.1, worst.2
        );
    }

    #[test]
    fn exp_within_one_ulp_of_high_precision_reference() {
        let mut xs = Vec::new();
        // Dense over the whole negative range the kernels use (x = z − m ≤ 0)
        // and the positive range, with an irrational step.
        let n = 6000;
        for i in 0..n {
            xs.push(-746.0 + 746.0 * (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64);
            xs.push(709.0 * (i as f64 + std::f64::consts::FRAC_1_SQRT_2) / n as f64);
        }
        // Near 0, the reduction boundaries (±ln2/2), the subnormal range and
        // the exact-zero cutoff (−745.1332…).
        for i in 0..2000 {
            let t = i as f64 / 2000.0;
            xs.push(-1e-300 * (1.0 + t) * 1e290f64.powf(t));
            xs.push(-std::f64::consts::LN_2 / 2.0 + 1e-3 * (t - 0.5));
            xs.push(-708.5 - 37.0 * t);
            xs.push(-745.2 + 0.1 * t);
        }
        let mut worst = (0.0, 0.0);
        for &x in &xs {
            let e = ulp_error(x);
            if e > worst.0 {
                worst = (e, x);
            }
        }
        assert!(worst.0 <= EXP_ULPS, "exp({}) off by {} ulps", worst.1, worst.0);
        eprintln!(
            "exp: max error {:.3} ulps at x = {} over {} points",
            worst.0,
            worst.1,
            xs.len()
        );
    }
}
