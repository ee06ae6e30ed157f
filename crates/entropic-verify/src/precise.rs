//! High-precision reference arithmetic: correctly rounded `f64`/`f32`
//! reference values of the *exact* mathematical losses and gradients.
//!
//! # Pieces
//! - [`Precise`]: a binary floating-point number of (thread-local,
//!   settable) working precision, wrapping [`dashu_float::FBig`] with
//!   round-to-nearest-even, plus ±∞ and NaN. It implements
//!   [`entropic::Real`], so every generic `definition` of the production
//!   crate runs on it unchanged.
//! - [`PreciseDual`]: a forward-mode dual number over [`Precise`]
//!   (`re + eps·ε`, `ε² = 0`), also implementing [`entropic::Real`]:
//!   evaluating a definition with coordinate `j` seeded gives `∂/∂x_j` at
//!   high precision ([`gradient`]).
//! - [`Precise::to_f64_nearest`], [`Precise::to_f32_nearest`]: rounding
//!   *once*, directly, to the target format (ties to even, subnormals,
//!   overflow to ±∞); `f32` is never obtained through `f64` (no double
//!   rounding).
//! - [`correctly_rounded`] / [`correctly_rounded_vec`]: a Ziv-style
//!   certificate: the computation is evaluated at two precisions (default
//!   256 and 512 bits), and a value is returned only when both evaluations
//!   round to the same `f64` *and* the same `f32`, and agree with each other
//!   to `2^-(low/2)` relative.
//!
//! # Precision design
//! The working precision is a thread-local setting ([`precision`],
//! [`with_precision`]), default [`DEFAULT_LOW_PRECISION`] = 256 bits. Every
//! operation (`+ − × ÷`, `exp`, `exp_m1`, `ln`, `ln_1p`, `powf`, `sqrt`)
//! rounds its result to the precision current *at the time of the
//! operation*, whatever the precision of its operands; [`Real::from_f64`]
//! is exact (the precision is at least [`MIN_PRECISION`] = 64 ≥ 53 bits).
//! Hence values lifted from `f64` inputs may be shared between evaluations
//! at different precisions; values *computed* at one precision carry that
//! precision's rounding error into the next.
//!
//! # Accuracy of each operation
//! Every operation is a single call of a correctly rounded dashu-float 0.6
//! routine (`Context::{add, sub, mul, div, sqrt, exp, exp_m1, ln, ln_1p,
//! powf}`; the transcendental ones certify their rounding with a Ziv loop),
//! so each result is within half an ulp (`2^-p` relative) of the exact
//! result of the operation on its (already rounded) operands. No operation
//! is composed here, with one exception: the derivative of `powf` in
//! [`PreciseDual`] uses `n·x^(n−1)` where `n − 1` is formed at working
//! precision (exact for `|n| < 2^(p−1)`, otherwise one extra rounding of
//! relative size `2^-p` in the exponent). Should dashu's Ziv loop ever give
//! up (it reports rather than returning an uncertain value), the result is
//! NaN and a thread-local flag makes [`correctly_rounded`] fail with
//! [`ReferenceError::NotCertified`].
//!
//! # Special values
//! dashu-float 0.6 has ±∞ only as terminal values (arithmetic on them is an
//! error) and no NaN, so [`Precise`] adds its own: a value is finite (an
//! `FBig`, including ±0), `+∞`, `−∞` or NaN, with IEEE 754 semantics:
//! `ln 0 = −∞`, `exp(−∞) = 0`, `exp_m1(−∞) = −1`, `∞ + finite = ∞`,
//! `∞ − ∞`, `0·∞`, `0/0`, `∞/∞`, `ln(−1)`, `sqrt(−1)` are NaN, `x/0 = ±∞`.
//! Comparisons are exact (not through `re()`); NaN is unordered.
//!
//! # The correct-rounding claim
//! Each evaluation is a chain of correctly rounded operations, so its
//! relative error at `p` bits is `≲ κ·2^-p`, `κ` the condition number of
//! the evaluation (how much it amplifies rounding errors; it is small for
//! the max-shifted definitions, which add terms of equal sign). The
//! certificate accepts only when the 256- and 512-bit results round to the
//! same `f64` and `f32` and differ by at most `2^-128` relative, which
//! (under the model `error ≈ κ·2^-p`) bounds `κ ≲ 2^128`, so the 512-bit
//! result is within `≈ 2^-384` relative of the exact value. The printed
//! value is therefore the correctly rounded exact result unless the exact
//! result lies within `≈ 2^-384` relative of a rounding boundary (a
//! midpoint between two adjacent `f64`/`f32` values) *and* both
//! evaluations fall on the same wrong side of it. The remaining blind spot
//! is a cancellation so severe (`κ ≥ 2^512`, e.g. `(x + 10^-300) − x`
//! evaluated left to right) that both evaluations lose every bit the same
//! way; the generic definitions avoid such forms by construction.
//!
//! "Exact" means exact for the computation as written: constants that a
//! generic definition forms in `f64` before lifting them (e.g. a reduction
//! scale `1/den` applied with [`Real::scale_f64`], label-smoothing
//! coefficients `(1−ε)·w + ε/C`) enter as those `f64` values. Where such a
//! constant is inexact (`1/3`), the reference is the correctly rounded
//! value of the loss with that rounded constant; to get the exact mean,
//! evaluate with `Reduction::Sum` and divide in [`Precise`].
//!
//! # Rounding to the target format
//! [`Precise::to_f64_nearest`] and [`Precise::to_f32_nearest`] start from
//! dashu's conversion as a guess and then decide by *exact* comparisons of
//! the value with the midpoints to the neighbouring `f64`/`f32` values, so
//! they round once whatever the guess. (dashu-float 0.6.2's `to_f32`/`to_f64`
//! double-round just below the smallest subnormal: `1.39·2^-150 → 0` instead
//! of `2^-149`; the tests pin the correct behaviour.)
//!
//! # Example
//! ```
//! use entropic_verify::precise::{correctly_rounded, lift};
//! // logsumexp(0, 0) = ln 2, correctly rounded to f64 and (directly) to f32
//! let r = correctly_rounded(|| entropic::logsumexp(&lift(&[0.0, 0.0]))).unwrap();
//! assert_eq!(r.f64, std::f64::consts::LN_2);
//! assert_eq!(r.f32, std::f32::consts::LN_2);
//! ```

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use dashu_float::round::mode::HalfEven;
use dashu_float::{ConstCache, Context, FBig, FpError, FpResult, Repr};
use entropic::Real;

/// The wrapped big-float type: binary, round to nearest (ties to even).
pub type Big = FBig<HalfEven, 2>;

/// Default lower precision of the two-precision certificate (bits).
pub const DEFAULT_LOW_PRECISION: usize = 256;
/// Default higher precision of the two-precision certificate (bits).
pub const DEFAULT_HIGH_PRECISION: usize = 512;
/// Smallest working precision accepted by [`with_precision`] (bits); at
/// least 53 so that every `f64` converts exactly.
pub const MIN_PRECISION: usize = 64;

thread_local! {
    static PRECISION: Cell<usize> = const { Cell::new(DEFAULT_LOW_PRECISION) };
    static NOT_CERTIFIED: Cell<bool> = const { Cell::new(false) };
    static RANGE_EXCEEDED: Cell<bool> = const { Cell::new(false) };
    static CACHE: RefCell<ConstCache> = RefCell::new(ConstCache::default());
}

/// The working precision (bits) of this thread.
pub fn precision() -> usize {
    PRECISION.with(Cell::get)
}

/// Runs `f` with the working precision of this thread set to `bits`,
/// restoring the previous precision afterwards (also on unwind).
///
/// # Panics
/// If `bits < MIN_PRECISION`.
pub fn with_precision<T>(bits: usize, f: impl FnOnce() -> T) -> T {
    assert!(
        bits >= MIN_PRECISION,
        "precision {bits} is below the minimum of {MIN_PRECISION} bits"
    );
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            PRECISION.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PRECISION.with(|p| p.replace(bits)));
    f()
}

fn ctx() -> Context<HalfEven> {
    Context::new(precision())
}

/// Exact arithmetic (unlimited precision: only for add/mul of exact values).
fn exact_ctx() -> Context<HalfEven> {
    Context::new(0)
}

/// `2^e` as an `f64`, exact for `−1074 ≤ e ≤ 1023` (0 below, ∞ above).
const fn pow2(e: i32) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else if e >= -1074 {
        f64::from_bits(1u64 << (e + 1074))
    } else {
        0.0
    }
}

fn big_from_f64(x: f64) -> Big {
    debug_assert!(x.is_finite());
    Big::try_from(x).expect("finite f64 converts exactly")
}

fn is_zero(b: &Big) -> bool {
    b.repr().is_pos_zero() || b.repr().is_neg_zero()
}

/// Sign bit, including that of −0.
fn is_negative(b: &Big) -> bool {
    b.repr().is_neg_zero() || *b < Big::ZERO
}

#[derive(Clone)]
enum Value {
    Finite(Big),
    PosInf,
    NegInf,
    NaN,
}

/// A high-precision real: a binary [`FBig`] rounded to the thread's working
/// precision ([`with_precision`]), or `+∞`, `−∞`, NaN. See the [module
/// documentation](self) for the semantics.
#[derive(Clone)]
pub struct Precise(Value);

impl Precise {
    /// NaN.
    pub fn nan() -> Self {
        Self(Value::NaN)
    }
    /// `+∞`.
    pub fn infinity() -> Self {
        Self(Value::PosInf)
    }
    /// `−∞`.
    pub fn neg_infinity() -> Self {
        Self(Value::NegInf)
    }
    /// `x` exactly (NaN and ±∞ map to themselves).
    pub fn from_f64_exact(x: f64) -> Self {
        if x.is_nan() {
            Self::nan()
        } else if x == f64::INFINITY {
            Self::infinity()
        } else if x == f64::NEG_INFINITY {
            Self::neg_infinity()
        } else {
            Self(Value::Finite(big_from_f64(x)))
        }
    }
    /// Wraps a big float as is (no rounding; later operations round to the
    /// working precision). An infinite `FBig` becomes ±∞.
    pub fn from_fbig(b: Big) -> Self {
        if b.repr().is_infinite() {
            if b > Big::ZERO {
                Self::infinity()
            } else {
                Self::neg_infinity()
            }
        } else {
            Self(Value::Finite(b))
        }
    }
    /// The big float, when finite.
    pub fn as_fbig(&self) -> Option<&Big> {
        match &self.0 {
            Value::Finite(b) => Some(b),
            _ => None,
        }
    }
    /// NaN?
    pub fn is_nan(&self) -> bool {
        matches!(self.0, Value::NaN)
    }
    /// Neither infinite nor NaN?
    pub fn is_finite(&self) -> bool {
        matches!(self.0, Value::Finite(_))
    }
    /// ±0?
    pub fn is_zero(&self) -> bool {
        matches!(&self.0, Value::Finite(b) if is_zero(b))
    }
    /// Sign bit set (negative, −0 or −∞)? False for NaN.
    pub fn is_sign_negative(&self) -> bool {
        match &self.0 {
            Value::Finite(b) => is_negative(b),
            Value::NegInf => true,
            Value::PosInf | Value::NaN => false,
        }
    }

    /// The value rounded once to the nearest `f64` (ties to even), with
    /// gradual underflow to subnormals/±0 and overflow to ±∞.
    pub fn to_f64_nearest(&self) -> f64 {
        match &self.0 {
            Value::Finite(b) => round_to_format(b, &F64),
            Value::PosInf => f64::INFINITY,
            Value::NegInf => f64::NEG_INFINITY,
            Value::NaN => f64::NAN,
        }
    }

    /// The value rounded once, directly, to the nearest `f32` (ties to even,
    /// subnormals, overflow to ±∞) — not through `f64`, which could round
    /// twice.
    pub fn to_f32_nearest(&self) -> f32 {
        match &self.0 {
            // exact: the rounded value is an f32
            Value::Finite(b) => round_to_format(b, &F32) as f32,
            Value::PosInf => f32::INFINITY,
            Value::NegInf => f32::NEG_INFINITY,
            Value::NaN => f32::NAN,
        }
    }

    /// `x^y` for a high-precision exponent, IEEE 754 `pow` semantics for the
    /// special cases.
    pub fn pow(&self, y: &Precise) -> Precise {
        let one = || Precise::from_f64_exact(1.0);
        let y_big = match &y.0 {
            Value::NaN => {
                return if self.is_one() { one() } else { Precise::nan() };
            }
            Value::PosInf | Value::NegInf => {
                let y_pos = matches!(y.0, Value::PosInf);
                return match &self.0 {
                    Value::NaN => Precise::nan(),
                    _ => {
                        let abs = self.abs_exact();
                        match abs.partial_cmp(&one()) {
                            Some(Ordering::Equal) => one(),
                            Some(Ordering::Less) => {
                                if y_pos {
                                    Precise::from_f64_exact(0.0)
                                } else {
                                    Precise::infinity()
                                }
                            }
                            _ => {
                                if y_pos {
                                    Precise::infinity()
                                } else {
                                    Precise::from_f64_exact(0.0)
                                }
                            }
                        }
                    }
                };
            }
            Value::Finite(b) => b,
        };
        if is_zero(y_big) {
            return one();
        }
        let y_neg = is_negative(y_big);
        match &self.0 {
            Value::NaN => Precise::nan(),
            Value::PosInf => {
                if y_neg {
                    Precise::from_f64_exact(0.0)
                } else {
                    Precise::infinity()
                }
            }
            Value::NegInf => {
                let odd = is_odd_integer(y_big);
                match (y_neg, odd) {
                    (false, false) => Precise::infinity(),
                    (false, true) => Precise::neg_infinity(),
                    (true, false) => Precise::from_f64_exact(0.0),
                    (true, true) => Precise::from_f64_exact(-0.0),
                }
            }
            // IEEE: pow(±0, y) keeps the sign of a −0 base for odd integer y
            // (dashu returns +0 / +∞ for every zero base)
            Value::Finite(x) if is_zero(x) => {
                let negative = is_negative(x) && is_odd_integer(y_big);
                match (y_neg, negative) {
                    (false, false) => Precise::from_f64_exact(0.0),
                    (false, true) => Precise::from_f64_exact(-0.0),
                    (true, false) => Precise::infinity(),
                    (true, true) => Precise::neg_infinity(),
                }
            }
            Value::Finite(x) => {
                let c = ctx();
                finish(CACHE.with(|cache| c.powf(x.repr(), y_big.repr(), Some(&mut cache.borrow_mut()))))
            }
        }
    }

    fn is_one(&self) -> bool {
        matches!(&self.0, Value::Finite(b) if *b == Big::ONE)
    }

    /// `|x|` from the exact sign (the provided [`Real::abs`] looks at the
    /// `f64` rounding, which is ±0 for values below the subnormal range).
    fn abs_exact(&self) -> Precise {
        if self.is_sign_negative() {
            -self.clone()
        } else {
            self.clone()
        }
    }

    fn add_ref(&self, rhs: &Precise) -> Precise {
        use Value::*;
        match (&self.0, &rhs.0) {
            (NaN, _) | (_, NaN) | (PosInf, NegInf) | (NegInf, PosInf) => Precise::nan(),
            (PosInf, _) | (_, PosInf) => Precise::infinity(),
            (NegInf, _) | (_, NegInf) => Precise::neg_infinity(),
            (Finite(a), Finite(b)) => finish(ctx().add(a.repr(), b.repr())),
        }
    }

    fn mul_ref(&self, rhs: &Precise) -> Precise {
        use Value::*;
        match (&self.0, &rhs.0) {
            (NaN, _) | (_, NaN) => Precise::nan(),
            (Finite(a), Finite(b)) => finish(ctx().mul(a.repr(), b.repr())),
            _ => {
                if self.is_zero() || rhs.is_zero() {
                    Precise::nan()
                } else if self.is_sign_negative() != rhs.is_sign_negative() {
                    Precise::neg_infinity()
                } else {
                    Precise::infinity()
                }
            }
        }
    }

    fn div_ref(&self, rhs: &Precise) -> Precise {
        use Value::*;
        let negative = self.is_sign_negative() != rhs.is_sign_negative();
        match (&self.0, &rhs.0) {
            (NaN, _) | (_, NaN) => Precise::nan(),
            (PosInf | NegInf, PosInf | NegInf) => Precise::nan(),
            (PosInf | NegInf, Finite(_)) => {
                if negative {
                    Precise::neg_infinity()
                } else {
                    Precise::infinity()
                }
            }
            (Finite(_), PosInf | NegInf) => Precise::from_f64_exact(if negative { -0.0 } else { 0.0 }),
            (Finite(a), Finite(b)) => {
                if is_zero(b) {
                    // dashu: 0/0 is Indeterminate (→ NaN); x/±0 is ±∞ by the sign of the zero
                    if is_zero(a) {
                        Precise::nan()
                    } else if negative {
                        Precise::neg_infinity()
                    } else {
                        Precise::infinity()
                    }
                } else {
                    finish(ctx().div(a.repr(), b.repr()))
                }
            }
        }
    }

    fn neg_ref(&self) -> Precise {
        match &self.0 {
            Value::Finite(b) => Precise(Value::Finite(-b.clone())),
            Value::PosInf => Precise::neg_infinity(),
            Value::NegInf => Precise::infinity(),
            Value::NaN => Precise::nan(),
        }
    }
}

fn is_odd_integer(b: &Big) -> bool {
    if !b.repr().is_int() {
        return false;
    }
    // b odd ⇔ (b − 1)/2 is an integer ⇔ b/2 is not. Exact at unlimited precision.
    let half = exact_ctx()
        .mul(b.repr(), big_from_f64(0.5).repr())
        .map(|r| r.value())
        .unwrap_or(Big::ZERO);
    !half.repr().is_int()
}

/// Converts a dashu result (correctly rounded at the working precision) to a
/// [`Precise`].
fn finish(r: FpResult<Big>) -> Precise {
    match r {
        Ok(v) => Precise::from_fbig(v.value()),
        // finite results beyond the (isize) exponent range: ±∞ / ±0, as IEEE;
        // an overflow is recorded (see `ReferenceError::RangeExceeded`).
        Err(FpError::Overflow(s)) => {
            RANGE_EXCEEDED.with(|f| f.set(true));
            if Repr::<2>::zero_with_sign(s).is_neg_zero() {
                Precise::neg_infinity()
            } else {
                Precise::infinity()
            }
        }
        Err(FpError::Underflow(s)) => Precise(Value::Finite(Big::from_repr(Repr::zero_with_sign(s), ctx()))),
        Err(FpError::InfiniteInput | FpError::OutOfDomain | FpError::Indeterminate) => Precise::nan(),
        Err(FpError::ZivRetryLimitExceeded) => {
            NOT_CERTIFIED.with(|f| f.set(true));
            Precise::nan()
        }
    }
}

/// Whether `b` is nonzero with `|b| < 2^-(2p+2)` at working precision `p`.
/// There `exp(b)` rounds to 1 and `ln_1p(b)`, `exp_m1(b)` round to `b`
/// itself (their relative distance to those values is below `|b| < 2^-2p`,
/// far inside half an ulp). dashu's Ziv loops compare such arguments with
/// 1 by shifting to a common exponent: for `b = e^{-4e13}` that is a shift
/// of 5.8e13 bits, which allocated without bound (found by the extensive
/// finiteness run: a softmax CE row with logits (34.9, 4.0e13, −∞, 25.2)).
fn negligible_against_one(b: &Big) -> bool {
    let r = b.repr();
    if r.significand().is_zero() {
        return false;
    }
    let top = r
        .exponent()
        .saturating_add(isize::try_from(r.digits()).unwrap_or(isize::MAX));
    let p = isize::try_from(precision()).unwrap_or(isize::MAX / 4);
    top < -(2 * p + 2)
}

/// A floating-point target format, described by its neighbours.
struct Format {
    /// Largest finite value.
    max: f64,
    /// Half an ulp of `max` (so `max + half_ulp_max` is the overflow threshold).
    half_ulp_max: f64,
    /// Next representable value above `x ≥ 0` (`x < max`).
    next_up: fn(f64) -> f64,
    /// Next representable value below `x > 0`.
    next_down: fn(f64) -> f64,
    /// Last significand bit of `x ≥ 0` set?
    odd: fn(f64) -> bool,
    /// Nearest value, used as a first guess only.
    guess: fn(&Big) -> f64,
}

const F64: Format = Format {
    max: f64::MAX,
    half_ulp_max: pow2(970),
    next_up: f64::next_up,
    next_down: f64::next_down,
    odd: |x| x.to_bits() & 1 == 1,
    guess: |b| b.to_f64().value(),
};

const F32: Format = Format {
    max: f32::MAX as f64,
    half_ulp_max: pow2(103),
    next_up: |x| f64::from((x as f32).next_up()),
    next_down: |x| f64::from((x as f32).next_down()),
    odd: |x| (x as f32).to_bits() & 1 == 1,
    guess: |b| f64::from(b.to_f32().value()),
};

/// `(a + b)/2` exactly.
fn exact_midpoint(a: f64, b: f64) -> Big {
    let c = exact_ctx();
    let sum = c
        .add(big_from_f64(a).repr(), big_from_f64(b).repr())
        .expect("exact addition of finite values")
        .value();
    c.mul(sum.repr(), big_from_f64(0.5).repr())
        .expect("exact halving")
        .value()
}

/// Rounds `b` to the nearest value of `fmt` (ties to even) in one step:
/// starting from a guess, the candidate `c` moves until `|b|` lies in its
/// rounding interval, decided by *exact* comparisons with the midpoints to
/// its neighbours. Returns the rounded value as an `f64` (exact for `f32`).
fn round_to_format(b: &Big, fmt: &Format) -> f64 {
    if is_zero(b) {
        return if is_negative(b) { -0.0 } else { 0.0 };
    }
    let negative = is_negative(b);
    let a = if negative { -b.clone() } else { b.clone() };
    let guess = (fmt.guess)(&a).abs();
    let mut c = if guess.is_nan() { 1.0 } else { guess.min(fmt.max) };
    // Overflow: |b| ≥ max + half_ulp(max) rounds to ∞ (at the tie, ∞ is the even neighbour:
    // max has an odd significand).
    let threshold = {
        let e = exact_ctx();
        e.add(big_from_f64(fmt.max).repr(), big_from_f64(fmt.half_ulp_max).repr())
            .expect("exact addition")
            .value()
    };
    if a >= threshold {
        return if negative { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    loop {
        if c < fmt.max {
            let up = (fmt.next_up)(c);
            let mid = exact_midpoint(c, up);
            if a > mid || (a == mid && (fmt.odd)(c)) {
                c = up;
                continue;
            }
        }
        if c > 0.0 {
            let down = (fmt.next_down)(c);
            let mid = exact_midpoint(down, c);
            if a < mid || (a == mid && (fmt.odd)(c)) {
                c = down;
                continue;
            }
        }
        break;
    }
    if negative { -c } else { c }
}

impl fmt::Debug for Precise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Value::Finite(b) => {
                let dec = b.clone().with_base_and_precision::<10>(40).value();
                write!(f, "Precise({dec})")
            }
            Value::PosInf => f.write_str("Precise(+inf)"),
            Value::NegInf => f.write_str("Precise(-inf)"),
            Value::NaN => f.write_str("Precise(NaN)"),
        }
    }
}

impl fmt::Display for Precise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl PartialEq for Precise {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Precise {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        use Value::*;
        match (&self.0, &other.0) {
            (NaN, _) | (_, NaN) => None,
            (PosInf, PosInf) | (NegInf, NegInf) => Some(Ordering::Equal),
            (PosInf, _) | (_, NegInf) => Some(Ordering::Greater),
            (NegInf, _) | (_, PosInf) => Some(Ordering::Less),
            (Finite(a), Finite(b)) => Some(a.cmp(b)),
        }
    }
}

macro_rules! binary_ops {
    ($t:ty, $Op:ident, $op:ident, $OpAssign:ident, $op_assign:ident, $method:ident) => {
        impl $Op for $t {
            type Output = $t;
            fn $op(self, rhs: $t) -> $t {
                self.$method(&rhs)
            }
        }
        impl $Op<&$t> for &$t {
            type Output = $t;
            fn $op(self, rhs: &$t) -> $t {
                self.$method(rhs)
            }
        }
        impl $OpAssign for $t {
            fn $op_assign(&mut self, rhs: $t) {
                *self = self.$method(&rhs);
            }
        }
    };
}

impl Precise {
    fn sub_ref(&self, rhs: &Precise) -> Precise {
        self.add_ref(&rhs.neg_ref())
    }
}

binary_ops!(Precise, Add, add, AddAssign, add_assign, add_ref);
binary_ops!(Precise, Sub, sub, SubAssign, sub_assign, sub_ref);
binary_ops!(Precise, Mul, mul, MulAssign, mul_assign, mul_ref);
binary_ops!(Precise, Div, div, DivAssign, div_assign, div_ref);

impl Neg for Precise {
    type Output = Precise;
    fn neg(self) -> Precise {
        self.neg_ref()
    }
}

impl Sum for Precise {
    fn sum<I: Iterator<Item = Precise>>(iter: I) -> Precise {
        iter.fold(Precise::from_f64_exact(0.0), |acc, x| acc.add_ref(&x))
    }
}

impl Real for Precise {
    /// Exact (the working precision is at least 53 bits).
    fn from_f64(x: f64) -> Self {
        Precise::from_f64_exact(x)
    }
    /// [`Precise::to_f64_nearest`].
    fn re(&self) -> f64 {
        self.to_f64_nearest()
    }
    /// `2^(1 − p)` for the current working precision `p`.
    fn epsilon() -> f64 {
        pow2(1 - i32::try_from(precision()).unwrap_or(i32::MAX - 1))
    }
    fn exp(&self) -> Self {
        match &self.0 {
            Value::Finite(b) if negligible_against_one(b) => Precise::from_f64_exact(1.0),
            Value::Finite(b) => {
                let c = ctx();
                finish(CACHE.with(|cache| c.exp(b.repr(), Some(&mut cache.borrow_mut()))))
            }
            Value::PosInf => Precise::infinity(),
            Value::NegInf => Precise::from_f64_exact(0.0),
            Value::NaN => Precise::nan(),
        }
    }
    fn exp_m1(&self) -> Self {
        match &self.0 {
            Value::Finite(b) if negligible_against_one(b) => self.clone(),
            Value::Finite(b) => {
                let c = ctx();
                finish(CACHE.with(|cache| c.exp_m1(b.repr(), Some(&mut cache.borrow_mut()))))
            }
            Value::PosInf => Precise::infinity(),
            Value::NegInf => Precise::from_f64_exact(-1.0),
            Value::NaN => Precise::nan(),
        }
    }
    fn ln(&self) -> Self {
        match &self.0 {
            // ln(±0) = −∞, ln(x < 0) = NaN (OutOfDomain)
            Value::Finite(b) => {
                let c = ctx();
                finish(CACHE.with(|cache| c.ln(b.repr(), Some(&mut cache.borrow_mut()))))
            }
            Value::PosInf => Precise::infinity(),
            Value::NegInf | Value::NaN => Precise::nan(),
        }
    }
    fn ln_1p(&self) -> Self {
        match &self.0 {
            // ln_1p(−1) = −∞, ln_1p(x < −1) = NaN (OutOfDomain)
            Value::Finite(b) if negligible_against_one(b) => self.clone(),
            Value::Finite(b) => {
                let c = ctx();
                finish(CACHE.with(|cache| c.ln_1p(b.repr(), Some(&mut cache.borrow_mut()))))
            }
            Value::PosInf => Precise::infinity(),
            Value::NegInf | Value::NaN => Precise::nan(),
        }
    }
    fn powf(&self, n: f64) -> Self {
        self.pow(&Precise::from_f64_exact(n))
    }
    fn sqrt(&self) -> Self {
        match &self.0 {
            Value::Finite(b) => finish(ctx().sqrt(b.repr())),
            Value::PosInf => Precise::infinity(),
            Value::NegInf | Value::NaN => Precise::nan(),
        }
    }
    fn abs(&self) -> Self {
        self.abs_exact()
    }
    /// Exact: a finite value below `−f64::MAX` is not `−∞`.
    fn is_neg_infinity(&self) -> bool {
        matches!(self.0, Value::NegInf)
    }
    fn precision_beyond_f64() -> bool {
        true
    }
}

/// Lifts `f64` inputs to [`Precise`] (exactly).
pub fn lift(x: &[f64]) -> Vec<Precise> {
    x.iter().map(|&v| Precise::from_f64_exact(v)).collect()
}

// ---------------------------------------------------------------------------
// Forward-mode dual numbers over Precise
// ---------------------------------------------------------------------------

/// `re + eps·ε` with `ε² = 0`, over [`Precise`]: forward-mode
/// differentiation at high precision.
///
/// A derivative part that is *exactly zero* is a strong zero: it contributes
/// nothing to a chain-rule product even when the other factor is infinite
/// (so a constant or an undifferentiated masked `−∞` logit gives derivative
/// 0, not `0·∞ = NaN` as in IEEE dual arithmetic).
#[derive(Clone, Debug)]
pub struct PreciseDual {
    /// Value.
    pub re: Precise,
    /// Directional derivative.
    pub eps: Precise,
}

/// `f′ · d` with `d` a strong zero.
fn chain(f_prime: &Precise, d: &Precise) -> Precise {
    if d.is_zero() {
        Precise::from_f64_exact(0.0)
    } else {
        f_prime.mul_ref(d)
    }
}

/// `d / g` with `d` a strong zero.
fn chain_div(d: &Precise, g: &Precise) -> Precise {
    if d.is_zero() {
        Precise::from_f64_exact(0.0)
    } else {
        d.div_ref(g)
    }
}

impl PreciseDual {
    /// A constant (derivative 0).
    pub fn constant(x: f64) -> Self {
        Self {
            re: Precise::from_f64_exact(x),
            eps: Precise::from_f64_exact(0.0),
        }
    }
    /// The variable being differentiated (derivative 1).
    pub fn variable(x: f64) -> Self {
        Self {
            re: Precise::from_f64_exact(x),
            eps: Precise::from_f64_exact(1.0),
        }
    }
    fn new(re: Precise, eps: Precise) -> Self {
        Self { re, eps }
    }
}

impl PartialEq for PreciseDual {
    /// Compares values only (as num-dual does).
    fn eq(&self, other: &Self) -> bool {
        self.re == other.re
    }
}

impl PartialOrd for PreciseDual {
    /// Orders by value only (as num-dual does).
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.re.partial_cmp(&other.re)
    }
}

impl PreciseDual {
    fn add_ref(&self, rhs: &Self) -> Self {
        Self::new(&self.re + &rhs.re, &self.eps + &rhs.eps)
    }
    fn sub_ref(&self, rhs: &Self) -> Self {
        Self::new(&self.re - &rhs.re, &self.eps - &rhs.eps)
    }
    fn mul_ref(&self, rhs: &Self) -> Self {
        let eps = chain(&self.re, &rhs.eps).add_ref(&chain(&rhs.re, &self.eps));
        Self::new(&self.re * &rhs.re, eps)
    }
    fn div_ref(&self, rhs: &Self) -> Self {
        let q = &self.re / &rhs.re;
        // (a/b)' = (a' − q b') / b
        let num = self.eps.sub_ref(&chain(&q, &rhs.eps));
        let eps = chain_div(&num, &rhs.re);
        Self::new(q, eps)
    }
}

binary_ops!(PreciseDual, Add, add, AddAssign, add_assign, add_ref);
binary_ops!(PreciseDual, Sub, sub, SubAssign, sub_assign, sub_ref);
binary_ops!(PreciseDual, Mul, mul, MulAssign, mul_assign, mul_ref);
binary_ops!(PreciseDual, Div, div, DivAssign, div_assign, div_ref);

impl Neg for PreciseDual {
    type Output = PreciseDual;
    fn neg(self) -> PreciseDual {
        Self::new(-self.re, -self.eps)
    }
}

impl Sum for PreciseDual {
    fn sum<I: Iterator<Item = PreciseDual>>(iter: I) -> PreciseDual {
        iter.fold(PreciseDual::constant(0.0), |acc, x| acc.add_ref(&x))
    }
}

impl Real for PreciseDual {
    fn from_f64(x: f64) -> Self {
        PreciseDual::constant(x)
    }
    fn re(&self) -> f64 {
        self.re.to_f64_nearest()
    }
    fn epsilon() -> f64 {
        <Precise as Real>::epsilon()
    }
    fn is_neg_infinity(&self) -> bool {
        self.re.is_neg_infinity()
    }
    fn precision_beyond_f64() -> bool {
        true
    }
    fn exp(&self) -> Self {
        let e = self.re.exp();
        let eps = chain(&e, &self.eps);
        Self::new(e, eps)
    }
    fn exp_m1(&self) -> Self {
        let eps = chain(&self.re.exp(), &self.eps);
        Self::new(self.re.exp_m1(), eps)
    }
    fn ln(&self) -> Self {
        Self::new(self.re.ln(), chain_div(&self.eps, &self.re))
    }
    fn ln_1p(&self) -> Self {
        let one_plus = Precise::from_f64_exact(1.0).add_ref(&self.re);
        Self::new(self.re.ln_1p(), chain_div(&self.eps, &one_plus))
    }
    fn powf(&self, n: f64) -> Self {
        if n == 0.0 {
            return Self::new(self.re.powf(0.0), Precise::from_f64_exact(0.0));
        }
        let n_big = Precise::from_f64_exact(n);
        // d/dx x^n = n x^(n−1); n − 1 at working precision (exact for |n| < 2^(p−1))
        let n_minus_1 = n_big.sub_ref(&Precise::from_f64_exact(1.0));
        let f_prime = n_big.mul_ref(&self.re.pow(&n_minus_1));
        Self::new(self.re.powf(n), chain(&f_prime, &self.eps))
    }
    fn sqrt(&self) -> Self {
        let s = self.re.sqrt();
        let two_s = s.add_ref(&s);
        Self::new(s, chain_div(&self.eps, &two_s))
    }
    fn abs(&self) -> Self {
        if self.re.is_sign_negative() {
            -self.clone()
        } else {
            self.clone()
        }
    }
    fn scale_f64(&self, k: f64) -> Self {
        let k = Precise::from_f64_exact(k);
        Self::new(self.re.mul_ref(&k), chain(&k, &self.eps))
    }
}

/// Lifts `f64` inputs to [`PreciseDual`] constants, seeding coordinate
/// `seed` (derivative 1) when it is in range.
pub fn lift_dual(x: &[f64], seed: usize) -> Vec<PreciseDual> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if i == seed {
                PreciseDual::variable(v)
            } else {
                PreciseDual::constant(v)
            }
        })
        .collect()
}

/// The gradient of `f` at `x` at the working precision: one forward pass
/// per coordinate, `∂f/∂x_j = f(lift_dual(x, j)).eps`.
///
/// # Errors
/// The first error of `f`.
pub fn gradient<E>(x: &[f64], f: impl Fn(&[PreciseDual]) -> Result<PreciseDual, E>) -> Result<Vec<Precise>, E> {
    (0..x.len()).map(|j| f(&lift_dual(x, j)).map(|d| d.eps)).collect()
}

// ---------------------------------------------------------------------------
// The two-precision certificate
// ---------------------------------------------------------------------------

/// The two working precisions of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precisions {
    /// Lower precision (bits).
    pub low: usize,
    /// Higher precision (bits).
    pub high: usize,
}

impl Default for Precisions {
    /// 256 and 512 bits.
    fn default() -> Self {
        Self {
            low: DEFAULT_LOW_PRECISION,
            high: DEFAULT_HIGH_PRECISION,
        }
    }
}

/// A certified correctly rounded value in both formats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorrectlyRounded {
    /// The exact result rounded to nearest `f64` (ties to even).
    pub f64: f64,
    /// The exact result rounded directly to nearest `f32` (ties to even).
    pub f32: f32,
}

/// Why a reference value could not be certified.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceError<E> {
    /// The computation itself failed (the error of the evaluated function).
    Eval(E),
    /// The two precisions round to different values: the exact result is too
    /// close to a rounding boundary (or the evaluation too ill-conditioned)
    /// to decide at these precisions.
    Uncertain {
        /// `"f64"` or `"f32"`.
        format: &'static str,
        /// Index in the result vector (0 for a scalar).
        index: usize,
        /// Rounding at the lower precision.
        low: f64,
        /// Rounding at the higher precision.
        high: f64,
    },
    /// The two evaluations round alike but differ by more than `2^-(low/2)`
    /// relative: the evaluation loses too many bits to trust the rounding.
    IllConditioned {
        /// Index in the result vector (0 for a scalar).
        index: usize,
        /// `|v_low − v_high| / |v_high|`, rounded to `f64`.
        relative_difference: f64,
    },
    /// The two evaluations return vectors of different lengths.
    LengthMismatch {
        /// Length at the lower precision.
        low: usize,
        /// Length at the higher precision.
        high: usize,
    },
    /// dashu-float could not certify the rounding of an elementary function
    /// (its Ziv loop gave up) at this precision.
    NotCertified {
        /// Working precision (bits).
        precision: usize,
    },
    /// An intermediate value overflowed dashu-float's exponent range
    /// (binary exponents up to `isize::MAX`, i.e. `|ln x|` up to about
    /// 6.4e18) and became `±∞`. The result may still be right (an
    /// infinite loss), but it need not be: the overflowed value can meet a
    /// factor that would have brought it back into range (found with
    /// bi-tempered rows at `t1 > t2 = 1` and logit gaps near `f64::MAX`,
    /// where `e^{−9e138}·e^{9e307}` is `+∞` but came out 0).
    RangeExceeded {
        /// Working precision (bits).
        precision: usize,
    },
}

impl<E: fmt::Display> fmt::Display for ReferenceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eval(e) => write!(f, "{e}"),
            Self::Uncertain {
                format,
                index,
                low,
                high,
            } => write!(
                f,
                "reference not certain at this input: entry {index} rounds to {format} {low:e} at the lower precision \
                 but {high:e} at the higher one"
            ),
            Self::IllConditioned {
                index,
                relative_difference,
            } => write!(
                f,
                "reference not certain at this input: entry {index} differs by {relative_difference:e} (relative) \
                 between the two precisions"
            ),
            Self::LengthMismatch { low, high } => {
                write!(
                    f,
                    "the evaluation returned {low} entries at the lower precision but {high} at the higher"
                )
            }
            Self::NotCertified { precision } => {
                write!(
                    f,
                    "an elementary function could not certify its rounding at {precision} bits"
                )
            }
            Self::RangeExceeded { precision } => {
                write!(
                    f,
                    "reference not certain at this input: an intermediate value left the arbitrary-precision \
                     exponent range (|ln x| > 6.4e18) at {precision} bits"
                )
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ReferenceError<E> {}

fn evaluate_at<T, E>(bits: usize, f: &impl Fn() -> Result<T, E>) -> Result<T, ReferenceError<E>> {
    with_precision(bits, || {
        NOT_CERTIFIED.with(|c| c.set(false));
        RANGE_EXCEEDED.with(|c| c.set(false));
        let r = f();
        if NOT_CERTIFIED.with(|c| c.replace(false)) {
            return Err(ReferenceError::NotCertified { precision: bits });
        }
        if RANGE_EXCEEDED.with(|c| c.replace(false)) {
            return Err(ReferenceError::RangeExceeded { precision: bits });
        }
        r.map_err(ReferenceError::Eval)
    })
}

fn same_rounding(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Checks one entry: same `f64` and `f32` roundings, relative difference at
/// most `2^-(low/2)`.
fn certify<E>(
    index: usize,
    low: &Precise,
    high: &Precise,
    low_bits: usize,
) -> Result<CorrectlyRounded, ReferenceError<E>> {
    let (l64, h64) = (low.to_f64_nearest(), high.to_f64_nearest());
    if !same_rounding(l64, h64) {
        return Err(ReferenceError::Uncertain {
            format: "f64",
            index,
            low: l64,
            high: h64,
        });
    }
    let (l32, h32) = (low.to_f32_nearest(), high.to_f32_nearest());
    if !same_rounding(f64::from(l32), f64::from(h32)) {
        return Err(ReferenceError::Uncertain {
            format: "f32",
            index,
            low: f64::from(l32),
            high: f64::from(h32),
        });
    }
    if let (Some(a), Some(b)) = (low.as_fbig(), high.as_fbig())
        && a != b
    {
        // |a − b| ≤ 2^-(low/2) |b|, evaluated exactly enough at the higher precision
        let (d, bound) = with_precision(low_bits.max(MIN_PRECISION), || {
            let d = (Precise::from_fbig(a.clone()) - Precise::from_fbig(b.clone())).abs_exact();
            let k = i32::try_from(low_bits / 2).unwrap_or(i32::MAX);
            let bound = Precise::from_fbig(b.clone()).abs_exact() * Precise::from_f64_exact(pow2(-k.min(1074)));
            (d, bound)
        });
        if d > bound {
            let rel = with_precision(low_bits.max(MIN_PRECISION), || {
                (d / Precise::from_fbig(b.clone()).abs_exact()).to_f64_nearest()
            });
            return Err(ReferenceError::IllConditioned {
                index,
                relative_difference: rel,
            });
        }
    }
    Ok(CorrectlyRounded { f64: h64, f32: h32 })
}

/// The correctly rounded `f64` and `f32` values of a scalar computation,
/// certified by evaluating it at 256 and 512 bits (see
/// [`correctly_rounded_at`]).
///
/// # Errors
/// See [`ReferenceError`].
pub fn correctly_rounded<E>(f: impl Fn() -> Result<Precise, E>) -> Result<CorrectlyRounded, ReferenceError<E>> {
    correctly_rounded_at(Precisions::default(), f)
}

/// The correctly rounded `f64` and `f32` values of a scalar computation:
/// `f` is run at `precisions.low` and at `precisions.high` bits (it must
/// build its [`Precise`] values inside, or lift them exactly from `f64`),
/// and the result is returned only when both round to the same `f64` and
/// the same `f32` and differ by at most `2^-(low/2)` relative. See the
/// [module documentation](self) for what this certifies.
///
/// # Errors
/// See [`ReferenceError`].
pub fn correctly_rounded_at<E>(
    precisions: Precisions,
    f: impl Fn() -> Result<Precise, E>,
) -> Result<CorrectlyRounded, ReferenceError<E>> {
    let low = evaluate_at(precisions.low, &f)?;
    let high = evaluate_at(precisions.high, &f)?;
    certify(0, &low, &high, precisions.low)
}

/// As [`correctly_rounded`], for a vector result (e.g. a gradient); every
/// entry must be certified.
///
/// # Errors
/// See [`ReferenceError`]; the first uncertain entry is reported.
pub fn correctly_rounded_vec<E>(
    f: impl Fn() -> Result<Vec<Precise>, E>,
) -> Result<Vec<CorrectlyRounded>, ReferenceError<E>> {
    correctly_rounded_vec_at(Precisions::default(), f)
}

/// As [`correctly_rounded_at`], for a vector result.
///
/// # Errors
/// See [`ReferenceError`]; the first uncertain entry is reported.
pub fn correctly_rounded_vec_at<E>(
    precisions: Precisions,
    f: impl Fn() -> Result<Vec<Precise>, E>,
) -> Result<Vec<CorrectlyRounded>, ReferenceError<E>> {
    let low = evaluate_at(precisions.low, &f)?;
    let high = evaluate_at(precisions.high, &f)?;
    if low.len() != high.len() {
        return Err(ReferenceError::LengthMismatch {
            low: low.len(),
            high: high.len(),
        });
    }
    low.iter()
        .zip(&high)
        .enumerate()
        .map(|(i, (l, h))| certify(i, l, h, precisions.low))
        .collect()
}
