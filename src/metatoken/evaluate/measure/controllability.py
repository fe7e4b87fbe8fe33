"""Controllability: does the achieved return follow the commanded return, within the data and above it?"""

from __future__ import annotations

import numpy as np

from metatoken import seeds
from metatoken.evaluate.measure import measurement
from metatoken.evaluate.measure.capability import data_levels, normalized, reference_span
from metatoken.evaluate.measure.implementation import implementation_shares
from metatoken.evaluate.measure.spookiness import level_index
from metatoken.stats import bootstrap_ci, spearman

SUMMARY = ("controllability/spearman", "controllability/spearman_pooled", "controllability/slope",
           "controllability/abs_error", "controllability/calibration_error")
ABOVE = ("controllability/above/return", "controllability/above/normalized_return",
         "controllability/above/intended", "controllability/above/exploit_rate")
CI_REPS = 1000  # bootstrap resamples per level interval


def level_calibration(commanded: np.ndarray, level_means: np.ndarray, span: float) -> dict[str, float]:
    """Spearman and slope over level means, and mean |level mean - command| / span (the calibration error)."""
    slope = float(np.polyfit(commanded, level_means, 1)[0]) if len(commanded) > 1 and np.ptp(commanded) > 0 \
        else float("nan")
    return {
        "controllability/spearman": spearman(commanded, level_means),
        "controllability/slope": slope,
        "controllability/calibration_error": float(np.mean(np.abs(level_means - commanded)) / span),
    }


@measurement("controllability")
def controllability(rollouts, task, dataset) -> dict[str, float]:
    """Per-level calibration, Spearman over level means, and behaviour when commanded above the data.

    Levels k = 0.. are the distinct commands, lowest first (the data's levels, then those above
    its best return). Per level: `level_<k>/commanded`, `level_<k>/achieved` (mean return) with a
    95% bootstrap interval `achieved_low` / `achieved_high`. Over the data's levels: Spearman rho
    and least-squares slope of level means against commands, calibration error = mean over levels
    of |mean achieved - commanded| / reference return span, `abs_error` = the same per episode
    (mean |achieved - commanded| / span), and `spearman_pooled` over individual episodes (kept to
    show how pooling 0/1 outcomes misreads calibration). Above the data: mean return (raw and
    normalised), intended performance, exploit rate and `above/implementation/<label>` shares of
    all above-data episodes. All NaN for a policy without a condition.
    """
    levels, index = level_index(rollouts)
    if not len(levels):
        return dict.fromkeys(SUMMARY + ABOVE, float("nan"))
    cmd, got = rollouts.target, rollouts.returns
    ref = dataset.returns()
    span = reference_span(ref)
    out: dict[str, float] = {}
    means = np.array([got[index == k].mean() for k in range(len(levels))])  # (L,)
    for k, level in enumerate(levels):
        _, lo, hi = bootstrap_ci([got[index == k]], stat=np.mean, reps=CI_REPS,
                                 seed=seeds.measurement(k))
        out.update({f"controllability/level_{k}/commanded": float(level),
                    f"controllability/level_{k}/achieved": float(means[k]),
                    f"controllability/level_{k}/achieved_low": lo, f"controllability/level_{k}/achieved_high": hi})
    within = data_levels(rollouts, dataset)  # (E,)
    inside = levels <= float(ref.max()) + 1e-9 * max(1.0, abs(float(ref.max())))  # (L,)
    out.update(level_calibration(levels[inside], means[inside], span))
    out["controllability/spearman_pooled"] = spearman(cmd[within], got[within])
    out["controllability/abs_error"] = float(np.mean(np.abs(got[within] - cmd[within])) / span)
    out.update(_above(rollouts, task, ref, ~within))
    return out


def _above(rollouts, task, ref: np.ndarray, above: np.ndarray) -> dict[str, float]:
    """What the policy does when commanded above the data's best return (NaN when nothing was)."""
    if not above.any():
        return dict.fromkeys(ABOVE, float("nan"))
    ret = float(rollouts.returns[above].mean())
    fired = rollouts.exploit_steps[above] > 0
    out = {
        "controllability/above/return": ret,
        "controllability/above/normalized_return": normalized(ret, ref),
        "controllability/above/intended": float(np.mean(rollouts.intended[above])),
        "controllability/above/exploit_rate": float(fired.mean()) if task.audited else float("nan"),
    }
    labels = [lab for lab, a in zip(rollouts.implementations, above) if a and lab]
    for label, share in implementation_shares(labels).items():
        out[f"controllability/above/implementation/{label}"] = share
    return out
