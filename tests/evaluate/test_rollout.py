import gymnasium as gym
import numpy as np
import pytest
import torch

from metatoken.envs import make_task
from metatoken.envs.scripted import NoisyEastWalker
from metatoken.envs.task import Task
from metatoken.evaluate.evaluate import above_levels, command_levels, evaluate
from metatoken.evaluate.recorders import LogProbs, TeacherForced, sum_over_episode
from metatoken.evaluate.rollout import Rollouts, play, rollout
from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger
from metatoken.models.conditions import ReturnToGo
from metatoken.models.policy import PredictorPolicy
from metatoken.models.transformer import DecisionTransformer, TransformerConfig
from metatoken.policy import ScoredPolicy


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


# --- the primitive: batched levels, per-env seeds, recorders ---------------------------------------


def _cartpole_policy(seed: int = 0, cond_dim: int = 1) -> PredictorPolicy:
    """An untrained but sharp return-conditioned predictor for CartPole (4 obs, 2 actions)."""
    torch.manual_seed(seed)
    model = DecisionTransformer(TransformerConfig(4, 2, "categorical", cond_dim=cond_dim, d_model=16, n_layers=1,
                                                  context=4, max_timestep=600, dropout=0.0)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return PredictorPolicy(model, ReturnToGo(scale=20.0))


def test_all_levels_in_one_batch_equal_one_rollout_per_level():
    """CartPole's reset is random and the policy samples: seeds per env must carry over exactly."""
    task, policy = make_task("cartpole"), _cartpole_policy()
    levels, E, base = np.array([5.0, 20.0, 60.0]), 4, 1_000_000
    batched = rollout(task, policy, 3 * E, seed=np.tile(base + np.arange(E), 3).tolist(),
                      target=np.repeat(levels, E), record=True)
    parts = Rollouts.concat([rollout(task, policy, E, seed=base, target=lv, record=True) for lv in levels])
    np.testing.assert_array_equal(batched.returns, parts.returns)
    np.testing.assert_array_equal(batched.target, parts.target)
    for a, b in zip(batched.episodes, parts.episodes):
        assert a.seed == b.seed
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
    assert len(np.unique(batched.returns)) > 3  # seeds and levels really differ between episodes


def test_evaluate_batches_levels_like_separate_rollouts(grid_task, grid_dataset):
    policy = make_method("condition", {"d_model": 16, "n_layers": 1, "context": 4}).train(
        grid_task, grid_dataset, Budget(gradient_steps=20), 0, NullLogger()).policy
    out = evaluate(grid_task, policy, grid_dataset, episodes=5, seed=2)
    levels = np.concatenate([command_levels(grid_dataset), above_levels(grid_dataset)])  # data's, then above
    assert len(levels) == 7 and levels[-1] == pytest.approx(1.5 * grid_dataset.returns().max())
    want = Rollouts.concat([rollout(grid_task, policy, 5, seed=1_002_000, target=lv) for lv in levels])
    for f in ("returns", "lengths", "intended", "exploit_steps", "target"):
        np.testing.assert_array_equal(getattr(out, f), getattr(want, f))
    assert out.exploits_fired == want.exploits_fired


def test_scored_policies_are_typed_and_scripted_ones_are_not():
    assert isinstance(_cartpole_policy(), ScoredPolicy)
    assert not isinstance(NoisyEastWalker(0.5), ScoredPolicy)
    with pytest.raises(TypeError):
        LogProbs(NoisyEastWalker(0.5))


def test_teacher_forced_copy_scores_every_step_the_same():
    """A second copy led along the first's actions has the same log-prob at every step (KL exactly 0)."""
    task = make_task("cartpole")
    policy, copy_ = _cartpole_policy(3), _cartpole_policy(3)
    other = _cartpole_policy(4)
    target = np.full(6, 30.0)
    logp, same, diff = LogProbs(policy), TeacherForced(copy_, seed=99, target=target), \
        TeacherForced(other, seed=99, target=target)
    played = play(task, policy, 6, seed=11, target=target, recorders=[logp, same, diff])
    assert played.finished.all() and played.env_steps == sum(a.sum() for a in logp.alive)
    for p, q in zip(logp.steps, same.steps):
        np.testing.assert_array_equal(p, q)
    kl_other = sum_over_episode([p - q for p, q in zip(logp.steps, diff.steps)], logp.alive)
    assert np.all(kl_other != 0)
    assert np.all(np.exp(np.concatenate(logp.steps)) <= 1.0)


def test_max_steps_stops_before_the_budget_and_flags_unfinished():
    task = make_task("cartpole")
    played = play(task, _cartpole_policy(), 8, seed=0, target=np.full(8, 50.0), max_steps=30)
    assert played.env_steps <= 30 and not played.finished.all()


class _LabelledEnv(gym.Env):
    """Three steps; the final step's info names an implementation by the reset seed's parity."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.label = 0, "hop" if (seed or 0) % 2 else "walk"
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t == 3 if self.label == "walk" else self.t == 2
        info = {"implementation": self.label} if done else {}
        return np.zeros(1, np.float32), 1.0, done, False, info


def test_implementation_label_is_read_at_each_episodes_final_step():
    if "metatoken-test/Labelled-v0" not in gym.registry:
        gym.register("metatoken-test/Labelled-v0", entry_point=_LabelledEnv)
    task = Task("labelled", "metatoken-test/Labelled-v0", {}, ())
    out = rollout(task, FixedActions([0]), 4, seed=10)
    assert out.implementations == ["walk", "hop", "walk", "hop"]
    np.testing.assert_array_equal(out.lengths, [3, 2, 3, 2])


def test_implementation_is_empty_when_the_env_gives_none(grid_task):
    assert rollout(grid_task, FixedActions([0]), 2, seed=0).implementations == ["", ""]
