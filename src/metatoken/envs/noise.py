"""Noise behaviours: what a policy does before anyone trains it, as batched Policies.

`UniformRandom` samples the action space uniformly (the policy sparsity in bits is defined
by); `ClippedGaussian` samples N(0, sigma^2) per action dimension clipped to the box (PPO's
initial policy is close to sigma = 1). Both are seeded through `reset`.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class UniformRandom:
    """Uniform over a Discrete or Box action space, for B environments at once."""

    conditioned = False

    def __init__(self, action_space: spaces.Space):
        if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
            raise TypeError(f"UniformRandom needs a Discrete or Box action space, got {action_space}")
        self.action_space = action_space
        self._rng = np.random.default_rng(0)

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        """Seed the sampler (deterministic has no meaning for noise and is ignored)."""
        self._rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B,) int or (B, *shape) float32, uniform over the space."""
        n, space = len(obs), self.action_space
        if isinstance(space, spaces.Discrete):
            return space.start + self._rng.integers(0, space.n, size=n)  # (B,)
        return self._rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(np.float32)

    def observe(self, reward, done) -> None:
        pass


class ClippedGaussian(UniformRandom):
    """N(0, sigma^2) per dimension of a Box action space, clipped to its bounds."""

    def __init__(self, action_space: spaces.Space, sigma: float):
        if not isinstance(action_space, spaces.Box):
            raise TypeError(f"ClippedGaussian needs a Box action space, got {action_space}")
        super().__init__(action_space)
        self.sigma = float(sigma)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, *shape) float32: clipped Gaussian noise around 0."""
        space = self.action_space
        raw = self._rng.normal(0.0, self.sigma, size=(len(obs), *space.shape))
        return np.clip(raw, space.low, space.high).astype(np.float32)
