"""The Policy seam: what evaluation, data collection and methods agree on.

A policy serves a batch of B environments in lockstep. Conditioned policies take one
target per environment (for example a commanded return) and hear the reward after
each step so they can keep their condition current (return-to-go).

A `ScoredPolicy` also says how likely an action was (the distribution of its last `act`,
as a log-probability and in closed form) and can be teacher-forced along another policy's
trajectory. Scripted policies are plain `Policy`s: `isinstance(p, ScoredPolicy)` is False.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # the envs import this seam; they need not import torch
    import torch

Seeds = int | Sequence[int] | np.ndarray  # an int: env i takes seed + i; a sequence: one seed per env


def env_seeds(seed: Seeds, num_envs: int) -> list[int]:
    """One seed per environment: `seed + i` for an int, else the given list (checked for length)."""
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(num_envs)]
    seeds = [int(s) for s in seed]
    if len(seeds) != num_envs:
        raise ValueError(f"expected {num_envs} seeds, one per environment, got {len(seeds)}")
    return seeds


@runtime_checkable
class Policy(Protocol):
    """Acts for B environments at once; sampling is the default, deterministic an option."""

    conditioned: bool  # True when reset() uses `target`

    def reset(
        self,
        num_envs: int,
        *,
        target: np.ndarray | None = None,  # (B,) commanded condition, one per environment
        seed: Seeds = 0,  # an int: env i samples with seed + i; a sequence: env i with seed[i]
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


Family = Literal["categorical", "gaussian", "tanh", "clipped"]


@dataclass(frozen=True)
class ActionDistribution:
    """The distribution of one `act` for B envs in closed form, so any two policies' KL can be computed.

    categorical: `params` are logits (B, n). Continuous families share one form: a Gaussian
    over pre-squash units u with `params` = (mean, log std) as (B, 2A), and the env action
    a = loc + scale * g(u), where g is the identity (gaussian), tanh (tanh) or a clip to
    [-1, 1] (clipped: the Gaussian's mass beyond a bound becomes a point mass on it).
    """

    family: Family
    params: torch.Tensor  # (B, n) logits or (B, 2A) mean and log std over u
    loc: torch.Tensor | None = None  # (A,) continuous only
    scale: torch.Tensor | None = None  # (A,) continuous only

    @property
    def discrete(self) -> bool:
        return self.family == "categorical"

    @property
    def mean(self) -> torch.Tensor:
        """Mean of the Gaussian over u: (B, A)."""
        return self.params.chunk(2, -1)[0]

    @property
    def log_std(self) -> torch.Tensor:
        """Log standard deviation of the Gaussian over u: (B, A)."""
        return self.params.chunk(2, -1)[1]


@runtime_checkable
class ScoredPolicy(Policy, Protocol):
    """A policy that can say how likely an action was, and follow a trajectory it did not choose."""

    def log_prob(self, action: np.ndarray) -> np.ndarray:
        """log pi(action) under the distribution of the last `act` (or `teacher_force`): (B,)."""
        ...

    def distribution(self) -> ActionDistribution:
        """The distribution of the last `act` (or `teacher_force`), in closed form."""
        ...

    def teacher_force(self, obs: np.ndarray, action: np.ndarray) -> None:
        """Advance one step on `obs` as if `action` (B, ...) had been taken: no sampling, no noise drawn."""
        ...


@runtime_checkable
class EpisodeScorer(ScoredPolicy, Protocol):
    """A scored policy that can also score whole recorded episodes at once (a predictor: one pass per episode)."""

    def score_episodes(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                       target: np.ndarray | None = None) -> ActionDistribution:
        """Its distribution at every step of E episodes (T, E, ...) another policy played, teacher-forced:
        T x E rows, step-major; its own state is left as it was."""
        ...
