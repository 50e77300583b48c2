"""Float32 matrix-multiply throughput of NumPy (OpenBLAS) on this machine: the reference floor
for Kiln's `matmul_f32` criterion benchmark.

    pip install numpy && python3 benches/peers/matmul_numpy.py

Prints one line per size: n, best seconds of 20 runs, GFLOP/s (2 n^3 / t).
"""

import time

import numpy as np


def bench(n: int, reps: int = 20) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return best


if __name__ == "__main__":
    print(f"numpy {np.__version__}")
    for n in (256, 1024):
        t = bench(n)
        print(f"n={n} best={t * 1e3:.3f} ms gflops={2 * n**3 / t / 1e9:.1f}")
