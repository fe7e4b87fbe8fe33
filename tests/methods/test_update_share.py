"""Update shares: exact attribution of Adam's applied steps to loss terms, and the methods' known answers."""

from __future__ import annotations

import pytest
import torch

from metatoken.data.collect import collect
from metatoken.envs import make_task
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.update_share import AdamUpdateShares, clip_coef

TINY = {"d_model": 16, "n_layers": 1, "context": 4}


def _run(losses, steps: int = 20, clip: float = 1e9) -> dict[str, float]:
    """Adam on a softmax policy over 4 actions; `losses(logits)` -> {term: loss}; returns the update shares."""
    torch.manual_seed(0)
    logits = torch.nn.Parameter(torch.randn(3, 4))  # (S, A)
    opt = torch.optim.Adam([logits], lr=0.05)
    shares = AdamUpdateShares([logits], ("reward", "kl"))
    for _ in range(steps):
        terms = losses(logits)
        grads = {n: [torch.autograd.grad(v, [logits], retain_graph=True)[0]] for n, v in terms.items()}
        logits.grad = sum(g[0] for g in grads.values())
        shares.record(grads, clip_coef(float(logits.grad.norm()), clip))
        torch.nn.utils.clip_grad_norm_([logits], clip)
        opt.step()
        shares.after_step()
    return shares.shares()


BASE = torch.log_softmax(torch.tensor([[1.0, 0.0, 0.0, -1.0]] * 3), -1)  # (S, A) pi_base
ACTIONS = torch.tensor([0, 3, 1])  # (S,)


def _kl(logits):
    lp = torch.log_softmax(logits, -1)  # (S, A)
    return (lp.exp() * (lp - BASE)).sum()


def _pg(logits, adv):
    return -(adv * torch.log_softmax(logits, -1)[torch.arange(3), ACTIONS]).sum()


def test_zero_advantages_give_zero_reward_share():
    out = _run(lambda z: {"reward": _pg(z, torch.zeros(3)), "kl": 0.3 * _kl(z)})
    assert out["reward"] == 0.0 and out["kl"] == pytest.approx(1.0)


def test_pure_policy_gradient_has_reward_share_one():
    out = _run(lambda z: {"reward": _pg(z, torch.tensor([1.0, -0.5, 2.0])), "kl": 0.0 * _kl(z)})
    assert out["reward"] == pytest.approx(1.0) and out["kl"] == 0.0


def test_attribution_is_exact_on_disjoint_coordinates():
    """Terms on disjoint coordinates own their coordinates' steps, whatever Adam's scaling (clipping included)."""
    torch.manual_seed(1)
    a, b = torch.nn.Parameter(torch.randn(5)), torch.nn.Parameter(torch.randn(5))
    opt = torch.optim.Adam([a, b], lr=0.1)
    shares = AdamUpdateShares([a, b], ("reward", "kl"))
    moved_a = moved_b = 0.0
    for _ in range(15):
        la, lb = (a ** 2).sum() * 100.0, (b ** 4).sum() * 1e-3  # very different gradient scales
        ga, gb = torch.autograd.grad(la, [a])[0], torch.autograd.grad(lb, [b])[0]
        a.grad, b.grad = ga, gb
        norm = float(torch.sqrt(ga.norm() ** 2 + gb.norm() ** 2))
        shares.record({"reward": [ga, None], "kl": [None, gb]}, clip_coef(norm, 1.0))
        before = a.detach().clone(), b.detach().clone()
        torch.nn.utils.clip_grad_norm_([a, b], 1.0)
        opt.step()
        shares.after_step()
        moved_a += float((a.detach() - before[0]).abs().sum())
        moved_b += float((b.detach() - before[1]).abs().sum())
    # float32 weights, float64 sums
    assert shares.shares()["reward"] == pytest.approx(moved_a / (moved_a + moved_b), rel=1e-6)
    assert 0.2 < shares.shares()["reward"] < 0.8  # Adam equalises step sizes despite a 1e5 gradient ratio


@pytest.fixture(scope="module")
def grid():
    task = make_task("glitchgrid-teleport", {"reference_episodes": 60, "summit_distance": 6})
    return task, collect(task)


def test_method_update_shares(grid):
    """bc 0, ppo 1, mixture increasing in lambda, kl-finetune with beta > 0 has a KL share."""
    task, ds = grid
    budget = Budget(env_steps=1500, gradient_steps=20)
    bc = make_method("bc", TINY).train(task, ds, budget, 0, NullLogger()).ledger
    assert bc.reward_update_share == 0.0 and bc.kl_update_share == 0.0
    ppo = make_method("ppo", {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1}).train(
        task, ds, budget, 0, NullLogger()).ledger
    assert ppo.reward_update_share == 1.0 and ppo.kl_update_share == 0.0
    mix = [make_method("mixture", {**TINY, "lam": lam}).train(task, ds, budget, 0, NullLogger()).ledger
           for lam in (0.0, 1e-2, 1.0, 10.0)]
    share = [m.reward_update_share for m in mix]
    assert share[0] == 0.0 and share[0] < share[1] < share[2] < share[3] < 1.0
    kl = make_method("kl-finetune", {**TINY, "pretrain_steps": 10, "finetune_steps": 5, "finetune_lr": 1e-3,
                                     "beta": 0.5}).train(task, ds, budget, 0, NullLogger()).ledger
    assert kl.kl_update_share > 0 and kl.reward_update_share > 0
    assert kl.kl_update_share + kl.reward_update_share < 1.0  # the pretraining steps are supervised
