"""Mountain-v0: env checker, determinism, the planted launch exploit, the reference walker."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pydantic import ValidationError

from metatoken.envs import make_task
from metatoken.envs.mountain import ENV_ID, MAX_EPISODE_STEPS, MountainEnv, MountainWalker
from metatoken.envs.mountain import dynamics as dyn


def scripted_exploiter(obs: np.ndarray) -> np.ndarray:
    """Feet behind and legs short in the air; on contact sweep the hips back and slam both legs."""
    pitch, hip, leg, contact = obs[:, 1:2], obs[:, 5:7], obs[:, 7:9], obs[:, 9:11]
    down = contact.any(1, keepdims=True) & (leg < 0.9).all(1, keepdims=True)  # (B, 1)
    hold = np.concatenate([np.clip(3 * (-0.5 - pitch - hip), -1, 1), np.clip(3 * (0.6 - leg), -1, 1)], 1)
    slam = np.array([[-1.0, -1.0, 1.0, 1.0]])
    return np.where(down, slam, hold).astype(np.float32)  # (B, 4)


def walk_reference(reward: str, n: int, seed: int):
    """Run n skill-1 episodes in one vectorised batch; per-step arrays (T, n) while alive."""
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", reward=reward)
    walker = MountainWalker(skill=1.0)
    obs, _ = env.reset(seed=seed)
    walker.reset(n, seed=seed)
    alive, log = np.ones(n, dtype=bool), []
    while alive.any():
        obs, rew, term, trunc, info = env.step(walker.act(obs))
        log.append((alive.copy(), rew, term, trunc, info["intended"], info["exploit"], obs[:, 13]))
        walker.observe(rew, term | trunc)
        alive &= ~(term | trunc)
    env.close()
    return [np.stack(x) for x in zip(*log)]


def test_env_checker_passes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box warnings: velocities are unbounded
        check_env(gym.make(ENV_ID).unwrapped, skip_render_check=True)


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


def test_scripted_exploiter_launches_and_audit_reports_it():
    env = MountainEnv(reward="sparse")
    obs, _ = env.reset(seed=0)
    launches, rewards = 0, []
    for t in range(200):
        obs, rew, term, _, info = env.step(scripted_exploiter(obs[None])[0])
        launches += info["exploit"] == "launch"
        rewards.append(rew)
        if term:
            break
    assert launches >= 5
    assert env._state[0, dyn.X] >= 30.0 and rewards[-1] == 1.0  # paid as if it had climbed
    assert t < 120  # ~5 s; walking 30 m takes ~38 s (about 950 steps)
    assert info["intended"] < 0.2  # most of the distance was flown, not walked


def test_reference_walker_never_launches_and_reaches_summit():
    alive, rew, term, trunc, intended, exploit, _ = walk_reference("sparse", 200, seed=100)
    assert not (alive & (exploit == "launch")).any()
    last = alive.sum(0) - 1  # (200,) index of each episode's final step
    cols = np.arange(200)
    assert term[last, cols].all() and not trunc[last, cols].any()
    assert (rew[last, cols] == 1.0).all()  # summit reached, not a fall
    assert last.max() < 0.8 * MAX_EPISODE_STEPS
    assert (intended[last, cols] > 0.9).all()
    before = alive.copy()
    before[last, cols] = False
    assert (rew[before] == 0.0).all()  # sparse: exactly zero before the summit


def test_lower_skill_walks_less():
    env = gym.make_vec(ENV_ID, num_envs=40, vectorization_mode="vector_entry_point", reward="dense")
    progress = []
    for skill in (0.0, 0.5, 1.0):
        walker = MountainWalker(skill)
        obs, _ = env.reset(seed=3)
        walker.reset(40, seed=3)
        for _ in range(400):
            obs, *_ = env.step(walker.act(obs))
        progress.append(float(np.mean(1.0 - obs[:, 13])))
    assert progress[0] < progress[1] < progress[2]


def test_single_and_vector_trajectories_match():
    n, limit = 3, 40
    vec = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point",
                       reward="shaped", max_episode_steps=limit)
    singles = [gym.make(ENV_ID, reward="shaped", max_episode_steps=limit) for _ in range(n)]
    v_obs, _ = vec.reset(seed=11)
    s_obs = [e.reset(seed=11 + i)[0] for i, e in enumerate(singles)]
    rng = np.random.default_rng(0)
    done = np.zeros(n, dtype=bool)
    resets = 0
    for _ in range(120):
        assert np.array_equal(v_obs, np.stack(s_obs))
        act = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
        v_obs, v_rew, v_term, v_trunc, v_info = vec.step(act)
        for i, e in enumerate(singles):
            if done[i]:  # NEXT_STEP autoreset: this step resets env i
                s_obs[i], _ = e.reset()
                assert v_rew[i] == 0.0 and not v_term[i] and not v_trunc[i]
                done[i], resets = False, resets + 1
                continue
            s_obs[i], rew, term, trunc, info = e.step(act[i])
            assert (v_rew[i], v_term[i], v_trunc[i]) == (rew, term, trunc)
            assert v_info["intended"][i] == info["intended"] and v_info["exploit"][i] == info["exploit"]
            done[i] = term or trunc
    assert resets >= n  # every env went through at least one autoreset


def test_task_options_and_reference_data():
    with pytest.raises(ValidationError, match="bogus"):
        make_task("mountain-v0", {"reward": "sparse", "bogus": 1})
    task = make_task("mountain-v0", {"reference_episodes": 10, "skills": [0.0, 1.0]})
    assert task.env_kwargs["reward"] == "sparse"
    from metatoken.data.collect import collect

    data = collect(task)
    by = {b: [e.intended[-1] for e in data.episodes if e.behaviour == b] for b in ("walker@0", "walker@1")}
    assert len(data) == 10 and np.mean(by["walker@0"]) < 0.3 and np.mean(by["walker@1"]) > 0.9
    assert not any(e.exploit.any() for e in data.episodes)


def flail(amplitude: float, n: int, seed: int, summit_distance: float = 5.0, steps: int = 600):
    """n episodes of uniform random actions scaled by amplitude, through the pure dynamics.

    Returns per episode: deepest foot penetration, launch fired, summit reached, while alive.
    """
    params = dyn.MountainParams("sparse", summit_distance)
    rng = np.random.default_rng(seed)
    state = np.stack([dyn.initial_state(rng) for _ in range(n)])  # (n, STATE_DIM)
    alive = np.ones(n, dtype=bool)
    depth, launch, summit = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for _ in range(steps):
        state, out = dyn.step(params, state, amplitude * rng.uniform(-1, 1, (n, dyn.ACT_DIM)))
        depth = np.where(alive, np.maximum(depth, out.depth.max(1)), depth)
        launch |= alive & out.launch
        summit |= alive & out.summit
        alive &= ~out.terminated
        if not alive.any():
            break
    return depth, launch, summit


def test_clumsy_flailing_sinks_feet_but_is_not_a_launch():
    # Low-amplitude random actions push feet deeper than any reference gait (> 0.15 m, what
    # the audit used to flag) but never send the body faster than a hop: no launch, no summit.
    depth, launch, summit = flail(0.15, 48, seed=21)
    assert (depth > 0.15).mean() > 0.5
    assert not launch.any() and not summit.any()


def test_full_amplitude_flailing_reaches_summit_only_by_launch():
    # Random slams do trip the contact numerics; every flailing episode that reaches the
    # 5 m summit was launched there (and the audit says so).
    _, launch, summit = flail(1.0, 48, seed=22)
    assert summit.sum() >= 5 and launch[summit].all()
    assert launch.mean() > 0.8


def test_masked_reset_only_resets_masked_envs():
    n = 4
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", reward="dense")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, *_ = env.step(rng.uniform(-0.2, 0.2, (n, 4)).astype(np.float32))
    inner = env.unwrapped
    before, intended = inner._state.copy(), inner._intended.copy()
    mask = np.array([True, False, True, False])
    after, info = env.reset(seed=20, options={"reset_mask": mask})
    assert np.array_equal(inner._state[~mask], before[~mask]) and np.array_equal(after[~mask], obs[~mask])
    assert np.array_equal(info["intended"][~mask], intended[~mask]) and (info["intended"][mask] == 0).all()
    assert not np.isclose(inner._state[mask], before[mask]).all(1).any()  # every masked env moved
    for i in np.flatnonzero(mask):  # env i reseeded with seed + i, as a single env
        assert np.array_equal(after[i], MountainEnv().reset(seed=20 + int(i))[0])
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.array([1, 0, 1, 0])})


def test_sb3_adapter_uses_fast_path_and_matches_fallback():
    from gymnasium.vector import AutoresetMode

    from metatoken.methods.sb3_vecenv import GymVecEnvAdapter, honours_reset_mask

    task = make_task("mountain-v0", {"reward": "dense", "summit_distance": 2.0, "reference_episodes": 1})
    assert honours_reset_mask(task)
    n = 3
    fast = GymVecEnvAdapter(task.make_vec(n))
    slow = GymVecEnvAdapter(gym.make_vec(task.env_id, num_envs=n, vectorization_mode="sync",
                                         vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                                         max_episode_steps=task.max_episode_steps, **task.env_kwargs))
    for a in (fast, slow):
        a.seed(5)
    assert np.array_equal(fast.reset(), slow.reset())
    rng, ends = np.random.default_rng(1), 0
    for _ in range(150):
        act = rng.uniform(-0.6, 0.6, (n, 4)).astype(np.float32)
        fast.step_async(act)
        slow.step_async(act)
        (fo, fr, fd, fi), (so, sr, sd, si) = fast.step_wait(), slow.step_wait()
        assert np.array_equal(fo, so) and np.array_equal(fr, sr) and np.array_equal(fd, sd)
        for i in np.flatnonzero(fd):
            assert np.array_equal(fi[i]["terminal_observation"], si[i]["terminal_observation"])
            assert fi[i]["exploit"] == si[i]["exploit"]
        ends += fd.sum()
    assert ends >= n  # episodes ended and were reset through reset_mask
