//! Fast, vectorizable building blocks of the batch kernels.
//!
//! Every loop here is written to auto-vectorize (no branches in the body,
//! clamps as selects, sums over a fixed number of independent lanes) and is
//! compiled several times by `multiversion` (AVX2 + FMA, AVX, SSE4.1, the
//! baseline); the best version for the running CPU is chosen at run time —
//! no `target-cpu=native` needed.
//!
//! Determinism: every reduction uses [`LANES`] accumulators combined in a
//! fixed order, so a row gives the same bits whatever the target and the
//! thread it runs on. All arithmetic is `f64` (inputs are widened on load,
//! outputs rounded once), so the `f32` path is the `f64` path on the same
//! values, rounded once.

pub(crate) mod exp;
pub(crate) mod rows;

use multiversion::multiversion;

use crate::binary_cross_entropy::{sigmoid, softplus};
use crate::real::Float;

/// Number of independent accumulators of the lane sums (two AVX2 vectors of
/// `f64`).
pub(crate) const LANES: usize = 8;

/// Combines lane accumulators in a fixed order.
#[inline(always)]
fn combine(acc: [f64; LANES]) -> f64 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `max_i z_i` of a row in `f64` (`−∞` for an all-`−∞` row; NaN entries are
/// skipped — callers detect them through the exponential pass).
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx", "x86_64+sse4.1"))]
pub(crate) fn row_max<T: Float>(row: &[T]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for ch in &mut chunks {
        for (a, &z) in acc.iter_mut().zip(ch) {
            let z = z.to_f64();
            *a = if z > *a { z } else { *a };
        }
    }
    let mut m = acc.iter().fold(f64::NEG_INFINITY, |m, &a| if a > m { a } else { m });
    for &z in chunks.remainder() {
        let z = z.to_f64();
        m = if z > m { z } else { m };
    }
    m
}

/// `e_j = exp(z_j − m)` into `out` (same length as `row`), returning `Σ_j e_j`
/// (lane sums in a fixed order). A NaN or `+∞` entry makes the sum NaN or `+∞`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx", "x86_64+sse4.1"))]
pub(crate) fn exp_shifted<T: Float>(row: &[T], m: f64, out: &mut [f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let mut src = row.chunks_exact(LANES);
    let mut dst = out.chunks_exact_mut(LANES);
    for (s, d) in (&mut src).zip(&mut dst) {
        for ((a, e), &z) in acc.iter_mut().zip(d).zip(s) {
            *e = exp::exp(z.to_f64() - m);
            *a += *e;
        }
    }
    for ((a, e), &z) in acc.iter_mut().zip(dst.into_remainder()).zip(src.remainder()) {
        *e = exp::exp(z.to_f64() - m);
        *a += *e;
    }
    combine(acc)
}

/// `Σ_j e_j` with Neumaier's compensation: error ≤ 2ε·Σ|e_j| regardless of
/// the length (a plain sequential sum can lose c·ε). The same operations
/// in the same order as the generic `softmax::compensated_sum`.
#[inline]
pub(crate) fn compensated_sum(e: &[f64]) -> f64 {
    let (mut s, mut comp) = (0.0f64, 0.0f64);
    for &x in e {
        let t = s + x;
        comp += if s.abs() >= x.abs() { (s - t) + x } else { (x - t) + s };
        s = t;
    }
    s + comp
}

/// `out_j = round(e_j / s)` (softmax).
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx", "x86_64+sse4.1"))]
pub(crate) fn divide_into<T: Float>(e: &[f64], s: f64, out: &mut [T]) {
    for (o, &e) in out.iter_mut().zip(e) {
        *o = T::round_from(e / s);
    }
}

/// The cross-entropy gradient: `d_j = (e_j / s)·total − q_j` (`q_j = 0`
/// when `q` is `None`) overwrites `e_j`, and `out_j = round(scale·d_j)`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx", "x86_64+sse4.1"))]
pub(crate) fn gradient_into<T: Float>(e: &mut [f64], s: f64, total: f64, q: Option<&[f64]>, scale: f64, out: &mut [T]) {
    match q {
        None => {
            for (o, e) in out.iter_mut().zip(e) {
                let d = (*e / s) * total;
                *e = d;
                *o = T::round_from(scale * d);
            }
        }
        Some(q) => {
            for ((o, e), &q) in out.iter_mut().zip(e).zip(q) {
                let d = (*e / s) * total - q;
                *e = d;
                *o = T::round_from(scale * d);
            }
        }
    }
}

/// `out_j = round((z_j − m) − l)` (log-softmax).
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx", "x86_64+sse4.1"))]
pub(crate) fn shift_into<T: Float>(row: &[T], m: f64, l: f64, out: &mut [T]) {
    for (o, &z) in out.iter_mut().zip(row) {
        *o = T::round_from((z.to_f64() - m) - l);
    }
}

/// `Σ_{q_j ≠ 0} (l − (z_j − m)) · q_j` summed in row order like the
/// definition (a zero coefficient contributes 0 even where `z_j = −∞`).
#[inline]
pub(crate) fn weighted_nll<T: Float>(row: &[T], q: &[f64], m: f64, l: f64) -> f64 {
    row.iter().zip(q).fold(0.0, |acc, (&z, &q)| {
        if q != 0.0 {
            acc + (l - (z.to_f64() - m)) * q
        } else {
            acc
        }
    })
}

/// Binary cross-entropy with logits, one element: `(loss, ∂loss/∂x)` before
/// the weight `w` and the reduction scale. The same expressions, in the same
/// order, as the crate's earlier scalar kernel (`softplus`, `sigmoid` with
/// the standard library's `exp`/`ln_1p`): other kernels (sigmoid focal loss
/// at γ = 0) are tested to reproduce it bit for bit.
#[inline(always)]
fn bce_element(x: f64, y: f64, r: f64) -> (f64, f64) {
    let mut l = 0.0;
    if r * y != 0.0 {
        l += r * y * softplus(-x);
    }
    if 1.0 - y != 0.0 {
        l += (1.0 - y) * softplus(x);
    }
    (l, (1.0 - y) * sigmoid(x) - r * y * sigmoid(-x))
}

/// One row of binary cross-entropy with logits: `loss_j = w_j·ℓ_j` and
/// `grad_j = round(scale·w_j·∂ℓ_j)`; returns false when a logit is NaN.
pub(crate) fn bce_row<T: Float>(
    x: &[T],
    y: &[f64],
    w: &[f64],
    r: &[f64],
    scale: f64,
    loss: &mut [f64],
    grad: &mut [T],
) -> bool {
    let mut nan = false;
    for (((((&x, &y), &w), &r), l), g) in x.iter().zip(y).zip(w).zip(r).zip(loss.iter_mut()).zip(grad.iter_mut()) {
        let x = x.to_f64();
        nan |= x.is_nan();
        let (v, d) = bce_element(x, y, r);
        *l = w * v;
        *g = T::round_from(scale * w * d);
    }
    !nan
}

/// As [`bce_row`] without the gradient.
pub(crate) fn bce_row_loss<T: Float>(x: &[T], y: &[f64], w: &[f64], r: &[f64], loss: &mut [f64]) -> bool {
    let mut nan = false;
    for ((((&x, &y), &w), &r), l) in x.iter().zip(y).zip(w).zip(r).zip(loss.iter_mut()) {
        let x = x.to_f64();
        nan |= x.is_nan();
        *l = w * bce_element(x, y, r).0;
    }
    !nan
}
