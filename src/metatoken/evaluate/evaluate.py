"""Evaluation: roll a trained policy out, sweeping the commanded condition when it has one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metatoken import seeds
from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.evaluate.recorders import Recorder
from metatoken.evaluate.rollout import Rollouts, rollout
from metatoken.policy import Policy
from metatoken.seeds import EVAL_SEED_OFFSET  # noqa: F401  (re-exported: callers import it from here)

ABOVE_FACTORS = (1.25, 1.5)  # commands above the data: these multiples of the best data return
DATA_LEVELS = 5  # commands spread over the data's returns, worst to best


def command_levels(dataset: Dataset, n_levels: int = DATA_LEVELS) -> np.ndarray:
    """Commanded returns from the data's worst to its best episode return, evenly spaced: (L,)."""
    returns = dataset.returns()
    return np.linspace(returns.min(), returns.max(), n_levels)


def above_levels(dataset: Dataset, factors: Sequence[float] = ABOVE_FACTORS) -> np.ndarray:
    """Commands above the data's best return b: f x b for each factor f when b > 0: (len(factors),).

    A multiple of a non-positive best would not lie above it, so then the step past b is
    (f - 1) x max(|b|, data return span), or (f - 1) when both are 0.
    """
    returns = dataset.returns()
    best = float(returns.max())
    unit = best if best > 0 else max(abs(best), float(np.ptp(returns))) or 1.0
    return np.array([best + (f - 1.0) * unit for f in factors])


def first_top_episode(conditioned: bool, episodes: int, n_levels: int = DATA_LEVELS) -> int:
    """Where `evaluate` puts episode 0 of the top data level (level n_levels - 1): 0 for an unconditioned policy."""
    return (n_levels - 1) * episodes if conditioned else 0


def evaluate(
    task: Task, policy: Policy, dataset: Dataset, episodes: int, seed: int,
    deterministic: bool = False, n_levels: int = DATA_LEVELS, above: Sequence[float] = ABOVE_FACTORS,
    recorders: Sequence[Recorder] = (), record: bool = False,
) -> Rollouts:
    """`episodes` episodes per commanded level (conditioned policies) or in total (others).

    A conditioned policy is commanded the data's `n_levels` levels and then `above_levels`
    (L = n_levels + len(above) levels), all in one batch (B = L x episodes); episode i of
    every level takes env seed and policy seed `seeds.evaluation(seed) + i`, exactly as if
    each level were rolled out on its own. Episodes are ordered level by level. With `record`
    the rollouts keep whole episodes (what the `distribution` measurement reads).
    """
    base = seeds.evaluation(seed)
    if not policy.conditioned:
        return rollout(task, policy, episodes, seed=base, deterministic=deterministic, recorders=recorders,
                       record=record)
    levels = np.concatenate([command_levels(dataset, n_levels), above_levels(dataset, above)])  # (L,)
    targets = np.repeat(levels, episodes)  # (L * E,) level-major
    per_env = np.tile(base + np.arange(episodes), len(levels)).tolist()  # (L * E,) the same seeds per level
    return rollout(task, policy, len(targets), seed=per_env, target=targets, deterministic=deterministic,
                   recorders=recorders, record=record)
