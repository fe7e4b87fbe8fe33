"""Noise behaviours: bounds, seeding, and the spread a clipped Gaussian should have."""

import numpy as np
import pytest
from gymnasium import spaces

from metatoken.envs.noise import ClippedGaussian, UniformRandom


def sample(policy, n=20000, seed=0):
    policy.reset(n, seed=seed)
    return policy.act(np.zeros((n, 1)))


def test_uniform_covers_discrete_and_box_evenly():
    counts = np.bincount(sample(UniformRandom(spaces.Discrete(4))), minlength=4)
    assert counts.sum() == 20000 and (np.abs(counts / 20000 - 0.25) < 0.02).all()
    box = sample(UniformRandom(spaces.Box(-1.0, 1.0, (3,))))
    assert box.shape == (20000, 3) and box.dtype == np.float32
    assert box.min() >= -1 and box.max() <= 1 and abs(box.mean()) < 0.02 and abs(box.std() - 1 / np.sqrt(3)) < 0.01


def test_seeded_and_distinct_across_seeds():
    policy = UniformRandom(spaces.Box(-1.0, 1.0, (2,)))
    assert np.array_equal(sample(policy, 5, seed=1), sample(policy, 5, seed=1))
    assert not np.array_equal(sample(policy, 5, seed=1), sample(policy, 5, seed=2))


def test_clipped_gaussian_spread():
    box = spaces.Box(-1.0, 1.0, (4,))
    narrow = sample(ClippedGaussian(box, 0.2))
    wide = sample(ClippedGaussian(box, 1.0))
    assert abs(narrow.std() - 0.2) < 0.01  # clipping at 5 sigma changes nothing
    assert (np.abs(wide) == 1.0).mean() == pytest.approx(0.3173, abs=0.01)  # P(|N(0,1)| > 1)
    with pytest.raises(TypeError):
        ClippedGaussian(spaces.Discrete(3), 1.0)
