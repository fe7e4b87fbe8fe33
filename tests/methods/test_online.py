"""Online collection through the rollout primitive records exactly what the policy consumed."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from metatoken.data.collect import collect as collect_reference
from metatoken.envs import make_task
from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger
from metatoken.methods.online import collect, window_params

TINY = {"d_model": 16, "n_layers": 1, "context": 3}


@pytest.fixture(scope="module")
def trained():
    task = make_task("glitchgrid-teleport", {"reference_episodes": 30, "summit_distance": 6})
    ds = collect_reference(task)
    policy = make_method("bc", TINY).train(task, ds, Budget(gradient_steps=15), 0, NullLogger()).policy
    other = make_method("bc", TINY).train(task, ds, Budget(gradient_steps=15), 1, NullLogger()).policy
    return task, policy, other


def test_recorded_inputs_recompute_the_collected_log_probs(trained):
    """Replaying each step's K-window with gradients gives the log-probs and base parameters seen while acting."""
    task, policy, other = trained
    groups, used = collect(task, policy, groups=2, k=3, seed=4, max_steps=10_000, base=other)
    assert len(groups) == 2 and used == sum(len(tr) for g in groups for tr in g)
    longest = max((tr for g in groups for tr in g), key=len)
    assert len(longest) > policy.model.context  # the window rolls at least once
    for tr in (tr for g in groups for tr in g):
        steps = np.arange(len(tr))
        with torch.no_grad():
            logp = -policy.model.head.nll(window_params(policy.model, tr, steps), tr.action)  # (T,)
            base = window_params(other.model, tr, steps)  # (T, P)
        np.testing.assert_allclose(logp.numpy(), tr.logp, atol=1e-5)
        torch.testing.assert_close(base, tr.base_params, atol=1e-5, rtol=0)
        np.testing.assert_allclose(-other.model.head.nll(base, tr.action).numpy(), tr.logp_base, atol=1e-5)
        assert torch.equal(tr.prev_action[1:], tr.action[:-1]) and tr.prev_action[0] == 0


def test_step_limit_drops_unfinished_groups_and_counts_their_steps(trained):
    task, policy, _ = trained
    groups, used = collect(task, policy, groups=3, k=2, seed=1, max_steps=20)
    assert used <= 20 and len(groups) < 3
    copy_ = copy.deepcopy(policy)
    again, used_again = collect(task, copy_, groups=3, k=2, seed=1, max_steps=20)
    assert used_again == used and len(again) == len(groups)
