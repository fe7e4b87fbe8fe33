"""Dataset: returns, discounted returns and the top-fraction filter's ranking."""

import gymnasium as gym
import numpy as np
import pytest

from metatoken.data.dataset import Dataset, Episode


def _episode(rewards: list[float], tag: int) -> Episode:
    t = len(rewards)
    return Episode(np.full((t + 1, 1), tag, np.float32), np.zeros(t, np.int64), np.array(rewards, float),
                   np.zeros(t, bool), np.zeros(t, bool), np.zeros(t), np.zeros(t, bool))


def _dataset(episodes: list[Episode]) -> Dataset:
    return Dataset(episodes, gym.spaces.Box(0, 100, (1,), np.float32), gym.spaces.Discrete(2))


def _tags(data: Dataset) -> list[int]:
    return [int(e.observations[0, 0]) for e in data.episodes]


def test_binary_returns_keep_the_quickest_successes_not_the_first():
    # Success pays 1 on the last step. The slow successes come first in the data, so ranking by
    # return with ties in dataset order would keep episodes 0 and 1 (20 and 18 steps).
    lengths = [20, 18, 5, 30, 6, 9]
    eps = [_episode([0.0] * (n - 1) + [1.0], tag=i) for i, n in enumerate(lengths)]
    eps += [_episode([0.0] * 4, tag=10 + i) for i in range(6)]  # failures
    data = _dataset(eps)
    assert _tags(data.top_fraction(2 / 12)) == [2, 4]  # the 5- and 6-step successes, in dataset order
    assert _tags(data.top_fraction(4 / 12)) == [1, 2, 4, 5]  # then 9 and 18 steps; 20 and 30 dropped


def test_ties_go_to_earlier_reward_then_to_shorter_episodes():
    eps = [
        _episode([0.0, 0.0, 1.0], tag=0),  # return 1, paid last
        _episode([1.0, 0.0, 0.0], tag=1),  # return 1, paid first: higher discounted return
        _episode([1.0, 0.0, 0.0, 0.0], tag=2),  # same discounted return as 1, but longer
        _episode([1.0, 0.0, 0.0], tag=3),  # an exact tie with 1: dataset order decides
    ]
    data = _dataset(eps)
    assert _tags(data.top_fraction(0.25)) == [1]
    assert _tags(data.top_fraction(0.5)) == [1, 3]
    assert _tags(data.top_fraction(0.75)) == [1, 2, 3]
    # gamma = 1 makes every discounted return equal: length decides (2 is longest, then 0 by order).
    assert _tags(data.top_fraction(0.75, gamma=1.0)) == [0, 1, 3]


def test_higher_return_always_wins_and_at_least_one_is_kept():
    eps = [_episode([0.5] * 10, tag=0), _episode([1.0], tag=1), _episode([0.2, 0.2], tag=2)]
    data = _dataset(eps)
    assert _tags(data.top_fraction(1 / 3)) == [0]  # return 5 beats a one-step return of 1
    assert _tags(data.top_fraction(1e-6)) == [0]
    assert data.discounted_returns(0.5) == pytest.approx([0.5 * (1 - 0.5**10) / 0.5, 1.0, 0.3])
