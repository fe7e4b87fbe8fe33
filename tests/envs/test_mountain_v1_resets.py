"""Mountain-v1's batched resets give every walker exactly the start the one-by-one resets gave."""

import numpy as np
from gymnasium.utils import seeding

from metatoken.envs.mountain_v1 import audit
from metatoken.envs.mountain_v1 import dynamics as dyn
from metatoken.envs.mountain_v1.vector import MountainV1VectorEnv


class OneByOne(MountainV1VectorEnv):
    """The reset as it was before batching: `dyn.initial_state` per walker, from its own generator."""

    def _reset_where(self, mask):
        for i in np.flatnonzero(mask):
            self._state[i] = dyn.initial_state(self._rngs[i])
        self._counts[mask] = audit.fresh(int(mask.sum()))
        self._start[mask] = self._state[mask, dyn.X]
        self._intended[mask] = 0.0
        self._elapsed[mask] = 0
        self._needs_reset[mask] = False


def test_masked_resets_draw_each_walkers_own_stream():
    """Random masks, 300 rounds: the starts equal dyn.initial_state on generators seeded seed + i."""
    n, seed = 37, 11
    env = MountainV1VectorEnv(n)
    env.reset(seed=seed)
    reference = [seeding.np_random(seed + i)[0] for i in range(n)]
    first = np.stack([dyn.initial_state(r) for r in reference])  # (B, STATE_DIM)
    assert np.array_equal(env._state, first)
    masks = np.random.default_rng(0).random((300, n)) < 0.3  # (rounds, B)
    for mask in masks:
        env.reset(options={"reset_mask": mask})
        for i in np.flatnonzero(mask):
            assert np.array_equal(env._state[i], dyn.initial_state(reference[i]))  # bit for bit
    assert all(env._rngs[i].random() == reference[i].random() for i in range(n))  # streams left in step


def test_long_rollouts_match_the_one_by_one_reset_bit_for_bit():
    """2,000 steps of flailing (hundreds of autoresets): observations, rewards and labels identical."""
    new, old = MountainV1VectorEnv(64, reward="gait"), OneByOne(64, reward="gait")
    a_obs, _ = new.reset(seed=3)
    b_obs, _ = old.reset(seed=3)
    assert np.array_equal(a_obs, b_obs)
    actions = np.random.default_rng(1).uniform(-1, 1, (2000, 64, 4))  # (T, B, 4)
    resets = 0
    for act in actions:
        a, b = new.step(act), old.step(act)
        for x, y in zip(a[:4], b[:4]):
            assert np.array_equal(x, y)
        assert list(a[4]["implementation"]) == list(b[4]["implementation"])
        resets += int((a[2] | a[3]).sum())
    assert resets > 500  # the comparison covered many resets, not a handful
