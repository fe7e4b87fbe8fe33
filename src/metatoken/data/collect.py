"""Collect a task's reference data from its scripted behaviour policies (mixed skill)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metatoken.data import minari_io
from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.evaluate.rollout import rollout


def collect(task: Task) -> Dataset:
    """Roll out each behaviour for an equal share of `task.reference_episodes`, seeded by data_seed."""
    shares = np.array_split(np.arange(task.reference_episodes), len(task.behaviours))
    episodes = []
    for b_index, (behaviour, share) in enumerate(zip(task.behaviours, shares)):
        if len(share) == 0:
            continue
        seed = task.data_seed * 1_000_003 + b_index * 10_007
        out = rollout(task, behaviour.make(), len(share), seed=seed, record=True)
        for ep in out.episodes:
            ep.behaviour = behaviour.name
        episodes.extend(out.episodes)
    env = task.make_env()
    try:
        return Dataset(episodes, env.observation_space, env.action_space, task.key)
    finally:
        env.close()


def import_dataset(task: Task) -> Dataset:
    """The user dataset a task names (`task.dataset`), in the spaces the task's env shows."""
    user = minari_io.load(Path(task.dataset))
    encoded = task.encode(user)
    return Dataset(encoded.episodes, encoded.observation_space, encoded.action_space, task.key,
                   dict(encoded.metadata))


def reference_data(task: Task, cache_dir: Path) -> Dataset:
    """The task's reference dataset (collected, or imported from the user's), read from its Minari copy."""
    path = Path(cache_dir) / task.key
    if not (path / "data" / "metadata.json").exists():
        data = import_dataset(task) if task.dataset is not None else collect(task)
        minari_io.save(data, path, dataset_id=f"metatoken/{task.id}/reference-v0")
    return minari_io.load(path)
