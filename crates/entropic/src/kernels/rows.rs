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

/// The number of entries of `data` for which `bad` holds: a branch-free
/// count (vectorized), over blocks of [`BLOCK_ELEMENTS`] in parallel with the
/// `parallel` feature. For input validation: the search for the first bad
/// entry (which names it in the error) runs only when the count is not 0.
pub(crate) fn count_where<T: Sync>(data: &[T], bad: impl Fn(&T) -> bool + Sync) -> usize {
    let count = |block: &[T]| block.iter().map(|x| usize::from(bad(x))).sum::<usize>();
    #[cfg(feature = "parallel")]
    if data.len() > BLOCK_ELEMENTS {
        return data.par_chunks(BLOCK_ELEMENTS).map(count).sum();
    }
    count(data)
}

/// The number of rows of `c` entries of `data` for which `bad` holds, over
/// blocks of rows in parallel as [`count_where`].
pub(crate) fn count_rows_where<T: Sync>(data: &[T], c: usize, bad: impl Fn(&[T]) -> bool + Sync) -> usize {
    let c = c.max(1);
    let count = |block: &[T]| block.chunks(c).filter(|row| bad(row)).count();
    #[cfg(feature = "parallel")]
    if data.len() > BLOCK_ELEMENTS {
        let rows_per_block = (BLOCK_ELEMENTS / c).max(1);
        return data.par_chunks(rows_per_block * c).map(count).sum();
    }
    count(data)
}

/// A scratch buffer of `len` entries (reused across rows of a task).
#[inline]
pub(crate) fn scratch(buf: &mut Vec<f64>, len: usize) -> &mut [f64] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// A block of rows of [`for_each_element_row`]: its first row, its row sums,
/// its loss values and its gradient.
type ElementBlock<'a, T> = (usize, &'a mut [f64], Option<&'a mut [T]>, Option<&'a mut [T]>);

/// Elements per group of rows handed to the `rows` callback of
/// [`for_each_element_row`] (at least one row): long enough to amortize a
/// call over short rows, short enough for its `f64` terms to stay in L1.
const GROUP_ELEMENTS: usize = 2048;

/// Runs `rows(x, y, terms, grad)` over every row of an element-wise `[n, c]`
/// loss (`x`, `labels`, `values` and `grad` of `n·c` entries), on groups of
/// whole rows (about [`GROUP_ELEMENTS`] elements), blocks of rows in
/// parallel as in [`for_each_row`] (deterministic: every output depends on
/// its own group only, and the groups are fixed by `c`). `rows` writes the group's loss terms into the `f64`
/// scratch `terms` (and the gradient into `grad` when given) and returns
/// false for an invalid group; each row's terms are then rounded into
/// `values` (when given) and their fixed-order lane sum
/// ([`super::lane_sum`]) stored in `sums[i]` — so a reduction needs no
/// `n·c` buffer of `f64` terms. Labels are read in place (`P: Real` is
/// `Sync`). Returns false when any row was invalid; the caller then reports
/// the error its ordinary validation finds.
pub(crate) fn for_each_element_row<T, P, F>(
    x: &[T],
    labels: &[P],
    c: usize,
    sums: &mut [f64],
    values: Option<&mut [T]>,
    grad: Option<&mut [T]>,
    rows: F,
) -> bool
where
    T: Float,
    P: Real,
    F: Fn(&[T], &[P], &mut [f64], Option<&mut [T]>) -> bool + Sync + Send,
{
    if sums.is_empty() || c == 0 {
        return true;
    }
    let rows_per_group = (GROUP_ELEMENTS / c).max(1);
    let rows_per_block = (BLOCK_ELEMENTS / c).max(1).div_ceil(rows_per_group) * rows_per_group;
    let mut values = values.map(|v| v.chunks_mut(rows_per_block * c));
    let mut grad = grad.map(|g| g.chunks_mut(rows_per_block * c));
    let blocks: Vec<_> = sums
        .chunks_mut(rows_per_block)
        .enumerate()
        .map(|(b, s)| {
            let v = values.as_mut().and_then(Iterator::next);
            let g = grad.as_mut().and_then(Iterator::next);
            (b * rows_per_block, s, v, g)
        })
        .collect();
    let block = |(first, sums, mut values, mut grad): ElementBlock<'_, T>| {
        let mut scratch = vec![0.0; rows_per_group * c];
        let mut good = true;
        for (i, sums) in sums.chunks_mut(rows_per_group).enumerate() {
            let k = i * rows_per_group;
            let (span, local) = (
                (first + k) * c..(first + k + sums.len()) * c,
                k * c..(k + sums.len()) * c,
            );
            let terms = &mut scratch[..sums.len() * c];
            let g = grad.as_deref_mut().map(|g| &mut g[local.clone()]);
            good &= rows(&x[span.clone()], &labels[span], terms, g);
            let mut v = values.as_deref_mut().map(|v| v[local].chunks_mut(c));
            for (sum, t) in sums.iter_mut().zip(terms.chunks(c)) {
                *sum = super::terms_into(t, v.as_mut().and_then(Iterator::next));
            }
        }
        good
    };
    #[cfg(feature = "parallel")]
    let ok = if blocks.len() > 1 {
        blocks.into_par_iter().map(block).reduce(|| true, |a, b| a & b)
    } else {
        blocks.into_iter().map(block).fold(true, |a, b| a & b)
    };
    #[cfg(not(feature = "parallel"))]
    let ok = blocks.into_iter().map(block).fold(true, |a, b| a & b);
    ok
}
