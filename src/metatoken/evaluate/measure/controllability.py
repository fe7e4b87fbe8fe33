"""Controllability: does the achieved return follow the commanded return?"""

from __future__ import annotations

import numpy as np

from metatoken.evaluate.measure import measurement
from metatoken.evaluate.measure.capability import reference_span
from metatoken.stats import spearman


@measurement("controllability")
def controllability(rollouts, task, dataset) -> dict[str, float]:
    """Spearman rho and least-squares slope of achieved vs commanded return, and mean |error|.

    Error is |achieved - commanded| divided by the reference return range (NaN when that
    range is 0). All NaN for a policy without a condition.
    """
    cmd, got = rollouts.target, rollouts.returns
    if np.isnan(cmd).all():
        return {k: float("nan") for k in
                ("controllability/spearman", "controllability/slope", "controllability/abs_error")}
    ref = dataset.returns()
    span = reference_span(ref)
    slope = float(np.polyfit(cmd, got, 1)[0]) if np.ptp(cmd) > 0 else float("nan")
    return {
        "controllability/spearman": spearman(cmd, got),
        "controllability/slope": slope,
        "controllability/abs_error": float(np.mean(np.abs(got - cmd)) / span),
    }
