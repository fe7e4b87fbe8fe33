"""Replaying a recorded episode: a Policy that emits the actions one episode took, in order.

An env whose only randomness comes from its seed replays an episode exactly from that seed and
the actions taken, so a picture of an evaluated episode (the filmstrip) need not run the policy
again. Whether the replay ended the same way is the caller's check: an env with randomness that
its seed does not fix replays a different episode.
"""

from __future__ import annotations

import numpy as np


class ActionReplay:
    """Plays back one episode's actions (T, *action_shape) for a single environment; it ignores observations."""

    conditioned = False

    def __init__(self, actions: np.ndarray):
        self.actions = np.asarray(actions)
        self.t = 0

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        """Rewind to the first action (a replay is one environment, and neither seed nor target changes it)."""
        if num_envs != 1:
            raise ValueError(f"an action replay plays one environment, not {num_envs}")
        self.t = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The next recorded action: (1, *action_shape)."""
        if self.t >= len(self.actions):
            raise ValueError(f"the recorded episode has {len(self.actions)} actions; the env asked for more")
        self.t += 1
        return self.actions[self.t - 1][None]

    def observe(self, reward, done) -> None:
        pass
