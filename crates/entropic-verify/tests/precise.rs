//! Tests of the high-precision reference arithmetic (`entropic_verify::precise`).
//!
//! Expected values come from routes independent of the code under test:
//! literal bit patterns of correctly rounded constants, exact dyadic
//! arithmetic (rounding boundaries built by hand), closed-form derivatives,
//! dashu-float's own `to_f64`/`to_f32`, and evaluations at 1024 bits through
//! a different formula.

use entropic::{Batch, Real, Reduction, SoftmaxCrossEntropy, Targets};
use entropic_verify::precise::{
    CorrectlyRounded, MIN_PRECISION, Precise, PreciseDual, Precisions, ReferenceError, correctly_rounded,
    correctly_rounded_at, correctly_rounded_vec, gradient, lift, precision, with_precision,
};

/// Exact `2^e` for `−1074 ≤ e ≤ 1023`.
fn p2(e: i32) -> f64 {
    2f64.powi(e)
}

fn p(x: f64) -> Precise {
    Precise::from_f64(x)
}

/// Number of f64 values strictly between `a` and `b`, plus one (0 when equal).
fn ulps64(a: f64, b: f64) -> u64 {
    fn ord(x: f64) -> i128 {
        let b = x.to_bits() as i64;
        i128::from(if b < 0 { i64::MIN - b } else { b })
    }
    (ord(a) - ord(b)).unsigned_abs() as u64
}

/// Distance from `x` to the next f64 away from zero.
fn ulp_of(x: f64) -> f64 {
    x.abs().next_up() - x.abs()
}

fn ulps32(a: f32, b: f32) -> u64 {
    fn ord(x: f32) -> i64 {
        let b = x.to_bits() as i32;
        i64::from(if b < 0 { i32::MIN - b } else { b })
    }
    (ord(a) - ord(b)).unsigned_abs()
}

/// Deterministic inputs (SplitMix64).
struct SplitMix(u64);
impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }
}

fn certified(f: impl Fn() -> Precise) -> CorrectlyRounded {
    correctly_rounded(|| Ok::<_, ()>(f())).expect("certified")
}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

#[test]
fn ln2_and_e_round_to_their_known_bits() {
    // Correctly rounded ln 2 = 0.693147180559945309417232121458176568…
    // and e = 2.718281828459045235360287471352662497… (literal bit patterns,
    // the same as std's LN_2 and E, which are correctly rounded).
    let ln2 = certified(|| p(2.0).ln());
    assert_eq!(ln2.f64.to_bits(), 0x3FE6_2E42_FEFA_39EF);
    assert_eq!(ln2.f32.to_bits(), 0x3F31_7218);
    let e = certified(|| p(1.0).exp());
    assert_eq!(e.f64.to_bits(), 0x4005_BF0A_8B14_5769);
    assert_eq!(e.f32.to_bits(), 0x402D_F854);
    // e through another route: ln(e) computed at 1024 bits from the 512-bit e
    // must give 1 to far better than an ulp.
    let back = with_precision(1024, || p(1.0).exp().ln() - p(1.0));
    assert!(back.re().abs() < p2(-1000), "{back:?}");
}

#[test]
fn expm1_and_ln1p_of_tiny_arguments() {
    // For x = fl(1e-20): e^x − 1 = x + x²/2 + …, and x²/2 ≈ 5e-41 is ~5e-21
    // relative, far below the half-ulp (≥ 2^-54 relative) distance from the
    // f64 x to a rounding boundary: the correctly rounded value is x itself.
    // Likewise ln(1 + y) = y − y²/2 + … for y = fl(1e-30).
    let x = 1e-20_f64;
    let r = certified(|| p(x).exp_m1());
    assert_eq!(r.f64.to_bits(), x.to_bits());
    assert_eq!(r.f32, x as f32);
    let y = 1e-30_f64;
    let r = certified(|| p(y).ln_1p());
    assert_eq!(r.f64.to_bits(), y.to_bits());
    assert_eq!(r.f32, y as f32);
    // The naive route at 256 bits is already much worse than exp_m1 at 1e-100
    // (it cancels 332 bits), which exp_m1 must not be.
    let t = 1e-100_f64;
    let r = certified(|| p(t).exp_m1());
    assert_eq!(r.f64, t);
}

#[test]
fn expm1_and_ln1p_agree_with_a_1024_bit_composed_route() {
    // x where the second-order term matters for the rounding: compare the
    // certified exp_m1 / ln_1p with exp(x) − 1 and ln(1 + x) at 1024 bits
    // (these lose ≤ 40 bits to cancellation for |x| ≥ 1e-12: ≥ 980 bits left).
    for &x in &[1e-12, 3.5e-7, 1e-3, 0.1, -0.3, 2.5, -20.0] {
        let got = certified(|| p(x).exp_m1());
        let want = with_precision(1024, || p(x).exp() - p(1.0));
        assert_eq!(got.f64, want.to_f64_nearest(), "exp_m1({x})");
        assert_eq!(got.f32, want.to_f32_nearest(), "exp_m1({x})");
        // libm's exp_m1 is faithful (≤ 1 ulp), not always correctly rounded
        assert!(ulps64(got.f64, x.exp_m1()) <= 1, "libm exp_m1({x})");
        if x > -1.0 {
            let got = certified(|| p(x).ln_1p());
            let want = with_precision(1024, || (p(1.0) + p(x)).ln());
            assert_eq!(got.f64, want.to_f64_nearest(), "ln_1p({x})");
            assert!(ulps64(got.f64, x.ln_1p()) <= 1, "libm ln_1p({x})");
        }
    }
}

#[test]
fn powf_and_sqrt_are_correctly_rounded() {
    let r = certified(|| p(2.0).powf(0.5));
    assert_eq!(r.f64, std::f64::consts::SQRT_2);
    assert_eq!(r.f32, std::f32::consts::SQRT_2);
    assert_eq!(certified(|| p(2.0).sqrt()).f64, std::f64::consts::SQRT_2);
    assert_eq!(certified(|| p(3.0).powf(40.0)).f64, 3f64.powi(40)); // 3^40 < 2^64: exact in 64 bits, one rounding
    assert_eq!(certified(|| p(-2.0).powf(3.0)).f64, -8.0);
    assert!(p(-2.0).powf(0.5).is_nan());
    assert_eq!(certified(|| p(0.0).powf(-1.5)).f64, f64::INFINITY);
    assert_eq!(p(-0.0).powf(-3.0).re(), f64::NEG_INFINITY);
    assert_eq!(p(-0.0).powf(3.0).re().to_bits(), (-0.0f64).to_bits());
    assert_eq!(p(-0.0).powf(2.0).re().to_bits(), 0.0f64.to_bits());
    assert_eq!(p(f64::NEG_INFINITY).powf(3.0).re(), f64::NEG_INFINITY);
    assert_eq!(p(f64::NEG_INFINITY).powf(-2.0).re().to_bits(), 0.0f64.to_bits());
    assert_eq!(certified(|| p(f64::INFINITY).powf(-2.0)).f64, 0.0);
    assert_eq!(certified(|| p(0.5).powf(f64::INFINITY)).f64, 0.0);
    assert_eq!(certified(|| p(f64::NAN).powf(0.0)).f64, 1.0);
}

// ---------------------------------------------------------------------------
// Rounding to f64 and f32
// ---------------------------------------------------------------------------

#[test]
fn f32_rounds_once_not_through_f64() {
    // v = 1 + 2^-24 + 2^-60. f32 spacing at 1 is 2^-23, so v is just above
    // the midpoint 1 + 2^-24: the nearest f32 is 1 + 2^-23. Through f64, v
    // first rounds to 1 + 2^-24 (2^-60 is below half an f64 ulp), an exact
    // f32 tie that goes to the even 1.0: double rounding.
    let v = p(1.0) + p(p2(-24)) + p(p2(-60));
    assert_eq!(v.to_f32_nearest(), 1.0 + f32::EPSILON);
    assert_eq!(v.to_f64_nearest(), 1.0 + p2(-24));
    assert_eq!(v.to_f64_nearest() as f32, 1.0, "the case really double-rounds via f64");
    // and just below the midpoint: 1 + 2^-24 − 2^-60 → 1.0 (f64 gives 1 + 2^-24 again)
    let w = p(1.0) + p(p2(-24)) - p(p2(-60));
    assert_eq!(w.to_f32_nearest(), 1.0);
}

#[test]
fn ties_go_to_even() {
    // exact midpoints
    assert_eq!((p(1.0) + p(p2(-24))).to_f32_nearest(), 1.0);
    assert_eq!((p(1.0) + p(3.0 * p2(-24))).to_f32_nearest(), 1.0 + p2(-22) as f32);
    assert_eq!((p(1.0) + p(p2(-53))).to_f64_nearest(), 1.0);
    assert_eq!((p(1.0) + p(3.0 * p2(-53))).to_f64_nearest(), 1.0 + p2(-51));
    assert_eq!((p(-1.0) - p(3.0 * p2(-53))).to_f64_nearest(), -1.0 - p2(-51));
    // a hair off the midpoint decides (2^-200: representable on top of 1 at 256 bits)
    let eps = p(p2(-200));
    assert_eq!((p(1.0) + p(p2(-53)) + eps.clone()).to_f64_nearest(), 1.0 + p2(-52));
    assert_eq!((p(1.0) + p(3.0 * p2(-53)) - eps).to_f64_nearest(), 1.0 + p2(-52));
}

#[test]
fn subnormals_and_overflow() {
    let tiny = p(p2(-600)) * p(p2(-600)); // 2^-1200, below every subnormal
    // just above / below 1 by 2^-100: representable at the 256-bit working precision
    let above = p(1.0) + p(p2(-100));
    let below = p(1.0) - p(p2(-100));
    // f64: smallest subnormal 2^-1074; half of it is a tie going to +0 (even)
    let half_min = p(p2(-1074)) * p(0.5);
    assert_eq!(half_min.to_f64_nearest().to_bits(), 0.0f64.to_bits());
    assert_eq!((half_min.clone() + tiny.clone()).to_f64_nearest(), p2(-1074));
    assert_eq!((-(half_min.clone() + tiny.clone())).to_f64_nearest(), -p2(-1074));
    assert_eq!((-half_min.clone()).to_f64_nearest().to_bits(), (-0.0f64).to_bits());
    // 3·2^-1075: tie between 2^-1074 (odd) and 2^-1073 (even)
    assert_eq!((half_min * p(3.0)).to_f64_nearest(), p2(-1073));
    assert_eq!(tiny.to_f64_nearest(), 0.0);
    // a subnormal with a long significand
    let s = p(p2(-1050)) * (p(1.0) + p(p2(-30)) + p(p2(-100)));
    assert_eq!(s.to_f64_nearest(), p2(-1050)); // 2^-30 relative is below the 2^-24 spacing there
    // f32: smallest subnormal 2^-149
    let half_min32 = p(p2(-150));
    assert_eq!(half_min32.to_f32_nearest(), 0.0);
    assert_eq!((half_min32.clone() * above.clone()).to_f32_nearest(), f32::from_bits(1));
    // between half the smallest subnormal and the smallest: rounds up to it
    // (dashu-float 0.6.2's own to_f32 returns 0 here: it rounds to 1 bit first)
    assert_eq!((half_min32.clone() * p(1.39)).to_f32_nearest(), f32::from_bits(1));
    assert_eq!((p(p2(-1074)) * p(0.695)).to_f64_nearest(), p2(-1074)); // 1.39·2^-1075
    assert_eq!((half_min32 * p(3.0)).to_f32_nearest(), f32::from_bits(2));
    // f64 overflow threshold MAX + 2^970 (a tie; ∞ is "even")
    let threshold = p(f64::MAX) + p(p2(970));
    assert_eq!(threshold.to_f64_nearest(), f64::INFINITY);
    assert_eq!((threshold.clone() * below.clone()).to_f64_nearest(), f64::MAX);
    assert_eq!((-threshold).to_f64_nearest(), f64::NEG_INFINITY);
    // f32 overflow threshold f32::MAX + 2^103
    let threshold32 = p(f64::from(f32::MAX)) + p(p2(103));
    assert_eq!(threshold32.to_f32_nearest(), f32::INFINITY);
    assert_eq!((threshold32.clone() * below).to_f32_nearest(), f32::MAX);
    assert_eq!((threshold32 * above).to_f32_nearest(), f32::INFINITY);
    assert_eq!(p(1e300).to_f32_nearest(), f32::INFINITY);
}

#[test]
fn rounding_agrees_with_dashu_conversion() {
    // An independent implementation of the same rounding: dashu-float's own
    // to_f64/to_f32 (round-to-odd then one rounding), over values with long
    // significands in the normal, subnormal and huge ranges. Excluded: values
    // below the smallest subnormal, where dashu 0.6.2 rounds to 1 bit before
    // rounding to the subnormal grid (a double rounding: 1.39·2^-150 → 0
    // instead of 2^-149; see `subnormals_and_overflow`).
    let mut rng = SplitMix(7);
    let mut count = (0, 0);
    for k in 2..60 {
        for &scale in &[1.0, p2(-1030), p2(-1070), p2(-140), p2(-146), p2(900), 1e-300] {
            let x = rng.range(-1.0, 1.0);
            let v = (p(f64::from(k)).ln() * p(x)).exp() * p(scale) - p(scale * 0.25);
            let b = v.as_fbig().expect("finite");
            if v.abs() >= p(p2(-1074)) {
                assert_eq!(v.to_f64_nearest(), b.to_f64().value(), "{v:?}");
                count.0 += 1;
            }
            if v.abs() >= p(p2(-149)) {
                assert_eq!(v.to_f32_nearest(), b.to_f32().value(), "{v:?}");
                count.1 += 1;
            }
        }
    }
    // all 7 scales are in f64 range, 4 of them (1, 2^-140, 2^-146, 2^900) in
    // f32 range; a few values cancel to below the scale
    assert!(count.0 >= 58 * 6 && count.1 >= 58 * 3, "{count:?}");
}

// ---------------------------------------------------------------------------
// The two-precision certificate
// ---------------------------------------------------------------------------

#[test]
fn certificate_rejects_a_value_near_a_rounding_boundary() {
    // exact value 1 + 2^-53 + 2^-400: just above the f64 midpoint between 1
    // and 1 + 2^-52. At 256 bits the 2^-400 is lost and the tie goes to 1;
    // at 512 bits it rounds up: the certificate must refuse.
    let f = || Ok::<_, ()>(p(1.0) + p(p2(-53)) + p(p2(-400)));
    match correctly_rounded(f) {
        Err(ReferenceError::Uncertain {
            format: "f64",
            index: 0,
            low,
            high,
        }) => {
            assert_eq!((low, high), (1.0, 1.0 + p2(-52)));
        }
        other => panic!("{other:?}"),
    }
    // with enough precision at both levels it is certain
    let r = correctly_rounded_at(Precisions { low: 512, high: 1024 }, f).unwrap();
    assert_eq!(r.f64, 1.0 + p2(-52));
    // the same at the f32 boundary 1 + 2^-24
    let g = || Ok::<_, ()>(p(1.0) + p(p2(-24)) + p(p2(-300)));
    assert!(matches!(
        correctly_rounded(g),
        Err(ReferenceError::Uncertain { format: "f32", .. })
    ));
}

#[test]
fn certificate_rejects_an_ill_conditioned_evaluation() {
    // ((1 + 2^-260) − 1)·2^200 + 1: 1 at 256 bits, 1 + 2^-60 at 512 bits.
    // Both round to 1.0, but they differ by 2^-60 > 2^-128 relative.
    let f = || Ok::<_, ()>((p(1.0) + p(p2(-260)) - p(1.0)) * p(p2(200)) + p(1.0));
    match correctly_rounded(f) {
        Err(ReferenceError::IllConditioned {
            index: 0,
            relative_difference,
        }) => {
            assert_eq!(relative_difference, p2(-60));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn certificate_passes_through_errors_and_checks_lengths() {
    let r = correctly_rounded(|| entropic::logsumexp::<Precise>(&[]));
    assert!(
        matches!(r, Err(ReferenceError::Eval(entropic::Error::Empty { .. }))),
        "{r:?}"
    );
    let r = correctly_rounded_vec(|| Ok::<_, ()>(vec![p(1.0); precision() / 256]));
    assert_eq!(r, Err(ReferenceError::LengthMismatch { low: 1, high: 2 }));
    let msg = ReferenceError::<String>::Uncertain {
        format: "f64",
        index: 3,
        low: 1.0,
        high: 2.0,
    }
    .to_string();
    assert!(msg.contains("not certain") && msg.contains("entry 3"), "{msg}");
}

#[test]
fn precision_is_scoped_and_sets_epsilon() {
    let before = precision();
    with_precision(300, || {
        assert_eq!(precision(), 300);
        assert_eq!(<Precise as Real>::epsilon(), p2(-299));
        with_precision(100, || assert_eq!(<PreciseDual as Real>::epsilon(), p2(-99)));
        assert_eq!(precision(), 300);
    });
    assert_eq!(precision(), before);
    // operations round at the current precision: 1/3 at 64 vs 128 bits differ
    let third = |bits| with_precision(bits, || p(1.0) / p(3.0));
    let d = with_precision(256, || third(64) - third(128)).re().abs();
    assert!(d > p2(-70) && d < p2(-64), "{d:e}");
    assert!(std::panic::catch_unwind(|| with_precision(MIN_PRECISION - 1, || ())).is_err());
    assert_eq!(precision(), before);
}

// ---------------------------------------------------------------------------
// Special values
// ---------------------------------------------------------------------------

#[test]
fn infinities_and_nan_behave_like_ieee() {
    let inf = Precise::infinity();
    let ninf = Precise::neg_infinity();
    assert_eq!(p(0.0).ln().re(), f64::NEG_INFINITY);
    assert_eq!(p(-0.0).ln().re(), f64::NEG_INFINITY);
    assert_eq!(ninf.exp().re(), 0.0);
    assert_eq!(inf.exp().re(), f64::INFINITY);
    assert_eq!(ninf.exp_m1().re(), -1.0);
    assert_eq!(p(-1.0).ln_1p().re(), f64::NEG_INFINITY);
    assert_eq!((inf.clone() + p(1.0)).re(), f64::INFINITY);
    assert_eq!((p(1.0) - inf.clone()).re(), f64::NEG_INFINITY);
    assert_eq!((ninf.clone() * p(-2.0)).re(), f64::INFINITY);
    assert_eq!((p(1.0) / p(0.0)).re(), f64::INFINITY);
    assert_eq!((p(1.0) / p(-0.0)).re(), f64::NEG_INFINITY);
    assert_eq!((p(-1.0) / inf.clone()).re().to_bits(), (-0.0f64).to_bits());
    for nan in [
        inf.clone() - inf.clone(),
        inf.clone() + ninf.clone(),
        p(0.0) * inf.clone(),
        p(0.0) / p(0.0),
        inf.clone() / ninf.clone(),
        p(-1.0).ln(),
        p(-2.0).ln_1p(),
        p(-1.0).sqrt(),
        ninf.ln(),
        Precise::nan() + p(1.0),
    ] {
        assert!(nan.is_nan() && nan.re().is_nan(), "{nan:?}");
    }
    assert!(ninf < p(-1e308) && p(1e308) < inf && ninf < inf);
    assert!(Precise::nan().partial_cmp(&p(0.0)).is_none());
    assert_eq!(p(0.0), p(-0.0));
    assert_eq!(p(-0.0).abs().re().to_bits(), 0.0f64.to_bits());
    // abs and comparisons use the exact value, not its f64 rounding
    let minus_tiny = -(p(p2(-600)) * p(p2(-600)));
    assert_eq!(minus_tiny.re(), 0.0);
    assert!(minus_tiny < p(0.0));
    assert!(minus_tiny.abs() > p(0.0));
}

#[test]
fn masked_logits() {
    let z = [0.0, f64::NEG_INFINITY, 0.0];
    assert_eq!(
        certified(|| entropic::logsumexp(&lift(&z)).unwrap()).f64,
        std::f64::consts::LN_2
    );
    let a = correctly_rounded_vec(|| entropic::softmax(&lift(&z))).unwrap();
    assert_eq!(a.iter().map(|r| r.f64).collect::<Vec<_>>(), vec![0.5, 0.0, 0.5]);
    let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum);
    let loss = correctly_rounded(|| {
        ce.definition::<Precise, f64>(Batch::single_row(&lift(&z)), Targets::Classes(&[0]))
            .map(|o| o.reduced.unwrap())
    })
    .unwrap();
    assert_eq!(loss.f64, std::f64::consts::LN_2);
    // the gradient w.r.t. the masked logit is 0, not NaN (strong zero in PreciseDual)
    let g = correctly_rounded_vec(|| {
        gradient(&z, |d| {
            ce.definition::<PreciseDual, f64>(Batch::single_row(d), Targets::Classes(&[0]))
                .map(|o| o.reduced.unwrap())
        })
    })
    .unwrap();
    assert_eq!(g.iter().map(|r| r.f64).collect::<Vec<_>>(), vec![-0.5, 0.0, 0.5]);
    let (out, kernel_grad) = ce
        .loss_and_grad(Batch::single_row(&z), Targets::<f64>::Classes(&[0]))
        .unwrap();
    assert_eq!(out.reduced.unwrap(), loss.f64);
    assert_eq!(kernel_grad, vec![-0.5, 0.0, 0.5]);
    // an all-masked row is rejected as in f64
    let r = correctly_rounded(|| entropic::logsumexp(&lift(&[f64::NEG_INFINITY; 2])));
    assert!(
        matches!(r, Err(ReferenceError::Eval(entropic::Error::NoFiniteLogit { .. }))),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------
// Production definitions at high precision vs the f64/f32 kernels
// ---------------------------------------------------------------------------

/// The f64 kernels are allowed `2·c` ulps on a row of `c` classes: the row
/// sum has `c` exponentials and `c − 1` additions, each within 1 ulp (libm
/// `exp`) or 0.5 ulp, and for the logits used here (in `[−3, 3]`, results of
/// modest size, no cancellation in `m + ln Σ`) the final `ln`/addition adds
/// at most ~1 ulp more. The same
/// allowance the production crate's own tests grant (tests/cross_entropy_family.rs).
const KERNEL_ULPS_PER_CLASS: u64 = 2;
/// The f32 kernels round the f64 result once: the correctly rounded f32 or
/// its neighbour (when the f64 error crosses an f32 midpoint).
const F32_KERNEL_ULPS: u64 = 1;

#[test]
fn logsumexp_and_softmax_kernels_agree_with_the_reference() {
    let mut rng = SplitMix(2026);
    let mut worst = 0;
    for c in 2..=6 {
        for _ in 0..4 {
            let z: Vec<f64> = (0..c).map(|_| rng.range(1.0, 3.0)).collect();
            let allowance = KERNEL_ULPS_PER_CLASS * c as u64;
            let lse = correctly_rounded(|| entropic::logsumexp(&lift(&z))).unwrap();
            let k = entropic::logsumexp(&z).unwrap();
            worst = worst.max(ulps64(k, lse.f64));
            assert!(ulps64(k, lse.f64) <= allowance, "lse {z:?}: {k} vs {}", lse.f64);
            let a = correctly_rounded_vec(|| entropic::softmax(&lift(&z))).unwrap();
            let ka = entropic::softmax(&z).unwrap();
            for (r, k) in a.iter().zip(&ka) {
                worst = worst.max(ulps64(*k, r.f64));
                assert!(ulps64(*k, r.f64) <= allowance, "softmax {z:?}: {k} vs {}", r.f64);
            }
            // log-softmax entries are negative and of modest size here
            let l = correctly_rounded_vec(|| entropic::log_softmax(&lift(&z))).unwrap();
            let kl = entropic::log_softmax(&z).unwrap();
            for (r, k) in l.iter().zip(&kl) {
                assert!(ulps64(*k, r.f64) <= allowance, "log_softmax {z:?}: {k} vs {}", r.f64);
            }
        }
    }
    // the largest allowance used (c = 6)
    assert!(worst <= KERNEL_ULPS_PER_CLASS * 6, "{worst}");
}

#[test]
fn cross_entropy_of_equal_huge_logits_is_ln2() {
    let z = [1e8, 1e8];
    let ce = SoftmaxCrossEntropy::new();
    let r = correctly_rounded(|| {
        ce.definition::<Precise, f64>(Batch::single_row(&lift(&z)), Targets::Classes(&[1]))
            .map(|o| o.reduced.unwrap())
    })
    .unwrap();
    assert_eq!(r.f64, std::f64::consts::LN_2);
    assert_eq!(r.f32, std::f32::consts::LN_2);
    let k = ce.loss(Batch::single_row(&z), Targets::<f64>::Classes(&[1])).unwrap();
    assert_eq!(k.reduced.unwrap(), r.f64);
    let z32 = [1e8_f32, 1e8];
    let k32 = ce.loss(Batch::single_row(&z32), Targets::<f64>::Classes(&[1])).unwrap();
    assert_eq!(k32.reduced.unwrap(), r.f32);
}

#[test]
fn cross_entropy_kernels_agree_with_the_reference() {
    let mut rng = SplitMix(11);
    let (n, c) = (3, 5);
    let allowance = KERNEL_ULPS_PER_CLASS * c as u64;
    for smoothing in [0.0, 0.1] {
        let ce = SoftmaxCrossEntropy::new()
            .with_label_smoothing(smoothing)
            .unwrap()
            .with_reduction(Reduction::None);
        let z: Vec<f64> = (0..n * c).map(|_| rng.range(-3.0, 3.0)).collect();
        let y = [0, 4, 2];
        let r = correctly_rounded_vec(|| {
            ce.definition::<Precise, f64>(Batch::new(&lift(&z), n, c).unwrap(), Targets::Classes(&y))
                .map(|o| o.unreduced)
        })
        .unwrap();
        let k = ce
            .loss(Batch::new(&z, n, c).unwrap(), Targets::<f64>::Classes(&y))
            .unwrap();
        let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        for (i, (r, k)) in r.iter().zip(&k.unreduced).enumerate() {
            assert!(ulps64(*k, r.f64) <= allowance, "row {i}: {k} vs {}", r.f64);
        }
        // f32: only meaningful where the f32 inputs equal the f64 ones, so
        // re-derive the reference from the f32 inputs
        let r32 = correctly_rounded_vec(|| {
            let zz: Vec<f64> = z32.iter().map(|&v| f64::from(v)).collect();
            ce.definition::<Precise, f64>(Batch::new(&lift(&zz), n, c).unwrap(), Targets::Classes(&y))
                .map(|o| o.unreduced)
        })
        .unwrap();
        let k32 = ce
            .loss(Batch::new(&z32, n, c).unwrap(), Targets::<f64>::Classes(&y))
            .unwrap();
        for (r, k) in r32.iter().zip(&k32.unreduced) {
            assert!(ulps32(*k, r.f32) <= F32_KERNEL_ULPS, "{k} vs {}", r.f32);
        }
    }
}

// ---------------------------------------------------------------------------
// Gradients with PreciseDual
// ---------------------------------------------------------------------------

#[test]
fn dual_derivative_rules_at_exact_points() {
    fn d(f: impl Fn(PreciseDual) -> PreciseDual, x: f64) -> f64 {
        f(PreciseDual::variable(x)).eps.re()
    }
    assert_eq!(d(|x| x.exp(), 0.0), 1.0);
    assert_eq!(d(|x| x.exp_m1(), 0.0), 1.0);
    assert_eq!(d(|x| x.ln(), 2.0), 0.5);
    assert_eq!(d(|x| x.ln_1p(), 1.0), 0.5);
    assert_eq!(d(|x| x.sqrt(), 4.0), 0.25);
    assert_eq!(d(|x| x.powf(2.5), 4.0), 20.0); // 2.5·4^1.5
    assert_eq!(d(|x| x.powf(3.0), -2.0), 12.0);
    assert_eq!(d(|x| x.powf(0.0), 5.0), 0.0);
    assert_eq!(d(|x| PreciseDual::from_f64(1.0) / x, 2.0), -0.25);
    assert_eq!(d(|x| x.clone() * x, 3.0), 6.0);
    assert_eq!(d(|x| x.abs(), -3.0), -1.0);
    assert_eq!(d(|x| x.scale_f64(3.0), 7.0), 3.0);
    assert_eq!(d(|x| -x, 7.0), -1.0);
    assert_eq!(d(|x| vec![x.clone(), x.clone(), x].into_iter().sum(), 1.0), 3.0);
    // d/dx e^x ln x at x = 1 is e·0 + e/1 = e (correctly rounded)
    let g = certified(|| {
        let x = PreciseDual::variable(1.0);
        (x.exp() * x.ln()).eps
    });
    assert_eq!(g.f64, std::f64::consts::E);
}

#[test]
fn cross_entropy_gradient_is_softmax_minus_onehot() {
    let mut rng = SplitMix(5);
    let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum);
    for c in [2, 3, 7] {
        let z: Vec<f64> = (0..c).map(|_| rng.range(-3.0, 3.0)).collect();
        let y = c - 1;
        // forward-mode over the production definition
        let g = correctly_rounded_vec(|| {
            gradient(&z, |d| {
                ce.definition::<PreciseDual, f64>(Batch::single_row(d), Targets::Classes(&[y]))
                    .map(|o| o.reduced.unwrap())
            })
        })
        .unwrap();
        // the analytic formula at high precision
        let formula = correctly_rounded_vec(|| {
            let mut a = entropic::softmax(&lift(&z))?;
            a[y] -= p(1.0);
            Ok::<_, entropic::Error>(a)
        })
        .unwrap();
        // both are the correctly rounded exact gradient: identical in f64 and f32
        assert_eq!(g, formula, "c={c}");
        // the f64 kernel's analytic gradient: 2c ulps of the entry (as for
        // softmax), and for the target class a_y − 1 the absolute error of
        // a_y < 1, i.e. 2c ulps of 1.
        let (_, kg) = ce
            .loss_and_grad(Batch::single_row(&z), Targets::<f64>::Classes(&[y]))
            .unwrap();
        for (i, (r, k)) in g.iter().zip(&kg).enumerate() {
            let unit = if i == y { ulp_of(1.0) } else { ulp_of(r.f64) };
            let allowed = (KERNEL_ULPS_PER_CLASS * c as u64) as f64 * unit;
            assert!((k - r.f64).abs() <= allowed, "c={c} i={i}: {k} vs {}", r.f64);
        }
    }
}

/// The tempered normalizer in high precision is solved to the working
/// precision, not left at its `f64` start (fourth session: the implicit lift
/// removed each Newton step's real part for every type, so the reference's
/// λ was the `f64` root and its bi-tempered values were 1–2 ulp off; a
/// change of the `f64` solver's summation order moved 14 of the 18
/// bi-tempered conformance vectors). At 256 bits, `Σ p − 1` must be far
/// below `f64`'s ε; with the old lift it was about 1e-17.
#[test]
fn tempered_normalizer_is_solved_to_the_working_precision() {
    for t in [0.5, 0.8, 1.2, 1.5, 4.0] {
        let z = lift(&[-0.5, 0.1, 2.0, -3.7, 0.8]);
        let residual = with_precision(256, || {
            let n = entropic::TemperedSoftmax::new(t).unwrap().normalize(&z).unwrap();
            let sum = n.probabilities.into_iter().fold(Precise::from_f64(0.0), |a, b| a + b);
            (sum - Precise::from_f64(1.0)).abs().re()
        });
        // 2^-200: the 256-bit working precision with room for the c = 5
        // roundings of the sum and the exp_t evaluations.
        assert!(residual <= 2f64.powi(-200), "t = {t}: |Σp − 1| = {residual:e}");
    }
}

/// Confident rows, where one probability is within `1e-8` of 1: the loss
/// then depends on `λ` far below `ε` (the labelled class's term is about
/// `(ln p_top)²/2`, with `ln p_top ≈ −λ'`), so the normalizer must resolve
/// the residual `Σp − 1` below the rounding of `p_top ≈ 1`
/// (`kernels::tempered::top_residual`). Both the `f64` definition and the
/// kernel stay within `CONFIDENT_ULPS` of the certified value. With the
/// residual formed as the rounded `Σp` minus 1 (swapped back in to check
/// that this test fails) the definition was 487 ulps off on the row
/// `(1e4, −1e4, 0)` at `t = (0.5, 1.5)`.
#[test]
fn confident_bi_tempered_rows_keep_their_relative_accuracy() {
    // Reason: the class terms' own ≤ 2–3 ulp roundings, each weighed by its
    // share of the loss, and ≤ 2 ulps of ln p (ln_1p) times the conditioning
    // of p^{2−t1} in ln p; 16 ulps leaves a margin, and is 20 times below
    // what the rounded residual gave.
    const CONFIDENT_ULPS: u64 = 16;
    for (row, t1, t2) in [
        ([1e4, -1e4, 0.0], 0.5, 1.5),
        ([30.0, 0.0, -1.0], 0.8, 1.2),
        ([3.0, 0.0, -1.0], 0.5, 0.8),
        ([2e3, 0.0, 5.0], 0.2, 4.0),
    ] {
        let loss = entropic::BiTemperedLogisticLoss::new(t1, t2)
            .unwrap()
            .with_reduction(Reduction::Sum);
        let exact = certified(|| {
            loss.definition::<Precise, f64>(Batch::new(&lift(&row), 1, 3).unwrap(), Targets::Classes(&[0]))
                .unwrap()
                .reduced
                .unwrap()
        });
        let definition = loss
            .definition::<f64, f64>(Batch::new(&row, 1, 3).unwrap(), Targets::Classes(&[0]))
            .unwrap()
            .reduced
            .unwrap();
        let kernel = loss
            .loss(Batch::new(&row, 1, 3).unwrap(), Targets::<f64>::Classes(&[0]))
            .unwrap()
            .reduced
            .unwrap();
        for (name, v) in [("definition", definition), ("kernel", kernel)] {
            let e = ulps64(v, exact.f64);
            assert!(
                e <= CONFIDENT_ULPS,
                "{row:?} t = ({t1}, {t2}): {name} {v:e} vs {:e}: {e} ulps",
                exact.f64
            );
        }
    }
}

/// Long rows (c ≥ 64), where the kernel's normalizer takes its last Halley
/// step from the last pass's sums and moves the row by a short series
/// (`kernels::tempered::tempered_step_series`) instead of another
/// pass: the loss and the gradient stay within a few ulps of the certified
/// values, as on short rows. The loss's bound is the row's own: a few ulps
/// times its condition numbers in the logs and in their arguments (ninth
/// session: the row at (1.5, 0.9), spread 2, whose labelled class lies
/// near the edge of the finite support, is off by 13 ulps with condition
/// numbers 4.7 and 7.8, bound 40; the others by ≤ 3 ulps, bounds 3–17; a
/// fixed 8 ulps had held on the seventh and eighth sessions' code by 0
/// ulps of margin on that row). Measured (sixth session, 10 rows of 64
/// classes): the loss ≤ 2 ulps, the gradient ≤ 5.8 in units of
/// `ulp(g_i) + ε·max|g|` (the old kernel, an `f64` pass instead of the
/// series: the same per-entry ulps within a factor of 2 either way). A row
/// left at the `f32` phase's `λ` (relative error about `2^-26`) is off by
/// millions of ulps. The gradient's certificate (forward mode at two
/// precisions over 64 classes) takes about 17 s per row: one row by
/// default, the ten rows that take the series move with
/// `ENTROPIC_EXTENSIVE=1`.
#[test]
fn long_bi_tempered_rows_are_within_a_few_ulps_of_the_certified_values() {
    // The loss bound, per row, from its conditioning: each ln p_j is
    // ln(1 + k·x_j)/k of x_j = z_j − λ, so a relative error δ_j in ln p_j
    // and η_j in x_j move the loss by Σ_j |∂ℓ/∂ln p_j|·(δ_j·|ln p_j| +
    // η_j·|x_j|/b_j) (b_j = 1 + k·x_j, d ln p_j/dx_j = 1/b_j). In units of
    // ulps of the loss: CLASS_TERM_ULPS + LN_P_ULPS·κ_log + ARGUMENT_ULPS·κ_arg
    // with κ_log = Σ_j |∂ℓ/∂ln p_j|·|ln p_j|/|ℓ| and κ_arg = Σ_j
    // |∂ℓ/∂ln p_j|·|x_j|/(b_j·|ℓ|). κ_log is about |ln p| (2–5) on most
    // rows; κ_arg grows where a class with a large sensitivity sits near the
    // edge of a finite support (t2 < 1, b_j → 0; with t1 > 1 the labelled
    // term p^{1−t1} is steep there): the exact loss itself moves that much
    // per ulp of its arguments.
    // Reason: the class terms' own roundings (≤ 2–3 ulps, weighed by their
    // share of the loss).
    const CLASS_TERM_ULPS: f64 = 3.0;
    // Reason: ln_1p within 2 ulps, the division by k (or its quotient) half
    // an ulp, the series move's addition half an ulp.
    const LN_P_ULPS: f64 = 3.0;
    // Reason: x = (a − μ) − λ' and k·x rounded: three roundings.
    const ARGUMENT_ULPS: f64 = 3.0;
    // Reason: an entry `A_i − ẽ_i·ΣA` may cancel, so it is bounded by a few
    // ulps of itself plus a few roundings of the row's largest entry
    // (`ε·max|g|`); 16 leaves a margin of about 3 over the measured 5.8.
    const LONG_ROW_GRADIENT_UNITS: f64 = 16.0;
    let extensive = std::env::var("ENTROPIC_EXTENSIVE").is_ok_and(|v| v == "1");
    let mut rng = SplitMix(91);
    let mut gradients = 0;
    for (t1, t2) in [(0.5, 0.8), (0.8, 1.2), (1.5, 0.9), (0.5, 2.0), (1.0, 1.5)] {
        let loss = entropic::BiTemperedLogisticLoss::new(t1, t2)
            .unwrap()
            .with_reduction(Reduction::Sum);
        // Two rows that take the series move, and a confident one (its
        // first logit 12 above the others: the top entry above half the
        // mass, the `f64` pass) whose loss is checked.
        for spread in [4.0_f64, 2.0, 0.0] {
            let c = 64;
            let mut z: Vec<f64> = (0..c).map(|_| rng.range(-spread.max(1.0), spread.max(1.0))).collect();
            if spread == 0.0 {
                z[0] = 12.0;
            }
            let y = rng.range(0.0, c as f64) as usize;
            let (out, kg) = loss
                .loss_and_grad(Batch::new(&z, 1, c).unwrap(), Targets::<f64>::Classes(&[y]))
                .unwrap();
            let exact = certified(|| {
                loss.definition::<Precise, f64>(Batch::new(&lift(&z), 1, c).unwrap(), Targets::Classes(&[y]))
                    .unwrap()
                    .reduced
                    .unwrap()
            });
            // The row's conditioning, from the reference tempered softmax.
            let n = entropic::TemperedSoftmax::new(t2).unwrap().normalize(&z).unwrap();
            let k = 1.0 - t2;
            let (mut kappa_log, mut kappa_arg) = (0.0, 0.0);
            for (j, (&p, &lp)) in n.probabilities.iter().zip(&n.log_probabilities).enumerate() {
                if p == 0.0 {
                    continue;
                }
                // ∂ℓ/∂ln p_j of the term y_j·(log_t1 y_j − log_t1 p_j) −
                // (y_j^{2−t1} − p_j^{2−t1})/(2 − t1), one-hot y.
                let d = p.powf(2.0 - t1) - if j == y { p.powf(1.0 - t1) } else { 0.0 };
                let x = z[j] - n.lambda;
                kappa_log += (d * lp).abs();
                kappa_arg += (d * x).abs() / (1.0 + k * x);
            }
            let l = exact.f64.abs();
            let (kappa_log, kappa_arg) = (kappa_log / l, kappa_arg / l);
            let bound = CLASS_TERM_ULPS + LN_P_ULPS * kappa_log + ARGUMENT_ULPS * kappa_arg;
            let e = ulps64(out.reduced.unwrap(), exact.f64);
            assert!(
                e as f64 <= bound,
                "t = ({t1}, {t2}), spread {spread}: loss {e} ulps, bound {bound:.1} \
                 (κ_log {kappa_log:.2}, κ_arg {kappa_arg:.2})"
            );
            eprintln!(
                "t = ({t1}, {t2}), spread {spread}: loss {e} ulps, bound {bound:.1} \
                 (κ_log {kappa_log:.2}, κ_arg {kappa_arg:.2})"
            );
            if spread == 0.0 || (gradients > 0 && !extensive) {
                continue;
            }
            gradients += 1;
            let g = correctly_rounded_vec(|| {
                gradient(&z, |d| {
                    loss.definition::<PreciseDual, f64>(Batch::new(d, 1, c).unwrap(), Targets::Classes(&[y]))
                        .map(|o| o.reduced.unwrap())
                })
            })
            .unwrap();
            let g_max = g.iter().fold(0.0f64, |m, r| m.max(r.f64.abs()));
            for (i, (r, k)) in g.iter().zip(&kg).enumerate() {
                let units = (k - r.f64).abs() / (ulp_of(r.f64) + g_max * f64::EPSILON);
                assert!(
                    units <= LONG_ROW_GRADIENT_UNITS,
                    "t = ({t1}, {t2}), spread {spread}: g[{i}] {k:e} vs {:e} ({units:.1})",
                    r.f64
                );
            }
        }
    }
}
