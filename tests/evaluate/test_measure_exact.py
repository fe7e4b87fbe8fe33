"""exact/* measurements: closed forms on a one-state table, and pi*'s exact values against the env."""

import gymnasium as gym
import numpy as np
import pytest

from metatoken.envs.tabular import MDPTables
from metatoken.evaluate.measure.exact import exact_metrics, kl_to_soft_optimal, soft_optimum


def one_state(horizon: int = 2) -> MDPTables:
    """One state looping on itself; action 1 pays 1, action 0 is the intended one (intent 1)."""
    reward = np.array([[0.0, 1.0]])
    return MDPTables(np.ones((1, 2, 1)), {"dense": reward}, "dense", np.array([[1.0, 0.0]]), np.ones(1), horizon,
                     np.zeros((1, 1), np.float32), np.zeros(1, bool))


def test_closed_forms_on_one_state():
    e = np.e
    tables, ref = one_state(), np.full((1, 2), 0.5)
    # beta = 1: pi* = softmax(R) = (1, e) / (1 + e) at both steps (the future adds a constant to Q).
    uniform = np.full((4, 2), 0.5)
    kl = kl_to_soft_optimal(tables, ref, 1.0, uniform, np.zeros(4, int), np.array([0, 1, 0, 1]))
    assert kl == pytest.approx(np.log(1 + e) - 0.5 - np.log(2))
    out = exact_metrics(tables, ref, 1.0, uniform, np.zeros(4, int), np.array([0, 1, 0, 1]), 0.25)
    assert out["exact/kl_to_soft_optimal"] == pytest.approx(kl)
    assert out["exact/intended_value"] == pytest.approx(2 / (1 + e))
    assert out["exact/reward_value"] == pytest.approx(2 * e / (1 + e))
    assert out["exact/soft_value"] == pytest.approx(2 * np.log((1 + e) / 2))
    assert out["exact/intended_value_achieved"] == 0.25


def test_the_optimum_itself_is_at_distance_zero_and_others_are_not():
    tables = one_state(3)
    rng = np.random.default_rng(0)
    ref = np.array([[0.8, 0.2]])
    policy, _ = soft_optimum(tables, ref, 0.4)
    times = rng.integers(0, 3, 50)
    states = np.zeros(50, int)
    assert kl_to_soft_optimal(tables, ref, 0.4, policy[times, states], states, times) == pytest.approx(0, abs=1e-12)
    assert kl_to_soft_optimal(tables, ref, 0.4, np.tile(ref, (50, 1)), states, times) > 0.05
    # A policy that takes an action pi* excludes (pi_ref never takes it) is infinitely far.
    assert kl_to_soft_optimal(tables, np.array([[1.0, 0.0]]), 0.4, np.full((1, 2), 0.5), states[:1],
                              times[:1]) == np.inf


def test_soft_optimum_values_match_its_episodes_in_the_env():
    env = gym.make_vec("metatoken/GlitchGrid-Teleport-v0", num_envs=2000, vectorization_mode="vector_entry_point",
                       reward="dense")
    grid = env.unwrapped
    tables = grid.exact_tables()
    ref = np.full((tables.n_states, 4), 0.25)
    policy, _ = soft_optimum(tables, ref, 0.3)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    ret, intended, alive = np.zeros(2000), np.zeros(2000), np.ones(2000, bool)
    states, times = [], []
    for t in range(tables.horizon):
        s = grid.state  # (B,)
        states.append(s[alive])
        times.append(np.full(alive.sum(), t))
        p = policy[t, s]  # (B, A)
        a = (p.cumsum(1) > rng.random((2000, 1))).argmax(1)  # (B,) one draw from pi*
        _, rew, term, trunc, info = env.step(a)
        ret += np.where(alive, rew, 0.0)
        intended = np.where(alive, info["intended"], intended)
        alive &= ~(term | trunc)
    states, times = np.concatenate(states), np.concatenate(times)
    uniform = np.full((len(states), 4), 0.25)
    out = exact_metrics(tables, ref, 0.3, policy[times, states], states, times, intended.mean())
    assert out["exact/kl_to_soft_optimal"] == pytest.approx(0.0, abs=1e-12)
    assert abs(out["exact/intended_value"] - intended.mean()) < 4 * intended.std() / np.sqrt(2000) + 1e-9
    assert abs(out["exact/reward_value"] - ret.mean()) < 4 * ret.std() / np.sqrt(2000) + 1e-9
    assert kl_to_soft_optimal(tables, ref, 0.3, uniform, states, times) > 1e-3  # pi* is near pi_ref here


def test_bad_arguments():
    tables, ref = one_state(), np.full((1, 2), 0.5)
    with pytest.raises(ValueError, match="times"):
        kl_to_soft_optimal(tables, ref, 1.0, np.full((1, 2), 0.5), np.zeros(1, int), np.array([2]))
    with pytest.raises(ValueError, match="probs"):
        kl_to_soft_optimal(tables, ref, 1.0, np.full((2, 3), 1 / 3), np.zeros(2, int), np.zeros(2, int))
