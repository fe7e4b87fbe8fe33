"""Capability: how well the policy does when asked for its best."""

from __future__ import annotations

import numpy as np

from metatoken.evaluate.measure import measurement


def data_levels(rollouts, dataset) -> np.ndarray:
    """Mask of the episodes commanded within the data's returns (not above its best): (E,) bool."""
    best = float(dataset.returns().max())
    return rollouts.target <= best + 1e-9 * max(1.0, abs(best))  # float rounding of linspace's end


def top_episodes(rollouts, dataset) -> np.ndarray:
    """Mask of the episodes commanded at the highest of the data's levels (all episodes when unconditioned).

    Commands above the data's best return are controllability's question, not capability's.
    """
    if np.isnan(rollouts.target).all():
        return np.ones(len(rollouts), dtype=bool)
    within = data_levels(rollouts, dataset)
    return within & (rollouts.target == np.max(rollouts.target[within]))


def reference_span(ref_returns: np.ndarray) -> float:
    """Best minus worst reference return; NaN when they are equal (or there are none)."""
    if len(ref_returns) == 0:
        return float("nan")
    span = float(np.max(ref_returns) - np.min(ref_returns))
    # Relative tolerance: returns that differ only by float rounding are a constant set too.
    scale = max(1.0, float(np.max(np.abs(ref_returns))))
    return span if span > 1e-9 * scale else float("nan")


def normalized(value: float, ref_returns: np.ndarray) -> float:
    """(value - worst reference return) / span: 0 = worst, 1 = best reference episode; NaN if constant."""
    span = reference_span(ref_returns)
    return float("nan") if np.isnan(span) else (value - float(np.min(ref_returns))) / span


@measurement("capability")
def capability(rollouts, task, dataset) -> dict[str, float]:
    """Mean return, normalised return and mean intended performance at the top of the data's commanded levels.

    normalised = (return - worst reference return) / (best - worst reference return), so 0 is
    the worst reference episode and 1 the best; NaN (not measured) when every reference
    episode has the same return, since there is no scale to normalise by. Intended is NaN for
    tasks without an audit.
    """
    top = top_episodes(rollouts, dataset)
    ret = float(rollouts.returns[top].mean())
    return {
        "capability/return": ret,
        "capability/normalized_return": normalized(ret, dataset.returns()),
        "capability/intended": float(np.mean(rollouts.intended[top])),
        "capability/episode_length": float(rollouts.lengths[top].mean()),
    }
