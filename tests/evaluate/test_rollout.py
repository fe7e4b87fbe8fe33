import numpy as np

from metatoken.envs.scripted import NoisyEastWalker
from metatoken.evaluate.rollout import rollout


class FixedActions:
    """Plays a fixed action sequence in every env (for known-answer rollouts)."""

    conditioned = False

    def __init__(self, actions):
        self.actions, self.t = actions, 0

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self.n, self.t = num_envs, 0

    def act(self, obs):
        a = self.actions[min(self.t, len(self.actions) - 1)]
        self.t += 1
        return np.full(self.n, a)

    def observe(self, reward, done):
        pass


def test_walking_east_reaches_goal_with_full_intended(grid_task):
    out = rollout(grid_task, FixedActions([0]), 3, seed=0, record=True)
    d = grid_task.env_kwargs["summit_distance"]
    np.testing.assert_allclose(out.returns, 1.0)
    np.testing.assert_array_equal(out.lengths, d)
    np.testing.assert_allclose(out.intended, 1.0)
    assert out.exploit_steps.sum() == 0
    ep = out.episodes[0]
    assert ep.observations.shape == (d + 1, 2) and ep.actions.shape == (d,)
    assert ep.terminations[-1] and not ep.terminations[:-1].any()


def test_teleport_exploit_is_audited(grid_task):
    out = rollout(grid_task, FixedActions([3, 0]), 2, seed=0)  # south, then east onto the glitch
    np.testing.assert_allclose(out.returns, 1.0)  # the reward cannot tell
    np.testing.assert_allclose(out.intended, 0.0)  # the audit can
    np.testing.assert_array_equal(out.exploit_steps, 1)
    assert out.exploits_fired == [{"teleport"}, {"teleport"}]


def test_episodes_end_at_their_own_time(grid_task):
    out = rollout(grid_task, NoisyEastWalker(0.5), 16, seed=3, record=True)
    for ep, length, ret in zip(out.episodes, out.lengths, out.returns):
        assert len(ep) == length and np.isclose(ep.ret, ret)
        assert ep.terminations[-1] or ep.truncations[-1]
    limit = grid_task.max_episode_steps
    assert out.lengths.max() <= limit


def test_rollout_is_seeded(grid_task):
    a = rollout(grid_task, NoisyEastWalker(0.3), 8, seed=5)
    b = rollout(grid_task, NoisyEastWalker(0.3), 8, seed=5)
    c = rollout(grid_task, NoisyEastWalker(0.3), 8, seed=6)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert not np.array_equal(a.returns, c.returns)
