"""The ledger's offline fields: the reference data's steps a method trained on, and the rewards it read from them."""

from __future__ import annotations

import pytest

from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger

TINY = {"d_model": 8, "n_layers": 1, "context": 2}


@pytest.mark.parametrize("method, hp, reads", [
    ("bc", TINY, False),
    ("condition", TINY, True),  # return-to-go labels every step's reward
    ("condition", {**TINY, "condition": "attribute", "attributes": ["length"]}, False),
    ("rl-as-sl", TINY, False),  # its reward is 1[a = a_data] / pi(a), not the data's
    ("mixture", {**TINY, "lam": 0.0}, False),
])
def test_offline_steps_and_reward_labels(grid_task, grid_dataset, method, hp, reads):
    out = make_method(method, hp).train(grid_task, grid_dataset, Budget(gradient_steps=2), 0, NullLogger())
    total = grid_dataset.total_steps
    assert out.ledger.offline_env_steps == total
    assert out.ledger.offline_reward_labels == (total if reads else 0)


def test_filtered_bc_trains_on_its_share_but_read_every_reward(grid_task, grid_dataset):
    out = make_method("filtered-bc", {**TINY, "fraction": 0.2}).train(grid_task, grid_dataset,
                                                                      Budget(gradient_steps=2), 0, NullLogger())
    assert out.ledger.offline_env_steps == grid_dataset.top_fraction(0.2).total_steps < grid_dataset.total_steps
    assert out.ledger.offline_reward_labels == grid_dataset.total_steps
