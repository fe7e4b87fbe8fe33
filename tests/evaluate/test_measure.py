import numpy as np
import pytest

from metatoken.evaluate.measure import measure
from metatoken.evaluate.rollout import Rollouts


def _rollouts(target, returns, exploit_steps=None):
    n = len(returns)
    return Rollouts(np.asarray(returns, float), np.full(n, 5), np.asarray(returns, float) / 2,
                    np.zeros(n, int) if exploit_steps is None else np.asarray(exploit_steps),
                    np.asarray(target, float), [set() for _ in range(n)])


def test_perfect_control(grid_task, grid_dataset):
    targets = np.repeat([0.0, 0.5, 1.0], 4)
    m = measure(["controllability", "capability"], _rollouts(targets, targets), grid_task, grid_dataset)
    assert m["controllability/spearman"] == pytest.approx(1.0)
    assert m["controllability/slope"] == pytest.approx(1.0)
    assert m["controllability/abs_error"] == pytest.approx(0.0)
    assert m["capability/return"] == pytest.approx(1.0)  # the top level only
    ref = grid_dataset.returns()
    assert m["capability/normalized_return"] == pytest.approx((1.0 - ref.min()) / np.ptp(ref))


def test_unconditioned_policy_has_no_controllability(grid_task, grid_dataset):
    r = _rollouts([np.nan] * 4, [0.2, 0.4, 0.6, 0.8], exploit_steps=[0, 2, 0, 0])
    m = measure(["controllability", "capability", "spookiness"], r, grid_task, grid_dataset)
    assert np.isnan(m["controllability/spearman"])
    assert m["capability/return"] == pytest.approx(0.5)
    assert m["spookiness/exploit_rate"] == pytest.approx(0.25)
    assert m["spookiness/exploit_steps"] == pytest.approx(0.5)
