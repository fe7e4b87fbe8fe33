import numpy as np
import pytest
import torch

from metatoken.errors import UserError
from metatoken.text.policy import load_text_policy, new_policy
from metatoken.text.world import make_world


@pytest.fixture(scope="module")
def setup():
    world = make_world("tiny")
    torch.manual_seed(0)
    policy = new_policy(world.n_words, world.length, d_model=16)
    with torch.no_grad():  # a peaky, non-uniform random model so the checks below have teeth
        policy.model.unembed.weight.mul_(200)
    return world, policy


def test_support_log_probs_sum_to_one_and_match_direct_scoring(setup):
    world, policy = setup
    x, _ = world.support()
    logpi = policy.support_log_prob(x)
    assert abs(np.exp(logpi).sum() - 1) < 1e-5
    assert logpi.std() > 0.5  # not uniform
    with torch.no_grad():
        direct = policy.log_prob(torch.as_tensor(x[::7])).double().numpy()
    np.testing.assert_allclose(logpi[::7], direct, atol=1e-4)
    # a condition token changes the distribution (the first token is read)
    other = policy.with_condition(1).support_log_prob(x)
    assert np.abs(other - logpi).max() > 1e-3


def test_sampling_matches_exact_log_probs_and_never_emits_control_tokens(setup):
    world, policy = setup
    x, _ = world.support()
    p = np.exp(policy.support_log_prob(x))
    n = 40_000
    s = policy.with_condition(None).sample(n, torch.Generator().manual_seed(5)).numpy()
    assert s.max() < world.n_words
    index = (s * world.n_words ** np.arange(world.length - 1, -1, -1)).sum(1)
    freq = np.bincount(index, minlength=len(x)) / n
    big = p > 20 / n  # cells with enough expected counts for a normal approximation
    z = (freq[big] - p[big]) / np.sqrt(p[big] * (1 - p[big]) / n)
    assert np.abs(z).max() < 5.0
    assert abs(freq[~big].sum() - p[~big].sum()) < 5 * np.sqrt(p[~big].sum() / n) + 1e-3


def test_save_and_load_round_trip(setup, tmp_path):
    world, policy = setup
    policy.with_condition(2).save(tmp_path / "p")
    loaded = load_text_policy(tmp_path / "p")
    assert loaded.condition == 2 and loaded.first_token == world.n_words + 3
    x, _ = world.support()
    np.testing.assert_array_equal(loaded.support_log_prob(x), policy.with_condition(2).support_log_prob(x))
    with pytest.raises(UserError, match="not a saved text policy"):
        load_text_policy(tmp_path)
