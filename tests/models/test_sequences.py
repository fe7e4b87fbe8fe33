"""K-step windows: consecutive steps of one episode, shifted previous actions, padding masked."""

import numpy as np

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
