//! Fast, vectorizable building blocks of the batch kernels.
//!
//! Every loop here is written to auto-vectorize (no branches in the body,
//! clamps as selects, sums over a fixed number of independent lanes) and is
//! compiled several times by `multiversion` (AVX-512 F/BW/VL/DQ, AVX2 +
//! FMA, AVX, SSE4.1, the baseline); the best version for the running CPU is
//! chosen at run time — no `target-cpu=native` needed. With AVX-512 the
//! same loops run 16 `f32` / 8 `f64` lanes per instruction; the arithmetic,
//! and so every result bit, is the same on every target.
//!
//! Determinism: every reduction uses [`LANES`] accumulators combined in a
//! fixed order, so a row gives the same bits whatever the target and the
//! thread it runs on. Arithmetic is `f64` (inputs are widened on load,
//! outputs rounded once), so the `f32` path is the `f64` path on the same
//! values, rounded once — except the `f32` softmax cross-entropy row with a
//! class target ([`cross_entropy_class_rows_f32`]), whose exponentials are
//! `f32` ([`exp32`], 8 lanes) with `f64` sums: within 3 ulps of the `f64`
//! path rounded (measured 2); and the `f32` rows of binary cross-entropy and
//! the sigmoid focal loss with hard labels ([`logistic32`]), all `f32`:
//! within 6 and `17 + 3γ` ulps (measured 2 and 9).

pub(crate) mod exp;
pub(crate) mod exp32;
pub(crate) mod log1p;
pub(crate) mod logistic32;
pub(crate) mod rows;
pub(crate) mod tempered;

use multiversion::multiversion;

use crate::real::{Float, Real};

/// Number of independent accumulators of the lane sums (two AVX2 vectors of
/// `f64`).
pub(crate) const LANES: usize = 8;

/// Combines lane accumulators in a fixed order.
#[inline(always)]
fn combine(acc: [f64; LANES]) -> f64 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `x / d` from `r = 1/d` (rounded to nearest) without a division:
/// `q = x·r`, the residual `x − q·d` (exact by an FMA), and `q + residual·r`
/// rounded once: Markstein's correction step (Muller et al., "Handbook of
/// Floating-Point Arithmetic", division with an FMA), which rounds the
/// quotient correctly when `q` is within an ulp of `x/d` and nothing
/// underflows. `quotient_is_the_division` checks it bit for bit against
/// `x / d` (`2·10^6` random `x` over `2^±100`, the divisors `1 − t` of
/// common temperatures, divisors with all-ones significands and random
/// ones). One multiplication and two FMAs instead of a division (2.5 % of
/// the bi-tempered benchmark on one core, measured). `x = ±∞` gives NaN
/// (callers mask it).
#[inline(always)]
pub(crate) fn quotient(x: f64, d: f64, r: f64) -> f64 {
    let q = x * r;
    let residual = (-q).mul_add(d, x);
    residual.mul_add(r, q)
}

/// Knuth's TwoSum into a running sum `s` and its compensation `c`
/// (`s + e = u + error` exactly; the error is added to `c`).
#[inline(always)]
pub(crate) fn two_sum(s: &mut f64, c: &mut f64, e: f64) {
    let u = *s + e;
    let bp = u - *s;
    *c += (*s - (u - bp)) + (e - bp);
    *s = u;
}

/// `max_i z_i` of a row in `f64` (`−∞` for an all-`−∞` row; NaN entries are
/// skipped — callers detect them through the exponential pass).
#[inline(always)]
pub(crate) fn row_max_in<T: Float>(row: &[T]) -> f64 {
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

/// The first `j` with `row[j] = m`, or `None` (`m` is a value of `T`, e.g.
/// the row's maximum widened to `f64`, and is compared in `T`).
/// Branch-free within blocks of [`SEARCH_BLOCK`] entries (a vectorized
/// minimum of the matching indices): a search that stops at the first
/// match mispredicts its exit branch on nearly every row, which cost 30 %
/// of the time of a 96-class softmax cross-entropy row.
#[inline(always)]
pub(crate) fn first_index_of_in<T: Float>(row: &[T], m: f64) -> Option<usize> {
    const W: usize = 2 * LANES;
    let m = T::round_from(m);
    for (b, block) in row.chunks(SEARCH_BLOCK).enumerate() {
        // Per lane the smallest matching index (u32::MAX: none yet).
        let mut acc = [u32::MAX; W];
        let mut chunks = block.chunks_exact(W);
        for (i, ch) in (&mut chunks).enumerate() {
            for (l, (a, &z)) in acc.iter_mut().zip(ch).enumerate() {
                let j = (i * W + l) as u32;
                *a = (*a).min(if z == m { j } else { u32::MAX });
            }
        }
        let tail = block.len() - chunks.remainder().len();
        for (l, (a, &z)) in acc.iter_mut().zip(chunks.remainder()).enumerate() {
            *a = (*a).min(if z == m { (tail + l) as u32 } else { u32::MAX });
        }
        let first = acc.iter().fold(u32::MAX, |f, &a| f.min(a));
        if first != u32::MAX {
            return Some(b * SEARCH_BLOCK + first as usize);
        }
    }
    None
}

/// Entries per block of [`first_index_of_in`]'s branch-free search.
const SEARCH_BLOCK: usize = 512;

/// `e_j = exp(z_j − m)` into `out` (same length as `row`), returning
/// `(Σ_j e_j, compensation)`: [`LANES`] running sums, each with the exact
/// rounding error of every addition (Knuth's TwoSum) accumulated beside it,
/// so that `sum + compensation` is the exact sum up to a relative `O(ε)` of
/// the *compensation* (not of the sum) whatever the length and order (all
/// terms are non-negative). The tail shorter than [`LANES`] is padded with
/// `−∞` (whose exponential adds exactly 0), so every element goes through
/// the vector code. A NaN or `+∞` entry makes the sum NaN or `+∞`.
#[inline(always)]
pub(crate) fn exp_shifted_in<T: Float>(row: &[T], m: f64, out: &mut [f64]) -> (f64, f64) {
    #[inline(always)]
    fn chunk(z: &[f64; LANES], m: f64, acc: &mut [f64; LANES], comp: &mut [f64; LANES], d: &mut [f64; LANES]) {
        for (((a, c), e), &z) in acc.iter_mut().zip(comp.iter_mut()).zip(d.iter_mut()).zip(z) {
            *e = exp::exp(z - m);
            two_sum(a, c, *e);
        }
    }
    let mut acc = [0.0; LANES];
    let mut comp = [0.0; LANES];
    let mut src = row.chunks_exact(LANES);
    let mut dst = out.chunks_exact_mut(LANES);
    for (s, d) in (&mut src).zip(&mut dst) {
        let z: [f64; LANES] = std::array::from_fn(|l| s[l].to_f64());
        let d: &mut [f64; LANES] = d.try_into().expect("chunks_exact gives LANES entries");
        chunk(&z, m, &mut acc, &mut comp, d);
    }
    let (tail, tail_out) = (src.remainder(), dst.into_remainder());
    if !tail.is_empty() {
        let z: [f64; LANES] = std::array::from_fn(|l| tail.get(l).map_or(f64::NEG_INFINITY, |z| z.to_f64()));
        let mut d = [0.0; LANES];
        chunk(&z, m, &mut acc, &mut comp, &mut d);
        tail_out.copy_from_slice(&d[..tail_out.len()]);
    }
    // The lanes, in a fixed order, keeping every rounding error.
    let (mut s, mut c) = (0.0, combine(comp));
    for a in acc {
        two_sum(&mut s, &mut c, a);
    }
    (s, c)
}

/// `out_j = round(factor·e_j)` (softmax entries times a row constant).
#[inline(always)]
pub(crate) fn scaled_into_in<T: Float>(e: &[f64], factor: f64, out: &mut [T]) {
    for (o, &e) in out.iter_mut().zip(e) {
        *o = T::round_from(factor * e);
    }
}

/// [`scaled_into_in`], compiled for the running CPU.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn scaled_into<T: Float>(e: &[f64], factor: f64, out: &mut [T]) {
    scaled_into_in(e, factor, out)
}

/// `(m, best, rest)` of a row — its maximum, the first index of it, and
/// `rest = Σ_{j≠best} e^{z_j − m}` — with `e_j = e^{z_j − m}` stored in `e`
/// (`e[best] = 1`). `None` for an invalid row (all `−∞`, a NaN or a `+∞`).
///
/// `Σ_j e_j = s + c` (compensated lane sums) with `e_best = e^0 = 1`
/// exactly; `s − 1` is exact for `s < 2` (Sterbenz), so `rest` keeps the
/// compensated sum's relative accuracy even when tiny (a confident row),
/// and `ln Σ e = ln_1p(rest)`.
#[inline(always)]
pub(crate) fn row_stats_in<T: Float>(row: &[T], e: &mut [f64]) -> Option<(f64, usize, f64)> {
    let m = row_max_in(row);
    if !m.is_finite() {
        return None;
    }
    let best = first_index_of_in(row, m)?;
    let (s, c) = exp_shifted_in(row, m, e);
    let rest = (s - 1.0) + c;
    // NaN (a NaN entry) or +∞ (impossible for valid rows: every term ≤ 1).
    if rest.is_nan() || rest == f64::INFINITY {
        return None;
    }
    Some((m, best, rest))
}

/// [`row_stats_in`], compiled for the running CPU.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn row_stats<T: Float>(row: &[T], e: &mut [f64]) -> Option<(f64, usize, f64)> {
    row_stats_in(row, e)
}

/// One row of softmax cross-entropy with class target `k` and weight `wk`:
/// returns the loss `wk·(ln_1p(rest) − (z_k − m))` (0 when `wk = 0`) and,
/// when `g` is given, writes `g = round(scale·wk·(a − e_k))` with
/// `a = e/s`, `s = 1 + rest`; `e` is scratch of the row's length. `None`
/// for an invalid row (a NaN, a `+∞`, all `−∞`). One dispatch per row:
/// the passes (max, argmax, exponentials with compensated lane sums,
/// gradient) are inlined into the clone chosen for the running CPU.
///
/// The gradient's `k` entry is `a_k − 1` (no cancellation: `a_k ≤ ½` unless
/// `k` is the argmax), and the argmax entry is `1/s` or, for `k = best`,
/// `−rest/s` exactly (never `1/s − 1`).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn cross_entropy_class_row<T: Float>(
    row: &[T],
    k: usize,
    wk: f64,
    scale: f64,
    e: &mut [f64],
    g: Option<&mut [T]>,
) -> Option<f64> {
    let (m, best, rest) = row_stats_in(row, e)?;
    let loss = if wk != 0.0 {
        crate::softmax::nll_term(crate::softmax::log_one_plus(rest), row[k].to_f64(), m, wk)
    } else {
        0.0
    };
    if let Some(g) = g {
        let inv = 1.0 / (1.0 + rest);
        let factor = scale * wk;
        scaled_into_in(e, factor * inv, g);
        g[k] = T::round_from(factor * (e[k] * inv - 1.0));
        g[best] = T::round_from(if k == best {
            -(factor * (rest * inv))
        } else {
            factor * inv
        });
    }
    Some(loss)
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

/// The cross-entropy gradient for target coefficients `q`:
/// `d_j = (e_j / s)·total − q_j` overwrites `e_j`, and `out_j = round(scale·d_j)`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn gradient_into<T: Float>(e: &mut [f64], s: f64, total: f64, q: &[f64], scale: f64, out: &mut [T]) {
    for ((o, e), &q) in out.iter_mut().zip(e).zip(q) {
        let d = (*e / s) * total - q;
        *e = d;
        *o = T::round_from(scale * d);
    }
}

/// `out_j = round((z_j − m) − l)` (log-softmax).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
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
            acc + crate::softmax::nll_term(l, z.to_f64(), m, q)
        } else {
            acc
        }
    })
}

/// Binary cross-entropy with logits, one element: `(loss, ∂loss/∂x)` before
/// the weight `w` and the reduction scale, from the branch-free
/// [`log1p::logistic`] pieces: `ℓ = r·y·softplus(−x) + (1 − y)·softplus(x)`
/// (a zero coefficient contributes 0, also at `x = ±∞`) and
/// `∂ℓ/∂x = (1 − y)·σ(x) − r·y·σ(−x)` (no `1 − σ` cancellation). The sigmoid
/// focal loss builds on the same pieces, so that at `γ = 0` without `α` it
/// reproduces this bit for bit.
#[inline(always)]
pub(crate) fn bce_element(x: f64, y: f64, r: f64) -> (f64, f64) {
    let (sp_pos, sp_neg, sig_pos, sig_neg) = log1p::logistic(x);
    bce_from_logistic(y, r, sp_pos, sp_neg, sig_pos, sig_neg)
}

/// [`bce_element`] from precomputed logistic pieces.
#[inline(always)]
pub(crate) fn bce_from_logistic(y: f64, r: f64, sp_pos: f64, sp_neg: f64, sig_pos: f64, sig_neg: f64) -> (f64, f64) {
    let ry = r * y;
    let positive = if ry != 0.0 { ry * sp_neg } else { 0.0 };
    let negative = if 1.0 - y != 0.0 { (1.0 - y) * sp_pos } else { 0.0 };
    (positive + negative, (1.0 - y) * sig_pos - ry * sig_neg)
}

/// One row of binary cross-entropy with logits: `terms_j = w_j·ℓ_j` and,
/// when `grad` is given, `grad_j = round(scale·w_j·∂ℓ_j)`. Returns false
/// when a logit is NaN or a label is outside `[0, 1]` (labels are read
/// through `Real::re`, exact for `f32`/`f64`).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn bce_row<T: Float, P: Real>(
    x: &[T],
    y: &[P],
    w: &[f64],
    r: &[f64],
    scale: f64,
    terms: &mut [f64],
    grad: Option<&mut [T]>,
) -> bool {
    let n = x.len();
    let (y, w, r, terms) = (&y[..n], &w[..n], &r[..n], &mut terms[..n]);
    let mut bad = false;
    match grad {
        Some(grad) => {
            let grad = &mut grad[..n];
            for j in 0..n {
                let (x, y) = (x[j].to_f64(), y[j].re());
                bad |= x.is_nan() | !(0.0..=1.0).contains(&y);
                let (v, d) = bce_element(x, y, r[j]);
                terms[j] = w[j] * v;
                grad[j] = T::round_from(scale * w[j] * d);
            }
        }
        None => {
            for j in 0..n {
                let (x, y) = (x[j].to_f64(), y[j].re());
                bad |= x.is_nan() | !(0.0..=1.0).contains(&y);
                terms[j] = w[j] * bce_element(x, y, r[j]).0;
            }
        }
    }
    !bad
}

/// Rounds a row's loss terms into `values` (when given) and returns their
/// sum over [`LANES`] accumulators combined in a fixed order.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn terms_into<T: Float>(terms: &[f64], values: Option<&mut [T]>) -> f64 {
    if let Some(values) = values {
        for (v, &t) in values.iter_mut().zip(terms) {
            *v = T::round_from(t);
        }
    }
    lane_sum(terms)
}

/// `out_j = e^{z_j − m}` by the `f32` [`exp32::exp_diff`] (a plain map
/// loop, which the loop vectorizer turns into 8-lane code).
#[inline(always)]
fn exp_diff_into(row: &[f32], m: f32, out: &mut [f32]) {
    for (o, &z) in out.iter_mut().zip(row) {
        *o = exp32::exp_diff(z, m);
    }
}

/// `Σ_j e_j` of `f32` entries in `f64` lane sums ([`LANES`] accumulators
/// combined in a fixed order: the same bits on every target).
#[inline(always)]
fn lane_sum_f64(e: &[f32]) -> f64 {
    // Two sets of LANES accumulators (four AVX2 vectors: the adds' latency
    // is hidden), combined in a fixed order.
    let (mut acc, mut acc2) = ([0.0f64; LANES], [0.0f64; LANES]);
    let mut chunks = e.chunks_exact(2 * LANES);
    for ch in &mut chunks {
        let (lo, hi) = ch.split_at(LANES);
        for ((a, b), (&u, &v)) in acc.iter_mut().zip(acc2.iter_mut()).zip(lo.iter().zip(hi)) {
            *a += f64::from(u);
            *b += f64::from(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f64::from(v);
    }
    for (a, &v) in acc2.iter_mut().zip(chunks.remainder().iter().skip(LANES)) {
        *a += f64::from(v);
    }
    combine(acc) + combine(acc2)
}

/// `Σ_{j ≠ skip} e^{z_j − m}` ([`exp_diff_into`], [`lane_sum_f64`]) with the
/// exponentials left in `out` (`out[skip]` = 0).
#[inline(always)]
fn exp_sum_f32_into(row: &[f32], m: f32, skip: usize, out: &mut [f32]) -> f64 {
    exp_diff_into(row, m, out);
    out[skip] = 0.0;
    let mut total = 0.0;
    for block in out.chunks(SUM_BLOCK) {
        total += lane_sum_f64(block);
    }
    total
}

/// Entries per block of the `f32` exponential sums (a stack buffer in
/// [`exp_sum_f32`]); both sum functions add the blocks' lane sums in order,
/// so the loss bits do not depend on whether the gradient is asked for.
const SUM_BLOCK: usize = 512;

/// [`exp_sum_f32_into`] without keeping the exponentials: blocks of
/// [`SUM_BLOCK`] through a stack buffer, the block sums added in order.
#[inline(always)]
fn exp_sum_f32(row: &[f32], m: f32, skip: usize) -> f64 {
    let mut buf = [0.0f32; SUM_BLOCK];
    let mut total = 0.0;
    for (b, block) in row.chunks(SUM_BLOCK).enumerate() {
        let out = &mut buf[..block.len()];
        exp_diff_into(block, m, out);
        if skip / SUM_BLOCK == b {
            out[skip % SUM_BLOCK] = 0.0;
        }
        total += lane_sum_f64(out);
    }
    total
}

/// `max` of an `f32` row in `f32` ([`LANES`] lanes; NaN entries skipped).
#[inline(always)]
fn row_max_f32_in(row: &[f32]) -> f32 {
    // Four vectors of independent maxima (the max's latency, not its
    // throughput, would bound one accumulator).
    const MAX_LANES: usize = 4 * LANES;
    let mut acc = [f32::NEG_INFINITY; MAX_LANES];
    let mut chunks = row.chunks_exact(MAX_LANES);
    for ch in &mut chunks {
        for (a, &z) in acc.iter_mut().zip(ch) {
            *a = if z > *a { z } else { *a };
        }
    }
    let mut half = [f32::NEG_INFINITY; F32_CHUNK];
    for (h, (&a, &b)) in half.iter_mut().zip(acc[..F32_CHUNK].iter().zip(&acc[F32_CHUNK..])) {
        *h = if b > a { b } else { a };
    }
    let mut m = halving_tree(half, |a, b| if b > a { b } else { a });
    for &z in chunks.remainder() {
        m = if z > m { z } else { m };
    }
    m
}

/// `f32` entries per chunk of [`cross_entropy_short_rows_f32`]: one AVX-512
/// vector, two AVX2 vectors.
const F32_CHUNK: usize = 2 * LANES;

/// Rows per group of [`cross_entropy_class_rows_f32`].
const CLASS_ROWS: usize = 4;

/// Rows per group of `f32` class rows of length `c` for
/// [`cross_entropy_class_group_f32`].
pub(crate) fn class_group(c: usize) -> usize {
    if c < F32_CHUNK { SHORT_ROWS } else { CLASS_ROWS }
}

/// The largest [`class_group`].
pub(crate) const MAX_CLASS_GROUP: usize = SHORT_ROWS;

/// Softmax cross-entropy of a group of `f32` rows with class targets (at most
/// [`class_group`] rows of `c = rows.len() / losses.len()` logits): rows
/// shorter than [`F32_CHUNK`] by [`cross_entropy_short_rows_f32`], others by
/// [`cross_entropy_class_rows_f32`], to the same bits.
pub(crate) fn cross_entropy_class_group_f32(
    rows: &[f32],
    ks: &[usize],
    ws: &[f64],
    scale: f64,
    losses: &mut [f64],
    g: Option<&mut [f32]>,
) -> bool {
    let c = rows.len() / losses.len().max(1);
    if c < F32_CHUNK {
        cross_entropy_short_rows_f32(rows, ks, ws, scale, losses, g)
    } else {
        cross_entropy_class_rows_f32(rows, ks, ws, scale, losses, g)
    }
}

/// The `f32` form of [`cross_entropy_class_row`], on a group of up to
/// [`CLASS_ROWS`] rows of `c` logits (`rows.len() = c·losses.len()`): the
/// exponentials in `f32` ([`exp32::exp_diff`], ≤ 2 ulps, 8 or 16 lanes),
/// their sums in `f64`, the loss and the gradient's target and argmax
/// entries in `f64`, the other gradient entries
/// `e_j · round_f32(scale·w_k/s)` in `f32`. `rest` excludes the argmax term
/// (its lane is zeroed before the sum), so a confident row's tiny loss
/// keeps its relative accuracy. Error: the loss within about 2 ulps, each
/// gradient entry within about 2.5 ulps of `f32`.
///
/// Row `r` has target `ks[r]` of weight `ws[r]`; its loss goes to
/// `losses[r]`. The group runs stage by stage (the maxima of all its rows,
/// then their argmax, then their sums): a row's stages form one chain of
/// dependent latencies (max, sum, logarithm), and short rows (c = 10, 100)
/// spend most of their time waiting on it; the rows of a group are
/// independent chains that the processor overlaps. Every row's bits are
/// those of the row alone. Returns false for an invalid row (NaN, `+∞`,
/// all `−∞`); the caller's validation then finds the error.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn cross_entropy_class_rows_f32(
    rows: &[f32],
    ks: &[usize],
    ws: &[f64],
    scale: f64,
    losses: &mut [f64],
    mut g: Option<&mut [f32]>,
) -> bool {
    let n = losses.len().min(CLASS_ROWS);
    if n == 0 {
        return true;
    }
    let c = rows.len() / n;
    let row = |r: usize| &rows[r * c..(r + 1) * c];
    let mut m = [0.0f32; CLASS_ROWS];
    for (r, m) in m.iter_mut().enumerate().take(n) {
        *m = row_max_f32_in(row(r));
    }
    if m[..n].iter().any(|m| !m.is_finite()) {
        return false;
    }
    let mut best = [0usize; CLASS_ROWS];
    for r in 0..n {
        match first_index_of_in(row(r), f64::from(m[r])) {
            Some(b) => best[r] = b,
            None => return false,
        }
    }
    let mut rest = [0.0f64; CLASS_ROWS];
    for r in 0..n {
        rest[r] = match g.as_deref_mut() {
            Some(out) => exp_sum_f32_into(row(r), m[r], best[r], &mut out[r * c..(r + 1) * c]),
            None => exp_sum_f32(row(r), m[r], best[r]),
        };
    }
    if rest[..n].iter().any(|r| r.is_nan()) {
        return false;
    }
    for r in 0..n {
        let out = g.as_deref_mut().map(|g| &mut g[r * c..(r + 1) * c]);
        losses[r] = finish_class_row(row(r), ks[r], ws[r], scale, (m[r], best[r], rest[r]), out);
    }
    true
}

/// The loss of an `f32` class row, and its gradient from the exponentials
/// `out_j = e^{z_j − m}` (`out[best] = 0`), given `(m, best, rest)`.
#[inline(always)]
fn finish_class_row(
    z: &[f32],
    k: usize,
    wk: f64,
    scale: f64,
    (m, best, rest): (f32, usize, f64),
    out: Option<&mut [f32]>,
) -> f64 {
    let loss = class_row_loss(z, k, wk, m, rest);
    let Some(out) = out else { return loss };
    let factor = class_row_factor(wk, scale, rest);
    let f = factor as f32;
    if f.is_normal() || f == 0.0 {
        for v in out.iter_mut() {
            *v *= f;
        }
    } else {
        // A factor outside f32's normal range: every entry in f64.
        for v in out.iter_mut() {
            *v = (f64::from(*v) * factor) as f32;
        }
    }
    class_row_target_entries(z, k, wk, scale, (m, best, rest), out);
    loss
}

/// The loss `w_k·(ln(1 + rest) − (z_k − m))` of an `f32` class row (0 for
/// `w_k = 0`).
#[inline(always)]
fn class_row_loss(z: &[f32], k: usize, wk: f64, m: f32, rest: f64) -> f64 {
    if wk != 0.0 {
        crate::softmax::nll_term(crate::softmax::log_one_plus(rest), f64::from(z[k]), f64::from(m), wk)
    } else {
        0.0
    }
}

/// The factor `scale·w_k/(1 + rest)` of an `f32` class row's gradient
/// entries `e_j` (rounded to `f32` where that is normal or 0).
#[inline(always)]
fn class_row_factor(wk: f64, scale: f64, rest: f64) -> f64 {
    scale * wk * (1.0 / (1.0 + rest))
}

/// The gradient's argmax and target entries of an `f32` class row, in
/// `f64`, over the scaled exponentials in `out`.
#[inline(always)]
fn class_row_target_entries(
    z: &[f32],
    k: usize,
    wk: f64,
    scale: f64,
    (m, best, rest): (f32, usize, f64),
    out: &mut [f32],
) {
    let inv = 1.0 / (1.0 + rest);
    let factor = scale * wk;
    out[best] = if k == best {
        -(factor * (rest * inv)) as f32
    } else {
        (factor * inv) as f32
    };
    if k != best {
        let e_k = f64::from(exp32::exp_diff(z[k], m));
        out[k] = (factor * (e_k * inv - 1.0)) as f32;
    }
}

/// `x_0 ∘ x_1 ∘ … ∘ x_15` for an associative, commutative `∘` (max, min),
/// as a halving tree: 4 vector steps, where a left-to-right fold is a chain
/// of 15 dependent scalar steps.
#[inline(always)]
fn halving_tree<X: Copy>(x: [X; F32_CHUNK], op: impl Fn(X, X) -> X) -> X {
    let mut x8 = [x[0]; 8];
    for (j, y) in x8.iter_mut().enumerate() {
        *y = op(x[j], x[j + 8]);
    }
    let mut x4 = [x8[0]; 4];
    for (j, y) in x4.iter_mut().enumerate() {
        *y = op(x8[j], x8[j + 4]);
    }
    op(op(x4[0], x4[2]), op(x4[1], x4[3]))
}

/// Rows per group of [`cross_entropy_short_rows_f32`].
pub(crate) const SHORT_ROWS: usize = 16;

/// [`cross_entropy_class_rows_f32`] for rows shorter than [`F32_CHUNK`]
/// (c = 10, say), on a group of up to [`SHORT_ROWS`] rows, to the same bits:
/// every loop there would be its scalar tail, and each row's short chain of
/// stages (maximum, argmax, exponentials, sum) would run on its own. Here
/// the group is transposed once into columns `x[l][r] = z_{r,l}` (padded
/// with `−∞` past a row and past the group), and every stage runs across
/// the rows, one vector operation per class: the maxima, the first argmax
/// (`min l` with `x[l][r] = m_r`), the exponentials (`0` at the argmax and
/// in the padding, as there), the lane sums in [`lane_sum_f64`]'s order
/// (`combine` of lanes 0–7 plus `combine` of lanes 8–15, in `f64`) and the
/// gradient's scaling by each row's factor (in `f64` for a row whose factor
/// is not a normal `f32`, as there); the gradient is transposed back, and
/// the loss and the target and argmax entries are formed per row.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn cross_entropy_short_rows_f32(
    rows: &[f32],
    ks: &[usize],
    ws: &[f64],
    scale: f64,
    losses: &mut [f64],
    g: Option<&mut [f32]>,
) -> bool {
    let n = losses.len().min(SHORT_ROWS);
    if n == 0 {
        return true;
    }
    let c = rows.len() / n;
    if c == 0 || c >= F32_CHUNK {
        return false;
    }
    let mut x = [[f32::NEG_INFINITY; SHORT_ROWS]; F32_CHUNK];
    for (r, row) in rows.chunks_exact(c).take(n).enumerate() {
        for (col, &v) in x.iter_mut().zip(row) {
            col[r] = v;
        }
    }
    let mut m = x[0];
    for col in &x[1..c] {
        for (mr, &v) in m.iter_mut().zip(col) {
            *mr = if v > *mr { v } else { *mr };
        }
    }
    if m[..n].iter().any(|m| !m.is_finite()) {
        return false;
    }
    // The padding rows (all −∞) get m = 0: their exponentials are 0.
    m[n..].fill(0.0);
    let mut best = [0u32; SHORT_ROWS];
    for (l, col) in x.iter().enumerate().take(c).rev() {
        for ((b, &v), &mr) in best.iter_mut().zip(col).zip(&m) {
            *b = if v == mr { l as u32 } else { *b };
        }
    }
    let mut e = [[0.0f32; SHORT_ROWS]; F32_CHUNK];
    for (l, (ecol, col)) in e.iter_mut().zip(&x).enumerate().take(c) {
        for (((ev, &v), &mr), &b) in ecol.iter_mut().zip(col).zip(&m).zip(&best) {
            let v = exp32::exp_diff(v, mr);
            *ev = if b == l as u32 { 0.0 } else { v };
        }
    }
    let mut rest = [0.0f64; SHORT_ROWS];
    for (r, rv) in rest.iter_mut().enumerate() {
        let a = |l: usize| f64::from(e[l][r]);
        let low = [a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7)];
        let high = [a(8), a(9), a(10), a(11), a(12), a(13), a(14), a(15)];
        *rv = combine(low) + combine(high);
    }
    if rest[..n].iter().any(|r| r.is_nan()) {
        return false;
    }
    let row = |r: usize| &rows[r * c..(r + 1) * c];
    for r in 0..n {
        losses[r] = class_row_loss(row(r), ks[r], ws[r], m[r], rest[r]);
    }
    let Some(g) = g else { return true };
    let (mut factor, mut normal) = ([0.0f64; SHORT_ROWS], [true; SHORT_ROWS]);
    for r in 0..n {
        factor[r] = class_row_factor(ws[r], scale, rest[r]);
        let f = factor[r] as f32;
        normal[r] = f.is_normal() || f == 0.0;
    }
    for col in e.iter_mut().take(c) {
        for ((v, &fr), &nr) in col.iter_mut().zip(&factor).zip(&normal) {
            let (in32, in64) = (*v * fr as f32, (f64::from(*v) * fr) as f32);
            *v = if nr { in32 } else { in64 };
        }
    }
    for (r, out) in g.chunks_exact_mut(c).take(n).enumerate() {
        for (o, col) in out.iter_mut().zip(&e) {
            *o = col[r];
        }
        let stats = (m[r], best[r] as usize, rest[r]);
        class_row_target_entries(row(r), ks[r], ws[r], scale, stats, out);
    }
    true
}

/// `Σ xs` over [`LANES`] lanes combined in a fixed order.
#[inline(always)]
pub(crate) fn lane_sum(xs: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for ch in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(ch) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += x;
    }
    combine(acc)
}

/// A seeded stream of uniform numbers in `[0, 1)` (xorshift64) for the
/// kernels' tests.
#[cfg(test)]
pub(crate) fn uniform_stream(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short-row kernel gives the bits of the general group kernel (run
    /// one row at a time) on every row length it takes: values and
    /// gradients, with ties, masked (`−∞`) classes and an all-but-one masked
    /// row, and rejects a NaN row as the general kernel does.
    #[test]
    fn short_rows_give_the_bits_of_the_general_kernel() {
        let mut next = uniform_stream(0x5eed);
        for c in 1..F32_CHUNK {
            for n in [1, 5, SHORT_ROWS] {
                let mut z: Vec<f32> = (0..n * c).map(|_| ((next() - 0.5) * 60.0) as f32).collect();
                z[0] = z[n * c - 1];
                if c > 2 {
                    z[1] = f32::NEG_INFINITY;
                    for v in &mut z[(n - 1) * c..n * c - 1] {
                        *v = f32::NEG_INFINITY;
                    }
                }
                let ks: Vec<usize> = (0..n).map(|r| (r * 7 + 3) % c).collect();
                // One weight 0 (loss and gradient 0); scale 1e-42 makes every
                // factor a subnormal f32 (the rows scaled in f64).
                let ws: Vec<f64> = (0..n).map(|r| if r == 2 { 0.0 } else { 0.5 + next() }).collect();
                for scale in [0.3, 1e-42] {
                    let (mut l1, mut g1) = (vec![0.0; n], vec![0.0f32; n * c]);
                    assert!(cross_entropy_short_rows_f32(
                        &z,
                        &ks,
                        &ws,
                        scale,
                        &mut l1,
                        Some(&mut g1)
                    ));
                    let mut l0 = vec![0.0; n];
                    assert!(cross_entropy_short_rows_f32(&z, &ks, &ws, scale, &mut l0, None));
                    for r in 0..n {
                        let (mut l2, mut g2) = ([0.0], vec![0.0f32; c]);
                        let row = &z[r * c..(r + 1) * c];
                        let (k, w) = (&ks[r..=r], &ws[r..=r]);
                        assert!(cross_entropy_class_rows_f32(row, k, w, scale, &mut l2, Some(&mut g2)));
                        assert_eq!(l1[r].to_bits(), l2[0].to_bits(), "c={c} n={n} row {r}");
                        assert_eq!(l0[r].to_bits(), l2[0].to_bits(), "c={c} n={n} row {r}");
                        let bits = |g: &[f32]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&g1[r * c..(r + 1) * c]),
                            bits(&g2),
                            "c={c} n={n} row {r} scale {scale}"
                        );
                    }
                }
                let mut l1 = vec![0.0; n];
                z[n * c / 2] = f32::NAN;
                assert!(!cross_entropy_short_rows_f32(&z, &ks, &ws, 0.3, &mut l1, None));
                z[n * c / 2] = f32::INFINITY;
                assert!(!cross_entropy_short_rows_f32(&z, &ks, &ws, 0.3, &mut l1, None));
            }
        }
    }

    /// [`quotient`] is the division, bit for bit, for normal operands.
    #[test]
    fn quotient_is_the_division() {
        let mut next = uniform_stream(0xd1);
        let mut divisors: Vec<f64> = [0.8, 1.2, 0.5, 1.5, 2.0, 4.0, 0.3, 0.7, 0.9, 1.1, 0.99, 1.01]
            .iter()
            .map(|t| 1.0 - t)
            .collect();
        divisors.extend([
            f64::from_bits(0x3fff_ffff_ffff_ffff),
            -f64::from_bits(0x3fef_ffff_ffff_ffff),
        ]);
        divisors.extend((0..6).map(|_| (next() - 0.5) * 1e3));
        let mut wrong = 0;
        for &d in &divisors {
            let r = 1.0 / d;
            for _ in 0..100_000 {
                let x = (next() - 0.5) * 2f64.powi((next() * 200.0) as i32 - 100);
                wrong += usize::from(quotient(x, d, r).to_bits() != (x / d).to_bits());
            }
        }
        assert_eq!(wrong, 0, "{wrong} quotients differ from the division");
        // The check rejects a quotient without its correction step.
        let (x, d) = (1.0, 0.2f64);
        let off = (0..1000).filter(|&i| {
            let x = x + f64::from(i) * 1e-3;
            x * (1.0 / d) != x / d
        });
        assert!(off.count() > 0);
    }

    /// The branch-free search returns the first match, in every position of
    /// a chunk, of the tail and of a later block, in `f32` and `f64`, and
    /// `None` without a match; against a plain `position`.
    #[test]
    fn first_index_of_finds_the_first_match() {
        for len in [
            1usize,
            7,
            16,
            17,
            100,
            SEARCH_BLOCK - 1,
            SEARCH_BLOCK,
            SEARCH_BLOCK + 3,
            3 * SEARCH_BLOCK + 5,
        ] {
            let row: Vec<f32> = (0..len).map(|j| ((j * 37) % 11) as f32 - 5.0).collect();
            for first in [0, len / 3, len / 2, len - 1] {
                for second in [first, (first + 1).min(len - 1), len - 1] {
                    let mut r = row.clone();
                    r[second] = 9.0;
                    r[first] = 9.0;
                    let want = r.iter().position(|&z| z == 9.0);
                    assert_eq!(first_index_of_in(&r, 9.0), want, "len {len}, {first}, {second}");
                    let r64: Vec<f64> = r.iter().map(|&z| f64::from(z)).collect();
                    assert_eq!(first_index_of_in(&r64, 9.0), want, "f64, len {len}, {first}, {second}");
                }
            }
            assert_eq!(first_index_of_in(&row, 9.0), None);
        }
    }
}
