"""KL to pi_ref scored along episodes the evaluation already played (`kl_along`, `ScoredEpisodes`)."""

import numpy as np
import pytest
import torch

from metatoken import seeds
from metatoken.envs import make_task
from metatoken.evaluate import kl
from metatoken.evaluate.evaluate import command_levels, evaluate
from metatoken.evaluate.kl import kl_along, kl_per_step
from metatoken.evaluate.measure import RunContext
from metatoken.evaluate.measure.reference import kl_to_reference, top_level_recorder
from metatoken.evaluate.recorders import ScoredEpisodes
from metatoken.evaluate.rollout import rollout
from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger
from metatoken.methods.sb3_policy import SB3Policy, build_actor_critic
from metatoken.models.conditions import NoCondition
from metatoken.models.policy import PredictorPolicy
from metatoken.models.transformer import DecisionTransformer, TransformerConfig
from metatoken.policy import ActionDistribution, EpisodeScorer

TINY = {"d_model": 16, "n_layers": 1, "context": 4}


def _trained(method, task, dataset, seed):
    return make_method(method, TINY).train(task, dataset, Budget(gradient_steps=30), seed, NullLogger()).policy


def _recorded(task, policy, episodes, seed):
    rec = ScoredEpisodes(policy, range(episodes))
    rollout(task, policy, episodes, seed, recorders=[rec])
    return rec


def test_kl_along_the_recorded_episodes_equals_playing_them_with_the_reference_teacher_forced(grid_task,
                                                                                             grid_dataset):
    policy, other = _trained("bc", grid_task, grid_dataset, 0), _trained("bc", grid_task, grid_dataset, 1)
    played = kl_per_step(grid_task, policy, other, 6, seed=5)
    rec = _recorded(grid_task, policy, 6, 5)
    along = kl_along(rec, other, one_pass=False)
    assert played.per_step > 1e-3
    np.testing.assert_allclose(along.per_episode, played.per_episode, rtol=1e-9)
    assert along.per_step == pytest.approx(played.per_step, rel=1e-9)
    # the predictor (an EpisodeScorer) scored in one pass per episode, never stepped: the same numbers up to
    # float32 rounding
    assert isinstance(other, EpisodeScorer)
    other.teacher_force = lambda obs, action: pytest.fail("the one-pass path stepped the reference")
    np.testing.assert_allclose(kl_along(rec, other).per_episode, played.per_episode, rtol=1e-6)


def _tanh_predictor(seed):
    torch.manual_seed(seed)
    cfg = TransformerConfig(3, 1, "tanh", 0, d_model=8, n_layers=1, context=4, dropout=0.0)
    return PredictorPolicy(DecisionTransformer(cfg).eval(), NoCondition())


def test_the_binned_ruler_in_chunks_equals_playing_on_a_continuous_task(monkeypatch):
    """Pendulum (200 steps, bounded actions): tanh predictors use the binned ruler; chunks of 7 rows change nothing."""
    task = make_task("gym", {"env_id": "Pendulum-v1"})
    policy, other = _tanh_predictor(0), _tanh_predictor(1)
    played = kl_per_step(task, policy, other, 3, seed=11)
    rec = _recorded(task, policy, 3, 11)
    assert len(rec.alive) == 200
    monkeypatch.setattr(kl, "_KL_ROWS", 7)
    along = kl_along(rec, other, one_pass=False)
    assert played.per_step > 0
    np.testing.assert_allclose(along.per_episode, played.per_episode, rtol=1e-9)
    np.testing.assert_allclose(kl_along(rec, other).per_episode, played.per_episode, rtol=1e-5)


def test_an_sb3_policy_against_its_saved_copy_is_zero_without_the_shortcut(grid_task, grid_dataset, tmp_path):
    """same_predictor only knows predictors: an SB3 pi_ref equal to pi is scored, and every step's KL is 0."""
    env = grid_task.make_env()
    torch.manual_seed(3)
    policy = SB3Policy(build_actor_critic(env.observation_space, env.action_space, [16], "tanh"), [16], "tanh")
    env.close()
    policy.save(tmp_path / "ref")
    assert not isinstance(policy, EpisodeScorer)  # scored step by step
    top = top_level_recorder(policy, 5)
    evaluate(grid_task, policy, grid_dataset, 5, seed=2, recorders=[top])
    got = kl_to_reference(None, grid_task, grid_dataset, RunContext(policy, 2, 5, tmp_path / "ref", top_episodes=top))
    assert got == {"ledger/kl_to_reference_nats": 0.0, "ledger/kl_to_reference_per_step": 0.0}
    assert len(top.alive) > 1  # real episodes were scored, not an empty record


class ConstantGaussian:
    """A memoryless policy whose action distribution is one fixed Gaussian N(mean, e^log_std) per dimension."""

    conditioned = False

    def __init__(self, mean: float, log_std: float):
        self.mean, self.log_std = mean, log_std

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self.n, self.rng = num_envs, np.random.default_rng(seed if isinstance(seed, int) else seed[0])

    def act(self, obs):
        return self.rng.normal(self.mean, np.exp(self.log_std), (self.n, 1)).astype(np.float32)  # (B, 1)

    def observe(self, reward, done):
        pass

    def teacher_force(self, obs, action):
        pass

    def log_prob(self, action):
        return np.zeros(self.n)

    def distribution(self):
        params = torch.tensor([[self.mean, self.log_std]], dtype=torch.float64).expand(self.n, 2)  # (B, 2)
        return ActionDistribution("gaussian", params, torch.zeros(1), torch.ones(1))


def test_two_constant_gaussians_have_the_closed_form_kl_at_every_step():
    task = make_task("gym", {"env_id": "Pendulum-v1"})
    p, q = ConstantGaussian(0.3, np.log(0.5)), ConstantGaussian(-0.2, np.log(2.0))
    want = np.log(2.0 / 0.5) + (0.5 ** 2 + 0.5 ** 2) / (2 * 2.0 ** 2) - 0.5  # nats per step
    out = kl_along(_recorded(task, p, 4, 0), q)
    assert out.per_step == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(out.per_episode, 200 * want, rtol=1e-12)  # Pendulum's 200-step episodes


def test_the_measurement_scores_the_top_data_level_of_the_evaluation(grid_task, grid_dataset):
    """Conditioned pi and pi_ref: the evaluation's top-level rows, with the top target, give what playing that level
    alone gives; another level's rows (or pi_ref commanded another target) would not."""
    policy, ref = _trained("condition", grid_task, grid_dataset, 0), _trained("condition", grid_task, grid_dataset, 1)
    top = top_level_recorder(policy, 4)
    low = ScoredEpisodes(policy, range(4))  # level 0: the data's worst return
    evaluate(grid_task, policy, grid_dataset, 4, seed=3, recorders=[top, low])
    assert top.rows == range(16, 20)  # the 5th of 5 data levels, before the 2 levels above the data
    levels = command_levels(grid_dataset)
    played = kl_per_step(grid_task, policy, ref, 4, seeds.evaluation(3), float(levels[-1]))
    got = kl_to_reference(None, grid_task, grid_dataset, RunContext(policy, 3, 4, None, top_episodes=top))
    assert np.isnan(got["ledger/kl_to_reference_per_step"])  # no pi_ref saved: no KL
    along = kl_along(top, ref, float(levels[-1]), one_pass=False)
    assert along.per_step == pytest.approx(played.per_step, rel=1e-9)
    np.testing.assert_allclose(along.per_episode, played.per_episode, rtol=1e-9)
    assert kl_along(top, ref, float(levels[-1])).per_step == pytest.approx(played.per_step, rel=1e-6)
    wrong_rows = kl_along(low, ref, float(levels[-1]))
    wrong_target = kl_along(top, ref, float(levels[0]))
    assert abs(wrong_rows.per_step / played.per_step - 1) > 1e-3
    assert abs(wrong_target.per_step / played.per_step - 1) > 1e-3


def test_the_measurement_uses_the_recording_and_plays_nothing(grid_task, grid_dataset, tmp_path, monkeypatch):
    from metatoken.evaluate.measure import reference

    policy, ref = _trained("condition", grid_task, grid_dataset, 0), _trained("condition", grid_task, grid_dataset, 1)
    ref.save(tmp_path / "ref")
    top = top_level_recorder(policy, 4)
    evaluate(grid_task, policy, grid_dataset, 4, seed=3, recorders=[top])
    monkeypatch.setattr(reference, "kl_per_step", lambda *a, **k: pytest.fail("played the episodes again"))
    got = kl_to_reference(None, grid_task, grid_dataset, RunContext(policy, 3, 4, tmp_path / "ref", top_episodes=top))
    want = kl_along(top, ref, float(command_levels(grid_dataset)[-1]))
    assert got["ledger/kl_to_reference_per_step"] == pytest.approx(want.per_step, rel=1e-9)
    assert got["ledger/kl_to_reference_nats"] == pytest.approx(want.per_episode.mean(), rel=1e-9)


def test_a_row_range_outside_the_batch_is_refused(grid_task, grid_dataset):
    policy = _trained("bc", grid_task, grid_dataset, 0)
    with pytest.raises(ValueError, match="not a range in a batch of 3"):
        rollout(grid_task, policy, 3, 0, recorders=[ScoredEpisodes(policy, range(2, 5))])
