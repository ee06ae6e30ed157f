//! The tempered-softmax normalizer's passes over a row and the
//! bi-tempered gradient, vectorized (see `crate::tempered` for the solver
//! and the general log-space paths).

use multiversion::multiversion;

use super::{LANES, combine, exp, exp32, first_index_of_in, lane_sum, log1p, quotient, row_max_in, two_sum};
use crate::real::{Float, Real};

/// `(S − 1, Q, R)` with `S = Σ_i exp_t(z_i − λ)`, `Q = Σ_i exp_t(z_i − λ)^t`
/// and `R = Σ_i exp_t(z_i − λ)^{2t−1}` for the tempered-softmax normalizer
/// (`t ≠ 1`, shifted logits `z ≤ 0` of which `top` are exactly 0),
/// vectorized: `exp_t(x) = e^{ln1p((1−t)x)/(1−t)}` with the branch-free
/// [`log1p::ln_1p`] and [`exp::exp`] (≤ 2 and ≤ 1 ulp), `exp_t^t =
/// exp_t/b` and `exp_t^{2t−1} = exp_t/b²` (`b = 1 + (1−t)x`); `0` outside the
/// finite support and at `z = −∞`.
///
/// The residual `S − 1` is formed as [`top_residual`] plus the sum of the
/// other entries (a tree of TwoSum additions with their rounding errors
/// kept, [`compensated_tree_sum_into`]), not as a rounded `S` minus 1: near a root
/// with one dominant entry (`p_top ≈ 1`) the residual is then resolved far
/// below `ε`, as the softmax's `ln(1 + Σ_{j≠max} e^{z_j − m})` is. `Q` and
/// `R` (which only scale a step) are plain lanes; all combined in a fixed
/// order.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_sums(z: &[f64], top: usize, lambda: f64, t: f64) -> (f64, f64, f64) {
    #[inline(always)]
    fn powers(zi: f64, lambda: f64, t: f64) -> (f64, f64, f64) {
        let k = 1.0 - t;
        let kx = k * (zi - lambda);
        let outside = kx <= -1.0 || zi == f64::NEG_INFINITY;
        let p = exp::exp(log1p::ln_1p(kx) / k);
        let inv = 1.0 / (1.0 + kx);
        let pt = p * inv;
        let pr = pt * inv;
        if outside { (0.0, 0.0, 0.0) } else { (p, pt, pr) }
    }
    // Blocks through stack buffers: a plain map loop (which the loop
    // vectorizer handles; one fused loop over lane arrays stayed scalar),
    // then the lane sums over the block (padded with zeros).
    const BLOCK: usize = 256;
    let (mut acc, mut comp, mut q, mut r) = ([0.0; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let (mut pb, mut qb, mut rb) = ([0.0f64; BLOCK], [0.0f64; BLOCK], [0.0f64; BLOCK]);
    for block in z.chunks(BLOCK) {
        let len = block.len().div_ceil(LANES) * LANES;
        for (((p, pt), pr), &zi) in pb.iter_mut().zip(qb.iter_mut()).zip(rb.iter_mut()).zip(block) {
            (*p, *pt, *pr) = powers(zi, lambda, t);
            // The top entries' p − 1 is added apart (`top_residual`).
            *p = if zi == 0.0 { 0.0 } else { *p };
        }
        pb[block.len()..].fill(0.0);
        qb[block.len()..len].fill(0.0);
        rb[block.len()..len].fill(0.0);
        compensated_tree_sum_into(&mut pb, &mut acc, &mut comp);
        for (qc, rc) in qb[..len].chunks_exact(LANES).zip(rb[..len].chunks_exact(LANES)) {
            for i in 0..LANES {
                q[i] += qc[i];
                r[i] += rc[i];
            }
        }
    }
    let (mut s, mut c) = (top_residual(top, lambda, t), combine(comp));
    for a in acc {
        two_sum(&mut s, &mut c, a);
    }
    (s + c, combine(q), combine(r))
}

/// `top·exp_t(−λ) − 1` for the `top` entries with `z = 0`, as
/// `(top − 1) + top·expm1(ln1p(−(1−t)λ)/(1−t))` (`libm`'s `ln_1p` and
/// `exp_m1`): accurate relative to itself for one top entry, where the
/// rounded `exp_t(−λ) ≈ 1` would carry an absolute error near `ε`.
pub(crate) fn top_residual(top: usize, lambda: f64, t: f64) -> f64 {
    let k = 1.0 - t;
    let m = top as f64;
    (m - 1.0) + m * ((-k * lambda).ln_1p() / k).exp_m1()
}

/// Bits of `|1/(1 − t)|` that [`integer_exponent`] allows (`≤ 31`).
const INTEGER_EXPONENT_BITS: u32 = 5;

/// `1/(1 − t)` when it is an integer `n`, `1 ≤ |n| < 2^`[`INTEGER_EXPONENT_BITS`]
/// (`t` = 0.8, 1.2, 0.5, 1.5, 2, 0.9, 1.1, …), to within `2^-32` of
/// it (the decimal temperatures' `f64` rounding leaves `1/(1 − t)` within
/// about `10^-15·n²` of `n`): then `b^n` differs from `b^{1/(1−t)}` by a
/// relative `|1/(1−t) − n|·|ln b| ≤ 2^-32·89` for every `f32` base, below
/// `f32`'s rounding, and [`tempered_sums32`] takes the power by repeated
/// squaring instead of a log and an exponential.
fn integer_exponent(t: f64) -> Option<i32> {
    const INTEGER_EXPONENT_TOLERANCE: f64 = 2.3283064365386963e-10;
    let exponent = 1.0 / (1.0 - t);
    let n = exponent.round();
    let fits = n != 0.0 && n.abs() < f64::from(1u32 << INTEGER_EXPONENT_BITS);
    (fits && (exponent - n).abs() <= INTEGER_EXPONENT_TOLERANCE).then_some(n as i32)
}

/// [`tempered_sums`] in `f32` arithmetic (8 lanes with AVX2, 16 with
/// AVX-512; `S − 1` as the `f32`-accurate `S` minus 1), for the first
/// phase of the normalizer's solver, whose `λ` is only a starting point:
/// `x = z_i − λ` is formed in `f64` and rounded, then
/// `p = e^{ln(1 + (1−t)x)/(1−t)}` with [`log1p::ln32`] and
/// [`exp32::exp_nonpositive`] (or `b^n` by squaring where `1/(1−t)` is an
/// integer `n`, [`integer_exponent`]), `p^t = p/(1 + (1−t)x)` and
/// `p^{2t−1} = p^t/(1 + (1−t)x)`, each block summed by a tree in `f32`
/// ([`tree_sum_into`], down to [`F32_LANES`] lanes) into `f64` lanes. `S` and `Q` are
/// within `2^-20` relative of [`tempered_sums`]', `R` within `2^-18` (it
/// weighs the entries near the edge of a finite support by `1/b²`, where
/// `ln32` near 1 is only absolutely accurate; it only enters Halley's
/// correction factor): measured `6.1e-7`, `6.8e-7` and `1.7e-6` over nine
/// temperatures in the tests below.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_sums32(z: &[f64], lambda: f64, t: f64) -> (f64, f64, f64) {
    let k = (1.0 - t) as f32;
    let inv_k = 1.0 / k;
    let exponent = integer_exponent(t);
    const BLOCK: usize = 256;
    let (mut s, mut q, mut r) = ([0.0; F32_LANES], [0.0; F32_LANES], [0.0; F32_LANES]);
    let (mut pb, mut qb, mut rb) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0f32; BLOCK]);
    let mut xb = [0.0f32; BLOCK];
    for block in z.chunks(BLOCK) {
        // Two loops, so that the f32 one runs 8 lanes wide (a loop reading
        // f64 runs 4 wide).
        for (x, &zi) in xb.iter_mut().zip(block) {
            *x = (zi - lambda) as f32;
        }
        let entries = pb
            .iter_mut()
            .zip(qb.iter_mut())
            .zip(rb.iter_mut())
            .zip(&xb[..block.len()]);
        // p = b^{1/k}, by repeated squaring where 1/k is an integer, else as
        // e^{ln(b)/k}; then p^t = p/b, p^{2t−1} = p^t/b.
        let powers = |x: f32, base: f32, inv: f32, power: f32| {
            // Subnormal bases (p below f32's range anyway) count as outside.
            let outside = base < f32::MIN_POSITIVE || x == f32::NEG_INFINITY;
            let vt = power * inv;
            if outside {
                (0.0, 0.0, 0.0)
            } else {
                (power, vt, vt * inv)
            }
        };
        if let Some(n) = exponent {
            let (bits, invert) = (n.unsigned_abs(), n < 0);
            for (((p, pt), pr), &x) in entries {
                let base = k.mul_add(x, 1.0);
                let inv = 1.0 / base;
                let mut square = if invert { inv } else { base };
                let mut power = 1.0f32;
                for bit in 0..INTEGER_EXPONENT_BITS {
                    power *= if bits >> bit & 1 == 1 { square } else { 1.0 };
                    square *= square;
                }
                (*p, *pt, *pr) = powers(x, base, inv, power);
            }
        } else {
            for (((p, pt), pr), &x) in entries {
                let base = k.mul_add(x, 1.0);
                let inv = 1.0 / base;
                (*p, *pt, *pr) = powers(x, base, inv, exp32::exp_nonpositive(log1p::ln32(base) * inv_k));
            }
        }
        for buf in [&mut pb, &mut qb, &mut rb] {
            buf[block.len()..].fill(0.0);
        }
        tree_sum_into(&mut pb, &mut s);
        tree_sum_into(&mut qb, &mut q);
        tree_sum_into(&mut rb, &mut r);
    }
    let combine16 = |acc: [f64; F32_LANES]| {
        let (lo, hi) = acc.split_at(LANES);
        combine(lo.try_into().expect("8 lanes")) + combine(hi.try_into().expect("8 lanes"))
    };
    (combine16(s) - 1.0, combine16(q), combine16(r))
}

/// Lanes of the `f32` sums' `f64` accumulators (one AVX-512 vector of
/// `f32`).
const F32_LANES: usize = 2 * LANES;

/// Adds a block of terms into the TwoSum lanes `acc`/`comp` by a pairwise
/// tree of exact additions (halving the block in place, as
/// [`tree_sum_into`]): each level's pair sums are rounded and their exact
/// rounding errors (Knuth's TwoSum) summed beside them, so that the block's
/// `Σ acc + Σ comp` is its exact sum up to a relative `O(ε)` of the
/// compensation, as [`two_sum`] lane by lane gives. Each level is a map
/// loop over the halves, full width; lane-by-lane TwoSum over the chunks
/// was compiled 2 wide with shuffles (2 % of the bi-tempered benchmark on
/// one core, measured).
#[inline(always)]
fn compensated_tree_sum_into(buf: &mut [f64; 256], acc: &mut [f64; LANES], comp: &mut [f64; LANES]) {
    // `errors[i]`: the rounding errors of the pair sums below `buf[i]`.
    let mut errors = [0.0f64; 128];
    let (lo, hi) = buf.split_at_mut(128);
    for ((a, &b), err) in lo.iter_mut().zip(&*hi).zip(errors.iter_mut()) {
        two_sum(a, err, b);
    }
    let mut half = 64;
    while half >= LANES {
        let (lo, hi) = buf[..2 * half].split_at_mut(half);
        let (elo, ehi) = errors[..2 * half].split_at_mut(half);
        for (((a, &b), ea), &eb) in lo.iter_mut().zip(&*hi).zip(elo.iter_mut()).zip(&*ehi) {
            *ea += eb;
            two_sum(a, ea, b);
        }
        half /= 2;
    }
    for (((a, c), &v), &e) in acc
        .iter_mut()
        .zip(comp.iter_mut())
        .zip(&buf[..LANES])
        .zip(&errors[..LANES])
    {
        two_sum(a, c, v);
        *c += e;
    }
}

/// Adds a block of non-negative terms into the `L` `f64` lanes `acc` by a
/// pairwise tree in the block's own type (halving the block in place down
/// to `L` entries: `log2(256/L)` levels, so the block's relative error is
/// at most `log2(256/L)·u`, `u = 2^-24` in `f32`, `2^-53` in `f64`) and its
/// `L` lane sums widened into `acc`. Vectorized (each level is a plain map
/// loop), where lane-by-lane accumulation with a widening stayed scalar;
/// the `f32` sums end at 16 lanes (one AVX-512 vector, widened as whole
/// vectors; 8 left a scalar tail of widening additions).
#[inline(always)]
fn tree_sum_into<F: Copy + std::ops::AddAssign + Into<f64>, const L: usize>(buf: &mut [F; 256], acc: &mut [f64; L]) {
    let mut half = buf.len() / 2;
    while half >= L {
        let (lo, hi) = buf.split_at_mut(half);
        for (a, &b) in lo.iter_mut().zip(&hi[..half]) {
            *a += b;
        }
        half /= 2;
    }
    for (a, &v) in acc.iter_mut().zip(&buf[..L]) {
        *a += v.into();
    }
}

/// `ln exp_t(z − λ) = ln1p(k(z − λ))/k` with `k = 1 − t` (`−∞` outside the
/// finite support, at `z = −∞` and where `k(z − λ)` overflows): one entry
/// of [`tempered_logs_into`]. The division by `k` is the [`quotient`] by
/// `inv_k = 1/k` (the same bits; 2.5 % of the bi-tempered benchmark's time
/// on one core, measured).
#[inline(always)]
fn ln_p_at(z: f64, lambda: f64, k: f64, inv_k: f64) -> f64 {
    let ku = k * (z - lambda);
    let l = quotient(log1p::ln_1p(ku), k, inv_k);
    if ku <= -1.0 || z == f64::NEG_INFINITY || l.is_nan() {
        f64::NEG_INFINITY
    } else {
        l
    }
}

/// `1/b` with `b = 1 + k(z − λ)` (`0` where `b ≤ 0`): one entry of
/// [`tempered_logs_into`].
#[inline(always)]
fn inv_base_at(z: f64, lambda: f64, k: f64) -> f64 {
    let base = 1.0 + k * (z - lambda);
    if base > 0.0 { 1.0 / base } else { 0.0 }
}

/// `ln p_i = ln exp_t(z_i − λ) = ln1p((1−t)(z_i − λ))/(1−t)` (`t ≠ 1`; `−∞`
/// outside the finite support and at `z_i = −∞`) and `p_i = e^{ln p_i}`,
/// as vectorized map loops ([`log1p::ln_1p`], [`exp::exp`]). Where
/// `(1−t)(z_i − λ)` overflows (`t > 1`, `|z_i|` near `f64::MAX`) the log
/// comes out `−∞` here; the caller replaces those entries.
///
/// Also writes `1/b_i` with `b_i = 1 + (1−t)(z_i − λ)` (so that
/// `p_i^t = p_i/b_i`; `0` where `b_i ≤ 0`, outside the support, or
/// `b_i = +∞`), and returns `(Σ p_i − 1, Σ p_i^t, Σ p_i^{2t−1})` at this `λ`
/// as [`tempered_sums`] forms them (`top` entries with `z = 0`), so that the
/// solver can check a root it predicted, or take its last Halley step,
/// without another pass.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_logs_into(
    z: &[f64],
    top: usize,
    lambda: f64,
    t: f64,
    ln_p: &mut [f64],
    p: &mut [f64],
    inv_base: &mut [f64],
) -> (f64, f64, f64) {
    let k = 1.0 - t;
    let inv_k = 1.0 / k;
    for (lp, &zi) in ln_p.iter_mut().zip(z) {
        *lp = ln_p_at(zi, lambda, k, inv_k);
    }
    for (pi, &lp) in p.iter_mut().zip(ln_p.iter()) {
        *pi = exp::exp(lp);
    }
    const BLOCK: usize = 256;
    let (mut acc, mut comp, mut q, mut r) = ([0.0; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let (mut pb, mut qb, mut rb) = ([0.0f64; BLOCK], [0.0f64; BLOCK], [0.0f64; BLOCK]);
    for ((zs, ps), is) in z.chunks(BLOCK).zip(p.chunks(BLOCK)).zip(inv_base.chunks_mut(BLOCK)) {
        for (((((pc, qc), rc), &zi), &pi), inv) in pb
            .iter_mut()
            .zip(qb.iter_mut())
            .zip(rb.iter_mut())
            .zip(zs)
            .zip(ps)
            .zip(is)
        {
            *inv = inv_base_at(zi, lambda, k);
            *pc = if zi == 0.0 { 0.0 } else { pi };
            *qc = pi * *inv;
            *rc = *qc * *inv;
        }
        pb[zs.len()..].fill(0.0);
        compensated_tree_sum_into(&mut pb, &mut acc, &mut comp);
        qb[zs.len()..].fill(0.0);
        rb[zs.len()..].fill(0.0);
        tree_sum_into(&mut qb, &mut q);
        tree_sum_into(&mut rb, &mut r);
    }
    let (mut s, mut c) = (top_residual(top, lambda, t), combine(comp));
    for a in acc {
        two_sum(&mut s, &mut c, a);
    }
    (s + c, combine(q), combine(r))
}

/// Halved logs up to which the bi-tempered gradient is evaluated directly
/// (`tempered::row_gradient` rescales an entry only beyond it, and then
/// takes the general path).
pub(crate) const TEMPERED_DIRECT_HALF_LOG: f64 = 300.0;

/// The bi-tempered gradient of one row in the ordinary range, vectorized:
/// `g_i = scale·(A_i − ẽ_i·Σ_j A_j)` with `A_j = (p_j − y_j)·p_j^{t2−t1}`
/// formed as `±e^{2X_j}`, `X_j = ln|p_j − y_j|/2 + (t2 − t1)·h_j` (the same
/// halved logs as `tempered::row_gradient`, with the branch-free
/// [`log1p::ln`] and [`exp::exp`]), the escorts `ẽ_i = e^{2t2(h_i − h_max)}/E`,
/// and the argmax entry as `−Σ_{i≠best} g_i`. Returns false, leaving `out`
/// to be overwritten, when a term needs rescaling (`max X_j` or
/// `ln|Σ A_j|/2` above [`TEMPERED_DIRECT_HALF_LOG`]): the caller then takes
/// the general log-space path. `escorts` is scratch of the row's length.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_gradient_direct(
    p: &[f64],
    half_ln_p: &[f64],
    y: &[f64],
    (t1, t2): (f64, f64),
    scale: f64,
    out: &mut [f64],
    escorts: &mut [f64],
) -> bool {
    let c = p.len();
    let (h, y, out, escorts) = (&half_ln_p[..c], &y[..c], &mut out[..c], &mut escorts[..c]);
    let d = t2 - t1;
    // X_j: ln|p − 0|/2 is h itself for y = 0 (p may underflow); ln y where
    // p underflowed below a positive label; −∞ for a true zero.
    for j in 0..c {
        let (pj, hj, yj) = (p[j], h[j], y[j]);
        let arg = if pj == 0.0 { yj } else { (pj - yj).abs() };
        let x = if yj == 0.0 {
            hj + d * hj
        } else {
            0.5 * log1p::ln(arg) + d * hj
        };
        let zero = hj == f64::NEG_INFINITY || (yj > 0.0 && pj == yj);
        out[j] = if zero { f64::NEG_INFINITY } else { x };
    }
    if row_max_in(out) > TEMPERED_DIRECT_HALF_LOG {
        return false;
    }
    // A_j with the sign of p_j − y_j (positive for y = 0).
    for j in 0..c {
        let sign = if y[j] == 0.0 || p[j] > y[j] { 1.0 } else { -1.0 };
        out[j] = sign * exp::exp(2.0 * out[j]);
    }
    let total = lane_sum(out);
    if 0.5 * log1p::ln(total.abs()) > TEMPERED_DIRECT_HALF_LOG {
        return false;
    }
    let h_max = row_max_in(h);
    for (e, &hj) in escorts.iter_mut().zip(h) {
        *e = exp::exp(2.0 * t2 * (hj - h_max));
    }
    let escort_sum = lane_sum(escorts);
    for (o, &e) in out.iter_mut().zip(escorts.iter()) {
        *o -= e / escort_sum * total;
    }
    let best = first_index_of_in(h, h_max).unwrap_or(0);
    out[best] = 0.0;
    let rest = lane_sum(out);
    for o in out.iter_mut() {
        *o *= scale;
    }
    out[best] = -rest * scale;
    true
}

/// Moves a row computed at `λ` to `λ + δ` to first order, for a step `δ`
/// within rounding of `λ`: `ln p_i −= δ/b_i`, `p_i −= p_i·δ/b_i` (from
/// `d ln p_i/dλ = −p_i^{t−1} = −1/b_i`; `inv_base` holds `1/b_i`, `0`
/// outside the support, where nothing moves). The dropped second-order
/// term is `(δ/b_i)²/2` relative; returns false, changing nothing, when some
/// `|δ/b_i|` exceeds `2^-27` (a base near the edge of a finite support),
/// so that it stays below `2^-55`: the caller then recomputes the row.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_step_first_order(delta: f64, inv_base: &[f64], ln_p: &mut [f64], p: &mut [f64]) -> bool {
    const MAX_RELATIVE_MOVE: f64 = 7.450580596923828e-9;
    if row_max_in(inv_base) * delta.abs() > MAX_RELATIVE_MOVE {
        return false;
    }
    for ((lp, pi), &inv) in ln_p.iter_mut().zip(p.iter_mut()).zip(inv_base) {
        let d = delta * inv;
        *lp -= d;
        *pi -= *pi * d;
    }
    true
}

/// The largest `max(|δ/b_i|, |(1−t)·δ/b_i|)` for which
/// [`tempered_step_series`] moves an entry by its series: `2^-14`,
/// so that the dropped fourth-order terms stay below `2^-56` relative.
pub(crate) const SERIES_MAX_MOVE: f64 = 6.103515625e-5;

/// Moves a row computed at `λ` by [`tempered_logs_into`] to `λ' = λ + δ`
/// by a short series, for the fast normalizer's last Halley step (taken
/// from that pass's sums, instead of another pass), and returns
/// `Σ p_i/b_i` at `λ'`. With `k = 1 − t` and `d_i = δ/b_i` (`inv_base`
/// holds `1/b_i`), to third order:
///
/// - `ln p_i += Δ_i = ln(1 − k·d_i)/k = −d_i − k·d_i²/2 − k²·d_i³/3`,
/// - `p_i ·= e^{Δ_i} = 1 + Δ_i + Δ_i²/2 + Δ_i³/6`,
/// - `1/b_i ·= 1/(1 − k·d_i) = 1 + k·d_i + (k·d_i)² + (k·d_i)³`.
///
/// The dropped terms are below `2^-56` relative while
/// `max(|d_i|, |k·d_i|) ≤` [`SERIES_MAX_MOVE`] (they are `|k|³d⁴/4`,
/// `Δ⁴/24` and `(kd)⁴`); nothing moves outside the support (`1/b_i = 0`).
/// Entries near the edge of a finite support
/// (`−2|kδ| < b_i' < 2·max(1, |k|)·|δ|/SERIES_MAX_MOVE` with
/// `b_i' = 1 + k(z_i − λ')`, `z` the shifted logits), where `d_i` may be
/// larger or the entry enters or leaves the support, are computed afresh
/// at `λ'` as [`tempered_logs_into`] computes them (a scalar loop over the
/// few such entries).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_step_series(
    delta: f64,
    t: f64,
    z: &[f64],
    lambda_new: f64,
    inv_base: &mut [f64],
    ln_p: &mut [f64],
    p: &mut [f64],
) -> f64 {
    let k = 1.0 - t;
    let c = z.len();
    let (z, inv_base, ln_p, p) = (&z[..c], &mut inv_base[..c], &mut ln_p[..c], &mut p[..c]);
    // b' above which the move is within the limit (b ≥ b' − |kδ| ≥ half of
    // b'), and below which, down to −2|kδ|, the entry is recomputed.
    let edge_hi = 2.0 * delta.abs() * k.abs().max(1.0) / SERIES_MAX_MOVE;
    let edge_lo = -2.0 * (k * delta).abs();
    let near_edge = |zi: f64| {
        let b = k.mul_add(zi - lambda_new, 1.0);
        b < edge_hi && b > edge_lo
    };
    let mut recompute = 0usize;
    for i in 0..c {
        let d = delta * inv_base[i];
        let kd = k * d;
        // −d·(1 + kd/2 + (kd)²/3), e^Δ − 1 and 1/(1 − kd) − 1 by Horner.
        let step = -d * kd.mul_add(kd.mul_add(1.0 / 3.0, 0.5), 1.0);
        ln_p[i] += step;
        let grow = step * (step * step.mul_add(1.0 / 6.0, 0.5) + 1.0);
        p[i] = p[i].mul_add(grow, p[i]);
        let shrink = kd * kd.mul_add(1.0 + kd, 1.0);
        inv_base[i] = inv_base[i].mul_add(shrink, inv_base[i]);
        recompute += usize::from(near_edge(z[i]));
    }
    // Entry by entry (not one loop: the compiler would if-convert it into a
    // vectorized recomputation of every entry).
    for_each_index_where(z, recompute, near_edge, |i| {
        ln_p[i] = ln_p_at(z[i], lambda_new, k, 1.0 / k);
        p[i] = exp::exp(ln_p[i]);
        inv_base[i] = inv_base_at(z[i], lambda_new, k);
    });
    // Zipped lanes (indexed lanes compiled to 2-wide pieces).
    let mut q = [0.0; LANES];
    let (mut ps, mut is) = (p.chunks_exact(LANES), inv_base.chunks_exact(LANES));
    for (pc, ic) in (&mut ps).zip(&mut is) {
        for ((qi, &pi), &inv) in q.iter_mut().zip(pc).zip(ic) {
            *qi = pi.mul_add(inv, *qi);
        }
    }
    for ((qi, &pi), &inv) in q.iter_mut().zip(ps.remainder()).zip(is.remainder()) {
        *qi = pi.mul_add(inv, *qi);
    }
    combine(q)
}

/// `v_i = p_i^{2−t1} = e^{(2−t1)·ln p_i}` for the classes with `y_i = 0`
/// (`0` for the others and where `ln p_i = −∞`), written to `out`, and
/// `Σ v_i`: the bi-tempered loss terms of the unlabelled classes are
/// `v_i/(2−t1)` (the `y = 0` case of `tempered::class_term`), vectorized.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_unlabelled_powers_into(ln_p: &[f64], y: &[f64], t1: f64, out: &mut [f64]) -> f64 {
    let a = 2.0 - t1;
    for ((o, &lp), &yj) in out.iter_mut().zip(ln_p).zip(y) {
        let v = exp::exp(a * lp);
        *o = if yj == 0.0 { v } else { 0.0 };
    }
    lane_sum(out)
}

/// The row's maximum ([`row_max_in`]), compiled for the running CPU.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn row_max(row: &[f64]) -> f64 {
    row_max_in(row)
}

/// `(n, Σ z, Σ z²)` over the finite entries of a shifted row (`−∞` entries,
/// masked classes, left out), in [`LANES`] lanes combined in a fixed order:
/// the moments behind the heavy-tail normalizer's starting point.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn finite_moments(z: &[f64]) -> (f64, f64, f64) {
    let (mut n, mut s, mut q) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let mut chunks = z.chunks_exact(LANES);
    let mut add = |ch: &[f64]| {
        for (((ni, si), qi), &x) in n.iter_mut().zip(s.iter_mut()).zip(q.iter_mut()).zip(ch) {
            let finite = x > f64::NEG_INFINITY;
            let v = if finite { x } else { 0.0 };
            *ni += if finite { 1.0 } else { 0.0 };
            *si += v;
            *qi = v.mul_add(v, *qi);
        }
    };
    for ch in &mut chunks {
        add(ch);
    }
    add(chunks.remainder());
    (combine(n), combine(s), combine(q))
}

/// `z = a − μ` into `z`, returning how many entries are exactly 0 (the
/// normalizer's top entries).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn shifted_into(a: &[f64], mu: f64, z: &mut [f64]) -> usize {
    let mut top = 0u32;
    for (zi, &ai) in z.iter_mut().zip(a) {
        *zi = ai - mu;
        top += u32::from(*zi == 0.0);
    }
    top as usize
}

/// How many entries have `ln p = −∞` although their activation is finite
/// (a heavy tail's `p` that the last pass could not represent).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn far_tail_count(ln_p: &[f64], a: &[f64]) -> usize {
    let mut far = 0u32;
    for (&lp, &ai) in ln_p.iter().zip(a) {
        far += u32::from((lp == f64::NEG_INFINITY) & (ai > f64::NEG_INFINITY));
    }
    far as usize
}

/// A bi-tempered row's activations widened into `a`, and whether the row
/// passes the entry checks the loss's validation makes on it: labels (when
/// given) in `[0, 1]` with one positive, activations neither NaN nor `+∞`,
/// not all `−∞`. Branch-free `u32` counts in the widening loop (vectorized,
/// on the row while it is loaded); the caller runs the full ordered
/// validation for the error when a row fails.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn widen_checked<T: Float, P: Real>(row: &[T], labels: Option<&[P]>, a: &mut [f64]) -> bool {
    if let Some(p) = labels {
        let (mut outside, mut positive) = (0u32, 0u32);
        for v in p {
            let v = v.re();
            outside += u32::from(!(0.0..=1.0).contains(&v));
            positive += u32::from(v != 0.0);
        }
        if outside > 0 || positive == 0 {
            return false;
        }
    }
    let (mut bad, mut finite) = (0u32, 0u32);
    for (aj, &r) in a.iter_mut().zip(row) {
        let v = r.to_f64();
        *aj = v;
        bad += u32::from(v.is_nan() | (v == f64::INFINITY));
        finite += u32::from(v > f64::NEG_INFINITY);
    }
    bad == 0 && finite > 0
}

/// Calls `f(i)`, in order, for the first `count` indices with
/// `marked(xs[i])`: a bit mask per 64 entries from branch-free compares
/// (vectorized), then its set bits; it stops once `count` are done. A
/// scalar search stopping at each index mispredicted its exit and ran
/// scalar (70 % of [`tempered_step_series`] at t = 0.8).
#[inline(always)]
fn for_each_index_where(xs: &[f64], count: usize, marked: impl Fn(f64) -> bool, mut f: impl FnMut(usize)) {
    let mut left = count;
    for (chunk, block) in xs.chunks(64).enumerate() {
        if left == 0 {
            break;
        }
        let mut mask = 0u64;
        for (l, &x) in block.iter().enumerate() {
            mask |= u64::from(marked(x)) << l;
        }
        while mask != 0 && left > 0 {
            f(chunk * 64 + mask.trailing_zeros() as usize);
            mask &= mask - 1;
            left -= 1;
        }
    }
}

/// Calls `f(j)` for every class with `y[j] ≠ 0`, in order. Where they are
/// few (at most `c/8`: one-hot rows), they are found by a search, so that
/// the caller's loop is not if-converted into its work on every entry
/// (an exponential per class, where a one-hot row needs one).
#[inline(always)]
pub(crate) fn for_each_labelled(y: &[f64], mut f: impl FnMut(usize)) {
    let count = y.iter().map(|&v| usize::from(v != 0.0)).sum::<usize>();
    if count <= y.len() / 8 {
        for_each_index_where(y, count, |v| v != 0.0, f);
    } else {
        for (j, &v) in y.iter().enumerate() {
            if v != 0.0 {
                f(j);
            }
        }
    }
}

/// The bi-tempered gradient of one row in the ordinary range from the
/// normalizer's last pass (`t2 ≠ 1`), vectorized: `g_i = scale·(A_i − ẽ_i·Σ_j A_j)`
/// with `A_j = (p_j − y_j)·p_j^{t2−t1}` and the escort `ẽ_j = p_j^{t2}/Q`,
/// where `p_j^{t2} = p_j/b_j` (`inv_base` holds `1/b_j`, `Q = Σ_j p_j/b_j`,
/// both from [`tempered_logs_into`]): `A_j = v_j/b_j` for `y_j = 0` (`v_j =
/// p_j^{2−t1}` in `out` on entry, from [`tempered_unlabelled_powers_into`]),
/// else `(p_j − y_j)·e^{(1−t1)·ln p_j}/b_j`; `A_j = 0` where `ln p_j = −∞`
/// (a true zero, locally constant) or `p_j = y_j`. The argmax entry is
/// `−Σ_{i≠best} g_i`. Returns false, leaving `out` to be overwritten, when
/// some `|A_j|` is not below `e^{2·TEMPERED_DIRECT_HALF_LOG}` (or is NaN):
/// the caller then takes the general log-space path.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+avx",
    "x86_64+sse4.1"
))]
pub(crate) fn tempered_gradient_fused(
    p: &[f64],
    ln_p: &[f64],
    inv_base: &[f64],
    y: &[f64],
    (t1, q): (f64, f64),
    scale: f64,
    out: &mut [f64],
) -> bool {
    let c = p.len();
    let (ln_p, inv_base, y, out) = (&ln_p[..c], &inv_base[..c], &y[..c], &mut out[..c]);
    for j in 0..c {
        out[j] *= inv_base[j];
    }
    let labelled = |j: usize| {
        let (pj, lp) = (p[j], ln_p[j]);
        if lp == f64::NEG_INFINITY || pj == y[j] {
            0.0
        } else {
            (pj - y[j]) * exp::exp((1.0 - t1) * lp) * inv_base[j]
        }
    };
    for_each_labelled(y, |j| out[j] = labelled(j));
    let limit = (2.0 * TEMPERED_DIRECT_HALF_LOG).exp();
    // Entries not below the limit (or NaN), counted by an
    // integer sum the compiler keeps in registers (lane accumulators over
    // `chunks` went through memory, a store-to-load chain per chunk).
    let beyond: usize = out.iter().map(|&a| usize::from((a.abs() >= limit) | a.is_nan())).sum();
    if beyond != 0 {
        return false;
    }
    let total = lane_sum(out);
    let ratio = total / q;
    for j in 0..c {
        out[j] -= p[j] * inv_base[j] * ratio;
    }
    let best = first_index_of_in(ln_p, row_max_in(ln_p)).unwrap_or(0);
    out[best] = 0.0;
    let rest = lane_sum(out);
    for o in out.iter_mut() {
        *o *= scale;
    }
    out[best] = -rest * scale;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `c` shifted logits (`max = 0`) spread over `[−spread, 0]`.
    fn row(c: usize, spread: f64, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut z: Vec<f64> = (0..c)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                -spread * ((s >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect();
        z[c / 2] = 0.0;
        z
    }

    /// The compensated tree keeps every rounding error: on terms that are
    /// multiples of `2^-80` (so that every partial sum, error and total is
    /// exact in `i128` units), `Σ acc + Σ comp` over two blocks is the exact
    /// sum, where a plain sum is off (the check fails when the levels'
    /// errors are dropped).
    #[test]
    fn compensated_tree_sum_is_exact_on_a_grid() {
        let mut s = 0x7ee5u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let unit = 2f64.powi(-80);
        let units = |x: f64| (x / unit) as i128;
        for _ in 0..50 {
            let (mut acc, mut comp) = ([0.0; LANES], [0.0; LANES]);
            let (mut exact, mut plain) = (0i128, 0.0f64);
            for _ in 0..2 {
                let mut buf = [0.0f64; 256];
                for v in &mut buf {
                    let m = (next() >> 11) << (next() % 28);
                    *v = m as f64 * unit;
                    exact += i128::from(m);
                    plain += *v;
                }
                compensated_tree_sum_into(&mut buf, &mut acc, &mut comp);
            }
            let total: i128 = acc.iter().chain(&comp).map(|&x| units(x)).sum();
            assert_eq!(total, exact);
            assert_ne!(units(plain), exact);
        }
    }

    /// The `f32` sums are within their documented bounds of the `f64` ones
    /// (what the solver's first phase relies on): `S` and `Q` within
    /// `2^-20` relative, `R` (only in Halley's correction factor) within
    /// `2^-18` (its `1/b²` weighs the entries near the edge of a finite
    /// support, where `ln32` near 1 is only absolutely accurate). The
    /// measure rejects sums off by 16 times the bound.
    #[test]
    fn f32_sums_are_within_their_bounds_of_f64_sums() {
        const F32_SUMS_RELATIVE: f64 = 9.5367431640625e-7;
        const F32_CURVATURE_SUM_RELATIVE: f64 = 3.814697265625e-6;
        let bounds = [F32_SUMS_RELATIVE, F32_SUMS_RELATIVE, F32_CURVATURE_SUM_RELATIVE];
        let mut worst = [0.0f64; 3];
        for (seed, t) in [0.3, 0.8, 1.2, 2.0, 4.0, 0.5, 0.9, 1.1, 1.5].into_iter().enumerate() {
            for (c, spread) in [(10, 8.0), (1000, 8.0), (1000, 100.0), (100, 1e4)] {
                let z = row(c, spread, seed as u64 + 1);
                for lambda in [0.0, 0.01, 0.3] {
                    let top = z.iter().filter(|&&x| x == 0.0).count();
                    let (s, q, r) = tempered_sums(&z, top, lambda, t);
                    let (s32, q32, r32) = tempered_sums32(&z, lambda, t);
                    // S from the residuals S − 1.
                    for (i, (a, b)) in [(1.0 + s, 1.0 + s32), (q, q32), (r, r32)].into_iter().enumerate() {
                        worst[i] = worst[i].max((a - b).abs() / a);
                        let off = b * (1.0 + 16.0 * bounds[i]);
                        assert!((a - off).abs() / a > bounds[i]);
                    }
                }
            }
        }
        for i in 0..3 {
            assert!(worst[i] <= bounds[i], "f32 sum {i} off by {:e} relative", worst[i]);
        }
        eprintln!("f32 sums: worst relative differences (S, Q, R) {worst:?}");
    }

    /// The integer exponents are recognized for the temperatures whose
    /// `1/(1 − t)` is one, and only for those within range.
    #[test]
    fn integer_exponents_are_recognized() {
        for (t, n) in [
            (0.8, 5),
            (1.2, -5),
            (0.5, 2),
            (1.5, -2),
            (2.0, -1),
            (0.0, 1),
            (0.9, 10),
            (1.1, -10),
        ] {
            assert_eq!(integer_exponent(t), Some(n), "t = {t}");
        }
        for t in [0.3, 0.7, 4.0, 1.0 - 1.0 / 32.0, 1.01, 1.2 + 1e-9] {
            assert_eq!(integer_exponent(t), None, "t = {t}");
        }
    }

    /// The first-order move agrees with recomputing the row at `λ + δ`
    /// (on a grid where `z − λ` and `z − λ − δ` are exact, so that the two
    /// differ only by the ≤ 2.5 ulps of each `ln p`, and `p = e^{ln p}` by
    /// those times `|ln p|` plus 1 ulp), and declines a move too large for
    /// first order.
    #[test]
    fn first_order_step_matches_a_recomputed_row() {
        let z: Vec<f64> = (0..200).map(|j| -f64::from(j) / 32.0).collect();
        // Temperatures with an exact 1 − t (with 1 − 0.8 = 0.19999999999999996
        // the entry at the support's edge gets a base near 1e-16 instead of
        // 0, and the move is rightly declined).
        for t in [0.5, 0.75, 1.25, 3.0] {
            let lambda = 0.25;
            let delta = 2f64.powi(-50);
            let c = z.len();
            let (mut lp, mut p, mut inv) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
            let _ = tempered_logs_into(&z, 1, lambda, t, &mut lp, &mut p, &mut inv);
            let (mut lp2, mut p2, mut inv2) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
            let _ = tempered_logs_into(&z, 1, lambda + delta, t, &mut lp2, &mut p2, &mut inv2);
            assert!(tempered_step_first_order(delta, &inv, &mut lp, &mut p));
            for j in 0..c {
                if p2[j] > 0.0 {
                    let eps = f64::EPSILON;
                    assert!(
                        (lp[j] - lp2[j]).abs() <= 6.0 * eps * lp2[j].abs(),
                        "t = {t}: ln p {} vs {}",
                        lp[j],
                        lp2[j]
                    );
                    let bound = (6.0 * lp2[j].abs() + 2.0) * eps * p2[j];
                    assert!((p[j] - p2[j]).abs() <= bound, "t = {t}: p {} vs {}", p[j], p2[j]);
                }
            }
            // A step large against some base is left to a recomputation.
            let (mut lp3, mut p3) = (lp.clone(), p.clone());
            assert!(!tempered_step_first_order(1e-3, &inv, &mut lp3, &mut p3));
            assert_eq!((lp3, p3), (lp, p));
        }
    }

    /// The series move agrees with recomputing the row at `λ + δ`, as the
    /// first-order move does (same bounds: on a grid where `z − λ` and
    /// `z − λ − δ` are exact, the two rows differ by the ≤ 2.5 ulps of each
    /// `ln p`, and `p = e^{ln p}` by those times `|ln p|` plus 1 ulp), for
    /// steps up to `2^-16` (moves `|δ/b|` up to `2^-14`), both signs, entries
    /// at the edge of a finite support (t < 1: the grid holds the entry at
    /// `b = 0`, `z = −56/32` and `−120/32`, recomputed, with its
    /// neighbours), and its `Σ p/b` agrees with the recomputed row's. A
    /// move cut after the second order is `(δ/b)³/6` off, up to `2^-45`
    /// relative, far beyond these bounds.
    #[test]
    fn series_step_matches_a_recomputed_row() {
        let z: Vec<f64> = (0..200).map(|j| -f64::from(j) / 32.0).collect();
        let eps = f64::EPSILON;
        for t in [0.5, 0.75, 1.25, 3.0] {
            for delta in [2f64.powi(-16), -(2f64.powi(-16)), 2f64.powi(-30), -(2f64.powi(-40))] {
                let lambda = 0.25;
                let c = z.len();
                let (mut lp, mut p, mut inv) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
                let _ = tempered_logs_into(&z, 1, lambda, t, &mut lp, &mut p, &mut inv);
                let (mut lp2, mut p2, mut inv2) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
                let (_, q2, _) = tempered_logs_into(&z, 1, lambda + delta, t, &mut lp2, &mut p2, &mut inv2);
                let q = tempered_step_series(delta, t, &z, lambda + delta, &mut inv, &mut lp, &mut p);
                let mut worst_ln_p = 0.0f64;
                for j in 0..c {
                    assert_eq!(p[j] == 0.0, p2[j] == 0.0, "t = {t}, δ = {delta:e}: support at {j}");
                    if p2[j] > 0.0 {
                        assert!(
                            (lp[j] - lp2[j]).abs() <= 6.0 * eps * lp2[j].abs(),
                            "t = {t}, δ = {delta:e}: ln p[{j}] {} vs {}",
                            lp[j],
                            lp2[j]
                        );
                        worst_ln_p = worst_ln_p.max(lp2[j].abs());
                        let bound = (6.0 * lp2[j].abs() + 2.0) * eps * p2[j];
                        assert!(
                            (p[j] - p2[j]).abs() <= bound,
                            "t = {t}, δ = {delta:e}: p[{j}] {} vs {}",
                            p[j],
                            p2[j]
                        );
                        // 1/b: ≤ 1 ulp recomputed, ≤ 1 + ½ + ½ ulps moved.
                        assert!(
                            (inv[j] - inv2[j]).abs() <= 4.0 * eps * inv2[j],
                            "t = {t}, δ = {delta:e}: 1/b[{j}] {} vs {}",
                            inv[j],
                            inv2[j]
                        );
                    }
                }
                // Σ p/b: the terms' bound (p's times 1/b's) plus both lane
                // sums' roundings (c/8 + 3 each).
                let term = (6.0 * worst_ln_p + 2.0 + 4.0) * eps;
                let sums = 2.0 * (c as f64 / 8.0 + 3.0) * eps;
                assert!(
                    (q - q2).abs() <= (term + sums) * q2,
                    "t = {t}, δ = {delta:e}: Σp/b {q} vs {q2}"
                );
            }
        }
    }
}
