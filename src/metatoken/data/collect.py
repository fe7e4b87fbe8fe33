"""Collect a task's reference data from its scripted behaviour policies (mixed skill)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metatoken import seeds
from metatoken.data import minari_io
from metatoken.data.dataset import Dataset
from metatoken.data.validate import user_dataset, validate
from metatoken.envs.task import Task
from metatoken.evaluate.rollout import rollout


def collect(task: Task) -> Dataset:
    """Roll out each behaviour for an equal share of `task.reference_episodes`, seeded by data_seed."""
    shares = np.array_split(np.arange(task.reference_episodes), len(task.behaviours))
    episodes = []
    for b_index, (behaviour, share) in enumerate(zip(task.behaviours, shares)):
        if len(share) == 0:
            continue
        out = rollout(task, behaviour.make(), len(share), seed=seeds.data(task.data_seed, b_index), record=True)
        for ep in out.episodes:
            ep.behaviour = behaviour.name
        episodes.extend(out.episodes)
    env = task.make_env()
    try:
        return Dataset(episodes, env.observation_space, env.action_space, task.key)
    finally:
        env.close()


def reference_data(task: Task, cache_dir: Path) -> Dataset:
    """The task's validated reference dataset (collected, or the user's), read from its Minari copy."""
    path = Path(cache_dir) / task.key
    dataset_id = f"metatoken/{task.id}/reference-v0"
    if not (path / "data" / "metadata.json").exists() and task.dataset is not None:
        # The user's file is validated (naming it in any error) before the copy is written.
        minari_io.save(user_dataset(task), path, dataset_id=dataset_id)
        return minari_io.load(path)
    if not (path / "data" / "metadata.json").exists():
        minari_io.save(collect(task), path, dataset_id=dataset_id)
    data = minari_io.load(path)
    validate(data, task, path)
    return data
