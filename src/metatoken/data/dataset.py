"""Episodes and datasets: the immutable reference data every offline method learns from."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


@dataclass
class Episode:
    """One trajectory with its audit. T steps, T + 1 observations (the last is final)."""

    observations: np.ndarray  # (T+1, *obs_shape)
    actions: np.ndarray  # (T, *action_shape)
    rewards: np.ndarray  # (T,)
    terminations: np.ndarray  # (T,) bool
    truncations: np.ndarray  # (T,) bool
    intended: np.ndarray  # (T,) intended performance so far (audit; NaN if the env has none)
    exploit: np.ndarray  # (T,) bool, a planted exploit fired on this step (audit)
    behaviour: str = ""  # which behaviour policy produced it
    seed: int | None = None

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def ret(self) -> float:
        return float(self.rewards.sum())

    def returns_to_go(self) -> np.ndarray:
        """Undiscounted return from each step to the end: (T,)."""
        return np.cumsum(self.rewards[::-1])[::-1].copy()


@dataclass
class Dataset:
    """A list of episodes plus the spaces they live in."""

    episodes: list[Episode]
    observation_space: gym.Space
    action_space: gym.Space
    task_key: str = ""
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def total_steps(self) -> int:
        return sum(len(e) for e in self.episodes)

    def returns(self) -> np.ndarray:
        """Per-episode returns: (N,)."""
        return np.array([e.ret for e in self.episodes])

    def discounted_returns(self, gamma: float) -> np.ndarray:
        """Per-episode discounted returns sum_t gamma^t r_t: (N,)."""
        return np.array([float(e.rewards @ gamma ** np.arange(len(e))) for e in self.episodes])

    def top_fraction(self, fraction: float, gamma: float = 0.99) -> Dataset:
        """The best `fraction` of episodes, at least one, kept in dataset order.

        Ranked by return; ties by discounted return (`gamma`: the same return earned sooner
        ranks higher), then by length (shorter first). Only exact ties left after that
        fall back to dataset order. With binary returns, the first key alone would keep
        whichever successes came first in the data, not the most skilful.
        """
        keep = max(1, round(fraction * len(self.episodes)))
        lengths = np.array([len(e) for e in self.episodes])
        # np.lexsort sorts by its last key first, and is stable.
        order = np.lexsort((lengths, -self.discounted_returns(gamma), -self.returns()))[:keep]
        return Dataset(
            [self.episodes[i] for i in sorted(order)],
            self.observation_space,
            self.action_space,
            self.task_key,
            dict(self.metadata),
        )

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flattened (obs, action, return-to-go) over all steps: (N, *obs), (N, *act), (N,)."""
        obs = np.concatenate([e.observations[:-1] for e in self.episodes])
        act = np.concatenate([e.actions for e in self.episodes])
        rtg = np.concatenate([e.returns_to_go() for e in self.episodes])
        return obs, act, rtg
