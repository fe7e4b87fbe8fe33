"""rl-as-sl: its mean gradient is the supervised gradient (z-test) and its variance is larger."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from metatoken.data.collect import collect
from metatoken.data.dataset import Dataset, Episode
from metatoken.envs import make_task
from metatoken.methods.rl_as_sl import rl_as_sl_loss
from metatoken.models.conditions import fit_condition
from metatoken.models.sequences import SequenceSampler
from metatoken.models.train import action_nll, build_predictor

N = 400  # independent RL gradient samples


def _flat_grad(model, loss):
    gs = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(gs, model.parameters())])


def test_rl_as_sl_gradient_is_supervised_gradient_with_more_variance():
    task = make_task("glitchgrid-teleport", {"reference_episodes": 40, "summit_distance": 6})
    ds = collect(task)
    cond = fit_condition("none", ds)
    model = build_predictor(ds, cond, "transformer", seed=0, d_model=16, n_layers=1, context=4, dropout=0.0)
    batch = SequenceSampler(ds, cond, model.context, True, seed=0).sample(16)
    g_sl = _flat_grad(model, action_nll(model, batch))  # exact target on this fixed batch
    gen = torch.Generator().manual_seed(0)
    samples = torch.stack([_flat_grad(model, rl_as_sl_loss(model, batch, gen)) for _ in range(N)])  # (N, P)
    # Test along random directions: the mean projection must match within 4 standard errors.
    dirs = torch.randn(5, g_sl.numel(), generator=torch.Generator().manual_seed(1))
    proj = samples @ dirs.T  # (N, 5)
    z = (proj.mean(0) - dirs @ g_sl) / (proj.std(0) / np.sqrt(N))
    assert torch.all(z.abs() < 4.0), z
    # And a direction the data gradient points in: the estimate is not zero, it is the SL gradient.
    along = samples @ (g_sl / g_sl.norm())
    assert abs(float(along.mean()) - float(g_sl.norm())) < 4 * float(along.std()) / np.sqrt(N)
    # Over fresh data batches the RL estimate varies more than the SL gradient (total variance).
    sampler = SequenceSampler(ds, cond, model.context, True, seed=1)
    sl, rl = [], []
    for _ in range(60):
        b = sampler.sample(16)
        sl.append(_flat_grad(model, action_nll(model, b)))
        rl.append(_flat_grad(model, rl_as_sl_loss(model, b, gen)))
    var_sl, var_rl = torch.stack(sl).var(0).sum(), torch.stack(rl).var(0).sum()
    assert var_rl > 2 * var_sl, (var_rl, var_sl)


def _continuous_dataset(episodes: int = 6, length: int = 12) -> Dataset:
    """Random episodes with 3-dim observations and 2-dim actions in [-1, 1]."""
    rng = np.random.default_rng(3)
    eps = [Episode(rng.normal(size=(length + 1, 3)).astype(np.float32),
                   rng.uniform(-1, 1, (length, 2)).astype(np.float32), rng.normal(size=length),
                   np.zeros(length, bool), np.zeros(length, bool), np.full(length, np.nan), np.zeros(length, bool))
           for _ in range(episodes)]
    return Dataset(eps, gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Box(-1, 1, (2,), np.float32))


def test_continuous_rl_as_sl_estimates_the_kernel_smoothed_gradient():
    """Mean RL gradient = E_eps[1(a_data + eps in bounds) grad log pi(a_data + eps)], eps ~ N(0, (h scale)^2).

    At this bandwidth that is not the SL gradient, and the test tells them apart."""
    ds = _continuous_dataset()
    cond = fit_condition("none", ds)
    model = build_predictor(ds, cond, "transformer", seed=0, d_model=16, n_layers=1, context=3, dropout=0.0)
    batch = SequenceSampler(ds, cond, model.context, False, seed=0).sample(4)
    h, J = 0.4, 4000
    # The kernel-smoothed target by Monte Carlo over J jitters, in one backward pass.
    params = model(batch.obs, batch.prev_action, batch.cond, batch.timestep)  # (B, K, P)
    eps = torch.randn((J, *batch.action.shape), generator=torch.Generator().manual_seed(5)) * h * model.head.scale
    a = batch.action[None] + eps  # (J, B, K, A)
    inside = ((a > -1) & (a < 1)).all(-1).float()  # (J, B, K)
    m = batch.mask.float()
    nll = model.head.nll(params[None].expand(J, *params.shape), a.clamp(-1 + 1e-6, 1 - 1e-6))  # (J, B, K)
    target = _flat_grad(model, (nll * inside * m).sum() / (J * m.sum()))
    g_sl = _flat_grad(model, action_nll(model, batch))
    gen = torch.Generator().manual_seed(0)
    samples = torch.stack([_flat_grad(model, rl_as_sl_loss(model, batch, gen, bandwidth=h, max_weight=1e12))
                           for _ in range(N)])  # (N, P)
    dirs = torch.cat([torch.randn(4, g_sl.numel(), generator=torch.Generator().manual_seed(1)),
                      (target / target.norm())[None], (g_sl / g_sl.norm())[None]])
    proj = samples @ dirs.T  # (N, 6)
    z = (proj.mean(0) - dirs @ target) / (proj.std(0) / np.sqrt(N))
    assert torch.all(z.abs() < 4.0), z
    # At this bandwidth the target is not the supervised gradient, so the test can tell them apart.
    z_sl = (proj.mean(0) - dirs @ g_sl) / (proj.std(0) / np.sqrt(N))
    assert z_sl.abs().max() > 6.0, z_sl


def test_variance_probe_is_in_eval_mode_and_averages_splits():
    from metatoken.methods.rl_as_sl import grad_variances

    task = make_task("glitchgrid-teleport", {"reference_episodes": 20, "summit_distance": 4})
    ds = collect(task)
    cond = fit_condition("none", ds)
    model = build_predictor(ds, cond, "transformer", seed=0, d_model=16, n_layers=1, context=4, dropout=0.5)
    batch = SequenceSampler(ds, cond, model.context, True, seed=0).sample(16)
    model.train()
    a = grad_variances(model, batch, torch.Generator().manual_seed(2), 0.05, 1e4, pairs=3)
    b = grad_variances(model, batch, torch.Generator().manual_seed(2), 0.05, 1e4, pairs=3)
    assert a == b and model.training  # dropout (p = 0.5) would make repeats differ; train mode is restored
    assert a[0] > a[1] > 0
