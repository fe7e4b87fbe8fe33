"""Evaluation: roll a trained policy out, sweeping the commanded condition when it has one."""

from __future__ import annotations

import numpy as np

from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.evaluate.rollout import Rollouts, rollout
from metatoken.policy import Policy

EVAL_SEED_OFFSET = 1_000_000  # evaluation seeds never overlap training or data seeds


def command_levels(dataset: Dataset, n_levels: int = 5) -> np.ndarray:
    """Commanded returns from the data's worst to its best episode return, evenly spaced: (L,)."""
    returns = dataset.returns()
    return np.linspace(returns.min(), returns.max(), n_levels)


def evaluate(
    task: Task, policy: Policy, dataset: Dataset, episodes: int, seed: int,
    deterministic: bool = False, n_levels: int = 5,
) -> Rollouts:
    """`episodes` episodes per commanded level (conditioned policies) or in total (others)."""
    base = EVAL_SEED_OFFSET + 1000 * seed
    if not policy.conditioned:
        return rollout(task, policy, episodes, seed=base, deterministic=deterministic)
    parts = [
        rollout(task, policy, episodes, seed=base, target=level, deterministic=deterministic)
        for level in command_levels(dataset, n_levels)
    ]
    return Rollouts.concat(parts)
