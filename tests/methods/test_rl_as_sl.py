"""rl-as-sl: its mean gradient is the supervised gradient (z-test) and its variance is larger."""

from __future__ import annotations

import numpy as np
import torch

from metatoken.data.collect import collect
from metatoken.envs import make_task
from metatoken.methods.rl_as_sl import rl_as_sl_loss
from metatoken.models.conditions import fit_condition
from metatoken.models.sequences import SequenceSampler
from metatoken.models.train import action_nll, build_predictor

N = 400  # independent RL gradient samples


def _flat_grad(model, loss):
    gs = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(gs, model.parameters())])


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
