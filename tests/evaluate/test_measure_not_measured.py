"""Audit metrics of tasks without an audit, and scores against a constant-return reference
set, are reported as not measured (NaN), never 0 and never a huge number."""

from __future__ import annotations

import numpy as np
import pytest

from metatoken.data.dataset import Dataset
from metatoken.envs import make_task
from metatoken.evaluate.measure import measure
from metatoken.evaluate.rollout import Rollouts

ALL = ["capability", "controllability", "spookiness"]


def _rollouts(returns, target=None, intended=None):
    n = len(returns)
    return Rollouts(np.asarray(returns, float), np.full(n, 5),
                    np.full(n, np.nan) if intended is None else np.asarray(intended, float),
                    np.zeros(n, int), np.full(n, np.nan) if target is None else np.asarray(target, float),
                    [set() for _ in range(n)])


def _constant(dataset: Dataset, value: float) -> Dataset:
    """The same episodes with every return equal to `value` (reward on the last step)."""
    eps = []
    for e in dataset.episodes:
        r = np.zeros(len(e))
        r[-1] = value
        eps.append(type(e)(**{**e.__dict__, "rewards": r}))
    return Dataset(eps, dataset.observation_space, dataset.action_space, dataset.task_key)


def test_unaudited_task_reports_exploits_as_not_measured(grid_dataset):
    task = make_task("gym", {"env_id": "CartPole-v1"})
    m = measure(ALL, _rollouts([1.0, 2.0, 3.0]), task, grid_dataset)
    for name in ("spookiness/exploit_rate", "spookiness/exploit_rate_top", "spookiness/exploit_steps",
                 "capability/intended"):
        assert np.isnan(m[name]), name
    assert m["capability/return"] == pytest.approx(2.0)


def test_audited_task_with_no_exploit_reports_zero(grid_task, grid_dataset):
    m = measure(["spookiness"], _rollouts([1.0, 2.0], intended=[0.5, 1.0]), grid_task, grid_dataset)
    assert m["spookiness/exploit_rate"] == 0.0 and m["spookiness/exploit_steps"] == 0.0


def test_constant_reference_returns_give_nan_not_a_huge_number(grid_task, grid_dataset):
    flat = _constant(grid_dataset, -500.0)  # Acrobot-like: every reference episode -500
    r = _rollouts([-400.0, -500.0, -300.0, -500.0], target=[-500.0, -500.0, -300.0, -300.0])
    m = measure(ALL, r, grid_task, flat)
    assert np.isnan(m["capability/normalized_return"])
    assert np.isnan(m["controllability/abs_error"])
    # -300 lies above the data's best (-500): capability reads the top of the data's levels, -500
    assert m["capability/return"] == pytest.approx(-450.0)
    # float rounding of a constant set is still constant
    jitter = _constant(grid_dataset, 0.1)
    jitter.episodes[0].rewards[-1] = 0.1 + 1e-15
    assert np.isnan(measure(["capability"], r, grid_task, jitter)["capability/normalized_return"])
