"""Sparsity in bits: Wilson interval, the exact forward pass, exact vs Monte Carlo, distance."""

import math

import numpy as np
import pytest

from metatoken.envs import make_task
from metatoken.envs.glitchgrid import GridTables
from metatoken.envs.noise import UniformRandom
from metatoken.envs.sparsity import Z95, estimated, first_hit_probability, monte_carlo, sparse_variant, sparsity, wilson
from metatoken.evaluate.rollout import rollout


def test_wilson_known_answers():
    low, high = wilson(0, 100)
    assert low == 0.0 and high == pytest.approx(Z95**2 / (100 + Z95**2))
    low, high = wilson(50, 100)
    assert low == pytest.approx(1 - high) and 0.40 < low < 0.41  # 0.4038 by hand
    assert wilson(100, 100)[1] == 1.0


def test_no_success_gives_a_lower_bound_only():
    b = estimated(0, 2048)
    assert b.bits == b.low == pytest.approx(-math.log2(Z95**2 / (2048 + Z95**2)), rel=1e-3)
    assert math.isinf(b.high) and b.to_json() == {"bits": round(b.bits, 4), "ci": [round(b.low, 4), None]}
    half = estimated(512, 1024)
    assert half.bits == pytest.approx(1.0) and half.low < 1.0 < half.high


def test_forward_pass_known_answer():
    # Two states: action 0 moves from 0 to the rewarded terminal state 1, action 1 stays.
    # Per step the random policy hits with probability 1/2: P(hit within 3 steps) = 1 - 1/8.
    tables = GridTables(
        next_state=np.array([[1, 0], [1, 1]]), reward=np.array([[1.0, 0.0], [0.0, 0.0]]),
        intended=np.zeros((2, 2)), exploit=np.zeros((2, 2), dtype=np.int64),
        terminal=np.array([False, True]), observation=np.zeros((2, 1), np.float32), start=0,
        exploit_names=("",))
    assert first_hit_probability(tables, tables.reward > 0, 3) == pytest.approx(0.875)
    assert first_hit_probability(tables, tables.exploit > 0, 3) == 0.0


@pytest.mark.parametrize("task_id, distance", [("glitchgrid-teleport", 4), ("glitchgrid-tamper", 4)])
def test_exact_grid_sparsity_matches_monte_carlo(task_id, distance):
    task = make_task(task_id, {"summit_distance": distance, "reward": "sparse"})
    exact = sparsity(task)
    assert exact.reward.exact and exact.reward.low == exact.reward.bits == exact.reward.high
    r = rollout(task, UniformRandom(task.make_vec(1).single_action_space), 4000, seed=3)
    for bits, hits in ((exact.reward, (r.returns > 0).sum()),
                       (exact.exploit, sum(1 for f in r.exploits_fired if f))):
        low, high = wilson(int(hits), 4000, z=3.29)  # 99.9%: four checks, none should fail by chance
        assert low <= bits.probability <= high


def test_sparsity_uses_the_sparse_variant():
    dense = sparsity(make_task("glitchgrid-teleport", {"summit_distance": 8, "reward": "dense"}))
    sparse = sparsity(make_task("glitchgrid-teleport", {"summit_distance": 8, "reward": "sparse"}))
    assert dense == sparse and dense.reward.bits > 0.0  # dense pays every step east; the sparse goal is rarer


def test_mountain_sparsity_rises_with_distance():
    bits = [sparsity(make_task("mountain", {"summit_distance": d}), episodes=256, seed=1).reward
            for d in (0.5, 2.0, 20.0)]
    assert not bits[0].exact and bits[0].hits > 0 and bits[1].hits > 0 and bits[2].hits == 0
    assert bits[0].high < bits[1].low and bits[1].bits < bits[2].bits  # the last is a lower bound


@pytest.mark.parametrize("task_id", ["glitchgrid-teleport", "glitchgrid-tamper"])
def test_back_to_back_monte_carlo_matches_the_exact_grid_value(task_id):
    """Walkers playing several episodes each (autoreset) estimate the forward pass's exact probability."""
    task = make_task(task_id, {"summit_distance": 4, "reward": "sparse"})
    exact = sparsity(task)
    mc = monte_carlo(task, 3001, seed=5, envs=200)  # 15 or 16 episodes per walker
    for e, m in ((exact.reward, mc.reward), (exact.exploit, mc.exploit)):
        assert m.episodes == 3001 and not m.exact
        low, high = wilson(m.hits, m.episodes, z=3.29)  # 99.9%: four checks, none should fail by chance
        assert low <= e.probability <= high


def test_monte_carlo_is_reproducible_from_its_seed():
    task = sparse_variant(make_task("mountain", {"summit_distance": 0.5}))
    a, b = monte_carlo(task, 300, seed=7, envs=64), monte_carlo(task, 300, seed=7, envs=64)
    assert a == b and 0 < a.reward.hits < 300
    assert monte_carlo(task, 300, seed=8, envs=64) != a
