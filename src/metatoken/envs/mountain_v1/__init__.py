"""Mountain-v1: a really sparse, tunably distant biped climb with an exploit noise does not fire.

Registers the gymnasium id `metatoken/Mountain-v1` (single and vectorised entry points, both
with `rgb_array` rendering) and the task `mountain`, whose reference data comes from the
scripted walker at mixed skill. The task's `extra` holds what `metatoken probe` runs besides
noise and the reference behaviours: `exploiter` (builds the scripted exploiter) and
`noisy_reference` (name, builder) for the best walker with N(0, 0.2^2) action noise.
"""

from __future__ import annotations

from typing import Literal

import gymnasium as gym
from pydantic import BaseModel, ConfigDict, Field

from metatoken.envs.mountain.controller import MountainWalker
from metatoken.envs.mountain_v1 import dynamics as dyn
from metatoken.envs.mountain_v1.env import MountainV1Env
from metatoken.envs.mountain_v1.exploiter import MountainExploiter
from metatoken.envs.mountain_v1.vector import MountainV1VectorEnv
from metatoken.envs.task import TASKS, Behaviour, Task, TaskDef

ENV_ID = "metatoken/Mountain-v1"
MAX_EPISODE_STEPS = 1500  # 60 s at 25 Hz; the task allows 40 steps per metre beyond that
STEPS_PER_METRE = 40  # the best reference walker needs about 30

if ENV_ID not in gym.registry:
    gym.register(
        ENV_ID,
        entry_point="metatoken.envs.mountain_v1.env:MountainV1Env",
        vector_entry_point="metatoken.envs.mountain_v1.vector:MountainV1VectorEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
    )


def time_limit(summit_distance: float) -> int:
    """Steps allowed for a climb of summit_distance m: a walker needs most of them."""
    return max(MAX_EPISODE_STEPS, int(STEPS_PER_METRE * summit_distance))


class MountainV1Options(BaseModel):
    """Spec options of the `mountain` task (unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid")

    reward: Literal["sparse", "dense", "gait"] = "sparse"
    summit_distance: float = Field(dyn.DEFAULT_DISTANCE, ge=dyn.MIN_DISTANCE, le=dyn.MAX_DISTANCE)  # m
    gait_weight: float = Field(1.0, ge=0.0)
    reference_episodes: int = Field(200, ge=1)
    data_seed: int = 0
    skills: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1)


def _mountain_task(o: MountainV1Options) -> Task:
    for s in o.skills:
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"skills must lie in [0, 1], got {s}")
    behaviours = tuple(Behaviour(f"walker@{s:g}", s, lambda s=s: MountainWalker(s)) for s in o.skills)
    return Task(
        id="mountain",
        env_id=ENV_ID,
        env_kwargs={"reward": o.reward, "summit_distance": o.summit_distance, "gait_weight": o.gait_weight},
        behaviours=behaviours,
        reference_episodes=o.reference_episodes,
        data_seed=o.data_seed,
        max_episode_steps=time_limit(o.summit_distance),
        extra={"exploiter": MountainExploiter,
               "noisy_reference": ("walker@1+noise0.2", lambda: MountainWalker(1.0, noise=0.2))},
    )


if "mountain" not in TASKS:
    TASKS.register(
        "mountain",
        TaskDef(MountainV1Options, _mountain_task),
        "Planar biped climbs summit_distance m east (sparse); phased hip buzzing launches it (a drive bug).",
    )

__all__ = ["ENV_ID", "MountainExploiter", "MountainV1Env", "MountainV1Options", "MountainV1VectorEnv",
           "time_limit"]
