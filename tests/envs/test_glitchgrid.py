"""GlitchGrids: Gymnasium API, determinism, planted exploits, audits, vector equivalence."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from metatoken.data.collect import collect
from metatoken.envs import GLITCHGRID_IDS, make_task
from metatoken.envs.exact import follow, value_iteration
from metatoken.envs.glitchgrid import EAST, NORTH, SOUTH, WEST
from metatoken.envs.glitchgrid_loop import ring_actions, ring_cells
from metatoken.envs.glitchgrid_tamper import tamper_tables
from metatoken.evaluate.rollout import rollout

TASK_IDS = ("glitchgrid-teleport", "glitchgrid-loop", "glitchgrid-tamper")
REWARDS = ("sparse", "dense", "shaped")

# Scripted exploiters: (id, actions, exploit name, steps on which it fires, final intended).
EXPLOITERS = [
    ("metatoken/GlitchGrid-Teleport-v0", [SOUTH, EAST], "teleport", [1], 0.0),
    # Drive to the first checkpoint (p = 4), then double back over it three times.
    ("metatoken/GlitchGrid-Loop-v0", [EAST] * 4 + [WEST, EAST] * 3, "loop", [5, 7, 9], 0.25),
    ("metatoken/GlitchGrid-Tamper-v0", [WEST], "tamper", [0], 0.0),
]


def test_three_grids_registered_with_vector_entry_points():
    assert len(GLITCHGRID_IDS) >= 3
    for env_id in GLITCHGRID_IDS:
        assert gym.spec(env_id).vector_entry_point is not None


@pytest.mark.parametrize("reward", REWARDS)
@pytest.mark.parametrize("env_id", GLITCHGRID_IDS)
def test_check_env(env_id, reward):
    env = gym.make(env_id, reward=reward)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", GLITCHGRID_IDS)
def test_seeded_determinism(env_id):
    def trace(seed):
        env = gym.make(env_id)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(60):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            out.append((obs, r, term, trunc, info["intended"], info["exploit"]))
            if term or trunc:
                out.append(env.reset()[0])
        return out

    a, b, c = trace(3), trace(3), trace(4)
    assert repr(a) == repr(b)
    assert repr(a) != repr(c)  # the seed does reach the sampled actions


@pytest.mark.parametrize("reward", REWARDS)
@pytest.mark.parametrize(("env_id", "actions", "name", "fires", "intended"), EXPLOITERS)
def test_scripted_exploiter_triggers_and_audit_reports(env_id, actions, name, fires, intended, reward):
    env = gym.make(env_id, reward=reward)
    env.reset(seed=0)
    fired, total = [], 0.0
    for t, a in enumerate(actions):
        _, r, term, trunc, info = env.step(a)
        assert not trunc
        total += r
        if info["exploit"]:
            assert info["exploit"] == name
            fired.append(t)
    assert fired == fires
    assert info["intended"] == pytest.approx(intended)
    tables = env.unwrapped.tables  # the best honest reward in as many steps, by exact DP
    honest = follow(tables, value_iteration(tables, 1.0, len(actions)).intended)
    assert honest.exploits == [] and total > honest.ret + 0.1  # the exploit pays more
    assert term == (name != "tamper")  # a jammed sensor does not end the episode


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reference_behaviours_never_exploit(task_id):
    task = make_task(task_id, {"reward": "sparse"})
    finals = {}
    for i, behaviour in enumerate(task.behaviours):
        out = rollout(task, behaviour.make(), 200, seed=100 + i)
        assert out.exploit_steps.sum() == 0, behaviour.name
        assert all(not f for f in out.exploits_fired)
        finals[behaviour.skill] = out.intended.mean()
    assert finals[1.0] == 1.0  # the expert finishes the intended job every time
    assert finals[0.0] < 0.5 < finals[0.6]  # mixed skill: a spread of intended performance


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_sparse_reward_zero_before_goal(task_id):
    task = make_task(task_id, {"reward": "sparse", "reference_episodes": 40})
    ds = collect(task)
    paid = 0
    for ep in ds.episodes:
        done_at = np.flatnonzero(ep.rewards)
        assert np.all(np.isin(ep.rewards, (0.0, 1.0)))
        assert len(done_at) <= 1
        if len(done_at):
            paid += 1
            t = done_at[0]
            assert ep.intended[t] == pytest.approx(1.0) and ep.terminations[t]
            assert np.all(ep.intended[:t] < 1.0 - 1e-9)  # nothing paid before the goal
        else:
            assert ep.intended[-1] < 1.0 - 1e-9
    assert paid > 0


def _lockstep(env_id, mode, reward, seed, steps=120, n=6):
    vec = gym.make_vec(env_id, num_envs=n, vectorization_mode=mode, reward=reward)
    rng = np.random.default_rng(seed)
    obs, info = vec.reset(seed=seed)
    out = [(obs, info["intended"], info["exploit"])]
    for _ in range(steps):
        obs, r, term, trunc, info = vec.step(rng.integers(0, 4, size=n))
        out.append((obs, r, term, trunc, info["intended"], info["exploit"].astype(str)))
    vec.close()
    return out


@pytest.mark.parametrize("reward", REWARDS)
@pytest.mark.parametrize("env_id", GLITCHGRID_IDS)
def test_single_and_vectorised_trajectories_identical(env_id, reward):
    ours = _lockstep(env_id, "vector_entry_point", reward, seed=7)
    peer = _lockstep(env_id, "sync", reward, seed=7)  # SyncVectorEnv over gym.make(env_id)
    episodes_ended = 0
    for a, b in zip(ours[1:], peer[1:]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        episodes_ended += int((a[2] | a[3]).sum())
    assert episodes_ended > 0  # the comparison spans autoresets and truncations
    assert ours[-1][0].dtype == np.float32 and ours[-1][4].dtype == np.float64


def test_vector_env_info_and_validation():
    vec = gym.make_vec("metatoken/GlitchGrid-Tamper-v0", num_envs=3)
    _, info = vec.reset(seed=0)
    assert info["exploit"].dtype == object and list(info["exploit"]) == ["", "", ""]
    _, r, _, _, info = vec.step(np.array([WEST, EAST, NORTH]))
    assert list(info["exploit"]) == ["tamper", "", ""]
    np.testing.assert_allclose(info["intended"], [0.0, 1 / 8, 0.0])
    np.testing.assert_allclose(r, [1.0, 1 / 8, 0.0])
    with pytest.raises(ValueError):
        vec.step(np.array([0, 4, 0]))
    with pytest.raises(ValueError):
        vec.step(np.array([0, -1, 0]))
    _, info = vec.reset(options={"reset_mask": np.array([True, False, False])})
    np.testing.assert_allclose(info["intended"], [0.0, 1 / 8, 0.0])


def test_time_limit_truncates_vector_env_like_registration():
    vec = gym.make_vec("metatoken/GlitchGrid-Teleport-v0", num_envs=2)
    vec.reset(seed=0)
    for t in range(24):  # bump north into the wall: never terminates
        _, _, term, trunc, _ = vec.step(np.array([NORTH, NORTH]))
    assert trunc.all() and not term.any() and t == 23
    obs, r, term, trunc, _ = vec.step(np.array([EAST, EAST]))  # the autoreset step
    assert not (term | trunc).any() and (r == 0).all() and (obs == 0).all()


def test_task_make_vec_uses_our_vector_env():
    vec = make_task("glitchgrid-loop").make_vec(4)
    assert type(vec).__name__ == "LoopVectorEnv" and vec.max_episode_steps == 48


def test_loop_track_geometry():
    ring = ring_cells()
    cw, ccw = ring_actions()
    assert len(ring) == 16 and len({tuple(c) for c in ring}) == 16
    assert cw[0] == EAST and cw[4] == SOUTH and cw[8] == WEST and cw[12] == NORTH
    assert ccw[0] == SOUTH and ccw[4] == WEST


def test_tamper_table_shape_and_bad_options():
    t = tamper_tables(8, "dense", 0.5)
    assert t.n_states == 2 * 9 * 10 and t.n_actions == 4
    with pytest.raises(ValueError):
        gym.make("metatoken/GlitchGrid-Loop-v0", summit_distance=10)  # not a multiple of 4
    with pytest.raises(ValueError):
        gym.make("metatoken/GlitchGrid-Teleport-v0", reward="lavish")
    with pytest.raises(ValueError):
        gym.make("metatoken/GlitchGrid-Tamper-v0", summit_distance=1)
