//! Row parallelism with deterministic results.
//!
//! Rows are grouped into blocks of about [`BLOCK_ELEMENTS`] elements; with the
//! `parallel` feature the blocks run on rayon's pool, otherwise in order.
//! Every row's results depend on that row only (and on a per-task scratch
//! buffer whose contents are overwritten before use), so the output bits do
//! not depend on the number of threads or on the scheduling; reductions over
//! rows are done afterwards, sequentially, by the caller.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::real::{Float, Real};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Elements per block of rows (per rayon task): large enough to amortize
/// the scheduling, small enough to balance two or more threads.
pub(crate) const BLOCK_ELEMENTS: usize = 1 << 15;

/// Calls `f(first_row, values, grad, scratch)` for every group of up to
/// `group` consecutive rows, where `values` holds `per_row` entries per row
/// and `grad` (when given) `c` per row. Returns false when any call returned
/// false (an invalid row: the caller then reports the error found by its
/// ordinary validation).
pub(crate) fn for_each_row<R, T, F>(
    c: usize,
    per_row: usize,
    group: usize,
    values: &mut [R],
    grad: Option<&mut [T]>,
    f: F,
) -> bool
where
    R: Send,
    T: Send,
    F: Fn(usize, &mut [R], Option<&mut [T]>, &mut Vec<f64>) -> bool + Sync + Send,
{
    if values.is_empty() {
        return true;
    }
    let per_row = per_row.max(1);
    let group = group.max(1);
    let rows_per_block = (BLOCK_ELEMENTS / c.max(1)).max(1).div_ceil(group) * group;
    let ok = AtomicBool::new(true);
    let block = |b: usize, vals: &mut [R], g: Option<&mut [T]>, scratch: &mut Vec<f64>| {
        let first = b * rows_per_block;
        let mut good = true;
        match g {
            Some(g) => {
                for (i, (v, g)) in vals
                    .chunks_mut(per_row * group)
                    .zip(g.chunks_mut(c.max(1) * group))
                    .enumerate()
                {
                    good &= f(first + i * group, v, Some(g), scratch);
                }
            }
            None => {
                for (i, v) in vals.chunks_mut(per_row * group).enumerate() {
                    good &= f(first + i * group, v, None, scratch);
                }
            }
        }
        if !good {
            ok.store(false, Ordering::Relaxed);
        }
    };
    let vb = rows_per_block * per_row;
    let gb = rows_per_block * c.max(1);
    // A single block runs on the calling thread: handing it to the pool
    // would only add the latency of waking a worker.
    #[cfg(feature = "parallel")]
    let grad = if values.len() <= vb {
        let mut s = Vec::new();
        block(0, values, grad, &mut s);
        return ok.into_inner();
    } else {
        grad
    };
    #[cfg(feature = "parallel")]
    match grad {
        Some(g) => values
            .par_chunks_mut(vb)
            .zip(g.par_chunks_mut(gb))
            .enumerate()
            .for_each_init(Vec::new, |s, (b, (v, g))| block(b, v, Some(g), s)),
        None => values
            .par_chunks_mut(vb)
            .enumerate()
            .for_each_init(Vec::new, |s, (b, v)| block(b, v, None, s)),
    }
    #[cfg(not(feature = "parallel"))]
    {
        let mut s = Vec::new();
        match grad {
            Some(g) => {
                for (b, (v, g)) in values.chunks_mut(vb).zip(g.chunks_mut(gb)).enumerate() {
                    block(b, v, Some(g), &mut s);
                }
            }
            None => {
                for (b, v) in values.chunks_mut(vb).enumerate() {
                    block(b, v, None, &mut s);
                }
            }
        }
    }
    ok.into_inner()
}

/// A scratch buffer of `len` entries (reused across rows of a task).
#[inline]
pub(crate) fn scratch(buf: &mut Vec<f64>, len: usize) -> &mut [f64] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Runs `row(x, y, values, grad)` over every row of an element-wise `[n, c]`
/// loss (`x`, `values` and `grad` of `n·c` entries), rows in parallel as in
/// [`for_each_row`]. The labels are converted to `f64` through `Real::re` on
/// the calling thread, a super-block of rows at a time (`P` need not be
/// `Sync`), and checked to lie in `[0, 1]` on the way. Returns false when a
/// label is outside `[0, 1]` (or NaN) or a `row` call returned false; the
/// caller then reports the error its ordinary validation finds.
pub(crate) fn for_each_labelled_row<T, P, F>(
    x: &[T],
    labels: &[P],
    c: usize,
    values: &mut [f64],
    mut grad: Option<&mut [T]>,
    row: F,
) -> bool
where
    T: Float,
    P: Real,
    F: Fn(&[T], &[f64], &mut [f64], Option<&mut [T]>) -> bool + Sync + Send,
{
    /// Elements per super-block of labels converted on the calling thread.
    const SUPER_BLOCK: usize = 1 << 17;
    if values.is_empty() {
        return true;
    }
    let rows_per_block = (SUPER_BLOCK / c.max(1)).max(1);
    let mut y64 = Vec::with_capacity(rows_per_block * c);
    let mut ok = true;
    for (b, values) in values.chunks_mut(rows_per_block * c).enumerate() {
        let span = b * rows_per_block * c..b * rows_per_block * c + values.len();
        y64.clear();
        let mut labels_ok = true;
        y64.extend(labels[span.clone()].iter().map(|y| {
            let y = y.re();
            labels_ok &= (0.0..=1.0).contains(&y);
            y
        }));
        ok &= labels_ok;
        let g = grad.as_deref_mut().map(|g| &mut g[span.clone()]);
        let (x, y64) = (&x[span], &y64);
        ok &= for_each_row(c, c, 1, values, g, |i, v, g, _| {
            row(&x[i * c..(i + 1) * c], &y64[i * c..(i + 1) * c], v, g)
        });
    }
    ok
}
