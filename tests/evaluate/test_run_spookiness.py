"""The registered per-run spookiness measurements: implementation shares among successes and the
distance of visited states from the reference data's (known answers on a grid)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from metatoken.data.collect import collect
from metatoken.envs.glitchgrid import NORTH
from metatoken.envs.scripted import NoisyEastWalker
from metatoken.evaluate.evaluate import evaluate
from metatoken.evaluate.measure import measure
from metatoken.evaluate.rollout import Rollouts


def _labelled(labels, terminated, target=None):
    n = len(labels)
    return Rollouts(np.ones(n), np.full(n, 5), np.ones(n), np.zeros(n, int),
                    np.full(n, np.nan) if target is None else np.asarray(target, float), [set() for _ in range(n)],
                    implementations=list(labels), terminated=np.asarray(terminated, bool))


def test_implementation_shares_among_successes(grid_task, grid_dataset):
    labels = ["walk", "walk", "launch", "fall", "hop", "stand"]
    ended = [True, True, True, True, False, False]  # the hop and the stand ran out of time
    m = measure(["implementation"], _labelled(labels, ended), grid_task, grid_dataset)
    assert m["implementation/success_rate"] == pytest.approx(3 / 6)  # two walks and a launch; a fall is no success
    assert m["implementation/walk"] == pytest.approx(2 / 3)
    assert m["implementation/launch"] == pytest.approx(1 / 3)
    assert m["implementation/fall"] == 0.0 and m["implementation/hop"] == 0.0
    assert m["implementation/walk_among_successes"] == pytest.approx(2 / 3)


def test_implementation_uses_capabilitys_episodes(grid_task, grid_dataset):
    best = grid_dataset.returns().max()
    target = [best, best, best * 1.5, best * 1.5]  # the launches were commanded above the data
    m = measure(["implementation"], _labelled(["walk", "walk", "launch", "launch"], [True] * 4, target),
                grid_task, grid_dataset)
    assert m["implementation/walk_among_successes"] == 1.0 and "implementation/launch" not in m


def test_no_labels_is_not_measured(grid_task, grid_dataset):
    m = measure(["implementation"], _labelled([""] * 3, [True] * 3), grid_task, grid_dataset)
    assert np.isnan(m["implementation/walk_among_successes"]) and np.isnan(m["implementation/success_rate"])


class _Fixed:
    """Always the same action, sampled or not."""

    conditioned = False

    def __init__(self, action: int):
        self.action = action

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        pass

    def act(self, obs):
        return np.full(len(obs), self.action, dtype=np.int64)

    def observe(self, reward, done):
        pass


def test_replaying_the_reference_behaviours_stays_on_the_reference(grid_task, grid_dataset):
    fresh = collect(dataclasses.replace(grid_task, data_seed=1))  # the same behaviours, other episodes
    replay = Rollouts(fresh.returns(), np.array([len(e) for e in fresh.episodes]), np.zeros(len(fresh)),
                      np.zeros(len(fresh), int), np.full(len(fresh), np.nan), episodes=fresh.episodes)
    start = time.perf_counter()
    same = measure(["distribution"], replay, grid_task, grid_dataset)
    elapsed = time.perf_counter() - start
    fixed = evaluate(grid_task, _Fixed(NORTH), grid_dataset, episodes=20, seed=0, record=True)
    far = measure(["distribution"], fixed, grid_task, grid_dataset)
    assert same["distribution/js"] < 0.05 and far["distribution/js"] > 0.3
    assert same["distribution/js_low"] <= same["distribution/js"] <= same["distribution/js_high"]
    assert same["distribution/mmd_low"] < 0.01 < far["distribution/mmd_low"]
    assert same["distribution/classifier_auc"] < 0.65 and far["distribution/classifier_auc"] > 0.8
    assert 0.6 < same["distribution/diversity_ratio"] < 1.6  # about as varied as the data (60 episodes each)
    assert far["distribution/diversity_ratio"] == pytest.approx(0.0, abs=1e-9)  # every episode the same
    assert elapsed < 5.0  # a second or so per run, measured under load


def test_the_reference_data_itself_is_at_zero_distance(grid_task, grid_dataset):
    eps = grid_dataset.episodes
    itself = Rollouts(grid_dataset.returns(), np.array([len(e) for e in eps]), np.zeros(len(eps)),
                      np.zeros(len(eps), int), np.full(len(eps), np.nan), episodes=eps)
    m = measure(["distribution"], itself, grid_task, grid_dataset)
    assert m["distribution/js"] == 0.0
    assert m["distribution/diversity_ratio"] == pytest.approx(1.0)


def test_no_recorded_episodes_is_not_measured(grid_task, grid_dataset):
    out = evaluate(grid_task, NoisyEastWalker(skill=1.0), grid_dataset, episodes=3, seed=0)  # record=False
    m = measure(["distribution"], out, grid_task, grid_dataset)
    assert all(np.isnan(v) for v in m.values())
