//! The scalar abstraction every loss definition is written against.
//!
//! [`Real`] is the one trait the generic per-row definitions use. A blanket
//! implementation covers every [`num_dual::DualNum`] type, which includes
//! `f32` and `f64` themselves and all of num-dual's dual numbers (`Dual64`,
//! `DualSVec64<N>`, `DualDVec64`, `Dual2SVec64<N>`, `HyperDual64`, …). A
//! high-precision type from another crate is used through a local newtype
//! that implements [`Real`] directly (a second blanket impl would break
//! coherence).
//!
//! [`Float`] is the sealed subset (`f32`, `f64`) that the fast batch kernels
//! are written for.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use num_dual::DualNum;
use num_traits::ToPrimitive;

/// A real scalar (or a number carrying a real part plus derivative parts) on
/// which every loss definition of this crate can be evaluated.
///
/// Branches in generic code (max-shift, sign of a logit) look at the real
/// part through [`Real::re`] only, so that derivative parts never influence
/// the control flow: the same branch is taken for `f64` and for a dual number
/// with the same real part.
///
/// # Example
/// ```
/// use entropic::Real;
/// use num_dual::{Dual64, DualNum};
///
/// fn softplus<T: Real>(x: T) -> T {
///     // max(x, 0) + ln(1 + e^{-|x|}), branching on the real part only
///     if x.re() > 0.0 { x.clone() + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
/// }
/// assert!((softplus(0.0_f64) - 2f64.ln()).abs() < 1e-15);
/// let d = softplus(Dual64::from_re(0.0).derivative());
/// assert!((d.eps - 0.5).abs() < 1e-15); // σ(0)
/// ```
pub trait Real:
    Clone
    + Debug
    + PartialOrd
    + Sum
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Send
    + Sync
    + 'static
{
    /// The constant `x` in this type (rounded to its precision).
    fn from_f64(x: f64) -> Self;
    /// The real part, as an `f64` (exact for `f32`/`f64`, rounded for wider
    /// types). Used for control flow and error reporting only.
    fn re(&self) -> f64;
    /// Machine epsilon of the underlying floating-point format (`2^-52` for
    /// `f64`-based types, `2^-23` for `f32`-based ones).
    fn epsilon() -> f64;
    /// `e^x`.
    fn exp(&self) -> Self;
    /// `e^x − 1`, accurate near 0.
    fn exp_m1(&self) -> Self;
    /// Natural logarithm.
    fn ln(&self) -> Self;
    /// `ln(1 + x)`, accurate near 0.
    fn ln_1p(&self) -> Self;
    /// `x^n` for a constant exponent `n`.
    fn powf(&self, n: f64) -> Self;
    /// Square root.
    fn sqrt(&self) -> Self;

    /// The constant 0.
    fn zero() -> Self {
        Self::from_f64(0.0)
    }
    /// The constant 1.
    fn one() -> Self {
        Self::from_f64(1.0)
    }
    /// `|x|`, choosing the sign from the real part.
    fn abs(&self) -> Self {
        if self.re() < 0.0 { -self.clone() } else { self.clone() }
    }
    /// Whether the value is exactly `−∞` (a masked logit, a zero
    /// probability's logarithm). The default reads the real part, which is
    /// exact for `f32`, `f64` and their dual numbers; a type with a wider
    /// range than `f64` (the verifier's high-precision reals) must override
    /// it, since a finite value below `−f64::MAX` has the real part `−∞`.
    fn is_neg_infinity(&self) -> bool {
        self.re() == f64::NEG_INFINITY
    }
    /// Whether the type carries more precision than `f64` (the verifier's
    /// high-precision reals): iterative solvers then refine an `f64` start
    /// to the type's own precision instead of keeping the `f64` value.
    fn precision_beyond_f64() -> bool {
        false
    }
    /// Multiplies by a constant.
    fn scale_f64(&self, k: f64) -> Self {
        self.clone() * Self::from_f64(k)
    }
}

impl<D> Real for D
where
    D: DualNum + Send + Sync,
{
    #[inline]
    fn from_f64(x: f64) -> Self {
        // `DualNumFloat` is `f32` or `f64`: both convert from any f64 (f32
        // rounds to nearest, overflows to ±∞), so `from` never fails.
        D::from(<D::Primitive as num_traits::NumCast>::from(x).unwrap_or_else(<D::Primitive as num_traits::Float>::nan))
    }
    #[inline]
    fn re(&self) -> f64 {
        num_dual::DualStruct::re(self).to_f64().unwrap_or(f64::NAN)
    }
    #[inline]
    fn epsilon() -> f64 {
        <D::Primitive as num_traits::Float>::epsilon()
            .to_f64()
            .unwrap_or(f64::EPSILON)
    }
    #[inline]
    fn exp(&self) -> Self {
        DualNum::exp(self)
    }
    #[inline]
    fn exp_m1(&self) -> Self {
        DualNum::exp_m1(self)
    }
    #[inline]
    fn ln(&self) -> Self {
        DualNum::ln(self)
    }
    #[inline]
    fn ln_1p(&self) -> Self {
        DualNum::ln_1p(self)
    }
    #[inline]
    fn powf(&self, n: f64) -> Self {
        let n = <D::Primitive as num_traits::NumCast>::from(n).unwrap_or_else(<D::Primitive as num_traits::Float>::nan);
        DualNum::powf(self, n)
    }
    #[inline]
    fn sqrt(&self) -> Self {
        DualNum::sqrt(self)
    }
    /// Scales every part by the primitive `k` (not by a dual constant, whose
    /// zero derivative parts would turn `∞·0` into NaN when `self` is infinite).
    #[inline]
    fn scale_f64(&self, k: f64) -> Self {
        let k = <D::Primitive as num_traits::NumCast>::from(k).unwrap_or_else(<D::Primitive as num_traits::Float>::nan);
        self.clone() * k
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The machine floats (`f32`, `f64`) that the fast batch kernels accept.
///
/// Kernels convert to `f64` on load and accumulate in `f64`, so an `f32`
/// result is the `f64` result rounded once.
pub trait Float: Real + Copy + Send + Sync + PartialOrd + sealed::Sealed {
    /// Name used in reports (`"f32"` or `"f64"`).
    const NAME: &'static str;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Rounds an `f64` to this type (round to nearest).
    fn round_from(x: f64) -> Self;
    /// The slice as `f32` when `Self` is `f32` (kernels with an `f32` path).
    #[doc(hidden)]
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
    /// The mutable slice as `f32` when `Self` is `f32`.
    #[doc(hidden)]
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn round_from(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn as_f32(s: &[Self]) -> Option<&[f32]> {
        Some(s)
    }
    #[inline]
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        Some(s)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn round_from(x: f64) -> Self {
        x
    }
    #[inline]
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
    #[inline]
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_dual::{Dual64, DualDVec64, HyperDual64};

    fn square_plus_exp<T: Real>(x: T) -> T {
        x.clone() * x.clone() + x.exp()
    }

    #[test]
    fn real_parts_agree_across_types() {
        let x = 0.75;
        let f = square_plus_exp(x);
        assert_eq!(square_plus_exp(Dual64::from_re(x)).re(), f);
        assert_eq!(square_plus_exp(HyperDual64::from_re(x)).re(), f);
        assert_eq!(square_plus_exp(x as f32).re(), f64::from(square_plus_exp(x as f32)));
    }

    #[test]
    fn dual_derivative_of_generic_code() {
        let x = Dual64::from_re(0.75).derivative();
        let y = square_plus_exp(x);
        let expected = 2.0 * 0.75 + 0.75f64.exp();
        assert!((y.eps - expected).abs() <= 4.0 * f64::EPSILON * expected);
        let dv = DualDVec64::new(
            0.75,
            num_dual::Derivative::some(nalgebra::DVector::from_element(1, 1.0)),
        );
        let y = square_plus_exp(dv);
        assert!((y.eps.unwrap_generic(nalgebra::Dyn(1), nalgebra::U1)[0] - expected).abs() < 1e-14);
    }

    #[test]
    fn constants_round_to_type() {
        assert_eq!(<f32 as Real>::from_f64(0.1), 0.1f32);
        assert_eq!(<f32 as Real>::from_f64(1e300), f32::INFINITY);
        assert_eq!(<f32 as Real>::epsilon(), f64::from(f32::EPSILON));
        assert_eq!(<Dual64 as Real>::epsilon(), f64::EPSILON);
    }
}
