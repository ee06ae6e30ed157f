"""Google's reference bi-tempered loss (JAX), forward + backward, f32, on the
shape of `cargo bench -p entropic --bench kernels` (bi_tempered_value_grad):
logits [4096, 1000] in [-4, 4), one-hot labels, t = (0.8, 1.2) and (0.5, 0.8)
(the issue's pairs) and (0.8, 1.3) (a t2 whose 1/(1 - t2) is not an integer:
our f32 phase's general path), the reference's default 5 normalization
iterations.

Also reports how far the reference's 5 iterations are from a normalized
tempered softmax (max |sum p - 1| over the rows, computed in f64 from its
own normalization constants), since ours solves to working precision.

    pip install jax jax-bitempered-loss
    python3 verification/bench/jax_bi_tempered.py [--repeats 10]

Threads: XLA's CPU backend uses all cores (2 here); `--threads` sets
`--xla_cpu_multi_thread_eigen` / `intra_op_parallelism_threads` before
JAX is imported.
"""

import argparse
import os
import statistics
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={args.threads}"
    )
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax_bitempered_loss import loss as btl

    n, c = 4096, 1000
    rng = np.random.default_rng(4)
    logits = jnp.asarray(rng.uniform(-4.0, 4.0, (n, c)).astype(np.float32))
    labels_np = np.zeros((n, c), dtype=np.float32)
    labels_np[np.arange(n), (np.arange(n) * 7919) % c] = 1.0
    labels = jnp.asarray(labels_np)
    print(f"jax {jax.__version__}, devices {jax.devices()}, threads {args.threads}")
    for t1, t2 in [(0.8, 1.2), (0.5, 0.8), (0.8, 1.3)]:
        def total(a, t1=t1, t2=t2):
            return jnp.sum(btl.bi_tempered_logistic_loss(a, labels, t1, t2, num_iters=5))

        step = jax.jit(jax.value_and_grad(total))
        v, g = step(logits)
        g.block_until_ready()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            v, g = step(logits)
            g.block_until_ready()
            times.append(time.perf_counter() - t0)
        # How normalized is the reference's tempered softmax after 5 iterations?
        lam = np.asarray(btl.compute_normalization(logits, t2, num_iters=5), dtype=np.float64)
        a = np.asarray(logits, dtype=np.float64)
        u = 1.0 + (1.0 - t2) * (a - lam)
        p = np.where(u > 0, np.maximum(u, 0) ** (1.0 / (1.0 - t2)), 0.0)
        resid = np.max(np.abs(p.sum(axis=1) - 1.0))
        print(
            f"bi_tempered (4096, 1000) t1={t1} t2={t2}: median {statistics.median(times) * 1e3:.1f} ms "
            f"(min {min(times) * 1e3:.1f}, {args.repeats} repeats), loss sum {float(v):.6g}, "
            f"max |sum p - 1| after 5 iterations {resid:.3e}"
        )


if __name__ == "__main__":
    main()
