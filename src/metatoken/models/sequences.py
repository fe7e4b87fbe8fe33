"""K-step windows from a Dataset, with previous actions, conditions and episode timesteps.

Episodes are flattened once into step arrays. A window starts at a uniformly drawn step
and runs K steps or to its episode's end; short windows are right-padded and masked, which
a causal model needs no attention mask for (padding only follows real tokens).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from metatoken.data.dataset import Dataset
from metatoken.models.conditions import Condition


class SequenceBatch(NamedTuple):
    obs: torch.Tensor  # (B, K, O)
    prev_action: torch.Tensor  # (B, K, A) float or (B, K) long; ignored where timestep == 0
    action: torch.Tensor  # (B, K, A) float or (B, K) long; the targets
    cond: torch.Tensor  # (B, K, Dc)
    timestep: torch.Tensor  # (B, K) long, step within the episode
    mask: torch.Tensor  # (B, K) bool, real (not padding) positions


class SequenceSampler:
    """Draws seeded K-step windows from the reference data."""

    def __init__(self, dataset: Dataset, condition: Condition, context: int, discrete: bool, seed: int = 0):
        eps = [e for e in dataset.episodes if len(e) > 0]
        if not eps:
            raise ValueError("the dataset has no steps")
        self.context, self.discrete = context, discrete
        lengths = np.array([len(e) for e in eps])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.ep_end = np.repeat(starts + lengths, lengths)  # (N,) one past each step's episode end
        obs = np.concatenate([e.observations[:-1].reshape(len(e), -1) for e in eps]).astype(np.float32)
        if discrete:
            act = np.concatenate([np.asarray(e.actions).reshape(-1) for e in eps]).astype(np.int64)
        else:
            act = np.concatenate([np.asarray(e.actions).reshape(len(e), -1) for e in eps]).astype(np.float32)
        prev = np.roll(act, 1, axis=0)
        prev[starts] = 0  # no previous action at an episode's first step (the model masks it)
        cond = np.concatenate([condition.labels(e) for e in eps]).astype(np.float32).reshape(len(obs), -1)
        self.timestep = torch.from_numpy(np.concatenate([np.arange(n) for n in lengths]))
        self.obs, self.action = torch.from_numpy(obs), torch.from_numpy(act)
        self.prev_action, self.cond = torch.from_numpy(prev), torch.from_numpy(cond)
        self.rng = np.random.default_rng(seed)

    @property
    def num_steps(self) -> int:
        return len(self.obs)

    def sample(self, batch_size: int) -> SequenceBatch:
        """A batch of windows, each starting at a uniformly drawn step."""
        start = self.rng.integers(0, self.num_steps, size=batch_size)  # (B,)
        idx = start[:, None] + np.arange(self.context)[None]  # (B, K)
        mask = idx < self.ep_end[start][:, None]
        idx = torch.from_numpy(np.where(mask, idx, start[:, None]))  # padding repeats a real step
        return SequenceBatch(
            self.obs[idx], self.prev_action[idx], self.action[idx], self.cond[idx],
            self.timestep[idx], torch.from_numpy(mask),
        )
