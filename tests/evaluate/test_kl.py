import numpy as np

from metatoken.envs.scripted import NoisyEastWalker
from metatoken.evaluate.kl import has_log_prob, kl_per_episode
from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger


def test_kl_is_zero_to_itself_and_scripted_policies_have_none(grid_task, grid_dataset):
    assert not has_log_prob(NoisyEastWalker(0.5))
    tiny = {"d_model": 16, "n_layers": 1, "context": 4}
    policy = make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), 0, NullLogger()).policy
    other = make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), 1, NullLogger()).policy
    assert has_log_prob(policy)
    # a copy of the same weights: every log-ratio is exactly 0
    same = make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), 0, NullLogger()).policy
    np.testing.assert_allclose(kl_per_episode(grid_task, policy, same, 4, seed=5), 0.0, atol=1e-5)
    assert kl_per_episode(grid_task, policy, other, 8, seed=5).mean() > 0.01
