"""Gymnasium environments with audits, and the tasks built on them."""

import gymnasium as gym

from metatoken.envs import classic as _classic  # noqa: F401  (registers the cartpole task)
from metatoken.envs import mountain as _mountain  # noqa: F401  (registers Mountain-v0 and its task)
from metatoken.envs import mountain_v1 as _mountain_v1  # noqa: F401  (registers Mountain-v1, task mountain)
from metatoken.envs import tasks as _tasks  # noqa: F401  (registers tasks)
from metatoken.envs.task import TASKS, Task, make_task

# GlitchGrids by name (module glitchgrid_<name>, classes <Name>Env and <Name>VectorEnv) with
# their default summit_distance; the time limit is 3 x that distance, as in their tasks.
GLITCHGRIDS = {"Teleport": 8, "Loop": 16, "Tamper": 8}
GLITCHGRID_IDS = tuple(f"metatoken/GlitchGrid-{name}-v0" for name in GLITCHGRIDS)

for (_name, _distance), _id in zip(GLITCHGRIDS.items(), GLITCHGRID_IDS):
    if _id not in gym.registry:
        _module = f"metatoken.envs.glitchgrid_{_name.lower()}"
        gym.register(
            _id,
            entry_point=f"{_module}:{_name}Env",
            vector_entry_point=f"{_module}:{_name}VectorEnv",
            max_episode_steps=3 * _distance,
        )

__all__ = ["GLITCHGRID_IDS", "TASKS", "Task", "make_task"]
