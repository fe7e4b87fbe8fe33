"""Off-reference distance and diversity of one run's visited states, against the reference data's.

The registered `distribution` measurement: the pure functions live in `distribution.py`; this
module picks the states (the episodes capability is computed on, against every reference
episode), subsamples them to keep a run's cost near a second, and names the numbers.
"""

from __future__ import annotations

import numpy as np

from metatoken import seeds
from metatoken.envs.tabular import Tabular
from metatoken.evaluate.measure import measurement
from metatoken.evaluate.measure.capability import top_episodes
from metatoken.evaluate.measure.distribution import (
    classifier_auc,
    js_test,
    mmd_test,
    relative_diversity,
    state_ids,
)

MAX_STATES = 500  # per side for MMD and the classifier: the kernel matrix is (2 x 500)^2
MAX_EPISODES = 500  # reference episodes compared for diversity (pairwise distances are O(n^2))
REPS = 200  # bootstrap / permutation resamples
DISTRIBUTION_METRICS = tuple(f"distribution/{name}" for name in (
    "mmd", "mmd_low", "mmd_high", "mmd_p_value", "classifier_auc", "classifier_auc_low", "classifier_auc_high",
    "js", "js_low", "js_high", "diversity_ratio"))


def is_grid(task) -> bool:
    """The task's env is a table (GlitchGrid): its states can be counted, so JS is exact."""
    env = task.make_env()
    try:
        return isinstance(env.unwrapped, Tabular)
    finally:
        env.close()


def visited_states(episodes) -> np.ndarray:
    """Every state an episode acted in, stacked: (N, D)."""
    return np.concatenate([np.asarray(e.observations[:-1], float).reshape(len(e), -1) for e in episodes])


def episode_features(episodes) -> np.ndarray:
    """Per episode, its mean visited state and its final state: (E, 2D), what diversity compares."""
    return np.stack([np.concatenate([np.asarray(e.observations[:-1], float).reshape(len(e), -1).mean(0),
                                     np.asarray(e.observations[-1], float).reshape(-1)]) for e in episodes])


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x[rng.choice(len(x), n, replace=False)] if len(x) > n else x


@measurement("distribution")
def distribution(rollouts, task, dataset) -> dict[str, float]:
    """MMD^2 (with interval and p-value) and classifier AUC of the run's visited states against the reference
    data's, exact JS on grids, and within-policy diversity relative to the data's.

    States: every step of the episodes capability is computed on, against every step of the reference
    data, each side subsampled to MAX_STATES (seeded) for MMD and the classifier; JS (bits, grids only,
    else NaN) counts all of them. diversity_ratio = mean pairwise distance between episodes' features
    (mean and final state) relative to the reference episodes'. NaN when the evaluation kept no episodes.
    """
    top = np.flatnonzero(top_episodes(rollouts, dataset))
    episodes = [rollouts.episodes[i] for i in top if i < len(rollouts.episodes) and len(rollouts.episodes[i])]
    if not episodes:
        return dict.fromkeys(DISTRIBUTION_METRICS, float("nan"))
    rng = np.random.default_rng(seeds.measurement(0))
    ref_eps = [e for e in dataset.episodes if len(e)]
    x, y = visited_states(episodes), visited_states(ref_eps)  # (N, D), (M, D)
    xs, ys = _subsample(x, MAX_STATES, rng), _subsample(y, MAX_STATES, rng)
    mmd = mmd_test(xs, ys, seed=seeds.measurement(1), reps=REPS)
    auc = classifier_auc(xs, ys, seed=seeds.measurement(2), reps=REPS)
    js = js_test(*state_ids(x, y), seed=seeds.measurement(3), reps=REPS) if is_grid(task) else (float("nan"),) * 3
    ref_feats = episode_features(ref_eps)
    return {
        "distribution/mmd": mmd.value, "distribution/mmd_low": mmd.low, "distribution/mmd_high": mmd.high,
        "distribution/mmd_p_value": mmd.p_value,
        "distribution/classifier_auc": auc.value, "distribution/classifier_auc_low": auc.low,
        "distribution/classifier_auc_high": auc.high,
        "distribution/js": js[0], "distribution/js_low": js[1], "distribution/js_high": js[2],
        "distribution/diversity_ratio": relative_diversity(episode_features(episodes),
                                                           _subsample(ref_feats, MAX_EPISODES, rng)),
    }
