"""PPO's loop pieces against known answers: moments, GAE, distribution maths, folding, the SAME_STEP adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from metatoken.envs import make_task
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.ppo import PPOParams, build_network
from metatoken.methods.ppo_loop import Heads, RunningMoments, clip_grad_norm, fold_obs_normalisation, gae
from metatoken.methods.sb3_policy import load_sb3_policy
from metatoken.methods.sb3_vecenv import make_sb3_vecenv

BOX = spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = spaces.Box(-1, 1, (2,), np.float32)


def test_running_moments_equal_the_pooled_moments():
    rng = np.random.default_rng(0)
    parts = [rng.normal(2.0, 3.0, size=(n, 3)) for n in (5, 40, 1, 17)]
    m = RunningMoments((3,))
    for x in parts:
        m.update(x)
    pooled = np.concatenate(parts)
    assert np.allclose(m.mean, pooled.mean(0), atol=1e-4)
    assert np.allclose(m.var, pooled.var(0), rtol=1e-4)


def test_clip_grad_norm_known_answer_and_torch_bit_for_bit():
    # grads (3, 0) and (4,): global norm sqrt(9 + 16) = 5, scaled by 0.5 / (5 + 1e-6)
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    clip_grad_norm([a, b], 0.5)
    assert torch.allclose(torch.cat([a.grad, b.grad]), torch.tensor([0.3, 0.0, 0.4]), atol=1e-6)
    gen = torch.Generator().manual_seed(3)
    for max_norm in (0.5, 1e3):  # clipping and not (the factor is clamped to 1)
        ours = [torch.zeros(s, requires_grad=True) for s in ((64, 14), (64,), (4, 64), (1,))]
        ref = [torch.zeros(s, requires_grad=True) for s in ((64, 14), (64,), (4, 64), (1,))]
        for o, r in zip(ours, ref):
            o.grad = torch.randn(o.shape, generator=gen)
            r.grad = o.grad.clone()
        before = [o.grad.clone() for o in ours]
        clip_grad_norm(ours, max_norm)
        torch.nn.utils.clip_grad_norm_(ref, max_norm)
        assert all(torch.equal(o.grad, r.grad) for o, r in zip(ours, ref))
        assert all(torch.equal(o.grad, g) for o, g in zip(ours, before)) == (max_norm > 1.0)


def test_gae_known_answers():
    rew = np.array([[1.0], [2.0], [3.0]])  # (T=3, B=1)
    val = np.array([[0.5], [0.25], [1.0]])
    # lambda = 1, gamma = 1, no done: advantage = rewards to go + V(s_T) - V(s_t)
    adv, ret = gae(rew, val, np.zeros((3, 1)), np.array([10.0]), 1.0, 1.0)
    assert np.allclose(adv[:, 0], [16 - 0.5, 15 - 0.25, 13 - 1.0])
    assert np.allclose(ret, adv + val)
    # an episode ends after step 1: nothing flows back across it, and V(s_T) only reaches step 2
    done = np.array([[0.0], [1.0], [0.0]])
    adv, _ = gae(rew, val, done, np.array([10.0]), 0.5, 1.0)
    assert np.allclose(adv[:, 0], [1 + 0.5 * 2 - 0.5, 2 - 0.25, 3 + 0.5 * 10 - 1.0])
    # lambda = 0 is the one-step TD error
    adv, _ = gae(rew, val, np.zeros((3, 1)), np.array([10.0]), 0.9, 0.0)
    assert np.allclose(adv[:, 0], [1 + 0.9 * 0.25 - 0.5, 2 + 0.9 * 1.0 - 0.25, 3 + 0.9 * 10 - 1.0])


def test_heads_match_torch_distributions():
    torch.manual_seed(0)
    gauss = build_network(BOX, ACT, PPOParams(log_std_init=-0.7))
    heads = Heads(gauss)
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    mean, _ = heads.forward(obs)
    logp, ent = heads.log_prob_entropy(mean, act)
    ref = torch.distributions.Normal(mean, torch.full_like(mean, 0.7).neg().exp())
    assert torch.allclose(logp, ref.log_prob(act).sum(-1), atol=1e-5)
    assert torch.allclose(ent, ref.entropy().sum(-1), atol=1e-5)
    cat = Heads(build_network(BOX, spaces.Discrete(4), PPOParams()))
    logits, _ = cat.forward(obs)
    a = torch.tensor([0, 1, 2, 3, 3, 1])
    logp, ent = cat.log_prob_entropy(logits, a)
    ref = torch.distributions.Categorical(logits=logits)
    assert torch.allclose(logp, ref.log_prob(a), atol=1e-5) and torch.allclose(ent, ref.entropy(), atol=1e-5)


def test_folded_normalisation_acts_as_the_normalised_network():
    torch.manual_seed(1)
    net = build_network(BOX, ACT, PPOParams())
    heads = Heads(net)
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([0.1, 3.0, 2.0])
    raw = torch.randn(8, 3) * 4
    before_pi, before_v = heads.forward((raw - torch.tensor(mean).float()) / torch.tensor(std).float())
    fold_obs_normalisation(net, mean, std)
    after_pi, after_v = heads.forward(raw)
    assert torch.allclose(before_pi, after_pi, atol=1e-4) and torch.allclose(before_v, after_v, atol=1e-4)


@pytest.mark.parametrize("task_id, opts", [("mountain", {"reward": "gait"}), ("cartpole", {})])
def test_step_arrays_final_obs_is_the_finished_episodes_last(task_id, opts):
    """A finished env's final obs differs from the fresh first obs returned in its row, and the others agree."""
    task = make_task(task_id, opts)
    env = make_sb3_vecenv(task, 4, 0)
    obs = env.reset()
    rng = np.random.default_rng(0)
    seen_done = False
    for _ in range(400):
        a = rng.uniform(-1, 1, (4, 4)) if task_id == "mountain" else rng.integers(0, 2, 4)
        nxt, rew, done, trunc, final, _ = env.step_arrays(a)
        assert rew.shape == done.shape == trunc.shape == (4,)
        if done.any():
            seen_done = True
            assert final is not None and final.shape == nxt.shape
            assert np.array_equal(final[~done], nxt[~done])
            assert not np.allclose(final[done], nxt[done])
        obs = nxt
    assert seen_done and obs.shape[0] == 4


def test_ppo_respects_budget_and_initial_log_std(tmp_path):
    torch.set_num_threads(1)
    task = make_task("mountain", {"reward": "gait"})
    hp = {"n_envs": 16, "n_steps": 32, "batch_size": 256, "n_epochs": 2, "log_std_init": -1.5,
          "normalize_obs": True, "normalize_reward": True}
    out = make_method("ppo", hp).train(task, None, Budget(env_steps=3 * 512 + 100, gradient_steps=100), 0,
                                       NullLogger())
    assert out.ledger.online_env_steps == 3 * 512  # whole rollouts only
    assert out.ledger.gradient_steps == 3 * 2 * 2
    assert len(out.policy.history) == 3
    assert abs(out.policy.history[-1]["log_std"] + 1.5) < 0.05  # starts at the requested sigma, moves slowly
    out.policy.save(tmp_path)
    again = load_sb3_policy(tmp_path)  # the folded obs normalisation travels in the weights
    obs = np.random.default_rng(0).normal(size=(5, 14)).astype(np.float32)
    out.policy.reset(5, deterministic=True)
    again.reset(5, deterministic=True)
    assert np.allclose(out.policy.act(obs), again.act(obs), atol=1e-6)


def test_env_steps_hyperparameter_caps_below_the_budget():
    budget = Budget(env_steps=10_000, gradient_steps=1000)
    method = make_method("ppo", {"n_envs": 8, "n_steps": 64, "batch_size": 256})
    assert method.iterations(budget) == 10_000 // 512
    capped = make_method("ppo", {"n_envs": 8, "n_steps": 64, "batch_size": 256, "env_steps": 2048})
    assert capped.iterations(budget) == 4
    roomy = make_method("ppo", {"n_envs": 8, "n_steps": 64, "batch_size": 256, "env_steps": 10**9})
    assert roomy.iterations(budget) == 10_000 // 512  # the spec's budget still binds
    with pytest.raises(ValueError, match="budget too small"):
        make_method("ppo", {"n_envs": 8, "n_steps": 64, "env_steps": 100}).iterations(budget)
