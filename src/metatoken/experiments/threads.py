"""The thread counts every run computes with: one torch thread and one BLAS thread, whatever the backend.

Torch: a float reduction split over a different number of threads rounds differently, so the same
spec and seed give the same metrics with --workers 1, 2 or Ray only at a fixed count.

BLAS (numpy's OpenBLAS): the measurements' kernel statistics (evaluate/measure/distribution.py: an MMD
bootstrap and permutation test of ~400 matrix-vector products, a logistic classifier) call it, and it
starts one thread per core by default. Beside a second busy worker those threads wait on each other's
time slices: one MMD test over 2 x 500 states took 0.4 s with one BLAS thread and 1.4-11.8 s with two on
the 2-core machine under load, with identical values (OpenBLAS splits a product's output rows between
threads, never one dot product). docs/PERFORMANCE.md, "BLAS threads".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

TORCH_THREADS = 1
BLAS_THREADS = 1


@contextmanager
def run_threads() -> Iterator[None]:
    """Compute with TORCH_THREADS torch threads and BLAS_THREADS BLAS threads inside; restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)
