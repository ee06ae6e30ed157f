//! Softmax cross-entropy, sigmoid BCE and focal, and the bi-tempered loss,
//! value + gradient, f32, against a STREAM-like copy of the same byte count
//! (logits read + gradient written) measured in the same run as the
//! bandwidth bound.
//!
//! `cargo bench -p entropic --bench kernels`; thread count: rayon's default
//! (all cores) unless `RAYON_NUM_THREADS` is set.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use entropic::{Batch, BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy, Targets};

/// Deterministic pseudo-random logits in [−4, 4).
fn logits(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

/// The bandwidth bound: read `src`, write `dst` (same sizes as logits and
/// gradient), split over rayon's threads like the kernels.
fn copy(src: &[f32], dst: &mut [f32]) {
    use rayon::prelude::*;
    dst.par_chunks_mut(1 << 15)
        .zip(src.par_chunks(1 << 15))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

fn configure(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("f32");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g
}

fn softmax_cross_entropy(c: &mut Criterion) {
    let mut g = configure(c);
    for (n, k) in [(256usize, 10usize), (4096, 1000), (65536, 100), (512, 32000)] {
        let z = logits(n * k, 1);
        let y: Vec<usize> = (0..n).map(|i| (i * 7919) % k).collect();
        let mut grad = vec![0.0f32; n * k];
        let bytes = (2 * n * k * std::mem::size_of::<f32>()) as u64;
        g.throughput(Throughput::Bytes(bytes));
        let shape = format!("{n}x{k}");
        let ce = SoftmaxCrossEntropy::new();
        g.bench_function(BenchmarkId::new("softmax_ce_value_grad", &shape), |b| {
            b.iter(|| {
                ce.loss_and_grad_into(
                    Batch::new(black_box(&z), n, k).unwrap(),
                    Targets::<f32>::Classes(&y),
                    &mut grad,
                )
                .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("copy_bound", &shape), |b| {
            b.iter(|| copy(black_box(&z), &mut grad))
        });
    }
    g.finish();
}

fn sigmoid_bce(c: &mut Criterion) {
    let mut g = configure(c);
    let (n, k) = (65536usize, 80usize);
    let x = logits(n * k, 2);
    let y: Vec<f32> = logits(n * k, 3)
        .iter()
        .map(|v| if *v > 2.0 { 1.0 } else { 0.0 })
        .collect();
    let mut grad = vec![0.0f32; n * k];
    let shape = format!("{n}x{k}");
    // Logits and labels read, gradient written.
    g.throughput(Throughput::Bytes((3 * n * k * std::mem::size_of::<f32>()) as u64));
    let bce = BinaryCrossEntropyWithLogits::new();
    g.bench_function(BenchmarkId::new("sigmoid_bce_value_grad", &shape), |b| {
        b.iter(|| {
            bce.loss_and_grad_into(
                Batch::new(black_box(&x), n, k).unwrap(),
                Batch::new(&y, n, k).unwrap(),
                &mut grad,
            )
            .unwrap()
        })
    });
    // PyTorch's reduction='mean' forward + backward: the reduced value and
    // the gradient, no per-element loss buffer.
    g.bench_function(BenchmarkId::new("sigmoid_bce_reduced_value_grad", &shape), |b| {
        b.iter(|| {
            bce.reduced_loss_and_grad_into(
                Batch::new(black_box(&x), n, k).unwrap(),
                Batch::new(&y, n, k).unwrap(),
                &mut grad,
            )
            .unwrap()
        })
    });
    // Sigmoid focal loss (torchvision's α = 0.25, γ = 2, mean): with the
    // per-element values (allocating, as `loss_and_grad`), and reduced only.
    let fl = entropic::SigmoidFocalLoss::new(Some(0.25), 2.0)
        .unwrap()
        .with_reduction(entropic::Reduction::Mean);
    g.bench_function(BenchmarkId::new("sigmoid_focal_reduced_value_grad", &shape), |b| {
        b.iter(|| {
            fl.reduced_loss_and_grad_into(
                Batch::new(black_box(&x), n, k).unwrap(),
                Batch::new(&y, n, k).unwrap(),
                &mut grad,
            )
            .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("sigmoid_focal_value_grad", &shape), |b| {
        b.iter(|| {
            fl.loss_and_grad(Batch::new(black_box(&x), n, k).unwrap(), Batch::new(&y, n, k).unwrap())
                .unwrap()
        })
    });
    g.throughput(Throughput::Bytes((2 * n * k * std::mem::size_of::<f32>()) as u64));
    g.bench_function(BenchmarkId::new("copy_bound", &shape), |b| {
        b.iter(|| copy(black_box(&x), &mut grad))
    });
    g.finish();
}

/// The bi-tempered loss at (4096, 1000) with one-hot labels (dense, as the
/// JAX reference takes them), at the two temperature pairs and at
/// (0.8, 1.3), whose `1/(1 − t2)` is not an integer (the normalizer's `f32`
/// phase then takes its general path).
fn bi_tempered(c: &mut Criterion) {
    let mut g = configure(c);
    let (n, k) = (4096usize, 1000usize);
    let z = logits(n * k, 4);
    let mut labels = vec![0.0f32; n * k];
    for i in 0..n {
        labels[i * k + (i * 7919) % k] = 1.0;
    }
    let mut grad = vec![0.0f32; n * k];
    g.throughput(Throughput::Bytes((3 * n * k * std::mem::size_of::<f32>()) as u64));
    for (t1, t2) in [(0.8, 1.2), (0.5, 0.8), (0.8, 1.3)] {
        let loss = entropic::BiTemperedLogisticLoss::new(t1, t2).unwrap();
        g.bench_function(
            BenchmarkId::new("bi_tempered_value_grad", format!("{n}x{k}_t{t1}_{t2}")),
            |b| {
                b.iter(|| {
                    loss.loss_and_grad_into(
                        Batch::new(black_box(&z), n, k).unwrap(),
                        Targets::Probabilities(Batch::new(&labels, n, k).unwrap()),
                        &mut grad,
                    )
                    .unwrap()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, softmax_cross_entropy, sigmoid_bce, bi_tempered);
criterion_main!(benches);
