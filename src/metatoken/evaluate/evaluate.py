"""Evaluation: roll a trained policy out, sweeping the commanded condition when it has one."""

from __future__ import annotations

import numpy as np

from metatoken import seeds
from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.evaluate.rollout import Rollouts, rollout
from metatoken.policy import Policy
from metatoken.seeds import EVAL_SEED_OFFSET  # noqa: F401  (re-exported: callers import it from here)


def command_levels(dataset: Dataset, n_levels: int = 5) -> np.ndarray:
    """Commanded returns from the data's worst to its best episode return, evenly spaced: (L,)."""
    returns = dataset.returns()
    return np.linspace(returns.min(), returns.max(), n_levels)


def evaluate(
    task: Task, policy: Policy, dataset: Dataset, episodes: int, seed: int,
    deterministic: bool = False, n_levels: int = 5,
) -> Rollouts:
    """`episodes` episodes per commanded level (conditioned policies) or in total (others).

    A conditioned policy plays all its levels in one batch (B = levels x episodes); episode
    i of every level takes env seed and policy seed `seeds.evaluation(seed) + i`, exactly
    as if each level were rolled out on its own. Episodes are ordered level by level.
    """
    base = seeds.evaluation(seed)
    if not policy.conditioned:
        return rollout(task, policy, episodes, seed=base, deterministic=deterministic)
    levels = command_levels(dataset, n_levels)  # (L,)
    targets = np.repeat(levels, episodes)  # (L * E,) level-major
    per_env = np.tile(base + np.arange(episodes), len(levels)).tolist()  # (L * E,) the same seeds per level
    return rollout(task, policy, len(targets), seed=per_env, target=targets, deterministic=deterministic)
