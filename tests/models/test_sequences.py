"""K-step windows: consecutive steps of one episode, shifted previous actions, padding masked."""

import gymnasium as gym
import numpy as np

from metatoken.data.dataset import Dataset, Episode
from metatoken.models.conditions import fit_condition
from metatoken.models.sequences import SequenceSampler


def test_windows_stay_in_their_episode(good_bad_data):
    sampler = SequenceSampler(good_bad_data, fit_condition("rtg", good_bad_data), 5, discrete=True, seed=0)
    b = sampler.sample(256)
    assert b.obs.shape == (256, 5, 2) and b.cond.shape == (256, 5, 1)
    ts, mask = b.timestep.numpy(), b.mask.numpy()
    for row in range(256):
        n = mask[row].sum()
        assert mask[row, :n].all() and not mask[row, n:].any()  # right padding only
        assert np.array_equal(np.diff(ts[row, :n]), np.ones(n - 1))  # consecutive steps
        assert n == 5 or ts[row, n - 1] == 11  # short windows end at the episode's last step
        # each episode repeats one action, so the previous action equals the action after step 0
        later = ts[row, :n] > 0
        assert np.array_equal(b.prev_action[row, :n][later], b.action[row, :n][later])
        # return-to-go counts down by the reward (1 for good episodes, 0 for bad)
        rtg = b.cond[row, :n, 0].numpy() * 12
        assert np.allclose(rtg, (12 - ts[row, :n]) * (b.action[row, 0].item() == 0))


def test_sampling_is_seeded(good_bad_data):
    c = fit_condition("rtg", good_bad_data)
    a = SequenceSampler(good_bad_data, c, 4, True, seed=7).sample(32)
    b = SequenceSampler(good_bad_data, c, 4, True, seed=7).sample(32)
    d = SequenceSampler(good_bad_data, c, 4, True, seed=8).sample(32)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.timestep, d.timestep)


def varied_dataset(seed: int = 0) -> Dataset:
    """Episodes of varied lengths whose actions change every step; obs = (episode, step) identifies each step."""
    rng = np.random.default_rng(seed)
    eps = []
    for i, length in enumerate(rng.integers(1, 9, size=30)):
        obs = np.stack([np.full(length + 1, i), np.arange(length + 1)], 1)
        acts = rng.permutation(np.resize(np.arange(5), length)).astype(np.int64)  # varied, never all equal
        eps.append(Episode(obs.astype(np.float32), acts, rng.normal(size=length), np.zeros(length, bool),
                           np.zeros(length, bool), np.full(length, np.nan), np.zeros(length, bool)))
    return Dataset(eps, gym.spaces.Box(0, 100, (2,), np.float32), gym.spaces.Discrete(5))


def test_windows_carry_each_step_own_action_and_the_one_before():
    data = varied_dataset()
    sampler = SequenceSampler(data, fit_condition("none", data), 4, discrete=True, seed=3)
    b = sampler.sample(512)
    seen = set()
    for row in range(512):
        for j in np.flatnonzero(b.mask[row].numpy()):
            ep, t = (int(v) for v in b.obs[row, j])
            truth = data.episodes[ep].actions
            assert int(b.timestep[row, j]) == t
            assert int(b.action[row, j]) == truth[t]  # the action taken at this step, not a neighbour's
            if t > 0:
                assert int(b.prev_action[row, j]) == truth[t - 1]
            seen.add((ep, t))
    assert len(seen) > 50  # the windows covered many distinct steps
    varied = [e.actions for e in data.episodes if len(e) > 1]
    assert all(len(set(a)) > 1 for a in varied)  # a sampler that repeats or shifts actions would fail above
