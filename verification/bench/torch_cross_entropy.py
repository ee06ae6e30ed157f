#!/usr/bin/env python3
"""PyTorch side of the speed comparison (see verification/reports/speed.md).

Times forward + backward, f32, CPU, median of repeats, on the shapes of
`cargo bench -p entropic --bench kernels`:
- F.cross_entropy (class targets, mean) at (256, 10), (4096, 1000),
  (65536, 100), (512, 32000);
- F.binary_cross_entropy_with_logits (mean) at (65536, 80);
- torchvision.ops.sigmoid_focal_loss (alpha 0.25, gamma 2, mean) at
  (65536, 80) when torchvision imports.

Usage: python3 verification/bench/torch_cross_entropy.py [--threads N] [--repeats R]
"""

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F


def timed(fn, repeats, min_time=0.5):
    fn()  # warm-up
    fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 10 * repeats:
            break
    return statistics.median(samples), len(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, python {platform.python_version()}")
    print(f"{'case':<40} {'median ms':>10} {'GB/s':>8} {'runs':>5}")

    for n, c in [(256, 10), (4096, 1000), (65536, 100), (512, 32000)]:
        z = (torch.rand(n, c, generator=gen) * 8 - 4).requires_grad_(True)
        y = torch.randint(0, c, (n,), generator=gen)

        def step():
            z.grad = None
            F.cross_entropy(z, y).backward()

        t, runs = timed(step, args.repeats)
        gbs = 2 * n * c * 4 / t / 1e9
        print(f"{'cross_entropy ' + f'{n}x{c}':<40} {t * 1e3:>10.3f} {gbs:>8.2f} {runs:>5}")

    n, c = 65536, 80
    x = (torch.rand(n, c, generator=gen) * 8 - 4).requires_grad_(True)
    lab = (torch.rand(n, c, generator=gen) > 0.75).float()

    def bce():
        x.grad = None
        F.binary_cross_entropy_with_logits(x, lab).backward()

    t, runs = timed(bce, args.repeats)
    print(f"{'bce_with_logits ' + f'{n}x{c}':<40} {t * 1e3:>10.3f} {3 * n * c * 4 / t / 1e9:>8.2f} {runs:>5}")
    try:
        from torchvision.ops import sigmoid_focal_loss
    except Exception as e:  # noqa: BLE001
        print(f"# torchvision unavailable: {e}")
        return

    def focal():
        x.grad = None
        sigmoid_focal_loss(x, lab, alpha=0.25, gamma=2.0, reduction="mean").backward()

    t, runs = timed(focal, args.repeats)
    print(f"{'sigmoid_focal_loss ' + f'{n}x{c}':<40} {t * 1e3:>10.3f} {3 * n * c * 4 / t / 1e9:>8.2f} {runs:>5}")


if __name__ == "__main__":
    main()
