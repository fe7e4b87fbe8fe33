"""Each method trains on a tiny budget and returns a working policy; known answers for ppo, kl-finetune, mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metatoken.data.collect import collect
from metatoken.envs import make_task
from metatoken.envs.classic import SOLVED_RETURN
from metatoken.evaluate.kl import kl_per_episode
from metatoken.evaluate.rollout import rollout
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.sb3_policy import load_sb3_policy

TINY = {"d_model": 16, "n_layers": 1, "context": 4}


@pytest.fixture(scope="module")
def grid():
    task = make_task("glitchgrid-teleport", {"reference_episodes": 60, "summit_distance": 6})
    return task, collect(task)


@pytest.mark.parametrize("method, hp", [
    ("filtered-bc", {**TINY, "fraction": 0.2}),
    ("ppo", {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2}),
    ("kl-finetune", {**TINY, "pretrain_steps": 20}),
    ("mixture", {**TINY, "lam": 1.0, "pg_every": 5}),
    ("rl-as-sl", TINY),
])
def test_method_trains_within_budget(grid, method, hp):
    task, ds = grid
    budget = Budget(env_steps=1024, gradient_steps=40, eval_episodes=4)
    out = make_method(method, hp).train(task, ds, budget, 0, NullLogger())
    led = out.ledger
    extra = hp.get("finetune_steps", 100) if method == "kl-finetune" else 0  # kl-finetune: bc's budget, then RL
    assert 0 < led.gradient_steps <= budget.gradient_steps + extra
    assert 0 <= led.online_env_steps <= budget.env_steps
    assert led.reward_queries == led.online_env_steps
    assert 0.0 <= led.reward_update_share and 0.0 <= led.kl_update_share
    assert led.reward_update_share + led.kl_update_share <= 1.0 + 1e-9
    assert led.train_flops > 0
    if method in ("kl-finetune", "mixture", "ppo"):
        assert led.online_env_steps > 0 and led.reward_update_share > 0
    r = rollout(task, out.policy, 4, seed=1)
    assert len(r) == 4 and np.all(r.lengths > 0)


def test_mixture_lambda_zero_is_bc(grid):
    task, ds = grid
    budget = Budget(env_steps=5000, gradient_steps=30)
    bc = make_method("bc", TINY).train(task, ds, budget, 3, NullLogger())
    mix = make_method("mixture", {**TINY, "lam": 0.0}).train(task, ds, budget, 3, NullLogger())
    a, b = bc.policy.model.state_dict(), mix.policy.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert mix.ledger.online_env_steps == 0 and mix.ledger.reward_update_share == 0.0
    ra, rb = rollout(task, bc.policy, 8, seed=2), rollout(task, mix.policy, 8, seed=2)
    assert np.array_equal(ra.returns, rb.returns)


def test_kl_finetune_huge_beta_stays_at_base(grid):
    """beta -> infinity pins pi to pi_base (KL ~ 0); beta = 0 moves away (reward is learnable here)."""
    task, ds = grid
    budget = Budget(env_steps=12000, gradient_steps=130)
    hp = {**TINY, "pretrain_steps": 80, "finetune_steps": 50, "finetune_lr": 3e-3}
    base = make_method("bc", TINY).train(task, ds, Budget(gradient_steps=80), 0, NullLogger()).policy
    kls = {}
    for beta in (0.0, 1e4):
        out = make_method("kl-finetune", {**hp, "beta": beta}).train(task, ds, budget, 0, NullLogger())
        kls[beta] = kl_per_episode(task, out.policy, base, 40, seed=9).mean()
    assert abs(kls[1e4]) < 0.05
    assert kls[0.0] > 10 * max(abs(kls[1e4]), 0.01)


def test_ppo_solves_cartpole(tmp_path):
    """SB3 zoo hyperparameters for CartPole-v1; solved = mean return >= 475 (Gymnasium's threshold)."""
    torch.set_num_threads(1)
    task = make_task("cartpole")
    hp = {"n_envs": 8, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
          "lr": 1e-3, "lr_schedule": "linear", "clip_schedule": "linear"}
    out = make_method("ppo", hp).train(task, None, Budget(env_steps=60_000, gradient_steps=10_000), 0, NullLogger())
    assert out.ledger.online_env_steps <= 60_000 and out.ledger.gradient_steps <= 10_000
    r = rollout(task, out.policy, 20, seed=123)
    assert r.returns.mean() >= SOLVED_RETURN
    out.policy.save(tmp_path)  # safetensors + JSON round trip acts identically
    again = load_sb3_policy(tmp_path)
    assert np.array_equal(rollout(task, again, 5, seed=7).returns, rollout(task, out.policy, 5, seed=7).returns)
