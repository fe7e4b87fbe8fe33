"""The Policy seam: what evaluation, data collection and methods agree on.

A policy serves a batch of B environments in lockstep. Conditioned policies take one
target per environment (for example a commanded return) and hear the reward after
each step so they can keep their condition current (return-to-go).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """Acts for B environments at once; sampling is the default, deterministic an option."""

    conditioned: bool  # True when reset() uses `target`

    def reset(
        self,
        num_envs: int,
        *,
        target: np.ndarray | None = None,  # (B,) commanded condition, one per environment
        seed: int = 0,
        deterministic: bool = False,
    ) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions for a batch of observations: (B, *obs_shape) -> (B, *action_shape)."""
        ...

    def observe(self, reward: np.ndarray, done: np.ndarray) -> None:
        """Feedback after a step: reward (B,) and done (B,) flags."""
        ...


@runtime_checkable
class SavablePolicy(Policy, Protocol):
    """A policy with weights: safetensors plus a JSON config, never pickle."""

    def save(self, directory: Path) -> None: ...
