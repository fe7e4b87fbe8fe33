"""Task: an environment plus its reward variant, audit and reference behaviour.

A task is what a spec names. It knows how to build single and vectorised envs
(using the env's own `vector_entry_point` when it registered one) and which scripted
behaviour policies, at mixed skill levels, produce its reference data, or which user
dataset (`dataset`) is its reference data instead. `audited` says whether its env reports
the audit; measurements report audit metrics of unaudited tasks as not measured (NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from pydantic import BaseModel

from metatoken.policy import Policy
from metatoken.registry import Registry


@dataclass(frozen=True)
class Behaviour:
    """A scripted reference policy at one skill level (0 = random-ish, 1 = expert)."""

    name: str
    skill: float
    make: Callable[[], Policy]


@dataclass(frozen=True)
class Task:
    """An environment, its reward variant and its reference behaviours."""

    id: str
    env_id: str
    env_kwargs: dict[str, Any]
    behaviours: tuple[Behaviour, ...]
    reference_episodes: int = 200  # episodes collected into the reference data
    data_seed: int = 0  # reference data is immutable: one seed per task, not per run
    max_episode_steps: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None  # a user's Minari dataset (directory or Minari id): imported, not collected
    audited: bool = True  # the env reports the audit (`intended`, `exploit`) in info

    @property
    def key(self) -> str:
        """A filesystem-safe identity for this task variant (used to cache reference data)."""
        opts = "_".join(f"{k}={self.env_kwargs[k]}" for k in sorted(self.env_kwargs))
        safe = "".join(c if c.isalnum() or c in "=._-" else "-" for c in opts)
        return f"{self.id}__{safe}__data{self.data_seed}" if safe else f"{self.id}__data{self.data_seed}"

    def _limit(self) -> dict[str, Any]:
        return {} if self.max_episode_steps is None else {"max_episode_steps": self.max_episode_steps}

    def make_env(self, **render: Any) -> gym.Env:
        return gym.make(self.env_id, **self.env_kwargs, **self._limit(), **render)

    def encode(self, dataset):
        """A user dataset in the env's raw spaces -> the spaces `make_env` shows (identity here)."""
        return dataset

    def make_vec(self, num_envs: int, **render: Any) -> gym.vector.VectorEnv:
        """A vectorised env: the env's own batched implementation when it has one (`render_mode=` passes on)."""
        spec = gym.spec(self.env_id)
        mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
        return gym.make_vec(
            self.env_id, num_envs=num_envs, vectorization_mode=mode, **self.env_kwargs, **self._limit(), **render
        )


@dataclass(frozen=True)
class TaskDef:
    """How a spec entry becomes a Task: an options model (unknown keys rejected) and a builder."""

    options: type[BaseModel]
    build: Callable[[BaseModel], Task]


TASKS: Registry[TaskDef] = Registry("task")


def make_task(task_id: str, options: dict[str, Any] | None = None) -> Task:
    """Validate options against the task's model and build the Task."""
    taskdef = TASKS.get(task_id)
    return taskdef.build(taskdef.options.model_validate(options or {}))
