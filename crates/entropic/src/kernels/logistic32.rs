//! The `f32` path of the sigmoid family — binary cross-entropy with logits
//! and the sigmoid focal loss — for `f32` logits with hard labels
//! `y ∈ {0, 1}` (multi-label classification, detection).
//!
//! The logistic pieces come from one `f32` exponential `t = e^{−|x|}`
//! ([`exp32::exp_nonpositive`], ≤ 2 ulps) and one `f32` `ln(1 + t)`
//! ([`ln_1p_unit32`], ≤ 2 ulps), 8 lanes per instruction with AVX2, where the
//! `f64` path ([`super::log1p::logistic`]) works 4 lanes at a time with
//! twice the polynomial degree. With a hard label every output is a sum or
//! product of non-negative pieces — no cancellation:
//!
//! - BCE: `ℓ = softplus(−u)` and `∂ℓ/∂x = ∓σ(−u)`, with `u = ±x` the logit
//!   of the labelled side;
//! - focal: `ℓ = α_t·q^γ·softplus(−u)` and `∂ℓ/∂x = ∓α_t·q^γ·(γ·p_t·softplus(−u) + q)`,
//!   `p_t = σ(u)`, `q = 1 − p_t = σ(−u)`; `q^γ` is `1`, `q` or `q·q` for
//!   `γ = 0, 1, 2` and otherwise `e^{−γ·(max(u, 0) + ln(1 + t))}` by
//!   [`exp32::exp_diff`] of an exact pair (`γ` split in two `f32` parts,
//!   `γ·max(u, 0)` split by an FMA), so that only the ≤ `ln 2` logarithm's
//!   error is multiplied by `γ`.
//!
//! The row functions take a group of whole rows (the loss is element-wise;
//! `for_each_element_row` fixes the groups by the row length). A group with
//! a soft label, a non-finite logit or an invalid label is handed back
//! (the functions return false) and redone by the `f64` rows, which also
//! validate it. The bound of this path against the `f64`
//! kernel rounded to `f32` is the verifier's `F32_SIGMOID_PATH`; at `γ = 0`
//! without `α` the focal row is the BCE row bit for bit.

use multiversion::multiversion;

use super::exp32;
use super::log1p::ln_1p_unit32;
use crate::real::Real;

/// The logistic pieces of the labelled side `u = x` (label 1) or `u = −x`
/// (label 0), in `f32`, for finite `x`, branch-free, from one
/// `t = e^{−|x|}`: `(b, q, p, a, l)` with `b = softplus(−u) = −ln p_t`,
/// `q = σ(−u) = 1 − p_t`, `p = σ(u) = p_t`, `a = max(u, 0)` (exact) and
/// `l = ln(1 + t)`, so that `softplus(u) = a + l`.
#[inline(always)]
fn target_logistic32(x: f32, one: bool) -> (f32, f32, f32, f32, f32) {
    let u = if one { x } else { -x };
    let t = exp32::exp_nonpositive(-x.abs());
    let l = ln_1p_unit32(t);
    let v = 1.0 / (1.0 + t);
    let tv = t * v;
    let up = u >= 0.0;
    let a = if u > 0.0 { u } else { 0.0 };
    let b = (if u < 0.0 { -u } else { 0.0 }) + l;
    (b, if up { tv } else { v }, if up { v } else { tv }, a, l)
}

/// A label read through `Real::re` as two flags: `(y = 1, y ∈ {0, 1})`.
#[inline(always)]
fn hard_label<P: Real>(y: &P) -> (bool, bool) {
    let y = y.re();
    (y == 1.0, (y == 1.0) | (y == 0.0))
}

/// One row of binary cross-entropy with logits (no weights) on the `f32`
/// path: `terms_j = ℓ_j` and `grad_j = round(scale)·∂ℓ_j`. Returns false —
/// the row must be redone by the `f64` row — when a label is not exactly 0
/// or 1 or a logit is not finite.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn bce_row_f32<P: Real>(
    x: &[f32],
    y: &[P],
    scale: f64,
    terms: &mut [f64],
    grad: Option<&mut [f32]>,
) -> bool {
    let g_scale = scale as f32;
    blocked(x, y, terms, grad, |x, one| {
        let (b, q, _, _, _) = target_logistic32(x, one);
        (b, (if one { -g_scale } else { g_scale }) * q)
    })
}

/// Elements per block of [`blocked`].
const BLOCK: usize = 64;

/// Runs `element(x_j, y_j = 1)` — `(value, gradient)` in `f32` — over a
/// row in blocks of [`BLOCK`]: a plain map loop writing the gradient and
/// an `f32` stack buffer of values (which the loop vectorizer turns into
/// 8-lane code; writing the `f64` terms in the same loop held it to 4
/// lanes), then the widening into `terms`. Returns false when a label is not exactly 0 or 1 or a logit is
/// not finite.
#[inline(always)]
fn blocked<P: Real>(
    x: &[f32],
    y: &[P],
    terms: &mut [f64],
    mut grad: Option<&mut [f32]>,
    element: impl Fn(f32, bool) -> (f32, f32),
) -> bool {
    let n = x.len();
    let (y, terms) = (&y[..n], &mut terms[..n]);
    let mut fallback = false;
    let mut values = [0.0f32; BLOCK];
    // Without a gradient buffer the derivatives go to a scratch block.
    let mut discarded = [0.0f32; BLOCK];
    for start in (0..n).step_by(BLOCK) {
        let len = BLOCK.min(n - start);
        let (x, y) = (&x[start..start + len], &y[start..start + len]);
        let derivatives = match grad.as_deref_mut() {
            Some(g) => &mut g[start..start + len],
            None => &mut discarded[..len],
        };
        for j in 0..len {
            let (one, hard) = hard_label(&y[j]);
            fallback |= !hard | !x[j].is_finite();
            (values[j], derivatives[j]) = element(x[j], one);
        }
        for (t, &v) in terms[start..start + len].iter_mut().zip(&values[..len]) {
            *t = f64::from(v);
        }
    }
    !fallback
}

/// One row of the sigmoid focal loss on the `f32` path (see the module
/// docs): `terms_j = α_t·q^γ·b` and `grad_j = round(scale·α_t)·∂_j`, for
/// `γ ≤ f32::MAX` (the caller's check: beyond it `γ·p·b` is `+∞`).
/// Returns false — the row must be redone by the `f64` row — when a label
/// is not exactly 0 or 1 or a logit is not finite.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn sigmoid_focal_row_f32<P: Real>(
    x: &[f32],
    y: &[P],
    alpha: Option<f64>,
    gamma: f64,
    scale: f64,
    terms: &mut [f64],
    grad: Option<&mut [f32]>,
) -> bool {
    // q^γ from (q, max(u, 0), ln(1 + t)), monomorphized per exponent so the
    // element loop stays branch-free.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn row<P: Real>(
        x: &[f32],
        y: &[P],
        alpha: Option<f64>,
        gamma: f64,
        scale: f64,
        terms: &mut [f64],
        grad: Option<&mut [f32]>,
        power: impl Fn(f32, f32, f32) -> f32,
    ) -> bool {
        let (a1, a0) = alpha.map_or((1.0, 1.0), |a| (a, 1.0 - a));
        let (v1, v0) = (a1 as f32, a0 as f32);
        let (g1, g0) = ((scale * a1) as f32, (scale * a0) as f32);
        let gamma32 = gamma as f32;
        blocked(x, y, terms, grad, |xj, one| {
            let (b, q, p, a, l) = target_logistic32(xj, one);
            let m = power(q, a, l);
            let d = m * (gamma32 * p * b + q);
            ((if one { v1 } else { v0 }) * (m * b), (if one { -g1 } else { g0 }) * d)
        })
    }
    if gamma == 0.0 {
        row(x, y, alpha, gamma, scale, terms, grad, |_, _, _| 1.0)
    } else if gamma == 1.0 {
        row(x, y, alpha, gamma, scale, terms, grad, |q, _, _| q)
    } else if gamma == 2.0 {
        row(x, y, alpha, gamma, scale, terms, grad, |q, _, _| q * q)
    } else {
        // γ = γ_hi + γ_lo (γ_lo exact to 2^-48 relative); γ_hi·a = hi + e1
        // exactly (FMA); the rest, e1 + γ_lo·a + γ·l, is small. So the
        // argument −γ·(a + l) reaches exp_diff as the pair (−hi, rest) with
        // only rest's rounding and the error of l.
        let g_hi = gamma as f32;
        let g_lo = (gamma - f64::from(g_hi)) as f32;
        row(x, y, alpha, gamma, scale, terms, grad, move |_, a, l| {
            let hi = g_hi * a;
            let e1 = g_hi.mul_add(a, -hi);
            let rest = g_lo.mul_add(a, e1) + g_hi * l;
            // γ·a beyond f32's range: q^γ is 0 (and e1 would be NaN).
            if hi == f32::INFINITY {
                0.0
            } else {
                exp32::exp_diff(-hi, rest)
            }
        })
    }
}
