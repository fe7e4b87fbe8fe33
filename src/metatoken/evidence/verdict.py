"""Verdict rules and the seed bootstrap the claims share (rules written out in docs/CLAIMS.md).

Every verdict is computed from an interval: a directional claim is supported when the 95%
interval of its estimate lies entirely on the claimed side of the null value, contradicted when it
lies entirely on the other side, and inconclusive otherwise or when the runs it needs are missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from metatoken.evidence.frontier import interpolate_at

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


@dataclass
class ClaimResult:
    """One row of the claims table."""

    claim: str
    statement: str
    evidence: str
    estimate: float
    ci_low: float
    ci_high: float
    verdict: str
    reason: str

    def as_dict(self) -> dict:
        """JSON-ready (NaN -> None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Part:
    """One tested part of a claim: its verdict and why."""

    verdict: str
    reason: str


def untestable(reason: str) -> Part:
    """A claim (or part) the experiment cannot test: inconclusive, with the reason."""
    return Part(INCONCLUSIVE, reason)


def directional(low: float, high: float, null: float = 0.0, greater: bool = True) -> Part:
    """Supported when [low, high] lies beyond `null` on the claimed side, contradicted on the other side."""
    if math.isnan(low) or math.isnan(high):
        return Part(INCONCLUSIVE, "no interval could be computed")
    side, other = (low > null, high < null) if greater else (high < null, low > null)
    span = f"95% interval [{low:.3g}, {high:.3g}]"
    if side:
        return Part(SUPPORTED, f"{span} lies {'above' if greater else 'below'} {null:g}")
    if other:
        return Part(CONTRADICTED, f"{span} lies {'below' if greater else 'above'} {null:g}")
    return Part(INCONCLUSIVE, f"{span} includes {null:g}")


def equivalent(low: float, high: float, margin: float) -> Part:
    """Equivalence: supported when [low, high] lies inside [-margin, margin], contradicted when it
    lies entirely outside it."""
    if math.isnan(low) or math.isnan(high):
        return Part(INCONCLUSIVE, "no interval could be computed")
    span = f"95% interval [{low:.3g}, {high:.3g}]"
    if -margin <= low and high <= margin:
        return Part(SUPPORTED, f"{span} lies inside ±{margin:g}")
    if low > margin or high < -margin:
        return Part(CONTRADICTED, f"{span} lies outside ±{margin:g}")
    return Part(INCONCLUSIVE, f"{span} overlaps the edge of ±{margin:g}")


def combine(parts: Sequence[Part]) -> Part:
    """A claim that is a conjunction: supported when every part is, contradicted when any part is."""
    reasons = "; ".join(p.reason for p in parts)
    if any(p.verdict == CONTRADICTED for p in parts):
        return Part(CONTRADICTED, reasons)
    if parts and all(p.verdict == SUPPORTED for p in parts):
        return Part(SUPPORTED, reasons)
    return Part(INCONCLUSIVE, reasons)


Strata = list[np.ndarray]  # one array per stratum, rows = seeds' runs, columns = the statistic's inputs


def seed_bootstrap(strata: Strata, stat: Callable[[Strata], float], reps: int = 1000, seed: int = 0,
                   alpha: float = 0.05) -> tuple[float, float, float]:
    """(point, low, high) of `stat`, resampling rows (seeds) with replacement within each stratum.
    The interval is NaN when fewer than half the resamples give a number."""
    point = float(stat(strata))
    rng = np.random.default_rng(seed)
    boots = np.array([stat([s[rng.integers(0, len(s), len(s))] for s in strata]) for _ in range(reps)])
    boots = boots[~np.isnan(boots)]
    if len(boots) < reps / 2:
        return point, float("nan"), float("nan")
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return point, float(lo), float(hi)


def mean_over_parts(strata: Strata, parts: Callable[[Strata], np.ndarray], reps: int = 1000, seed: int = 0,
                    alpha: float = 0.05) -> tuple[tuple[float, float, float], np.ndarray]:
    """((point, low, high), kept) for the mean over the parts (pairs, levels) that `parts` returns, with the
    same parts in the point and in every resample: a part enters only when it gives a number on the data
    and in at least half the resamples (`kept`, a bool per part), and a resample that lacks a kept part
    is skipped. Averaging whichever parts a resample happens to reach would make the interval describe
    another mean than the estimate. Resampling as in `seed_bootstrap`; NaN interval under half the resamples."""
    point = np.asarray(parts(strata), float)  # (P,)
    rng = np.random.default_rng(seed)
    boots = np.array([parts([s[rng.integers(0, len(s), len(s))] for s in strata]) for _ in range(reps)],
                     float).reshape(reps, len(point))  # (reps, P)
    kept = ~np.isnan(point) & ((~np.isnan(boots)).mean(0) >= 0.5)  # (P,)
    if not kept.any():
        return (float("nan"),) * 3, kept
    whole = boots[:, kept][~np.isnan(boots[:, kept]).any(1)].mean(1)  # (valid reps,)
    est = float(point[kept].mean())
    if len(whole) < reps / 2:
        return (est, float("nan"), float("nan")), kept
    lo, hi = np.quantile(whole, [alpha / 2, 1 - alpha / 2])
    return (est, float(lo), float(hi)), kept


def _nanmean(cell: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN; NaN (silently) for an all-NaN column."""
    ok = ~np.isnan(cell)
    n = ok.sum(0)
    return np.where(n > 0, np.where(ok, cell, 0.0).sum(0) / np.maximum(n, 1), np.nan)


def curve(cells: Strata, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """A recipe's frontier from its knob cells (columns: capability, metric): seed means per cell.
    A recipe with one knob value is one point, widened to a flat segment of +-tol in capability
    so that it can be matched at all."""
    means = np.array([_nanmean(c) for c in cells])  # (K, 2)
    if len(means) == 1:
        c, m = means[0]
        return np.array([c - tol, c + tol]), np.array([m, m])
    return means[:, 0], means[:, 1]


def matched_levels(caps_a: np.ndarray, caps_b: np.ndarray, n: int = 3) -> np.ndarray:
    """n capability levels evenly inside the overlap of two frontiers' ranges; empty without overlap."""
    lo = max(np.nanmin(caps_a), np.nanmin(caps_b))
    hi = min(np.nanmax(caps_a), np.nanmax(caps_b))
    if not hi >= lo:
        return np.array([])
    return np.linspace(lo, hi, n + 2)[1:-1] if hi > lo else np.array([lo])


def matched_gap(cells_a: Strata, cells_b: Strata, tol: float, levels: np.ndarray) -> float:
    """Mean over capability levels of metric_a(level) - metric_b(level) on the two frontiers
    (levels outside either frontier are skipped; NaN when none is inside both)."""
    ca, ma = curve(cells_a, tol)
    cb, mb = curve(cells_b, tol)
    gap = interpolate_at(ca, ma, levels) - interpolate_at(cb, mb, levels)
    return float(np.nanmean(gap)) if np.any(~np.isnan(gap)) else float("nan")
