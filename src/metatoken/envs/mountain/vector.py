"""Mountain-v0, vectorised: B walkers stepped by one call of the shared pure dynamics.

Autoreset follows gymnasium's NEXT_STEP mode: the step after an episode ends resets that
environment (the action is ignored, reward 0, not done). Environment i is seeded with
seed + i and keeps its own generator, so its trajectories match a single `MountainEnv`
reset with seed + i. `reset(options={"reset_mask": mask})` resets only the masked
environments (gymnasium 1.x semantics; the SB3 adapter relies on it). Truncation at
`max_episode_steps` is applied here, since gymnasium
passes the limit to vector entry points instead of wrapping them in TimeLimit.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metatoken.envs.mountain import dynamics as dyn
from metatoken.envs.mountain.env import LAUNCH, NO_EXPLOIT, spaces_for


class MountainVectorEnv(VectorEnv):
    """B independent Mountain-v0 walkers on (B, ...) numpy arrays; see `MountainEnv` for the spec."""

    metadata: ClassVar[dict] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, reward: str = "dense", summit_distance: float = 30.0,
                 shaping_weight: float = 0.5, max_episode_steps: int | None = None):
        self.num_envs = num_envs
        self.params = dyn.MountainParams(reward, float(summit_distance), float(shaping_weight))
        self.max_episode_steps = max_episode_steps
        self.single_observation_space, self.single_action_space = spaces_for()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._state = np.zeros((num_envs, dyn.STATE_DIM))
        self._intended = np.zeros(num_envs)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._no_exploit = np.full(num_envs, NO_EXPLOIT, dtype=object)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        """Reset the environments in `options["reset_mask"]` (default: all); env i takes seed + i.

        As gymnasium's `SyncVectorEnv`: a seed (int: env i gets seed + i; or a list of B)
        reseeds only the environments being reset; the others keep their state, episode
        statistics and generator. The returned observation covers all B environments.
        """
        mask = np.ones(self.num_envs, dtype=bool)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options['reset_mask'] must be a ({self.num_envs},) bool array, "
                                 f"got {mask.dtype} {mask.shape}")
        if seed is not None:
            seeds = list(seed) if isinstance(seed, (list, tuple)) else [seed + i for i in range(self.num_envs)]
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed list must have {self.num_envs} entries, got {len(seeds)}")
            for i in np.flatnonzero(mask):
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        self._reset_where(mask)
        obs = dyn.observe(self._state, self.params.summit_distance)  # (B, OBS_DIM)
        return obs, {"intended": self._intended.copy(), "exploit": self._no_exploit.copy()}

    def _reset_where(self, mask: np.ndarray) -> None:
        for i in np.flatnonzero(mask):
            self._state[i] = dyn.initial_state(self._rngs[i])
        self._intended[mask] = 0.0
        self._elapsed[mask] = 0
        self._needs_reset[mask] = False

    def step(self, actions):
        """One step for all B walkers; environments done last step are reset instead."""
        act = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, dyn.ACT_DIM)
        fresh = self._needs_reset.copy()  # (B,) bool
        state, out = dyn.step(self.params, self._state, act)
        self._state = np.where(fresh[:, None], self._state, state)  # (B, STATE_DIM)
        self._intended += np.where(fresh, 0.0, out.walked)
        self._elapsed += 1
        reward = np.where(fresh, 0.0, out.reward)  # (B,)
        terminated = out.terminated & ~fresh  # (B,)
        truncated = np.zeros(self.num_envs, dtype=bool) if self.max_episode_steps is None else (
            (self._elapsed >= self.max_episode_steps) & ~fresh)  # as TimeLimit: may coincide with terminated
        exploit = np.where(out.launch & ~fresh, LAUNCH, NO_EXPLOIT).astype(object)  # (B,)
        if fresh.any():
            self._reset_where(fresh)
        self._needs_reset = terminated | truncated
        obs = dyn.observe(self._state, self.params.summit_distance)  # (B, OBS_DIM)
        info = {"intended": self._intended.copy(), "exploit": exploit}
        return obs, reward, terminated, truncated, info
