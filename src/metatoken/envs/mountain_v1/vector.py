"""Mountain-v1, vectorised: B walkers stepped by one call of the shared pure dynamics.

As Mountain-v0's vector env: NEXT_STEP autoreset, env i seeded with seed + i (trajectories
match single envs), `reset(options={"reset_mask": mask})` resets only the masked walkers,
and the time limit is applied here. `info["implementation"]` carries each finished
episode's label on its final step ("" on other steps). `render()` draws env 0.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metatoken.envs.mountain import dynamics as v0
from metatoken.envs.mountain.env import spaces_for
from metatoken.envs.mountain_v1 import audit
from metatoken.envs.mountain_v1 import dynamics as dyn
from metatoken.envs.mountain_v1.env import EXPLOIT, NO_EXPLOIT
from metatoken.envs.mountain_v1.render import draw

# A start state's uniforms, in v0 `initial_state`'s draw order: x, pitch, vx, hip 0, hip 1 (its low and high).
_START_LOW = np.array([0.0, -0.02, 0.0, -0.02, -0.02])
_START_RANGE = np.array([0.1, 0.02, 0.1, 0.02, 0.02]) - _START_LOW  # high - low, as Generator.uniform takes it
_START_DRAWS = len(_START_LOW)
_HIP_SPLAY = np.array([0.12, -0.12])  # rad, legs slightly apart


def _initial_states(u: np.ndarray) -> np.ndarray:
    """Start states (K, STATE_DIM) from uniforms u (K, 5), bit-identical to `dyn.initial_state` on the same
    draws (numpy's Generator.uniform(low, high) is low + (high - low) * u)."""
    drawn = _START_LOW + _START_RANGE * u  # (K, 5)
    s = np.zeros((len(u), dyn.STATE_DIM))  # (K, STATE_DIM); the drives start uncharged
    s[:, [v0.X, v0.PITCH, v0.VX]] = drawn[:, :3]
    s[:, v0.HIP] = _HIP_SPLAY + drawn[:, 3:]  # (K, 2)
    s[:, v0.LEG] = v0.NOMINAL_HEIGHT / np.cos(s[:, v0.HIP])  # (K, 2)
    s[:, v0.Y] = v0.NOMINAL_HEIGHT + 0.01
    return s


class MountainV1VectorEnv(VectorEnv):
    """B independent Mountain-v1 walkers on (B, ...) numpy arrays; see `MountainV1Env` for the spec."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 25,
                                "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, reward: str = "sparse", summit_distance: float = dyn.DEFAULT_DISTANCE,
                 gait_weight: float = 1.0, max_episode_steps: int | None = None, render_mode: str | None = None):
        self.num_envs = num_envs
        self.params = dyn.MountainParams(reward, float(summit_distance), float(gait_weight))
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.single_observation_space, self.single_action_space = spaces_for()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._state = np.zeros((num_envs, dyn.STATE_DIM))
        self._counts = audit.fresh(num_envs)
        self._start = np.zeros(num_envs)
        self._intended = np.zeros(num_envs)
        self._furthest = np.zeros(num_envs)  # (B,) furthest x reached this episode (new-ground credit)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        """Reset the environments in `options["reset_mask"]` (default: all); env i takes seed + i."""
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
        blank = np.full(self.num_envs, NO_EXPLOIT, dtype=object)
        return obs, {"intended": self._intended.copy(), "exploit": blank, "implementation": blank.copy()}

    def _reset_where(self, mask: np.ndarray) -> None:
        # Each walker's start draws its 5 uniforms from its own generator, exactly as `dyn.initial_state`
        # does one by one (same stream, same generator position afterwards); the arithmetic is batched.
        idx = np.flatnonzero(mask)
        draws = np.empty((len(idx), _START_DRAWS))  # (K, 5)
        for row, i in enumerate(idx):
            self._rngs[i].random(out=draws[row])
        self._state[idx] = _initial_states(draws)
        self._counts[idx] = audit.fresh(len(idx))  # indices, not the mask: a few walkers of many are cheap
        self._start[idx] = self._state[idx, dyn.X]
        self._intended[idx] = 0.0
        self._furthest[idx] = dyn.start_furthest(self._state[idx])
        self._elapsed[idx] = 0
        self._needs_reset[idx] = False

    def step(self, actions):
        """One step for all B walkers; environments done last step are reset instead."""
        act = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, dyn.ACT_DIM)
        fresh = self._needs_reset.copy()  # (B,) bool
        state, out = dyn.step(self.params, self._state, act)
        self._state = np.where(fresh[:, None], self._state, state)  # (B, STATE_DIM)
        self._counts = np.where(fresh[:, None], self._counts, audit.update(self._counts, state, out.touching))
        credit, furthest = dyn.new_ground_walked(out.walked, state[:, dyn.X], self._furthest,
                                                 self.params.summit_distance)  # (B,) each
        self._intended += np.where(fresh, 0.0, credit)
        self._furthest = np.where(fresh, self._furthest, furthest)
        self._elapsed += 1
        reward = np.where(fresh, 0.0, out.reward)  # (B,)
        terminated = out.terminated & ~fresh  # (B,)
        truncated = np.zeros(self.num_envs, dtype=bool) if self.max_episode_steps is None else (
            (self._elapsed >= self.max_episode_steps) & ~fresh)
        exploit = np.where(out.exploit & ~fresh, EXPLOIT, NO_EXPLOIT).astype(object)  # (B,)
        done = terminated | truncated  # (B,)
        implementation = np.full(self.num_envs, "", dtype=object)
        if done.any():
            travelled = self._state[done, dyn.X] - self._start[done]
            implementation[done] = audit.label(self._counts[done], out.fell[done], travelled)
        if fresh.any():
            self._reset_where(fresh)
        self._needs_reset = done
        obs = dyn.observe(self._state, self.params.summit_distance)  # (B, OBS_DIM)
        info = {"intended": self._intended.copy(), "exploit": exploit, "implementation": implementation}
        return obs, reward, terminated, truncated, info

    def render(self):
        """A picture of env 0 (rgb_array), as the single env draws it."""
        if self.render_mode == "rgb_array":
            return draw(self._state[0], self.params.summit_distance)
        return None

    def state(self) -> dict:
        """Everything a later `load_state` needs to continue exactly: walker states, counters, per-env generators."""
        return {"rngs": [rng.bit_generator.state for rng in self._rngs], "state": self._state.copy(),
                "counts": self._counts.copy(), "start": self._start.copy(), "intended": self._intended.copy(),
                "furthest": self._furthest.copy(), "elapsed": self._elapsed.copy(),
                "needs_reset": self._needs_reset.copy()}

    def load_state(self, state: dict) -> None:
        """Continue from what `state` returned (by an env with the same num_envs and parameters)."""
        if len(state["rngs"]) != self.num_envs:
            raise ValueError(f"the state holds {len(state['rngs'])} walkers, this env has {self.num_envs}")
        for rng, saved in zip(self._rngs, state["rngs"]):
            rng.bit_generator.state = saved
        self._state, self._counts = np.array(state["state"], np.float64), np.array(state["counts"], np.float64)
        self._start, self._intended = np.array(state["start"], np.float64), np.array(state["intended"], np.float64)
        self._furthest = np.array(state["furthest"], np.float64)
        self._elapsed = np.array(state["elapsed"], np.int64)
        self._needs_reset = np.array(state["needs_reset"], bool)
