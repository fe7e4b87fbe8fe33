"""Scripted behaviour policies that produce reference data at mixed skill levels."""

from __future__ import annotations

import numpy as np


class NoisyEastWalker:
    """Walks east along the intended row; with probability 1 - skill it wanders (east/west/north).

    It never steps south, so it never reaches a GlitchGrid's off-path glitch tile.
    """

    conditioned = False

    def __init__(self, skill: float):
        self.skill = skill
        self._rng = np.random.default_rng(0)

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self._rng = np.random.default_rng(seed)
        self._deterministic = deterministic

    def act(self, obs: np.ndarray) -> np.ndarray:
        n = obs.shape[0]
        wander = self._rng.integers(0, 3, size=n)  # (B,) east, west or north
        if self._deterministic:
            return np.zeros(n, dtype=np.int64)
        return np.where(self._rng.random(n) < self.skill, 0, wander)

    def observe(self, reward, done) -> None:
        pass
