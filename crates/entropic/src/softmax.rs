//! Log-sum-exp, softmax and log-softmax with the max shift.
//!
//! All three use `m = max_i z_i` and `lse(z) = m + ln Σ_i e^{z_i − m}`, so
//! every exponent is ≤ 0 and the sum lies in `[1, c]`: no overflow for any
//! finite logits (±1e300 in `f64`, ±3e38 in `f32`), and all-equal logits
//! give exactly `ln c` / `1/c`. Entries equal to −∞ are masked classes
//! (probability 0); a row needs at least one finite entry.

use crate::batch::Batch;
use crate::domain::check_logits;
use crate::error::{Error, Result};
use crate::kernels::{self, rows, rows::for_each_row};
use crate::real::{Float, Real};

/// Validates one row of logits (non-empty, no NaN/+∞, at least one finite).
pub(crate) fn check_row<T: Real>(what: &'static str, row: &[T], row_index: usize) -> Result<()> {
    if row.is_empty() {
        return Err(Error::Empty { what });
    }
    check_logits(what, row, 0, true).map_err(|e| match e {
        Error::NonFinite {
            what,
            at: crate::Position::Index(col),
            value,
            requirement,
        } => Error::NonFinite {
            what,
            at: crate::Position::Cell { row: row_index, col },
            value,
            requirement,
        },
        other => other,
    })?;
    if row.iter().all(|z| z.re() == f64::NEG_INFINITY) {
        return Err(Error::NoFiniteLogit { what, row: row_index });
    }
    Ok(())
}

/// `(m, ln Σ e^{z_i − m})` for a validated row, `m` the entry with the
/// largest real part. Generic: the reference computation.
pub(crate) fn shifted_log_sum<T: Real>(row: &[T]) -> (T, T) {
    let mut best = 0;
    for (i, z) in row.iter().enumerate() {
        if z.re() > row[best].re() {
            best = i;
        }
    }
    let m = row[best].clone();
    // ln Σ e^{z−m} = ln(1 + Σ_{j≠best} e^{z_j−m}): the largest term is exactly
    // 1, and ln_1p of the rest keeps full relative accuracy when the rest is
    // tiny (a confident row, whose loss −ln a_best is then tiny too).
    let rest = compensated_sum(
        row.iter()
            .enumerate()
            .filter(|&(j, _)| j != best)
            .map(|(_, z)| (z.clone() - m.clone()).exp()),
    );
    (m, log_one_plus(rest))
}

/// `ln(1 + r)` for `r ≥ 0`: `ln_1p(r)` for `r ≤ 1`, where it keeps the
/// relative accuracy of a tiny `r`, and `ln(1 + r)` above, where `1 + r`
/// rounds by at most half an ulp and `ln` is correctly rounded more often
/// than `ln_1p` (e.g. `ln 3` exactly rounded for three equal logits).
pub(crate) fn log_one_plus<T: Real>(r: T) -> T {
    if r.re() <= 1.0 { r.ln_1p() } else { (T::one() + r).ln() }
}

/// `q·(l − (z − m))`: the term `−q·ln a_z` of a cross-entropy row with
/// `m = max z` and `l = ln Σ e^{z−m}`. Where `z − m` overflows to −∞
/// although `z` is finite (logits of both signs near `f64::MAX`), it is
/// `q·l + (q·m − q·z)`, finite wherever the exact term is (for `q ≤ 1`; for
/// `q > 1` the exact term is beyond the range too). A masked `z = −∞` with
/// `q ≠ 0` stays `+∞`.
pub(crate) fn nll_term<D: Real>(l: D, z: D, m: D, q: f64) -> D {
    let d = z.clone() - m.clone();
    if d.re() == f64::NEG_INFINITY && z.re() != f64::NEG_INFINITY {
        l.scale_f64(q) + (m.scale_f64(q) - z.scale_f64(q))
    } else {
        (l - d).scale_f64(q)
    }
}

/// `Σ x` with Neumaier's compensation, in order: error ≤ 2ε·Σ|x| whatever the
/// length (a plain sequential sum of c terms can lose c·ε). Generic (the
/// compensation's derivative parts cancel exactly); the `f64` kernels run
/// the same operations in the same order, so both agree bit for bit.
pub(crate) fn compensated_sum<T: Real>(xs: impl Iterator<Item = T>) -> T {
    let (mut s, mut comp) = (T::zero(), T::zero());
    for x in xs {
        let t = s.clone() + x.clone();
        comp += if s.abs().re() >= x.abs().re() {
            (s - t.clone()) + x
        } else {
            (x - t.clone()) + s
        };
        s = t;
    }
    s + comp
}

/// `ln Σ_i e^{z_i}`, computed as `m + ln Σ_i e^{z_i − m}`.
///
/// Its gradient is `softmax(z)`.
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`] (NaN or +∞), [`Error::NoFiniteLogit`] (all −∞).
///
/// # Example
/// ```
/// let v = entropic::logsumexp(&[1e308_f64, 1e308])?;
/// assert_eq!(v, 1e308); // + ln 2 is below half an ulp of 1e308
/// let v = entropic::logsumexp(&[0.0_f64, f64::NEG_INFINITY])?;
/// assert_eq!(v, 0.0);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn logsumexp<T: Real>(row: &[T]) -> Result<T> {
    check_row("logits", row, 0)?;
    let (m, l) = shifted_log_sum(row);
    Ok(m + l)
}

/// `a_i = e^{z_i} / Σ_j e^{z_j}`, with the max shift.
///
/// # Errors
/// As [`logsumexp`].
///
/// # Example
/// ```
/// let a = entropic::softmax(&[1e8_f32, 1e8])?;
/// assert_eq!(a, vec![0.5, 0.5]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn softmax<T: Real>(row: &[T]) -> Result<Vec<T>> {
    check_row("logits", row, 0)?;
    let (m, l) = shifted_log_sum(row);
    Ok(row.iter().map(|z| (z.clone() - m.clone() - l.clone()).exp()).collect())
}

/// `ln a_i = (z_i − m) − ln Σ_j e^{z_j − m}`.
///
/// # Errors
/// As [`logsumexp`].
///
/// # Example
/// ```
/// let l = entropic::log_softmax(&[3e38_f32, 3e38, 3e38, 3e38])?;
/// assert_eq!(l, vec![-(4f32.ln()); 4]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn log_softmax<T: Real>(row: &[T]) -> Result<Vec<T>> {
    check_row("logits", row, 0)?;
    let (m, l) = shifted_log_sum(row);
    Ok(row.iter().map(|z| (z.clone() - m.clone()) - l.clone()).collect())
}

/// Vector–Jacobian product of softmax: given `a = softmax(z)` and an upstream
/// gradient `v = ∂L/∂a`, returns `∂L/∂z_i = a_i (v_i − Σ_j a_j v_j)`
/// (from `∂a_j/∂z_i = a_j(δ_ij − a_i)`).
///
/// # Errors
/// [`Error::ShapeMismatch`] when the lengths differ.
///
/// # Example
/// ```
/// let a = entropic::softmax(&[0.0_f64, 0.0])?;
/// let g = entropic::softmax_vjp(&a, &[1.0, 0.0])?;
/// assert_eq!(g, vec![0.25, -0.25]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn softmax_vjp<T: Real>(a: &[T], v: &[T]) -> Result<Vec<T>> {
    if v.len() != a.len() {
        return Err(Error::ShapeMismatch {
            what: "upstream gradient",
            expected: a.len(),
            actual: v.len(),
        });
    }
    let dot: T = a.iter().zip(v).map(|(a, v)| a.clone() * v.clone()).sum();
    Ok(a.iter()
        .zip(v)
        .map(|(a, v)| a.clone() * (v.clone() - dot.clone()))
        .collect())
}

/// Vector–Jacobian product of log-softmax: given `a = softmax(z)` and
/// `v = ∂L/∂(ln a)`, returns `∂L/∂z_i = v_i − a_i Σ_j v_j`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when the lengths differ.
///
/// # Example
/// ```
/// // L = −ln a_0 (cross-entropy with class 0): ∂L/∂z = a − e_0
/// let a = entropic::softmax(&[0.0_f64, 0.0])?;
/// let g = entropic::log_softmax_vjp(&a, &[-1.0, 0.0])?;
/// assert_eq!(g, vec![-0.5, 0.5]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn log_softmax_vjp<T: Real>(a: &[T], v: &[T]) -> Result<Vec<T>> {
    if v.len() != a.len() {
        return Err(Error::ShapeMismatch {
            what: "upstream gradient",
            expected: a.len(),
            actual: v.len(),
        });
    }
    let total: T = v.iter().cloned().sum();
    Ok(a.iter()
        .zip(v)
        .map(|(a, v)| v.clone() - a.clone() * total.clone())
        .collect())
}

/// Validates a whole batch of logits row by row (fast-path and definition
/// share it).
pub(crate) fn check_batch<T: Real>(what: &'static str, logits: &Batch<'_, T>) -> Result<()> {
    if logits.c() == 0 {
        return Err(Error::InvalidShape {
            what,
            n: logits.n(),
            c: 0,
            requirement: "at least one class",
        });
    }
    // Bad rows counted first (rows in parallel; `check_row` counts before it
    // searches), the rows searched in order only when there is one.
    let bad_row = |row: &[T]| check_row(what, row, 0).is_err();
    if crate::kernels::rows::count_rows_where(logits.as_slice(), logits.c(), bad_row) == 0 {
        return Ok(());
    }
    for (i, row) in logits.rows().enumerate() {
        check_row(what, row, i)?;
    }
    Ok(())
}

/// Softmax of every row of a batch into `out` (fast `f32`/`f64` path,
/// accumulating in `f64`).
///
/// # Errors
/// [`Error::ShapeMismatch`] when `out` has the wrong length, and as
/// [`logsumexp`] for each row (naming the row).
///
/// # Example
/// ```
/// use entropic::{softmax_batch_into, Batch};
/// let z = [0.0_f32, 0.0, 1e6, 1e6];
/// let mut a = [0.0_f32; 4];
/// softmax_batch_into(Batch::new(&z, 2, 2)?, &mut a)?;
/// assert_eq!(a, [0.5; 4]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn softmax_batch_into<T: Float>(logits: Batch<'_, T>, out: &mut [T]) -> Result<()> {
    batch_map_into(logits, out, false)
}

/// Log-softmax of every row of a batch into `out` (fast path).
///
/// # Errors
/// As [`softmax_batch_into`].
///
/// # Example
/// ```
/// use entropic::{log_softmax_batch_into, Batch};
/// let z = [1e300_f64, 1e300];
/// let mut l = [0.0; 2];
/// log_softmax_batch_into(Batch::new(&z, 1, 2)?, &mut l)?;
/// assert_eq!(l, [-(2f64.ln()); 2]);
/// # Ok::<(), entropic::Error>(())
/// ```
pub fn log_softmax_batch_into<T: Float>(logits: Batch<'_, T>, out: &mut [T]) -> Result<()> {
    batch_map_into(logits, out, true)
}

/// Fast-path statistics of a valid row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowStats {
    /// `m = max_j z_j` (in `f64`).
    pub(crate) m: f64,
    /// The first index of the maximum.
    pub(crate) best: usize,
    /// `Σ_{j≠best} e^{z_j − m}`, within about an ulp of exact (compensated
    /// lane sums): `ln Σ e = ln_1p(rest)` keeps full relative accuracy for
    /// confident rows, like the generic [`shifted_log_sum`].
    pub(crate) rest: f64,
}

/// Row statistics, with the exponentials `e^{z_j − m}` stored in `e`
/// (`e[best] = 1`). `None` when the row is invalid (all −∞, a NaN or a +∞):
/// the caller reports the error found by [`check_row`].
#[inline]
pub(crate) fn row_exp<T: Float>(row: &[T], e: &mut [f64]) -> Option<RowStats> {
    let (m, best, rest) = kernels::row_stats(row, e)?;
    Some(RowStats { m, best, rest })
}

/// Two passes per row (max; exp + sum into a scratch row) and one output
/// pass; rows in parallel; validation fused (an invalid row makes the
/// ordinary [`check_batch`] report the error).
fn batch_map_into<T: Float>(logits: Batch<'_, T>, out: &mut [T], log: bool) -> Result<()> {
    let len = logits.as_slice().len();
    if out.len() != len {
        return Err(Error::ShapeMismatch {
            what: "output buffer",
            expected: len,
            actual: out.len(),
        });
    }
    let c = logits.c();
    if c == 0 || logits.n() == 0 {
        return check_batch("logits", &logits);
    }
    let ok = for_each_row(c, c, 1, out, None::<&mut [T]>, |first, dst, _, scratch| {
        let e = rows::scratch(scratch, c);
        let Some(st) = row_exp(logits.row(first), e) else {
            return false;
        };
        if log {
            kernels::shift_into(logits.row(first), st.m, log_one_plus(st.rest), dst);
        } else {
            kernels::scaled_into(e, 1.0 / (1.0 + st.rest), dst);
        }
        true
    });
    if ok { Ok(()) } else { check_batch("logits", &logits) }
}
