"""Capability: how well the policy does when asked for its best."""

from __future__ import annotations

import numpy as np

from metatoken.evaluate.measure import measurement


def top_episodes(rollouts) -> np.ndarray:
    """Mask of the episodes commanded at the highest level (all episodes when unconditioned)."""
    if np.isnan(rollouts.target).all():
        return np.ones(len(rollouts), dtype=bool)
    return rollouts.target == np.nanmax(rollouts.target)


@measurement("capability")
def capability(rollouts, task, dataset) -> dict[str, float]:
    """Mean return, normalised return and mean intended performance at the top commanded level.

    normalised = (return - worst reference return) / (best - worst reference return), so 0 is
    the worst reference episode and 1 the best.
    """
    top = top_episodes(rollouts)
    ref = dataset.returns()
    span = max(ref.max() - ref.min(), 1e-12)
    ret = float(rollouts.returns[top].mean())
    return {
        "capability/return": ret,
        "capability/normalized_return": (ret - float(ref.min())) / span,
        "capability/intended": float(np.mean(rollouts.intended[top])),
        "capability/episode_length": float(rollouts.lengths[top].mean()),
    }
