"""SparseReward: exactly zero before the threshold, the payout once after, on three envs."""

import gymnasium as gym
import numpy as np
import pytest

from metatoken.envs.sparse import SparseReward


def _run(env, policy, steps, seed=0):
    """Rewards, original rewards and progress until the episode ends or `steps` pass."""
    obs, _ = env.reset(seed=seed)
    rewards, dense, progress = [], [], []
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(policy(obs))
        rewards.append(r)
        dense.append(info["dense_reward"])
        progress.append(info["progress"])
        if term or trunc:
            break
    return np.array(rewards), np.array(dense), np.array(progress)


def _check_once(rewards, progress, threshold, payout):
    crossed = np.flatnonzero(progress >= threshold)
    assert len(crossed), "the scripted policy never reached the threshold"
    t = crossed[0]
    assert np.all(rewards[:t] == 0.0)  # exactly zero, not small
    assert rewards[t] == payout
    assert np.all(rewards[t + 1:] == 0.0)
    return t


def _pump(obs):
    """MountainCar energy pumping: push the way the car is already moving."""
    return 2 if obs[1] >= 0 else 0


def test_mountain_car_pays_at_the_flag():
    env = SparseReward(gym.make("MountainCar-v0"), payout=5.0)
    rewards, dense, progress = _run(env, _pump, 200)
    t = _check_once(rewards, progress, 0.5, 5.0)
    assert t == len(rewards) - 1  # the flag ends the episode
    assert np.all(dense == -1.0)  # the original reward was not sparse


def test_mountain_car_intermediate_threshold_pays_once():
    env = SparseReward(gym.make("MountainCar-v0"), threshold=-0.3)
    rewards, _, progress = _run(env, _pump, 200)
    t = _check_once(rewards, progress, -0.3, 1.0)
    assert (progress[t + 1:] >= -0.3).any()  # above the threshold again, yet unpaid
    assert rewards.sum() == 1.0
    rewards, _, _ = _run(env, _pump, 200)  # reset re-arms the payout
    assert rewards.sum() == 1.0


def test_cartpole_pays_after_steps_survived():
    env = SparseReward(gym.make("CartPole-v1"), threshold=30)

    def balance(obs):
        return int(obs[2] + 0.5 * obs[3] > 0)  # push under the falling pole

    rewards, dense, progress = _run(env, balance, 100)
    assert len(rewards) == 100 and np.all(dense == 1.0)
    assert _check_once(rewards, progress, 30, 1.0) == 29
    assert SparseReward(gym.make("CartPole-v1")).threshold == 475.0


def test_walker2d_pays_past_x():
    pytest.importorskip("mujoco")
    env = SparseReward(gym.make("Walker2d-v5"), threshold=3.0)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape)
    rewards, xs = [], []
    for t in range(12):
        if t == 5:  # move the torso 4 m east: the next step's progress passes 3 m
            base = env.unwrapped
            qpos, qvel = base.data.qpos.copy(), base.data.qvel.copy()
            qpos[0] += 4.0
            base.set_state(qpos, qvel)
        _, r, term, trunc, info = env.step(zero)
        assert not (term or trunc)  # still upright: the payout is not an episode end
        rewards.append(r)
        xs.append(info["progress"])
        assert info["dense_reward"] != 0.0
    rewards, xs = np.array(rewards), np.array(xs)
    assert np.all(xs[:5] < 0.5) and np.all(xs[5:] > 3.0)
    assert _check_once(rewards, xs, 3.0, 1.0) == 5


def test_unknown_env_needs_a_progress_fn():
    with pytest.raises(ValueError, match="progress_fn"):
        SparseReward(gym.make("Acrobot-v1"))
    env = SparseReward(gym.make("Acrobot-v1"), progress_fn=lambda e, t: t, threshold=3)
    rewards, _, _ = _run(env, lambda obs: 0, 5)
    assert list(rewards) == [0.0, 0.0, 1.0, 0.0, 0.0]
