"""Mountain-v0: the sparse-reward biped climb, with a contact-physics launch exploit.

Registers the gymnasium id `metatoken/Mountain-v0` (single and vectorised entry points)
and the task `mountain-v0`, whose reference data comes from the scripted walker at mixed skill.
"""

from __future__ import annotations

from typing import Literal

import gymnasium as gym
from pydantic import BaseModel, ConfigDict, Field

from metatoken.envs.mountain.controller import MountainWalker
from metatoken.envs.mountain.env import MountainEnv
from metatoken.envs.mountain.vector import MountainVectorEnv
from metatoken.envs.task import TASKS, Behaviour, Task, TaskDef

ENV_ID = "metatoken/Mountain-v0"
MAX_EPISODE_STEPS = 1500  # 60 s at 25 Hz; the skill-1 walker climbs 30 m in about 950 steps

if ENV_ID not in gym.registry:
    gym.register(
        ENV_ID,
        entry_point="metatoken.envs.mountain.env:MountainEnv",
        vector_entry_point="metatoken.envs.mountain.vector:MountainVectorEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
    )


class MountainOptions(BaseModel):
    """Spec options of the `mountain` task (unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid")

    reward: Literal["sparse", "dense", "shaped"] = "sparse"
    summit_distance: float = Field(30.0, gt=0.0, le=1000.0)  # m
    shaping_weight: float = Field(0.5, ge=0.0)
    reference_episodes: int = Field(200, ge=1)
    data_seed: int = 0
    skills: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1)


def _mountain_task(o: MountainOptions) -> Task:
    for s in o.skills:
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"skills must lie in [0, 1], got {s}")
    behaviours = tuple(
        Behaviour(f"walker@{s:g}", s, lambda s=s: MountainWalker(s)) for s in o.skills
    )
    return Task(
        id="mountain-v0",
        env_id=ENV_ID,
        env_kwargs={"reward": o.reward, "summit_distance": o.summit_distance,
                    "shaping_weight": o.shaping_weight},
        behaviours=behaviours,
        reference_episodes=o.reference_episodes,
        data_seed=o.data_seed,
        max_episode_steps=max(MAX_EPISODE_STEPS, int(50 * o.summit_distance)),
    )


if "mountain-v0" not in TASKS:  # the task `mountain` is Mountain-v1's
    TASKS.register(
        "mountain-v0",
        TaskDef(MountainOptions, _mountain_task),
        "Planar biped climbs summit_distance m east; a foot slammed into the ground launches it.",
    )

__all__ = ["ENV_ID", "MAX_EPISODE_STEPS", "MountainEnv", "MountainOptions", "MountainVectorEnv", "MountainWalker"]
