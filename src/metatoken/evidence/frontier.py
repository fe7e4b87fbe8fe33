"""Matched capability: each recipe's frontier (capability against spookiness and amount of RL as
its knob moves), read off at the same capability levels for every recipe.

A frontier point is one run: (recipe, knob value, seed, capability, metric columns ...). Per knob
value the seeds are averaged; the knob means, ordered by capability, are joined by straight lines,
and a metric is read off at each requested capability level. Levels outside the range the
recipe reached are NaN: a frontier is never extrapolated. Intervals resample seeds within each
knob value. Definitions in docs/MEASUREMENTS.md ("matched capability").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from metatoken.errors import UserError

RESULT_COLUMNS = ["recipe", "level", "metric", "estimate", "ci_low", "ci_high", "coverage"]


def wide_runs(results: pd.DataFrame) -> pd.DataFrame:
    """Tidy results (one row per run x metric) -> one row per run: metadata columns plus one column
    per metric."""
    meta = [c for c in results.columns if c not in ("metric", "value")]
    dup = results.duplicated([*meta, "metric"], keep=False)
    if dup.any():
        first = results[dup].iloc[0]
        raise UserError(f"results: two values of metric {first['metric']!r} for one run "
                        f"({', '.join(f'{c}={first[c]}' for c in meta)}); runs must differ in a metadata column")
    wide = results.set_index([*meta, "metric"])["value"].unstack("metric")
    wide.columns.name = None
    return wide.reset_index()


def interpolate_at(capability: np.ndarray, metric: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Piecewise-linear read-off of `metric` at capability `levels` through points sorted by capability
    (points with equal capability averaged); NaN outside [min, max] capability."""
    capability, metric = np.asarray(capability, float), np.asarray(metric, float)
    ok = ~(np.isnan(capability) | np.isnan(metric))
    capability, metric = capability[ok], metric[ok]
    levels = np.asarray(levels, float)
    if len(capability) == 0:
        return np.full(levels.shape, np.nan)
    xs, inverse = np.unique(capability, return_inverse=True)
    ys = np.bincount(inverse, weights=metric) / np.bincount(inverse)
    return np.interp(levels, xs, ys, left=np.nan, right=np.nan)


def _knob_means(groups: list[pd.DataFrame], capability: str, metric: str,
                rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """Seed means of capability and metric per knob value; seeds resampled per knob when rng is given."""
    caps, vals = [], []
    for g in groups:
        c, v = g[capability].to_numpy(float), g[metric].to_numpy(float)
        if rng is not None:
            pick = rng.integers(0, len(g), len(g))
            c, v = c[pick], v[pick]
        ok = ~(np.isnan(c) | np.isnan(v))
        caps.append(c[ok].mean() if ok.any() else np.nan)
        vals.append(v[ok].mean() if ok.any() else np.nan)
    return np.array(caps), np.array(vals)


def matched_capability(
    points: pd.DataFrame,
    levels: Sequence[float],
    metrics: Sequence[str],
    *,
    recipe: str = "recipe",
    knob: str = "knob",
    capability: str = "capability",
    reps: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """Each recipe's metrics at the given capability levels, with bootstrap intervals over seeds.

    points: one row per run with columns `recipe`, `knob`, `capability` and each of `metrics`
    (a `seed` column is not needed: every row is one seed's run).
    Returns one row per (recipe, level, metric): `estimate` (NaN outside the recipe's range),
    `ci_low`/`ci_high` (percentiles of the resamples that reach the level; NaN when under half do)
    and `coverage` (the share of resamples whose frontier reaches the level).
    """
    levels = np.asarray(levels, float)
    rng = np.random.default_rng(seed)
    rows = []
    for name, frame in points.groupby(recipe, sort=True):
        groups = [g for _, g in frame.groupby(knob, sort=True, dropna=False)]
        for metric in metrics:
            est = interpolate_at(*_knob_means(groups, capability, metric, None), levels)
            boots = np.array([interpolate_at(*_knob_means(groups, capability, metric, rng), levels)
                              for _ in range(reps)])  # (reps, L)
            coverage = (~np.isnan(boots)).mean(0)  # (L,)
            for j, level in enumerate(levels):
                b = boots[:, j][~np.isnan(boots[:, j])]
                lo, hi = (np.quantile(b, [alpha / 2, 1 - alpha / 2]) if coverage[j] >= 0.5
                          else (np.nan, np.nan))
                rows.append((name, float(level), metric, float(est[j]), float(lo), float(hi),
                             float(coverage[j])))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def common_levels(points: pd.DataFrame, n: int = 3, *, recipe: str = "recipe", knob: str = "knob",
                  capability: str = "capability") -> np.ndarray:
    """n capability levels evenly spaced inside the range every recipe's frontier covers
    (the overlap of their knob-mean ranges, ends excluded); empty when the ranges do not overlap."""
    lo, hi = -np.inf, np.inf
    for _, frame in points.groupby(recipe):
        means = frame.groupby(knob, dropna=False)[capability].mean()
        lo, hi = max(lo, means.min()), min(hi, means.max())
    if not hi > lo:
        return np.array([])
    return np.linspace(lo, hi, n + 2)[1:-1]
