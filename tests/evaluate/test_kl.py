import gymnasium as gym
import numpy as np
import pytest
import torch

from metatoken.envs.scripted import NoisyEastWalker
from metatoken.evaluate.kl import has_log_prob, kl_per_episode, kl_per_step, step_kl
from metatoken.evaluate.rollout import rollout
from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger
from metatoken.methods.sb3_policy import SB3Policy, build_actor_critic
from metatoken.models.conditions import NoCondition
from metatoken.models.policy import PredictorPolicy
from metatoken.models.transformer import DecisionTransformer, TransformerConfig
from metatoken.policy import ActionDistribution


def test_kl_is_zero_to_itself_and_scripted_policies_have_none(grid_task, grid_dataset):
    assert not has_log_prob(NoisyEastWalker(0.5))
    tiny = {"d_model": 16, "n_layers": 1, "context": 4}
    policy = make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), 0, NullLogger()).policy
    other = make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), 1, NullLogger()).policy
    assert has_log_prob(policy)
    # a copy of the same weights: every log-ratio is exactly 0
    same = make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), 0, NullLogger()).policy
    np.testing.assert_allclose(kl_per_episode(grid_task, policy, same, 4, seed=5), 0.0, atol=1e-5)
    assert kl_per_episode(grid_task, policy, other, 8, seed=5).mean() > 0.01


# --- the closed-form per-step ruler ------------------------------------------------------------------


def _gauss(family, mean, log_std, loc=0.0, scale=1.0):
    m, s = torch.tensor([mean], dtype=torch.float64), torch.tensor([log_std], dtype=torch.float64)  # (1, A)
    a = m.shape[-1]
    return ActionDistribution(family, torch.cat([m, s], -1), torch.full((a,), loc), torch.full((a,), scale))


def test_gaussian_policies_have_the_textbook_kl():
    """KL(N(mu1, s1) || N(mu2, s2)) = log(s2/s1) + (s1^2 + (mu1 - mu2)^2) / (2 s2^2) - 1/2, dimensions add."""
    p = _gauss("gaussian", [0.0, 0.5], [0.0, np.log(0.5)], loc=1.0, scale=2.0)
    q = _gauss("gaussian", [0.5, 0.5], [np.log(2.0), np.log(0.5)], loc=1.0, scale=2.0)
    # env units: p = N(1, 2), N(2, 1); q = N(2, 4), N(2, 1)
    want = np.log(4 / 2) + (4 + 1) / (2 * 16) - 0.5
    assert float(step_kl(p, q)[0]) == pytest.approx(want, rel=1e-12)
    assert float(step_kl(p, p)[0]) == 0.0


def test_categorical_kl_is_exact():
    p = ActionDistribution("categorical", torch.log(torch.tensor([[0.5, 0.25, 0.25]])))
    q = ActionDistribution("categorical", torch.log(torch.tensor([[0.25, 0.25, 0.5]])))
    assert float(step_kl(p, q)[0]) == pytest.approx(0.5 * np.log(2) + 0.25 * np.log(0.5), rel=1e-6)


def test_binned_kl_of_tanh_policies_approaches_the_exact_kl_from_below():
    """tanh is a bijection, so the true KL is the pre-squash Gaussians'; binning can only lose information."""
    p = _gauss("tanh", [0.2, -0.3], [np.log(0.5), np.log(0.3)])
    q = _gauss("tanh", [-0.1, 0.0], [np.log(0.4), np.log(0.6)])
    exact = float(_gauss_exact(p, q))
    coarse, fine = float(step_kl(p, q, bins=8)[0]), float(step_kl(p, q, bins=4000)[0])
    assert coarse < fine <= exact + 1e-9
    assert fine == pytest.approx(exact, rel=0.01)


def _gauss_exact(p, q):
    (mp, sp), (mq, sq) = p.params[0].chunk(2), q.params[0].chunk(2)
    return (sq - sp + (torch.exp(2 * sp) + (mp - mq) ** 2) / (2 * torch.exp(2 * sq)) - 0.5).sum()


def test_clipped_ppo_against_a_tanh_bc_policy_is_finite():
    """The density-ratio estimate is infinite here (point masses at the bounds vs none); the ruler is not."""
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    ppo = SB3Policy(build_actor_critic(gym.spaces.Box(-1, 1, (3,), np.float32), space, [8], "tanh"), [8], "tanh")
    torch.manual_seed(0)
    bc = PredictorPolicy(DecisionTransformer(TransformerConfig(3, 2, "tanh", 0, d_model=8, n_layers=1,
                                                               context=2)).eval(), NoCondition())
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    ppo.reset(5, seed=0)
    bc.reset(5, seed=0)
    actions = ppo.act(obs * 50)  # far-off inputs: much of PPO's mass sits on the bounds
    bc.teacher_force(obs, actions)
    p = ppo.distribution()
    assert p.family == "clipped"
    kl = step_kl(p, bc.distribution()).numpy()
    assert np.all(np.isfinite(kl)) and np.all(kl > 0)
    np.testing.assert_allclose(step_kl(p, p).numpy(), 0.0, atol=1e-12)


def test_kl_per_step_is_zero_to_a_copy_and_sums_per_episode(grid_task, grid_dataset):
    tiny = {"d_model": 16, "n_layers": 1, "context": 4}

    def bc(seed):
        return make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), seed,
                                             NullLogger()).policy

    policy, same, other = bc(0), bc(0), bc(1)
    zero = kl_per_step(grid_task, policy, same, 4, seed=5)
    np.testing.assert_array_equal(zero.per_episode, 0.0)
    out = kl_per_step(grid_task, policy, other, 6, seed=5)
    lengths = rollout(grid_task, policy, 6, seed=5).lengths  # the same episodes: policy seeds match
    assert np.all(out.per_episode > 0)
    assert out.per_step == pytest.approx(out.per_episode.sum() / lengths.sum())
    mc = kl_per_episode(grid_task, policy, other, 6, seed=5)  # one sample of the same sums
    assert abs(mc.mean() - out.per_episode.mean()) < 3 * mc.std() + 1e-9


def test_kl_to_its_own_saved_copy_is_the_played_zero_without_playing(grid_task, grid_dataset, tmp_path, monkeypatch):
    """pi_ref's run scores itself against its saved copy: the shortcut must give what playing gives (exactly 0)."""
    from metatoken.evaluate.measure import RunContext, reference
    from metatoken.evaluate.measure.reference import kl_to_reference, load_saved_policy, same_predictor

    tiny = {"d_model": 16, "n_layers": 1, "context": 4}
    policy = make_method("bc", tiny).train(grid_task, grid_dataset, Budget(gradient_steps=30), 0, NullLogger()).policy
    policy.save(tmp_path / "ref")
    copy = load_saved_policy(tmp_path / "ref")
    played = kl_per_step(grid_task, policy, copy, 6, seed=5)
    assert same_predictor(policy, copy) and played.per_step == 0.0 and np.all(played.per_episode == 0.0)

    calls = []
    monkeypatch.setattr(reference, "kl_per_step", lambda *a, **k: calls.append(a) or played)
    run = RunContext(policy, 0, 6, tmp_path / "ref")
    got = kl_to_reference(None, grid_task, grid_dataset, run)
    assert got == {"ledger/kl_to_reference_nats": 0.0, "ledger/kl_to_reference_per_step": 0.0} and calls == []

    with torch.no_grad():  # one weight apart: another policy, so it is played and scored
        policy.model.head.proj.bias[0] += 0.5
    assert not same_predictor(policy, copy)
    monkeypatch.undo()
    moved = kl_to_reference(None, grid_task, grid_dataset, run)
    assert moved["ledger/kl_to_reference_per_step"] > 0 and moved["ledger/kl_to_reference_nats"] > 0
