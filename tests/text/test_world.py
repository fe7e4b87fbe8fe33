import numpy as np
import pytest

from metatoken.errors import UserError
from metatoken.text.world import make_world


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_enumeration_sums_to_one(name):
    world = make_world(name)
    x, logp0 = world.support()
    assert x.shape == (world.n_words ** world.length, world.length)
    assert len(np.unique(x, axis=0)) == len(x)
    assert abs(np.exp(logp0).sum() - 1) < 1e-12


def test_forward_algorithm_matches_brute_force_over_hidden_paths():
    world = make_world("tiny")
    x = world.sample(5, seed=3)
    S, L = world.cfg.n_states, world.length
    for seq, lp in zip(x, world.log_p0(x)):
        total = 0.0
        for path in np.ndindex(*([S] * L)):
            p = world.initial[path[0]] * world.emission[path[0], seq[0]]
            for t in range(1, L):
                p *= world.transition[path[t - 1], path[t]] * world.emission[path[t], seq[t]]
            total += p
        assert abs(np.log(total) - lp) < 1e-12


def test_sampling_frequencies_agree_with_enumerated_p0():
    world = make_world("tiny")
    x, logp0 = world.support()
    n = 200_000
    s = world.sample(n, seed=11)
    index = (s * world.n_words ** np.arange(world.length - 1, -1, -1)).sum(1)  # lexicographic rank
    freq = np.bincount(index, minlength=len(x)) / n
    p = np.exp(logp0)
    z = (freq - p) / np.sqrt(p * (1 - p) / n)
    assert np.abs(z).max() < 5.0  # 1,024 cells: a 5-sigma cell is ~1e-3 likely by chance
    chi2 = (n * (freq - p) ** 2 / p).sum()
    assert chi2 < len(x) + 5 * np.sqrt(2 * len(x))  # chi-squared with 1,023 dof


def test_rewards_on_known_sequences():
    world = make_world("small")  # words 0 and 1 are positive; scores 1, 0.6, ..., -1
    x = np.array([[0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1], [5, 5, 5, 5, 5, 5], [0, 0, 1, 1, 4, 2]])
    np.testing.assert_allclose(world.reward("proxy", x), [1, 1, 0, 4 / 6])
    np.testing.assert_allclose(world.reward("true", x), [1 / 6, 1, 0, 2 / 6])
    np.testing.assert_allclose(world.reward("sentiment", x), [1, 0.8, -1, (1 + 1 + 0.6 + 0.6 - 0.6 + 0.2) / 6])
    all_x, _ = world.support()
    for name in ("proxy", "true", "sentiment"):
        assert world.reward(name, all_x).max() == pytest.approx(world.reward_max(name))


def test_large_world_refuses_enumeration_but_samples():
    world = make_world("large")
    assert not world.enumerable
    with pytest.raises(UserError):
        world.support()
    s = world.sample(100, seed=0)
    assert s.shape == (100, 12) and np.isfinite(world.log_p0(s)).all()


def test_unknown_names_are_user_errors():
    with pytest.raises(UserError, match="huge"):
        make_world("huge")
    with pytest.raises(UserError, match="funny"):
        make_world("tiny").reward("funny", np.zeros((1, 5), int))
