"""GlitchGrid MDP tables against the envs' own steps, and the tabular pi_ref of scripted data."""

import gymnasium as gym
import numpy as np
import pytest

from metatoken.data.collect import collect
from metatoken.data.dataset import Dataset, Episode
from metatoken.envs import GLITCHGRID_IDS, make_task
from metatoken.envs.exact import plan, soft_value_iteration
from metatoken.envs.glitchgrid import EAST, NORTH, SOUTH, WEST
from metatoken.envs.tabular import states_of, tabular_reference, task_tables
from metatoken.envs.task import Task
from metatoken.errors import UserError


@pytest.mark.parametrize("env_id", GLITCHGRID_IDS)
@pytest.mark.parametrize("reward", ["sparse", "shaped"])
def test_tables_reproduce_the_env_steps(env_id, reward):
    env = gym.make_vec(env_id, num_envs=16, vectorization_mode="vector_entry_point", reward=reward)
    grid = env.unwrapped
    tables = grid.exact_tables()
    assert tables.horizon == gym.spec(env_id).max_episode_steps and tables.variant == reward
    assert np.allclose(tables.transition.sum(-1), 1.0) and set(tables.rewards) == {"sparse", "dense", "shaped"}
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    state, intended, checked = grid.state, info["intended"], 0
    assert np.all(tables.start[state] == 1.0)
    done = np.zeros(16, bool)
    for _ in range(300):
        a = rng.integers(0, 4, 16)  # (B,)
        obs, rew, term, trunc, info = env.step(a)
        live = ~done  # (B,) this step was a real step, not an autoreset
        nxt = grid.state
        assert np.all(tables.transition[state[live], a[live], nxt[live]] == 1.0)
        assert np.allclose(tables.reward[state[live], a[live]], rew[live])
        assert np.allclose(tables.intended[state[live], a[live]], (info["intended"] - intended)[live])
        assert np.array_equal(tables.observation[nxt], obs)
        assert np.array_equal(tables.terminal[nxt[live]], term[live])
        checked += live.sum()
        state, intended, done = nxt, info["intended"], term | trunc
    assert checked > 4000
    # Terminal states absorb at no reward, so the finite-horizon process matches "the episode ends".
    ends = np.flatnonzero(tables.terminal)
    assert len(ends) and np.all(tables.transition[ends, :, ends] == 1.0)
    assert all(np.all(r[ends] == 0) for r in tables.rewards.values()) and np.all(tables.intended[ends] == 0)


def test_single_env_tables_and_their_variants():
    env = gym.make("metatoken/GlitchGrid-Teleport-v0", reward="dense")
    tables = env.unwrapped.exact_tables()
    assert tables.horizon == 24 and tables.reward is tables.rewards["dense"]
    sparse = env.unwrapped.make_tables(8, "sparse", 0.5)
    live = ~tables.terminal
    assert np.array_equal(tables.rewards["sparse"][live], sparse.reward[live])
    assert env.unwrapped.exact_tables(5).horizon == 5
    with pytest.raises(ValueError, match="horizon"):
        env.unwrapped.exact_tables(0)


@pytest.mark.parametrize("task_id", ["glitchgrid-teleport", "glitchgrid-loop", "glitchgrid-tamper"])
def test_hard_soft_optimum_is_the_plan(task_id):
    """soft VI at beta = 0 (by time) is backward induction at gamma = 1 (Plan, by steps left)."""
    task = make_task(task_id, {"reward": "sparse"})
    tables = task_tables(task)
    grid = task.make_env().unwrapped.tables
    _, value = soft_value_iteration(tables.transition, tables.reward, np.full((tables.n_states, 4), 0.25), 0.0,
                                    tables.horizon)
    p = plan(grid, grid.reward, 1.0, tables.horizon)
    assert np.allclose(value, p.value[::-1])
    assert value[0, grid.start] == pytest.approx(1.0)  # the sparse reward is reachable in time


def test_tabular_reference_matches_the_behaviour_frequencies():
    skill = 0.3
    task = make_task("glitchgrid-teleport", {"skills": [skill], "reference_episodes": 120})
    data = collect(task)
    tables = task_tables(task)
    ref = tabular_reference(data, tables, smoothing=0.0)
    expected = np.zeros(4)
    expected[[EAST, WEST, NORTH]] = (1 - skill) / 3  # wanders east, west or north, never south
    expected[EAST] += skill
    visits = np.zeros(tables.n_states)
    for e in data.episodes:
        np.add.at(visits, states_of(tables, e.observations[:-1]), 1)
    busy = visits >= 300
    assert busy.sum() >= 4 and np.all(ref[visits > 0, SOUTH] == 0)
    se = np.sqrt(expected * (1 - expected) / visits[busy, None])  # (S_busy, A) binomial standard errors
    assert np.all(np.abs(ref[busy] - expected) <= 4 * se + 1e-12)
    assert np.allclose(ref[visits == 0], 0.25)  # no evidence: uniform


def _one_episode(obs: np.ndarray, actions: list[int]) -> Episode:
    t = len(actions)
    return Episode(obs, np.array(actions), np.zeros(t), np.zeros(t, bool), np.zeros(t, bool),
                   np.zeros(t), np.zeros(t, bool))


def test_smoothing_and_unknown_observations():
    tables = task_tables(make_task("glitchgrid-teleport", {"summit_distance": 2}))
    space = gym.spaces.Box(0, 1, (2,), np.float32)
    walk = tables.observation[[0, 1, 1, 2]]  # x = 0, 1, 1, 2 on row 0: states 0, 1, 1, goal
    data = Dataset([_one_episode(walk, [EAST, NORTH, EAST])], space, gym.spaces.Discrete(4))
    ref = tabular_reference(data, tables, smoothing=0.5)
    assert np.allclose(ref[0], [1.5 / 3, 0.5 / 3, 0.5 / 3, 0.5 / 3])  # one east: (1 + .5) / (1 + 4 x .5)
    assert np.allclose(ref[1], [1.5 / 4, 0.5 / 4, 1.5 / 4, 0.5 / 4])  # east and north once each
    assert np.allclose(ref[4], 0.25)
    bad = Dataset([_one_episode(np.array([[0.3, 0.3], [0.5, 0]], np.float32), [EAST])], space, space)
    with pytest.raises(ValueError, match="matches no state"):
        tabular_reference(bad, tables)


def test_task_without_tables_is_a_user_error():
    task = Task("cartpole", "CartPole-v1", {}, ())
    with pytest.raises(UserError, match="cartpole"):
        task_tables(task)
