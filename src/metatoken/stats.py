"""Seed statistics in the rliable style: IQM, stratified bootstrap CIs, and rank correlation."""

from __future__ import annotations

import numpy as np


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% (trimming 25% from each end)."""
    x = np.sort(np.asarray(x, dtype=float)[~np.isnan(np.asarray(x, dtype=float))])
    n = len(x)
    if n == 0:
        return float("nan")
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    return float(x[lo:hi].mean()) if hi > lo else float(x.mean())


def _iqm_rows(x: np.ndarray) -> np.ndarray:
    """`iqm` of each row of a NaN-free (R, N) matrix, summed exactly as `iqm` sums one row."""
    n = x.shape[1]
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    x = np.sort(x, axis=1)  # (R, N)
    return x[:, lo:hi].mean(axis=1) if hi > lo else x.mean(axis=1)  # (R,)


# Statistics with a row-wise form: the bootstrap evaluates all resamples in one call instead of
# `reps` Python calls (the report computes thousands of intervals; the loop dominated its time).
_ROWWISE = {iqm: _iqm_rows, np.mean: lambda x: x.mean(axis=1)}


def bootstrap_ci(
    groups: list[np.ndarray], stat=iqm, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(point, low, high) for `stat` over the pooled groups, resampling within each group (stratified)."""
    groups = [np.asarray(g, float)[~np.isnan(np.asarray(g, float))] for g in groups]
    groups = [g for g in groups if len(g)]
    if not groups:
        return (float("nan"),) * 3
    point = stat(np.concatenate(groups))
    rng = np.random.default_rng(seed)
    # Indices are drawn in the same order as one resample at a time, so intervals do not depend
    # on whether the statistic has a row-wise form.
    # One group's draws come from one call: numpy's bounded integers consume the bit stream value
    # by value, so a (reps, n) draw equals reps draws of n (checked in tests/test_stats.py).
    if len(groups) == 1:
        g = groups[0]
        resamples = g[rng.integers(0, len(g), (reps, len(g)))]  # (reps, N)
    else:
        resamples = np.stack([np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
                              for _ in range(reps)])  # (reps, N)
    rowwise = _ROWWISE.get(stat)
    samples = rowwise(resamples) if rowwise is not None else np.array([stat(r) for r in resamples])  # (reps,)
    lo, hi = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(point), float(lo), float(hi)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties given their average rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation; NaN when either side is constant."""
    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _as_strata(x) -> list[np.ndarray]:
    """One array per stratum (task); a single flat array is one stratum. NaNs dropped."""
    if (isinstance(x, np.ndarray) and x.ndim == 1) or (len(x) and np.isscalar(x[0])):
        x = [x]
    return [np.asarray(g, float)[~np.isnan(np.asarray(g, float))] for g in x]


def _poi(xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    """Mean over strata of P(X > Y) + 1/2 P(X = Y), every run of X against every run of Y."""
    per = []
    for x, y in zip(xs, ys, strict=True):
        diff = x[:, None] - y[None, :]  # (N, M)
        per.append(((diff > 0) + 0.5 * (diff == 0)).mean())
    return float(np.mean(per))


def _pair_shares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + 1/2 P(X = Y) per resample: x (R, N), y (R, M) -> (R,). Exact: every term is a multiple of 1/2."""
    diff = x[:, :, None] - y[:, None, :]  # (R, N, M)
    return ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(1, 2))


def probability_of_improvement(
    x, y, reps: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(point, low, high) of P(X > Y) as rliable defines it: per task, the share of (x run, y run) pairs
    with x > y, ties counting 1/2, averaged over tasks; the interval resamples each recipe's runs
    within each task (stratified bootstrap). x, y: one array of per-seed scores, or one per task."""
    xs, ys = _as_strata(x), _as_strata(y)
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} tasks, y has {len(ys)}")
    keep = [i for i in range(len(xs)) if len(xs[i]) and len(ys[i])]
    xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
    if not xs:
        return (float("nan"),) * 3
    point = _poi(xs, ys)
    rng = np.random.default_rng(seed)
    # Indices are drawn one resample at a time, x's strata then y's, as the stream has always been drawn
    # (so every interval is unchanged); the pair counts then run on all resamples at once.
    ix = [np.empty((reps, len(g)), np.int64) for g in xs]  # per stratum (reps, N)
    iy = [np.empty((reps, len(g)), np.int64) for g in ys]  # per stratum (reps, M)
    for r in range(reps):
        for g, out in zip(xs, ix):
            out[r] = rng.integers(0, len(g), len(g))
        for g, out in zip(ys, iy):
            out[r] = rng.integers(0, len(g), len(g))
    per = np.stack([_pair_shares(x[i], y[j]) for x, y, i, j in zip(xs, ys, ix, iy)], axis=1)  # (reps, S)
    samples = per.mean(axis=1)  # (reps,)
    lo, hi = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return point, float(lo), float(hi)
