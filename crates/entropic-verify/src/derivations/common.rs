//! Shared pieces of the pages: dual-number helpers, domains, scales.

use entropic::{Batch, Reduction, SoftmaxCrossEntropy, Targets};
use num_dual::Dual64;

use super::engine::Case;
use crate::generate::Inputs;

pub use crate::ad::seed_derivative as seeded;

/// The gradient of `f` at `row` by forward-mode dual numbers, one pass per entry.
pub fn dual_gradient(row: &[f64], f: impl Fn(&[Dual64]) -> Option<Dual64>) -> Option<Vec<f64>> {
    (0..row.len()).map(|i| f(&seeded(row, i)).map(|d| d.eps)).collect()
}

/// The Jacobian of `f` (row-major `[out, in]`: entry `(j, i)` is `∂f_j/∂x_i`).
pub fn dual_jacobian(row: &[f64], f: impl Fn(&[Dual64]) -> Option<Vec<Dual64>>) -> Option<Vec<f64>> {
    let c = row.len();
    let cols: Vec<Vec<f64>> = (0..c)
        .map(|i| f(&seeded(row, i)).map(|v| v.iter().map(|d| d.eps).collect()))
        .collect::<Option<_>>()?;
    let m = cols.first().map_or(0, Vec::len);
    Some((0..m).flat_map(|j| cols.iter().map(move |col| col[j])).collect())
}

/// Softmax cross-entropy with soft labels, summed, through the production definition.
pub fn ce_definition(z: &[Dual64], y: &[f64]) -> Option<Dual64> {
    SoftmaxCrossEntropy::new()
        .with_reduction(Reduction::Sum)
        .definition(Batch::single_row(z), Targets::Probabilities(Batch::single_row(y)))
        .ok()?
        .reduced
}

/// `Σ|p ln p| + Σ|p ln q|` over `p > 0` (the magnitude information identities are judged against).
pub fn info_scale(c: &Case) -> f64 {
    c.p.iter()
        .enumerate()
        .filter(|(_, a)| **a > 0.0)
        .map(|(i, &a)| {
            (a * a.ln()).abs()
                + c.q
                    .get(i)
                    .map_or(0.0, |&b| if b > 0.0 { (a * b.ln()).abs() } else { 0.0 })
        })
        .sum()
}

/// Pairs of probability vectors: the claims' 6 edge pairs, then seeded random ones.
pub fn simplex_pairs(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let all = crate::claims::simplex_pairs(inputs, 150);
    let mut cases: Vec<Case> = all
        .into_iter()
        .map(|(p, q)| Case {
            p,
            q,
            ..Case::default()
        })
        .collect();
    let random = cases.split_off(6);
    (cases, random)
}

/// Moderate logit rows (|z| ≤ 8) with soft labels scaled by 1/2, 1 or 2, after edge rows.
pub fn rows_with_soft_labels(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let edge = vec![
        Case {
            z: vec![0.0, 0.0, 0.0],
            y: vec![1.0, 0.0, 0.0],
            ..Case::default()
        },
        Case {
            z: vec![3.0],
            y: vec![1.0],
            ..Case::default()
        },
        Case {
            z: vec![20.0, -20.0, 0.0],
            y: vec![0.2, 0.3, 0.5],
            ..Case::default()
        },
        Case {
            z: vec![1.0, 2.0, 3.0, 4.0],
            y: vec![0.5, 0.5, 0.5, 0.5],
            ..Case::default()
        },
        Case {
            z: vec![-8.0, 8.0],
            y: vec![0.0, 2.0],
            ..Case::default()
        },
    ];
    let random = (0..120)
        .map(|_| {
            let c = 1 + inputs.below(12);
            let z = inputs.moderate_logits(c);
            let s = inputs.pick(&[0.5, 1.0, 2.0]);
            let y = inputs.simplex(c, true).iter().map(|v| v * s).collect();
            Case {
                z,
                y,
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

/// The verifier's edge logit rows then seeded random rows (spread up to 1e4, shifts to −1e6).
pub fn logit_rows(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let edge = Inputs::edge_logit_rows()
        .into_iter()
        .map(|z| Case { z, ..Case::default() })
        .collect();
    let random = (0..120)
        .map(|_| {
            let c = 1 + inputs.below(12);
            Case {
                z: inputs.logits(c),
                ..Case::default()
            }
        })
        .collect();
    (edge, random)
}

/// The index of the largest entry.
pub fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = i;
        }
    }
    best
}

/// `x ln x` with `0 ln 0 = 0`.
pub fn xlnx(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * x.ln() }
}
