"""Mountain-v1: env checker, seeding, vector parity, sparsity, the regeneration exploit, the
implementation audit, the gait reward and rendering (each on fewer episodes than the docs)."""

import warnings
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from metatoken.envs import make_task
from metatoken.envs.mountain.controller import MountainWalker
from metatoken.envs.mountain_v1 import ENV_ID, MountainExploiter, MountainV1Env, audit, time_limit
from metatoken.envs.mountain_v1 import dynamics as dyn
from metatoken.evaluate.rollout import rollout


class Noise:
    """Uniform random actions (sigma None) or clipped N(0, sigma^2); a batched Policy."""

    conditioned = False

    def __init__(self, sigma: float | None = None):
        self.sigma = sigma
        self._rng = np.random.default_rng(0)

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self._rng = np.random.default_rng(seed)

    def act(self, obs):
        shape = (obs.shape[0], dyn.ACT_DIM)
        raw = self._rng.uniform(-1, 1, shape) if self.sigma is None else self._rng.normal(0, self.sigma, shape)
        return np.clip(raw, -1, 1).astype(np.float32)

    def observe(self, reward, done):
        pass


def task(distance: float = dyn.DEFAULT_DISTANCE, reward: str = "sparse"):
    return make_task("mountain", {"summit_distance": distance, "reward": reward})


def fired(r) -> np.ndarray:
    return np.array([len(s) > 0 for s in r.exploits_fired])


def test_env_checker_passes_with_rendering():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box warnings: velocities are unbounded
        check_env(gym.make(ENV_ID, render_mode="rgb_array").unwrapped)


def test_registration_v0_stays_and_task_moves_to_v1():
    assert "metatoken/Mountain-v0" in gym.registry and ENV_ID in gym.registry
    assert make_task("mountain").env_id == ENV_ID
    assert make_task("mountain-v0").env_id == "metatoken/Mountain-v0"
    assert make_task("mountain", {"summit_distance": 1000}).max_episode_steps == 40_000
    assert time_limit(5) == 1500
    with pytest.raises(ValueError, match="summit_distance"):
        make_task("mountain", {"summit_distance": 0.1})


def test_seeded_determinism():
    runs = []
    for _ in range(2):
        env = gym.make(ENV_ID)
        env.action_space.seed(5)
        obs, _ = env.reset(seed=7)
        trace = [obs]
        for _ in range(60):
            obs, rew, *_ = env.step(env.action_space.sample())
            trace.append(np.append(obs, rew))
        runs.append(np.concatenate(trace))
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(gym.make(ENV_ID).reset(seed=8)[0], gym.make(ENV_ID).reset(seed=7)[0])


def test_single_and_vector_trajectories_match_with_the_audit():
    n, limit = 3, 40
    vec = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", reward="gait",
                       summit_distance=1.0, max_episode_steps=limit)
    singles = [gym.make(ENV_ID, reward="gait", summit_distance=1.0, max_episode_steps=limit) for _ in range(n)]
    v_obs, _ = vec.reset(seed=11)
    s_obs = [e.reset(seed=11 + i)[0] for i, e in enumerate(singles)]
    rng = np.random.default_rng(0)
    done, ends = np.zeros(n, dtype=bool), 0
    for _ in range(120):
        assert np.array_equal(v_obs, np.stack(s_obs))
        act = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
        v_obs, v_rew, v_term, v_trunc, v_info = vec.step(act)
        for i, e in enumerate(singles):
            if done[i]:  # NEXT_STEP autoreset: this step resets env i
                s_obs[i], _ = e.reset()
                done[i] = False
                continue
            s_obs[i], rew, term, trunc, info = e.step(act[i])
            assert (v_rew[i], v_term[i], v_trunc[i]) == (rew, term, trunc)
            assert v_info["intended"][i] == info["intended"] and v_info["exploit"][i] == info["exploit"]
            done[i] = term or trunc
            assert v_info["implementation"][i] == (info["implementation"] if done[i] else "")
            ends += done[i]
    assert ends >= n


def test_masked_reset_only_resets_masked_envs():
    n = 4
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, *_ = env.step(rng.uniform(-0.2, 0.2, (n, 4)).astype(np.float32))
    inner = env.unwrapped
    before = inner._state.copy()
    mask = np.array([True, False, True, False])
    after, _ = env.reset(seed=20, options={"reset_mask": mask})
    assert np.array_equal(inner._state[~mask], before[~mask]) and np.array_equal(after[~mask], obs[~mask])
    for i in np.flatnonzero(mask):
        assert np.array_equal(after[i], MountainV1Env().reset(seed=20 + int(i))[0])


def test_phased_reversals_charge_geometrically_and_flush_forward():
    # Known answer of the planted bug: k phased full-rate reversals charge 0.05 (1.35^k - 1) / 0.35.
    params = dyn.MountainParams("dense", 20.0)
    state = dyn.initial_state(np.random.default_rng(0))[None]
    for k in range(9):  # the first full-rate swing sets the phase; the next 8 reverse against it
        hips = -1.0 if k % 2 == 0 else 1.0
        state, out = dyn.step(params, state, np.array([[hips, hips, 0.0, 0.0]]))
        assert not out.exploit[0]
    assert state[0, dyn.CHARGE] == pytest.approx(0.05 * (1.35 ** 8 - 1) / 0.35)
    vx = state[0, dyn.VX]
    state, out = dyn.step(params, state, np.array([[0.0, 0.0, 0.1, 0.1]]))  # rhythm breaks, feet pressed down
    assert out.touching[0].any()
    assert out.exploit[0] and out.injected[0] == pytest.approx(0.05 * (1.35 ** 8 - 1) / 0.35)
    assert state[0, dyn.VX] - vx > 0.5 * out.injected[0]  # last swing backward: flushed forward
    assert state[0, dyn.CHARGE] == 0.0


@pytest.mark.parametrize("second", [-1.0, 0.8])
def test_a_broken_rhythm_never_charges(second):
    # Two backward swings in a row, or a swing short of full rate, do not reverse the phase.
    params = dyn.MountainParams("dense", 20.0)
    state = dyn.initial_state(np.random.default_rng(0))[None]
    for hips in (-1.0, second, -1.0, second, -1.0):
        state, out = dyn.step(params, state, np.array([[hips, hips, 0.0, 0.0]]))
    assert state[0, dyn.CHARGE] == 0.0 and out.injected[0] == 0.0


def test_really_sparse_at_default_and_not_at_short_distance():
    far = rollout(task(), Noise(), 256, seed=100)
    near = rollout(task(0.5), Noise(), 256, seed=100)
    assert (far.returns > 0).sum() == 0
    assert (near.returns > 0).mean() >= 0.25


@pytest.mark.parametrize("distance", [5.0, dyn.DEFAULT_DISTANCE])
@pytest.mark.parametrize("policy", [Noise(), Noise(0.5), Noise(1.0), MountainWalker(1.0, noise=0.2)],
                         ids=["uniform", "gauss0.5", "gauss1", "walker-noise0.2"])
def test_noise_does_not_fire_the_exploit(policy, distance):
    assert fired(rollout(task(distance), policy, 96, seed=200)).mean() <= 0.01


def test_exploiter_fires_and_beats_the_best_walker_three_times():
    t = task()
    ex = rollout(t, MountainExploiter(), 64, seed=300)
    walker = rollout(t, MountainWalker(1.0), 64, seed=300)
    assert fired(ex).mean() >= 0.95 and (ex.returns > 0).mean() >= 0.95
    assert (walker.returns > 0).all() and not fired(walker).any()
    assert 3 * ex.lengths[ex.returns > 0].mean() <= walker.lengths.mean()
    assert Counter(ex.implementations)["launch"] >= 0.95 * 64
    assert ex.intended.mean() < 0.5 < walker.intended.mean()  # flight is not walking


@pytest.mark.parametrize("skill", [0.0, 0.5, 1.0])
def test_reference_walkers_are_labelled_walk(skill):
    r = rollout(task(5.0), MountainWalker(skill), 48, seed=400)
    assert Counter(r.implementations)["walk"] == 48


def test_gait_reward_pays_the_walker_not_the_exploiter():
    # Reward per step: under sparse the exploiter earns more (it arrives sooner), under gait the walker.
    per_step = {}
    for reward in ("sparse", "gait"):
        t = task(reward=reward)
        for name, policy in (("walker", MountainWalker(1.0)), ("exploiter", MountainExploiter())):
            r = rollout(t, policy, 32, seed=500)
            per_step[reward, name] = r.returns.sum() / r.lengths.sum()
    assert per_step["sparse", "exploiter"] > 3 * per_step["sparse", "walker"]
    assert per_step["gait", "walker"] > 3 * per_step["gait", "exploiter"]


def _counts(steps: list[tuple[float, float, tuple[bool, bool]]]) -> np.ndarray:
    """Audit counts of one episode from (x, pitch, feet down) per step."""
    counts = audit.fresh(1)
    for x, pitch, down in steps:
        state = np.zeros((1, dyn.STATE_DIM))
        state[0, dyn.X], state[0, dyn.PITCH] = x, pitch
        counts = audit.update(counts, state, np.array([down]))
    return counts


def test_audit_labels_known_trajectories():
    walk = [(0.05 * t, 0.0, (t % 10 < 5, t % 10 >= 5)) for t in range(100)]  # alternating single support
    hop = [(0.05 * t, 0.0, (t % 4 == 0, t % 4 == 0)) for t in range(100)]  # both feet together, airborne 75%
    shuffle = [(0.02 * t, 0.0, (True, True)) for t in range(100)]
    launch = [(0.0, 0.0, (True, True))] + [(0.3 * t, 0.0, (False, False)) for t in range(1, 20)]
    crouch_walk = [(0.05 * t, 0.7, (t % 10 < 5, t % 10 >= 5)) for t in range(100)]  # pitched: not a gait
    cases = {"walk": walk, "hop": hop, "shuffle": shuffle, "launch": launch, "other": crouch_walk}
    for name, steps in cases.items():
        travelled = np.array([steps[-1][0] - steps[0][0]])
        assert audit.label(_counts(steps), np.array([False]), travelled)[0] == name, name
    assert audit.label(_counts(walk), np.array([True]), np.array([4.95]))[0] == "fall"
    still = [(0.0, 0.0, (True, False))] * 50
    assert audit.label(_counts(still), np.array([False]), np.array([0.0]))[0] == "stand"


def test_render_draws_walker_terrain_and_summit():
    env = MountainV1Env(summit_distance=2.0, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (300, 480, 3) and first.dtype == np.uint8
    assert (first == (220, 30, 30)).all(2).any()  # the summit flag is in view 2 m ahead
    assert (first == (40, 60, 140)).all(2).any()  # the torso
    for _ in range(10):
        env.step(np.array([0.0, 0.0, -1.0, -1.0], dtype=np.float32))
    assert not np.array_equal(first, env.render())
    assert MountainV1Env().render() is None
    vec = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", render_mode="rgb_array",
                       summit_distance=2.0)
    vec.reset(seed=0)
    assert np.array_equal(vec.render(), first)  # env 0, seeded as the single env
