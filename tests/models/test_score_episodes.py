"""Whole episodes scored in one pass (banded causal attention) equal the cached step-by-step teacher forcing."""

import numpy as np
import pytest
import torch

from metatoken.models.conditions import ReturnToGo
from metatoken.models.mlp import MLPConfig, MLPPredictor
from metatoken.models.policy import PredictorPolicy
from metatoken.models.transformer import DecisionTransformer, TransformerConfig


def _transformer(head: str, act_dim: int, K: int = 4) -> DecisionTransformer:
    torch.manual_seed(2)
    cfg = TransformerConfig(3, act_dim, head, cond_dim=1, d_model=16, n_layers=2, n_heads=2, context=K,
                            max_timestep=16, dropout=0.0)  # max_timestep < T: late steps share an embedding
    model = DecisionTransformer(cfg).eval()
    with torch.no_grad():  # larger weights than the init so that a wrong window would show
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def _episodes(act_dim: int, discrete: bool, T: int = 23, E: int = 3):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(T, E, 3)).astype(np.float32)
    actions = rng.integers(0, act_dim, (T, E)) if discrete else rng.uniform(-1, 1, (T, E, act_dim)).astype(np.float32)
    return obs, actions, rng.normal(size=(T, E))


def _step_by_step(policy: PredictorPolicy, obs, actions, rewards, target) -> torch.Tensor:
    """What TeacherForced does during a play: (T, E, P)."""
    T, E = rewards.shape
    policy.reset(E, target=target, seed=0)
    out = []
    for t in range(T):
        policy.teacher_force(obs[t], actions[t])
        out.append(policy.distribution().params.clone())
        policy.observe(rewards[t], np.zeros(E, bool))
    return torch.stack(out)


@pytest.mark.parametrize("head,act_dim", [("tanh", 2), ("categorical", 3)])
def test_one_pass_per_episode_equals_the_cached_teacher_forced_steps(head, act_dim, monkeypatch):
    """T = 23 > 5K: the window rolls; rewards count the return-to-go down; 2 episodes per forward."""
    from metatoken.models import policy as policy_module

    policy = PredictorPolicy(_transformer(head, act_dim), ReturnToGo(3.0))
    obs, actions, rewards = _episodes(act_dim, head == "categorical")
    target = np.array([1.0, 2.0, -0.5])
    want = _step_by_step(policy, obs, actions, rewards, target)  # (T, E, P)
    monkeypatch.setattr(policy_module, "EPISODE_TOKENS", 2 * 23)
    got = policy.score_episodes(obs, actions, rewards, target)
    assert got.family == policy.distribution().family
    np.testing.assert_allclose(got.params.reshape(want.shape).numpy(), want.numpy(), atol=1e-5)


def test_attending_the_whole_episode_instead_of_the_last_k_tokens_would_differ():
    """The banded mask is what makes one pass equal the cached step: full causal attention does not."""
    model = _transformer("tanh", 2)
    policy = PredictorPolicy(model, ReturnToGo(3.0))
    obs, actions, rewards = _episodes(2, False)
    target = np.zeros(3)
    want = _step_by_step(policy, obs, actions, rewards, target)
    got = policy.score_episodes(obs, actions, rewards, target).params.reshape(want.shape)
    rtg, conds = ReturnToGo(3.0), []
    c = rtg.start(target, 3)  # (E, 1)
    for r in rewards:
        conds.append(c)
        c = rtg.update(c, r)
    prev = np.concatenate([np.zeros_like(actions[:1]), actions[:-1]])  # (T, E, A)
    inputs = [torch.as_tensor(x).transpose(0, 1) for x in (obs, prev, np.stack(conds))]  # (E, T, ...)
    with torch.no_grad():
        full = model(*inputs, torch.arange(23).repeat(3, 1)).transpose(0, 1)  # (T, E, P): all earlier tokens
    np.testing.assert_allclose(full[:4].numpy(), want[:4].numpy(), atol=1e-5)  # within the first K steps: same
    assert (full[4:] - want[4:]).abs().max() > 1e-2
    assert (got - want).abs().max() < 1e-5


def test_the_mlp_predictor_scores_each_step_alone():
    torch.manual_seed(0)
    model = MLPPredictor(MLPConfig(3, 2, "tanh", cond_dim=1, hidden=8, n_layers=2, dropout=0.0)).eval()
    policy = PredictorPolicy(model, ReturnToGo(2.0))
    obs, actions, rewards = _episodes(2, False, T=9)
    target = np.array([0.5, 1.0, 1.5])
    want = _step_by_step(policy, obs, actions, rewards, target)
    got = policy.score_episodes(obs, actions, rewards, target).params.reshape(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
