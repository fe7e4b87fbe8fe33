"""Gymnasium environments with audits, and the tasks built on them."""

import gymnasium as gym

from metatoken.envs import tasks as _tasks  # noqa: F401  (registers tasks)
from metatoken.envs.task import TASKS, Task, make_task

if "metatoken/GlitchGrid-Teleport-v0" not in gym.registry:
    gym.register(
        "metatoken/GlitchGrid-Teleport-v0",
        entry_point="metatoken.envs.glitchgrid:GlitchGridEnv",
        max_episode_steps=24,
    )

__all__ = ["TASKS", "Task", "make_task"]
