"""Tiny synthetic datasets shared by the model tests (as fixtures)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from metatoken.data.dataset import Dataset, Episode


def episode(obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> Episode:
    t = len(rewards)
    return Episode(obs.astype(np.float32), actions, rewards.astype(float), np.zeros(t, bool),
                   np.zeros(t, bool), np.full(t, np.nan), np.zeros(t, bool))


def good_bad_dataset(seed: int = 0, episodes: int = 40, length: int = 12) -> Dataset:
    """Discrete: good episodes (reward 1 per step) always take action 0, bad ones (reward 0) action 1."""
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(episodes):
        good = i % 2 == 0
        acts = np.full(length, 0 if good else 1, dtype=np.int64)
        eps.append(episode(rng.uniform(size=(length + 1, 2)), acts, np.full(length, float(good))))
    return Dataset(eps, gym.spaces.Box(0, 1, (2,), np.float32), gym.spaces.Discrete(3))


def continuous_dataset(seed: int = 0, episodes: int = 8, length: int = 30, obs_dim: int = 3,
                       act_dim: int = 2) -> Dataset:
    """Continuous random data in a bounded action box."""
    rng = np.random.default_rng(seed)
    eps = [episode(rng.normal(size=(length + 1, obs_dim)), rng.uniform(-1, 1, (length, act_dim)).astype(np.float32),
                   rng.normal(size=length)) for _ in range(episodes)]
    return Dataset(eps, gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
                   gym.spaces.Box(-1, 1, (act_dim,), np.float32))


@pytest.fixture
def good_bad_data() -> Dataset:
    return good_bad_dataset()


@pytest.fixture
def continuous_data() -> Dataset:
    return continuous_dataset()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run faster on one thread, and far faster when other work shares the 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
