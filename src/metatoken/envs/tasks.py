"""The tasks a spec can name: environment, reward variant and reference behaviours."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from metatoken.envs.scripted import NoisyEastWalker
from metatoken.envs.task import TASKS, Behaviour, Task, TaskDef


class GridOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward: Literal["sparse", "dense", "shaped"] = "dense"
    summit_distance: int = Field(8, ge=2, le=1000)
    shaping_weight: float = 0.5
    reference_episodes: int = Field(200, ge=1)
    data_seed: int = 0
    skills: list[float] = Field(default_factory=lambda: [0.0, 0.15, 0.3, 0.6, 1.0])


def _teleport_task(o: GridOptions) -> Task:
    behaviours = tuple(
        Behaviour(f"east-walker@{s:g}", s, lambda s=s: NoisyEastWalker(s)) for s in o.skills
    )
    return Task(
        id="glitchgrid-teleport",
        env_id="metatoken/GlitchGrid-Teleport-v0",
        env_kwargs={
            "reward": o.reward,
            "summit_distance": o.summit_distance,
            "shaping_weight": o.shaping_weight,
        },
        behaviours=behaviours,
        reference_episodes=o.reference_episodes,
        data_seed=o.data_seed,
        max_episode_steps=3 * o.summit_distance,
    )


TASKS.register(
    "glitchgrid-teleport",
    TaskDef(GridOptions, _teleport_task),
    "Two-row corridor to a goal summit_distance east; a glitch tile teleports onto the goal.",
)
