"""Noise versus intent (greedy evaluation, action entropy), controllability over level means with
per-level calibration and commands above the data, and exploit rate over capability's episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from metatoken.data.dataset import Dataset
from metatoken.envs.scripted import NoisyEastWalker
from metatoken.evaluate.evaluate import above_levels, command_levels, evaluate
from metatoken.evaluate.measure import measure
from metatoken.evaluate.recorders import ActionEntropy, entropy_nats
from metatoken.evaluate.rollout import Rollouts, rollout
from metatoken.policy import ActionDistribution

ALL = ["capability", "controllability", "spookiness"]


def _sparse(dataset: Dataset) -> Dataset:
    """The same episodes relabelled 0/1 like a sparse task: half fail, half reach the goal."""
    eps = []
    for i, e in enumerate(dataset.episodes):
        r = np.zeros(len(e))
        r[-1] = float(i % 2)
        eps.append(type(e)(**{**e.__dict__, "rewards": r}))
    return Dataset(eps, dataset.observation_space, dataset.action_space, dataset.task_key)


def _rollouts(target, returns, exploit_steps=None, labels=None):
    n = len(returns)
    return Rollouts(np.asarray(returns, float), np.full(n, 5), np.asarray(returns, float),
                    np.zeros(n, int) if exploit_steps is None else np.asarray(exploit_steps),
                    np.asarray(target, float), [set() for _ in range(n)],
                    implementations=[] if labels is None else list(labels))


def test_deterministic_policy_scores_the_same_sampled_and_greedy(grid_task, grid_dataset):
    always_east = NoisyEastWalker(skill=1.0)  # never wanders: no noise to remove
    sampled = evaluate(grid_task, always_east, grid_dataset, episodes=6, seed=0)
    greedy = evaluate(grid_task, always_east, grid_dataset, episodes=6, seed=0, deterministic=True)
    a, b = measure(ALL, sampled, grid_task, grid_dataset), measure(ALL, greedy, grid_task, grid_dataset)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)
    noisy = NoisyEastWalker(skill=0.3)  # the greedy evaluation really acts on the mode: it differs here
    s = evaluate(grid_task, noisy, grid_dataset, episodes=6, seed=0)
    g = evaluate(grid_task, noisy, grid_dataset, episodes=6, seed=0, deterministic=True)
    np.testing.assert_array_equal(g.returns, sampled.returns)  # the mode is the always-east walker
    assert not np.array_equal(s.returns, g.returns)


def test_entropy_of_known_distributions():
    uniform = ActionDistribution("categorical", torch.zeros(3, 4))  # (B, n)
    assert entropy_nats(uniform).numpy() == pytest.approx(np.full(3, np.log(4)))
    sure = ActionDistribution("categorical", torch.tensor([[0.0, -1e9]]))
    assert entropy_nats(sure).item() == pytest.approx(0.0, abs=1e-6)
    log_std = torch.tensor([[0.0, 0.0, 0.0, -1.0]])  # (B, 2A): means (0, 0), log std (0, -1)
    gauss = ActionDistribution("gaussian", log_std, torch.zeros(2), torch.ones(2))
    assert entropy_nats(gauss).item() == pytest.approx(np.log(2 * np.pi * np.e) - 1.0)


class _Uniform:
    """A scored policy over 4 actions with fixed logits: entropy log 4 on uniform, 0 on one-hot."""

    conditioned = False

    def __init__(self, logits):
        self.logits = torch.as_tensor(logits, dtype=torch.float32)

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self.n, self.rng = num_envs, np.random.default_rng(seed)

    def act(self, obs):
        return self.rng.integers(0, 4, size=len(obs))

    def observe(self, reward, done):
        pass

    def distribution(self):
        return ActionDistribution("categorical", self.logits.expand(self.n, 4))

    def log_prob(self, action):
        return np.full(len(action), -np.log(4))

    def teacher_force(self, obs, action):
        pass


def test_action_entropy_recorder_averages_alive_steps(grid_task):
    rec = ActionEntropy(_Uniform(torch.zeros(4)))
    rollout(grid_task, rec.policy, 5, seed=0, recorders=[rec])
    assert rec.steps > 5 and rec.mean == pytest.approx(np.log(4))
    with pytest.raises(TypeError):
        ActionEntropy(NoisyEastWalker(skill=1.0))  # scripted: cannot score, so no entropy


def test_levels_include_commands_above_the_best_return(grid_dataset):
    best = grid_dataset.returns().max()
    assert command_levels(grid_dataset)[-1] == pytest.approx(best)
    np.testing.assert_allclose(above_levels(grid_dataset), [1.25 * best, 1.5 * best])
    flat = _sparse(grid_dataset)
    neg = Dataset([type(e)(**{**e.__dict__, "rewards": e.rewards - 10.0}) for e in flat.episodes],
                  flat.observation_space, flat.action_space)
    assert (above_levels(neg) > neg.returns().max()).all()  # a multiple of a negative best is not above it


def _calibrated_and_switch(dataset, per_level=40):
    """Sparse data (returns 0/1): levels 0, .25, .5, .75, 1 and above 1.25, 1.5.

    calibrated: at command c succeeds in exactly round(c * n) of n episodes (above: always);
    switch: fails below 0.5 and always succeeds from 0.5 on."""
    levels = np.concatenate([command_levels(dataset), above_levels(dataset)])  # (7,)
    target = np.repeat(levels, per_level)
    calibrated = np.concatenate([np.arange(per_level) < round(min(c, 1.0) * per_level) for c in levels]).astype(float)
    switch = (target >= 0.5).astype(float)
    return target, calibrated, switch


def test_calibrated_policy_is_controllable_over_level_means(grid_task, grid_dataset):
    data = _sparse(grid_dataset)
    target, calibrated, _ = _calibrated_and_switch(data)
    m = measure(["controllability"], _rollouts(target, calibrated), grid_task, data)
    assert m["controllability/spearman"] == pytest.approx(1.0)
    assert m["controllability/calibration_error"] == pytest.approx(0.0)
    assert m["controllability/slope"] == pytest.approx(1.0)
    assert m["controllability/spearman_pooled"] < 0.8  # pooling 0/1 outcomes hid the calibration
    for k, c in enumerate([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]):
        assert m[f"controllability/level_{k}/commanded"] == pytest.approx(c)
        lo, hi = m[f"controllability/level_{k}/achieved_low"], m[f"controllability/level_{k}/achieved_high"]
        assert lo <= m[f"controllability/level_{k}/achieved"] <= hi
    assert m["controllability/level_2/achieved"] == pytest.approx(0.5)
    assert m["controllability/level_2/achieved_low"] < 0.5 < m["controllability/level_2/achieved_high"]
    assert m["controllability/level_6/achieved"] == pytest.approx(1.0)  # saturates above the data


def test_switch_scores_below_a_calibrated_policy_over_level_means(grid_task, grid_dataset):
    data = _sparse(grid_dataset)
    target, calibrated, switch = _calibrated_and_switch(data)
    cal = measure(["controllability"], _rollouts(target, calibrated), grid_task, data)
    sw = measure(["controllability"], _rollouts(target, switch), grid_task, data)
    # pooled over 0/1 episodes the switch looked more controllable than the calibrated policy ...
    assert sw["controllability/spearman_pooled"] > cal["controllability/spearman_pooled"]
    # ... over level means it is not: ranks (0, 0, 1, 1, 1) against 5 commands, and it misses by a fifth on average
    assert sw["controllability/spearman"] == pytest.approx(np.sqrt(3) / 2)
    assert sw["controllability/spearman"] < cal["controllability/spearman"]
    assert sw["controllability/calibration_error"] == pytest.approx((0 + 0.25 + 0.5 + 0.25 + 0) / 5)


def test_exploit_rate_uses_capabilitys_episodes_and_each_level(grid_task, grid_dataset):
    data = _sparse(grid_dataset)  # best return 1: levels 0 .. 1 are the data's, 1.25 and 1.5 above
    levels = np.concatenate([command_levels(data), above_levels(data)])
    target = np.repeat(levels, 2)  # (14,)
    exploit = np.zeros(14, int)
    exploit[[8, 12, 13]] = 3  # one of the two top-data-level episodes, both 1.5 episodes
    labels = ["walk"] * 10 + ["launch", "walk", "launch", "launch"]
    m = measure(ALL, _rollouts(target, np.ones(14), exploit, labels), grid_task, data)
    assert m["spookiness/exploit_rate"] == pytest.approx(0.5)  # over level 1.0 only, as capability
    assert m["capability/return"] == pytest.approx(1.0)
    assert m["spookiness/exploit_steps"] == pytest.approx(1.5)
    assert m["spookiness/exploit_rate_all"] == pytest.approx(1 / 10)  # the data's five levels pooled
    assert m["spookiness/level_4/exploit_rate"] == pytest.approx(0.5)
    assert m["spookiness/level_6/exploit_rate"] == pytest.approx(1.0)
    assert m["spookiness/level_0/exploit_rate"] == 0.0
    assert m["controllability/above/exploit_rate"] == pytest.approx(0.5)  # levels 5 and 6
    assert m["controllability/above/implementation/launch"] == pytest.approx(0.75)
    assert m["controllability/above/implementation/walk"] == pytest.approx(0.25)
