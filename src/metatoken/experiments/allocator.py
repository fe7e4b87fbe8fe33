"""Keep freed memory in the process: a run's training loop reuses the same large buffers every step.

glibc's malloc hands blocks above its mmap threshold (128 KiB at start, raised on the fly up to
32 MiB) straight to the kernel and returns freed heap to it beyond a trim threshold. A training
step allocates and frees tensors of 0.1-1 MiB (PPO's 2,048-row minibatch activations, a predictor
batch's MLP activations) and the rollout buffers of every PPO iteration, so the process kept
giving pages back and faulting fresh zeroed ones in: 24k-58k minor page faults per 8 PPO rollouts
on Mountain-v1, ~0 with fixed thresholds, and the training ran ~6% faster (docs/PERFORMANCE.md,
"Allocator"). Allocation does not change what is computed, so metrics do not move.

`retain_freed_memory()` fixes both thresholds once per process (worker or driver). Other C
libraries (macOS, musl) have no `mallopt` with these parameters: there it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for the dynamic threshold: larger blocks still map
TRIM_THRESHOLD = 512 << 20  # free heap kept before any is given back

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Fix malloc's mmap and trim thresholds (glibc only); True when they are set. Idempotent."""
    global _applied
    if _applied is None:
        _applied = _set_thresholds()
    return _applied


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
