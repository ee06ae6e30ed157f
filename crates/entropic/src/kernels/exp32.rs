//! A branch-free `f32` exponential of a difference `e^{z − m}` that
//! auto-vectorizes (8 `f32` lanes with AVX2 + FMA), for the `f32` softmax
//! cross-entropy kernel.
//!
//! The argument is the pair `(d, δ)` with `d = fl(z − m)` and `δ` its exact
//! rounding error (Knuth's TwoSum), so the result does not inherit the
//! rounding of `z − m` (which is `|z − m|/2` ulps of `e^{z−m}`: 40 ulps at
//! `z − m = −80`, what an `f32` `exp(z − m)` such as PyTorch's carries):
//! `e^{d+δ} = e^d·(1 + δ)` up to `δ²/2 < 2^-48`.
//!
//! `e^d`: Cody–Waite reduction `d = k·ln 2 + r` (two-part `ln 2`, `k·LN2_HI`
//! exact), `|r| ≤ ln2/2`, a degree-7 Taylor polynomial for `e^r` (truncation
//! `r^8/8! < 1.4e-9`, a fortieth of an ulp), and `2^k` applied as two exact
//! power-of-two factors, so that subnormal results round once.
//!
//! # Error bound
//! Measured against a 200-bit `dashu-float` reference
//! (`exp_diff_within_two_ulps_of_high_precision_reference` below, dense
//! sweeps over the whole range of `z − m` and random pairs): within
//! `EXP32_ULPS` = 2 ulps (measured 1.23) of the correctly rounded `f32` value of `e^{z−m}`.

/// `1.5 · 2^23`: adding it rounds an `f32` below `2^22` to an integer.
const SHIFTER: f32 = 12_582_912.0;
/// `ln 2` rounded to 9 significant bits (`355/512`, Cephes' `C1`): `k·LN2_HI`
/// is exact for `|k| < 2^15`.
pub(crate) const LN2_HI: f32 = 355.0 / 512.0;
/// `ln 2 − LN2_HI` rounded to `f32` (Cephes' `C2`).
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, `e^d` is 0 in `f32` (`e^{−104} < 2^-150`): clamped there (a
/// select; NaN passes through), which also turns `−∞` (a masked class) into
/// an exact 0.
const EXP_LO: f32 = -104.0;

/// `1/n!` for `n = 2..=7`.
const INV_FACT: [f32; 6] = [1.0 / 2.0, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0];

/// `e^{z − m}` in `f32` for `z ≤ m` (`m` finite), from `f32` inputs,
/// branch-free. `z = −∞` gives 0; NaN or `+∞` in `z` gives NaN.
#[inline(always)]
pub(crate) fn exp_diff(z: f32, m: f32) -> f32 {
    // TwoSum: d + delta = z − m exactly.
    let d = z - m;
    let zb = d + m;
    let mb = d - zb;
    let delta = (z - zb) + (-m - mb);
    // −∞ − (−∞) in TwoSum gives NaN; the clamped result is 0 anyway.
    let delta = if d < EXP_LO { 0.0 } else { delta };
    exp_pair(d, delta)
}

/// `e^x` in `f32` for `x ≤ 0` (an exact argument: [`exp_diff`] without the
/// TwoSum), branch-free; `−∞` gives 0, NaN gives NaN. Same error bound.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    exp_pair(x, 0.0)
}

/// `e^{d + δ}` for `d ≤ 0` and a correction `|δ| ≤ ulp(d)` (0 below [`EXP_LO`]).
#[inline(always)]
fn exp_pair(d: f32, delta: f32) -> f32 {
    let x = if d < EXP_LO { EXP_LO } else { d };
    let t = x.mul_add(std::f32::consts::LOG2_E, SHIFTER);
    let k = t - SHIFTER;
    let r = (-k).mul_add(LN2_HI, x);
    let r = (-k).mul_add(LN2_LO, r);
    let mut p = INV_FACT[5];
    p = p.mul_add(r, INV_FACT[4]);
    p = p.mul_add(r, INV_FACT[3]);
    p = p.mul_add(r, INV_FACT[2]);
    p = p.mul_add(r, INV_FACT[1]);
    p = p.mul_add(r, INV_FACT[0]);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    // (1 + δ) before the scaling, so a subnormal result rounds once.
    let p = p.mul_add(delta, p);
    // k is an integer in [−151, 0]; read it from the low bits of t.
    let ki = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32);
    let k1 = ki >> 1;
    let k2 = ki - k1;
    let s1 = f32::from_bits(((k1 + 127) as u32) << 23);
    // Clamped (the result rounds to 0): an exact 0 rather than an
    // underflowing multiply, which is microcoded (see `exp::EXP_ZERO`).
    let s2 = if x == EXP_LO {
        0.0
    } else {
        f32::from_bits(((k2 + 127) as u32) << 23)
    };
    p * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented error bound of [`exp_diff`] in `f32` ulps of the result.
    ///
    /// Reason: a priori the reduction (≤ ½ ulp of `r`, i.e. ≤ ¼ ulp of the
    /// result), the polynomial's rounding (≤ ½ ulp) and truncation (< 1/40),
    /// the product with `1 + δ` and the final rounding (½ ulp each) stay below 2.
    const EXP32_ULPS: f64 = 2.0;

    /// `|exp_diff(z, m) − e^{z−m}|` in `f32` ulps of the correctly rounded
    /// result (subnormal spacing below `2^-126`), with `e^{z−m}` from
    /// dashu-float at 200 bits.
    fn ulp_error(z: f32, m: f32) -> f64 {
        use dashu_float::FBig;
        use dashu_float::round::mode::HalfEven;
        type F = FBig<HalfEven, 2>;
        let got = exp_diff(z, m);
        let big = |v: f64| F::try_from(v).unwrap().with_precision(200).value();
        let reference = (big(f64::from(z)) - big(f64::from(m))).exp();
        let r32 = reference.to_f64().value() as f32;
        let ulp = if r32 < f32::MIN_POSITIVE {
            f64::from(f32::from_bits(1))
        } else {
            f64::from(f32::from_bits(r32.to_bits() + 1) - r32)
        };
        let diff = (big(f64::from(got)) - reference).to_f64().value();
        diff.abs() / ulp
    }

    #[test]
    fn special_values() {
        assert_eq!(exp_diff(3.0, 3.0), 1.0);
        assert_eq!(exp_diff(f32::NEG_INFINITY, 0.0), 0.0);
        assert_eq!(exp_diff(f32::NEG_INFINITY, f32::MAX), 0.0);
        assert_eq!(exp_diff(-f32::MAX, f32::MAX), 0.0);
        assert_eq!(exp_diff(-110.0, 0.0), 0.0);
        assert!(exp_diff(-103.0, 0.0) > 0.0);
        assert!(exp_diff(f32::NAN, 0.0).is_nan());
        assert!(exp_diff(f32::INFINITY, f32::INFINITY).is_nan());
    }

    /// `exp_nonpositive(x)` is `exp_diff(x, 0)` bit for bit (the TwoSum of
    /// an exact difference has δ = 0), so the sweep below covers it.
    #[test]
    fn exp_nonpositive_is_exp_diff_at_zero() {
        for i in 0..=110_000 {
            let x = -(i as f32) * 1e-3;
            assert_eq!(exp_nonpositive(x).to_bits(), exp_diff(x, 0.0).to_bits(), "{x}");
        }
        for x in [f32::NEG_INFINITY, -f32::MAX, -0.0, -f32::MIN_POSITIVE, -1e-30] {
            assert_eq!(exp_nonpositive(x).to_bits(), exp_diff(x, 0.0).to_bits(), "{x}");
        }
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    #[test]
    fn exp_diff_within_two_ulps_of_high_precision_reference() {
        let mut pairs = Vec::new();
        // Dense over z − m ∈ [−104, 0] with m = 0 (exact differences) and
        // with m = 37.3 (rounded differences, the TwoSum correction).
        let n = 20_000;
        for i in 0..n {
            let x = -104.0 * (i as f64 + std::f64::consts::FRAC_1_PI) / n as f64;
            pairs.push((x as f32, 0.0));
            pairs.push(((37.3 + x) as f32, 37.3_f32));
            pairs.push(((-1e4 + x) as f32, -1e4_f32));
        }
        // Reduction boundaries, the subnormal range, the zero cutoff.
        for i in 0..4000 {
            let t = i as f64 / 4000.0;
            pairs.push(((-std::f64::consts::LN_2 / 2.0 + 1e-3 * (t - 0.5)) as f32, 0.0));
            pairs.push(((-87.0 - 17.0 * t) as f32, 0.0));
            pairs.push(((1234.5 - 100.0 * t) as f32, 1234.5));
        }
        // Seeded random pairs over mixed magnitudes.
        let mut next = crate::kernels::uniform_stream(0x2026);
        for _ in 0..20_000 {
            let m = ((next() - 0.5) * 2e3) as f32;
            let z = (f64::from(m) - 110.0 * next()) as f32;
            pairs.push((z.min(m), m));
        }
        let mut worst = (0.0, 0.0, 0.0);
        for &(z, m) in &pairs {
            let e = ulp_error(z, m);
            if e > worst.0 {
                worst = (e, z, m);
            }
        }
        assert!(
            worst.0 <= EXP32_ULPS,
            "exp_diff({}, {}) off by {} ulps",
            worst.1,
            worst.2,
            worst.0
        );
        eprintln!(
            "exp_diff: max error {:.3} ulps at z = {}, m = {} over {} points",
            worst.0,
            worst.1,
            worst.2,
            pairs.len()
        );
    }
}
