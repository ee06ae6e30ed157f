//! Fast batch kernels vs the generic definitions (evaluated in f64), on
//! random and extreme rows, and determinism across thread counts.

mod common;

use common::{SplitMix, ulps32, ulps64};
use entropic::{
    Batch, Reduction, SoftmaxCrossEntropy, Targets, log_softmax, log_softmax_batch_into, softmax, softmax_batch_into,
};

/// Kernel loss vs definition loss (f64): ulps of the loss, or an absolute
/// slack for losses near 0.
///
/// Reason: the kernel adds `s = Σ e^{z−m}` in the definition's order and
/// takes the same `ln s`, but its vectorized `exp` may differ from the
/// standard library's by 1 ulp per term; `s` then differs by a few ulps of
/// `s`, so `ln s` by a few `ε` absolute — many ulps of a loss near 0 (a
/// confident correct row), a few ulps otherwise.
const LOSS_ULPS: u64 = 16;
const LOSS_ABS_EPS: f64 = 4.0;

/// Kernel softmax vs the definition's `exp(z − m − ln s)`, in ulps: a base
/// plus one ulp per unit of `|z − m − ln s|`.
///
/// Reason: the definition rounds the argument `z − m − ln s` (relative error
/// ½ε, i.e. absolute ½ε·|arg|), which moves its `exp` by `|arg|/2` ulps; the
/// kernel's `e^{z−m}/s` rounds twice (≤ 1 ulp each, exp ≤ 1 ulp).
const SOFTMAX_BASE_ULPS: f64 = 4.0;

/// f32 fast path vs the f64 definition rounded to f32: 1 ulp (the f32 path
/// is the f64 path rounded once; double rounding adds up to 1), or values
/// whose f64 difference is within the f64 tolerances above.
const F32_ULPS: u64 = 1;

fn rows(rng: &mut SplitMix, c: usize, f32_range: bool) -> Vec<Vec<f64>> {
    let huge = if f32_range { 3e38 } else { 1e300 };
    let mut out = vec![
        vec![0.0; c],
        vec![huge; c],
        vec![-huge; c],
        (0..c).map(|_| rng.uniform(-1e4, 1e4)).collect(),
        (0..c).map(|_| rng.uniform(-huge, huge)).collect(),
        (0..c).map(|_| rng.uniform(-10.0, 10.0)).collect(),
        (0..c).map(|_| rng.uniform(-100.0, 100.0)).collect(),
    ];
    // −∞ masks (keeping one finite entry).
    let mut masked: Vec<f64> = (0..c).map(|_| rng.uniform(-30.0, 30.0)).collect();
    for (j, z) in masked.iter_mut().enumerate() {
        if j % 3 == 1 {
            *z = f64::NEG_INFINITY;
        }
    }
    out.push(masked);
    if f32_range {
        for r in &mut out {
            for z in r.iter_mut() {
                *z = f64::from(*z as f32);
            }
        }
    }
    out
}

fn loss_close(k: f64, d: f64) -> bool {
    ulps64(k, d) <= LOSS_ULPS || (k - d).abs() <= LOSS_ABS_EPS * f64::EPSILON
}

#[test]
fn fast_paths_agree_with_definitions_in_ulps() {
    let mut rng = SplitMix(17);
    for c in [1usize, 2, 3, 7, 8, 9, 31, 100, 1000, 32000] {
        for f32_range in [false, true] {
            for row in rows(&mut rng, c, f32_range) {
                let y = [rng.below(c)];
                let ce = SoftmaxCrossEntropy::new().with_reduction(Reduction::None);
                let b = Batch::new(&row, 1, c).unwrap();
                // Cross-entropy (class target; a masked target gives +∞ in both).
                let k = ce.loss(b, Targets::<f64>::Classes(&y)).unwrap().unreduced[0];
                let d = ce.definition(b, Targets::<f64>::Classes(&y)).unwrap().unreduced[0];
                assert!(loss_close(k, d), "c={c}: kernel {k} vs definition {d}");
                // Softmax and log-softmax.
                let (mut a, mut l) = (vec![0.0; c], vec![0.0; c]);
                softmax_batch_into(b, &mut a).unwrap();
                log_softmax_batch_into(b, &mut l).unwrap();
                let (ad, ld) = (softmax(&row).unwrap(), log_softmax(&row).unwrap());
                for j in 0..c {
                    let tol = SOFTMAX_BASE_ULPS + ld[j].abs();
                    assert!(
                        ulps64(a[j], ad[j]) as f64 <= tol,
                        "c={c} j={j}: softmax {} vs {}",
                        a[j],
                        ad[j]
                    );
                    assert!(
                        loss_close(-l[j], -ld[j]),
                        "c={c} j={j}: log_softmax {} vs {}",
                        l[j],
                        ld[j]
                    );
                }
                if !f32_range {
                    continue;
                }
                // f32 fast path vs the f64 definition rounded.
                let row32: Vec<f32> = row.iter().map(|&z| z as f32).collect();
                let b32 = Batch::new(&row32, 1, c).unwrap();
                let k32 = ce.loss(b32, Targets::<f32>::Classes(&y)).unwrap().unreduced[0];
                assert!(
                    ulps32(k32, d as f32) <= F32_ULPS || loss_close(f64::from(k32), d),
                    "c={c}: f32 {k32} vs {d}"
                );
                let mut a32 = vec![0.0f32; c];
                softmax_batch_into(b32, &mut a32).unwrap();
                for j in 0..c {
                    assert!(
                        ulps32(a32[j], ad[j] as f32) <= F32_ULPS
                            || ulps64(f64::from(a32[j]), ad[j]) as f64 <= SOFTMAX_BASE_ULPS + ld[j].abs(),
                        "c={c} j={j}: f32 softmax {} vs {}",
                        a32[j],
                        ad[j]
                    );
                }
            }
        }
    }
}

#[test]
fn large_row_loss_stays_within_a_few_f32_ulps() {
    // A 32 000-class f32 row: sums in f64, so the loss is the f64 loss rounded.
    let mut rng = SplitMix(5);
    let c = 32000;
    let row: Vec<f32> = (0..c).map(|_| rng.uniform(-5.0, 5.0) as f32).collect();
    let row64: Vec<f64> = row.iter().map(|&z| f64::from(z)).collect();
    let ce = SoftmaxCrossEntropy::new();
    let k = ce
        .loss(Batch::new(&row, 1, c).unwrap(), Targets::<f32>::Classes(&[123]))
        .unwrap();
    let d = ce
        .definition(Batch::new(&row64, 1, c).unwrap(), Targets::<f64>::Classes(&[123]))
        .unwrap();
    assert!(ulps32(k.reduced.unwrap(), d.reduced.unwrap() as f32) <= F32_ULPS);
}

#[cfg(feature = "parallel")]
#[test]
fn one_and_many_threads_give_identical_bits() {
    let mut rng = SplitMix(9);
    for (n, c) in [(1000usize, 10usize), (300, 1000), (8, 32000)] {
        let z: Vec<f32> = (0..n * c).map(|_| rng.uniform(-20.0, 20.0) as f32).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let p: Vec<f32> = (0..n * c).map(|_| rng.uniform(0.0, 1.0) as f32).collect();
        let x: Vec<f32> = (0..n * c).map(|_| rng.uniform(-30.0, 30.0) as f32).collect();
        let labels: Vec<f32> = (0..n * c).map(|_| rng.uniform(0.0, 1.0) as f32).collect();
        let run = || {
            let b = Batch::new(&z, n, c).unwrap();
            let ce = SoftmaxCrossEntropy::new().with_label_smoothing(0.1).unwrap();
            let a = SoftmaxCrossEntropy::new()
                .loss_and_grad(b, Targets::<f32>::Classes(&y))
                .unwrap();
            let s = ce.loss_and_grad(b, Targets::<f32>::Classes(&y)).unwrap();
            let q = SoftmaxCrossEntropy::new()
                .loss_and_grad(b, Targets::Probabilities(Batch::new(&p, n, c).unwrap()))
                .unwrap();
            let bce = entropic::BinaryCrossEntropyWithLogits::new()
                .loss_and_grad(Batch::new(&x, n, c).unwrap(), Batch::new(&labels, n, c).unwrap())
                .unwrap();
            let focal = entropic::SigmoidFocalLoss::torchvision()
                .with_reduction(Reduction::Mean)
                .loss_and_grad(Batch::new(&x, n, c).unwrap(), Batch::new(&labels, n, c).unwrap())
                .unwrap();
            // Hard labels: the f32 path of the sigmoid family.
            let hard: Vec<f32> = labels.iter().map(|&v| if v > 0.7 { 1.0 } else { 0.0 }).collect();
            let bce_hard = entropic::BinaryCrossEntropyWithLogits::new()
                .loss_and_grad(Batch::new(&x, n, c).unwrap(), Batch::new(&hard, n, c).unwrap())
                .unwrap();
            let focal_hard = entropic::SigmoidFocalLoss::new(Some(0.25), 1.5)
                .unwrap()
                .with_reduction(Reduction::Sum)
                .loss_and_grad(Batch::new(&x, n, c).unwrap(), Batch::new(&hard, n, c).unwrap())
                .unwrap();
            // Bi-tempered on the first rows (its Newton solve is slower).
            let m = n.min(64);
            let bt_b = Batch::new(&z[..m * c], m, c).unwrap();
            let bt = entropic::BiTemperedLogisticLoss::new(0.8, 1.2)
                .unwrap()
                .loss_and_grad(bt_b, Targets::<f32>::Classes(&y[..m]))
                .unwrap();
            let bt_p = entropic::BiTemperedLogisticLoss::new(0.5, 0.8)
                .unwrap()
                .loss_and_grad(bt_b, Targets::Probabilities(Batch::new(&p[..m * c], m, c).unwrap()))
                .unwrap();
            let mut sm = vec![0.0f32; n * c];
            softmax_batch_into(b, &mut sm).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut all = Vec::new();
            for (o, g) in [&a, &s, &q, &bce, &focal, &bce_hard, &focal_hard, &bt, &bt_p] {
                all.push(bits(&o.unreduced));
                all.push(bits(&[o.reduced.unwrap()]));
                all.push(bits(g));
            }
            all.push(bits(&sm));
            all
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        // More workers than cores, so that blocks really are split.
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(run);
        assert_eq!(one, many, "n={n} c={c}");
    }
}

/// `f32` class targets run in groups of rows (stage by stage, for the
/// overlap of independent rows); every row must still give the bits it gives
/// alone: a batch of 11 rows (not a multiple of the group) against each row
/// as a batch of one, with class weights and an ignored target inside a
/// group, values and gradients, with and without the gradient.
#[test]
fn grouped_class_rows_give_the_bits_of_single_rows() {
    let mut rng = SplitMix(21);
    for c in [3usize, 10, 100, 1000] {
        let n = 11;
        let z: Vec<f32> = (0..n * c).map(|_| rng.uniform(-20.0, 20.0) as f32).collect();
        let mut y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        y[5] = c - 1;
        let w: Vec<f64> = (0..c).map(|_| rng.uniform(0.1, 3.0)).collect();
        for ce in [
            SoftmaxCrossEntropy::new().with_reduction(Reduction::Sum),
            SoftmaxCrossEntropy::new()
                .with_reduction(Reduction::Sum)
                .with_weight(w.clone())
                .unwrap()
                .with_ignore_index(Some(c - 1)),
        ] {
            let all = ce
                .loss_and_grad(Batch::new(&z, n, c).unwrap(), Targets::<f32>::Classes(&y))
                .unwrap();
            let values = ce
                .loss(Batch::new(&z, n, c).unwrap(), Targets::<f32>::Classes(&y))
                .unwrap();
            for i in 0..n {
                let row = &z[i * c..(i + 1) * c];
                let one = ce
                    .loss_and_grad(Batch::new(row, 1, c).unwrap(), Targets::<f32>::Classes(&y[i..=i]))
                    .unwrap();
                assert_eq!(
                    all.0.unreduced[i].to_bits(),
                    one.0.unreduced[0].to_bits(),
                    "c={c} row {i}"
                );
                assert_eq!(
                    values.unreduced[i].to_bits(),
                    one.0.unreduced[0].to_bits(),
                    "c={c} row {i}"
                );
                let bits = |g: &[f32]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&all.1[i * c..(i + 1) * c]), bits(&one.1), "c={c} row {i}");
            }
        }
    }
}

/// The `f32` path of binary cross-entropy (no weights) with hard labels vs
/// the `f64` kernel on the same values rounded to `f32`, in `f32` ulps
/// (values, reduced value, gradient).
///
/// Reason (a priori, relative errors in ulps): `t = e^{−|x|}` ≤ 2 and
/// `ln(1 + t)` ≤ 2 + 2 inherited from `t`; `σ(±x)` ≤ 2 (`1/(1 + t)`) and
/// ≤ 4.5 (`t/(1 + t)`); `softplus(±x) = max(±x, 0) + ln(1 + t)` ≤ 4.5 (a
/// sum of non-negative terms). The value is a softplus, the gradient a `σ`
/// times the rounded scale (≤ 5.5); ½ for rounding the `f64` result. The
/// verifier's `F32_SIGMOID_BCE_PATH`.
const F32_BCE_PATH_ULPS: u64 = 6;

/// The `f32` path of the sigmoid focal loss with hard labels, same
/// comparison: `17 + ⌈3γ⌉` ulps.
///
/// Reason (a priori): from the pieces above, the value `α_t·q^γ·b` adds
/// ≤ 6 ulps and the gradient `∓α_t·q^γ·(γ·p_t·b + q)` (no cancellation)
/// ≤ 12.5 to the error of `q^γ`: exact at `γ = 0`, `q` (4.5) at `γ = 1`,
/// `q·q` (9.5) at `γ = 2`, else `e^{−γ(max(u, 0) + ln(1 + t))}` by the
/// `f32` exponential of an exact pair (≤ 2), which inherits `γ` times the
/// ≤ 4-ulp error of `ln(1 + t) ≤ ln 2` (≤ 2.8γ + 2.5); all ≤ `3γ + 4`; ½ for rounding the `f64` result. The
/// verifier's `f32_sigmoid_focal_path`.
fn f32_focal_path_ulps(gamma: f64) -> u64 {
    17 + (3.0 * gamma).ceil() as u64
}

#[test]
fn f32_sigmoid_path_stays_within_its_bound() {
    use entropic::{BinaryCrossEntropyWithLogits, SigmoidFocalLoss};
    let mut rng = SplitMix(31);
    // Dense over [−120, 120], the extremes, and random logits; each with
    // label 0 and label 1.
    let mut x: Vec<f32> = (0..=24_000).map(|i| (-120.0 + 0.01 * f64::from(i)) as f32).collect();
    x.extend([
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        f32::MIN_POSITIVE,
        88.0,
        -88.0,
        104.0,
        -104.0,
        1e6,
        -1e6,
        f32::MAX,
        -f32::MAX,
    ]);
    x.extend((0..4000).map(|_| rng.uniform(-30.0, 30.0) as f32));
    let c = 100;
    x.resize(x.len().div_ceil(c) * c, 0.5);
    let x: Vec<f32> = x.iter().chain(&x).copied().collect();
    let n = x.len() / c;
    let y: Vec<f32> = (0..x.len()).map(|i| if i < x.len() / 2 { 0.0 } else { 1.0 }).collect();
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let y64: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    let (b32, l32) = (Batch::new(&x, n, c).unwrap(), Batch::new(&y, n, c).unwrap());
    let (b64, l64) = (Batch::new(&x64, n, c).unwrap(), Batch::new(&y64, n, c).unwrap());
    let worst = |(o32, g32): (entropic::LossOutput<f32>, Vec<f32>),
                 (o64, g64): (entropic::LossOutput<f64>, Vec<f64>)| {
        o32.unreduced
            .iter()
            .chain(&o32.reduced)
            .chain(&g32)
            .zip(o64.unreduced.iter().chain(&o64.reduced).chain(&g64))
            .map(|(a, b)| ulps32(*a, *b as f32))
            .max()
            .unwrap()
    };
    let mut report = Vec::new();
    for reduction in [Reduction::Sum, Reduction::Mean] {
        let bce = BinaryCrossEntropyWithLogits::new().with_reduction(reduction);
        let e = worst(
            bce.loss_and_grad(b32, l32).unwrap(),
            bce.loss_and_grad(b64, l64).unwrap(),
        );
        assert!(e <= F32_BCE_PATH_ULPS, "BCE {reduction:?}: {e} ulps");
        report.push(format!("BCE {reduction:?} {e}"));
        for gamma in [0.0, 0.5, 1.0, 2.0, 3.7, 6.0] {
            for alpha in [None, Some(0.25)] {
                let fl = SigmoidFocalLoss::new(alpha, gamma).unwrap().with_reduction(reduction);
                let e = worst(fl.loss_and_grad(b32, l32).unwrap(), fl.loss_and_grad(b64, l64).unwrap());
                let bound = f32_focal_path_ulps(gamma);
                assert!(
                    e <= bound,
                    "focal γ {gamma} α {alpha:?} {reduction:?}: {e} ulps > {bound}"
                );
                report.push(format!("focal γ {gamma} α {alpha:?} {reduction:?} {e}"));
            }
        }
    }
    eprintln!("f32 sigmoid path, worst ulps: {}", report.join("; "));
}

/// Validation counts bad entries first (blocks in parallel) and searches only
/// when the count is not 0: on batches larger than one block, the error
/// still names the first bad entry or row, in the order of the
/// definitions' checks.
#[test]
fn validation_of_large_batches_names_the_first_bad_entry() {
    use entropic::{BiTemperedLogisticLoss, Error, Position};
    let (n, c) = (200usize, 1000usize);
    let z: Vec<f32> = (0..n * c).map(|j| ((j * 37) % 101) as f32 * 0.1 - 5.0).collect();
    let mut y = vec![0.0f32; n * c];
    for i in 0..n {
        y[i * c + (i * 13) % c] = 1.0;
    }
    let bt = BiTemperedLogisticLoss::new(0.8, 1.2).unwrap();
    let run = |z: &[f32], y: &[f32]| {
        bt.loss(
            Batch::new(z, n, c).unwrap(),
            Targets::Probabilities(Batch::new(y, n, c).unwrap()),
        )
        .err()
    };
    assert!(run(&z, &y).is_none());
    // A label out of range, then a row without a positive label after it:
    // the range check comes first.
    let mut bad = y.clone();
    bad[150 * c + 7] = 1.5;
    bad[120 * c..121 * c].fill(0.0);
    let e = run(&z, &bad);
    assert!(
        matches!(e, Some(Error::OutOfDomain { at: Position::Cell { row: 150, col: 7 }, value, .. }) if value == 1.5),
        "{e:?}"
    );
    bad[150 * c + 7] = 0.0;
    bad[170 * c..171 * c].fill(0.0);
    let e = run(&z, &bad);
    assert!(
        matches!(
            e,
            Some(Error::OutOfDomain {
                at: Position::Row(120),
                ..
            })
        ),
        "{e:?}"
    );
    // Activations: the first NaN or +∞ in row order.
    let mut bad_z = z.clone();
    bad_z[190 * c + 3] = f32::INFINITY;
    bad_z[180 * c + 999] = f32::NAN;
    let e = run(&bad_z, &y);
    assert!(
        matches!(
            e,
            Some(Error::NonFinite {
                at: Position::Cell { row: 180, col: 999 },
                ..
            })
        ),
        "{e:?}"
    );
    // Softmax cross-entropy with probability targets checks its logits the same way.
    let p: Vec<f32> = y.clone();
    let e = SoftmaxCrossEntropy::new()
        .loss(
            Batch::new(&bad_z, n, c).unwrap(),
            Targets::Probabilities(Batch::new(&p, n, c).unwrap()),
        )
        .err();
    assert!(
        matches!(
            e,
            Some(Error::NonFinite {
                at: Position::Cell { row: 180, col: 999 },
                ..
            })
        ),
        "{e:?}"
    );
}
