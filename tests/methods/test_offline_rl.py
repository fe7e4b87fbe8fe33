import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from metatoken.data.collect import collect
from metatoken.envs import make_task
from metatoken.errors import UserError
from metatoken.evaluate.measure.reference import load_saved_policy
from metatoken.evaluate.rollout import rollout
from metatoken.logger import NullLogger
from metatoken.methods import make_method
from metatoken.methods.base import Budget
from metatoken.methods.offline_rl import (
    CONFIG,
    fit_preprocess,
    load_offline_rl_policy,
    to_mdp_dataset,
)

needs_d3rlpy = pytest.mark.skipif(importlib.util.find_spec("d3rlpy") is None,
                                  reason="the offline extra is not installed")
SMALL = {"hidden": [32, 32], "batch_size": 32}


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mountain():
    task = make_task("mountain", {"summit_distance": 2.0, "reference_episodes": 6})
    return task, collect(task)


def _acts(policy, obs, seed, deterministic):
    policy.reset(len(obs), seed=seed, deterministic=deterministic)
    return policy.act(obs)


@needs_d3rlpy
def test_cql_learns_the_grid_from_its_rewards_and_round_trips(grid_task, grid_dataset, tmp_path):
    trained = make_method("cql", SMALL).train(grid_task, grid_dataset, Budget(gradient_steps=300), 0, NullLogger())
    ledger = trained.ledger
    assert ledger.online_env_steps == 0 and ledger.reward_queries == 0 and ledger.gradient_steps == 300
    assert ledger.reward_labels == grid_dataset.total_steps
    assert ledger.as_metrics()["ledger/reward_labels"] == grid_dataset.total_steps
    # the noisy east walkers' data, weighed by reward: acting on argmax Q walks to the goal every time
    greedy = rollout(grid_task, trained.policy, 8, seed=5, deterministic=True)
    assert greedy.returns.mean() > np.mean([e.ret for e in grid_dataset.episodes])
    trained.policy.save(tmp_path)
    config = json.loads((tmp_path / CONFIG).read_text())
    assert config["kind"] == "d3rlpy-discrete-cql"
    loaded = load_offline_rl_policy(tmp_path)
    obs = np.stack([e.observations[0] for e in grid_dataset.episodes[:16]])
    for det in (False, True):
        np.testing.assert_array_equal(_acts(trained.policy, obs, 3, det), _acts(loaded, obs, 3, det))
    # the runner's loader (--resume checks every reused run's policy loads) dispatches on the kind
    by_runner = load_saved_policy(tmp_path)
    np.testing.assert_array_equal(_acts(loaded, obs, 3, True), _acts(by_runner, obs, 3, True))
    # sampling is softmax(Q / temperature), seeded per env: at a huge temperature it is uniform over 4 actions
    loaded.temperature = 1e9
    many = np.repeat(obs[:1], 4000, 0)
    a = _acts(loaded, many, 1, False)
    np.testing.assert_allclose(np.bincount(a, minlength=4) / len(a), 0.25, atol=0.03)
    np.testing.assert_array_equal(a, _acts(loaded, many, 1, False))


@needs_d3rlpy
def test_iql_acts_in_bounds_on_a_continuous_task_and_round_trips(mountain, tmp_path):
    task, data = mountain
    trained = make_method("iql", SMALL).train(task, data, Budget(gradient_steps=60), 0, NullLogger())
    assert trained.ledger.reward_labels == data.total_steps and trained.ledger.online_env_steps == 0
    r = rollout(task, trained.policy, 3, seed=7)
    assert np.all(r.lengths > 0)
    obs = np.stack([e.observations[3] for e in data.episodes])
    sampled = _acts(trained.policy, obs, 2, False)
    assert sampled.shape == (len(obs), 4) and np.all(np.abs(sampled) <= 1.0)
    assert not np.array_equal(sampled, _acts(trained.policy, obs, 2, True))
    trained.policy.save(tmp_path)
    loaded = load_offline_rl_policy(tmp_path)
    for det in (False, True):
        np.testing.assert_array_equal(_acts(trained.policy, obs, 2, det), _acts(loaded, obs, 2, det))


@needs_d3rlpy
def test_training_is_seeded_and_leaves_global_rngs_alone(grid_task, grid_dataset):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    runs = [make_method("cql", SMALL).train(grid_task, grid_dataset, Budget(gradient_steps=20), 4, NullLogger())
            for _ in range(2)]
    assert torch.rand(1) == before  # global torch stream where we left it
    obs = np.stack([e.observations[1] for e in grid_dataset.episodes[:8]])
    np.testing.assert_array_equal(_acts(runs[0].policy, obs, 0, False), _acts(runs[1].policy, obs, 0, False))


@needs_d3rlpy
def test_mdp_dataset_keeps_episode_boundaries_and_scales_actions(mountain):
    import d3rlpy

    _, data = mountain
    pre = fit_preprocess(data)
    mdp = to_mdp_dataset(data, pre, d3rlpy)
    assert len(mdp.episodes) == len(data.episodes)
    assert [len(e) for e in mdp.episodes] == [len(e) for e in data.episodes]
    first = data.episodes[0]
    np.testing.assert_allclose(pre.from_unit(mdp.episodes[0].actions), first.actions, atol=1e-6)
    np.testing.assert_allclose(mdp.episodes[0].rewards[:, 0], first.rewards, rtol=1e-6)
    np.testing.assert_allclose(pre.to_unit(np.array([[-1.0] * 4, [1.0] * 4])), [[-1.0] * 4, [1.0] * 4])


@needs_d3rlpy
def test_wrong_action_space_and_a_missing_file_are_user_errors(grid_task, grid_dataset, tmp_path):
    with pytest.raises(UserError, match="needs continuous actions"):
        make_method("iql", SMALL).train(grid_task, grid_dataset, Budget(gradient_steps=1), 0, NullLogger())
    with pytest.raises(UserError, match="cannot load offline RL policy"):
        load_offline_rl_policy(tmp_path)


def test_without_d3rlpy_the_methods_fail_with_one_user_error_line(grid_task, grid_dataset, monkeypatch):
    monkeypatch.setitem(sys.modules, "d3rlpy", None)  # import d3rlpy now raises ImportError
    for method in ("iql", "cql"):
        with pytest.raises(UserError, match=r"needs d3rlpy: pip install 'metatoken\[offline\]'") as err:
            make_method(method, SMALL).train(grid_task, grid_dataset, Budget(gradient_steps=1), 0, NullLogger())
        assert "\n" not in str(err.value)
