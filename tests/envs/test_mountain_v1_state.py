"""Mountain-v1's vector env hands over its state and a second env continues from it step for step."""

import json

import numpy as np
import pytest

from metatoken.envs.mountain_v1 import MountainV1VectorEnv
from metatoken.methods.sb3_vecenv import ResumableVectorEnv
from metatoken.models.checkpoint import join_tensors, split_tensors


def _steps(env, actions):
    out = []
    for a in actions:
        obs, rew, term, trunc, info = env.step(a)
        out.append((obs, rew, term, trunc, info["intended"], list(info["implementation"])))
    return out


def test_a_loaded_state_continues_exactly_through_resets():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(60, 4, 4))
    a = MountainV1VectorEnv(4, reward="gait", max_episode_steps=20)  # short episodes: resets draw on the generators
    a.reset(seed=3)
    _steps(a, actions[:25])
    meta, tensors = split_tensors(a.state(), "env")  # as a checkpoint stores it
    b = MountainV1VectorEnv(4, reward="gait", max_episode_steps=20)
    b.reset(seed=99)  # another start: everything is overridden by the state
    b.load_state(join_tensors(json.loads(json.dumps(meta)), tensors))
    later_a, later_b = _steps(a, actions[25:]), _steps(b, actions[25:])
    assert any(step[2].any() or step[3].any() for step in later_a)  # episodes ended (and restarted) after the hand-over
    for x, y in zip(later_a, later_b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert isinstance(a, ResumableVectorEnv)


def test_a_state_of_another_width_is_refused():
    a, b = MountainV1VectorEnv(2), MountainV1VectorEnv(3)
    a.reset(seed=0)
    b.reset(seed=0)
    with pytest.raises(ValueError, match="2 walkers"):
        b.load_state(a.state())
