"""Classic-control tasks for known-answer tests of the online methods: `cartpole` (CartPole-v1).

CartPole-v1 pays 1 per step upright (dense) and ends after 500 steps; "solved" in the SB3
zoo and in Gymnasium means a mean return of at least 475. The reference data comes from a
scripted balancer (push toward the side the pole falls to) that acts at random with
probability 1 - skill. There is no planted exploit and no audit.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metatoken.envs.scripted import ScriptedPolicy
from metatoken.envs.task import TASKS, Behaviour, Task, TaskDef

CARTPOLE_ID = "CartPole-v1"
SOLVED_RETURN = 475.0  # Gymnasium's reward_threshold for CartPole-v1


class Balancer(ScriptedPolicy):
    """Pushes the cart under the falling pole (angle + 0.5 x angular velocity); random w.p. 1 - skill."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        push = (obs[:, 2] + 0.5 * obs[:, 3] + 0.01 * obs[:, 1] > 0).astype(np.int64)  # (B,) 1 = right
        if self._deterministic:
            return push
        wander = self._rng.integers(0, 2, size=len(obs))
        return np.where(self._rng.random(len(obs)) < self.skill, push, wander)


class CartPoleOptions(BaseModel):
    """Spec options of the `cartpole` task (unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid")
    reference_episodes: int = Field(50, ge=1)
    data_seed: int = 0
    skills: list[float] = Field(default_factory=lambda: [0.0, 0.5, 0.8, 1.0], min_length=1)


def _cartpole_task(o: CartPoleOptions) -> Task:
    behaviours = tuple(Behaviour(f"balancer@{s:g}", s, lambda s=s: Balancer(s)) for s in o.skills)
    return Task(id="cartpole", env_id=CARTPOLE_ID, env_kwargs={}, behaviours=behaviours,
                reference_episodes=o.reference_episodes, data_seed=o.data_seed, audited=False)


if "cartpole" not in TASKS:
    TASKS.register("cartpole", TaskDef(CartPoleOptions, _cartpole_task),
                   "CartPole-v1 (dense, 1 per upright step, 500 max); scripted balancer reference data.")
