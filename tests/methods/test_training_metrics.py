"""The training metrics the claims read: mixture's effective lambda, probe NLL and equilibrium drift,
and rl-as-sl's gradient variance ratio, reported through `TrainedPolicy.metrics`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from metatoken import seeds
from metatoken.data.collect import collect
from metatoken.envs import make_task
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.mixture import PROBE_WINDOWS, PolicyGradientTerm
from metatoken.models.sequences import SequenceSampler
from metatoken.models.train import action_nll

TINY = {"d_model": 16, "n_layers": 1, "context": 4}


@pytest.fixture(scope="module")
def grid():
    task = make_task("glitchgrid-teleport", {"reference_episodes": 60, "summit_distance": 6})
    return task, collect(task)


def test_drift_compares_the_end_with_three_quarters_of_training():
    term = object.__new__(PolicyGradientTerm)  # only the bookkeeping, no training
    term.moved_rl, term.moved_sl = 3.0, 12.0  # sum |dtheta| of the reward and the supervised updates
    term.probe_nll = [(25, 2.0), (50, 1.5), (75, 1.2), (100, 1.15)]
    m = term.training_metrics(100)
    assert m["training/equilibrium_drift"] == pytest.approx(0.05)  # |1.15 - 1.2|
    assert m["training/probe_nll"] == 1.15
    assert m["training/effective_lambda"] == pytest.approx(0.25)
    term.probe_nll = [(100, 1.0)]
    assert math.isnan(term.training_metrics(100)["training/equilibrium_drift"])


def test_mixture_reports_its_probe_nll_and_no_drift_without_learning(grid):
    task, ds = grid
    budget = Budget(env_steps=0, gradient_steps=60)
    out = make_method("mixture", {**TINY, "lam": 0.0}).train(task, ds, budget, 4, NullLogger())
    assert out.metrics["training/effective_lambda"] == 0.0
    model = out.policy.model
    probe = SequenceSampler(ds, out.policy.condition, model.context, model.head.discrete,
                            seed=seeds.auxiliary(4)).sample(PROBE_WINDOWS)
    model.eval()
    with torch.no_grad():
        assert out.metrics["training/probe_nll"] == pytest.approx(action_nll(model, probe).item(), rel=1e-6)
    frozen = make_method("mixture", {**TINY, "lam": 0.0, "lr": 1e-12}).train(task, ds, budget, 4, NullLogger())
    assert frozen.metrics["training/equilibrium_drift"] < 1e-6  # weights barely move: the probe NLL stays put
    assert out.metrics["training/equilibrium_drift"] > 1e-3  # 60 steps from scratch have not settled


def test_mixture_effective_lambda_is_positive_with_online_batches(grid):
    task, ds = grid
    out = make_method("mixture", {**TINY, "lam": 1.0, "pg_every": 5}).train(
        task, ds, Budget(env_steps=1024, gradient_steps=40), 0, NullLogger())
    share = out.ledger.reward_update_share  # rl / (sl + rl), so effective lambda = rl / sl = share / (1 - share)
    assert share > 0 and out.metrics["training/effective_lambda"] == pytest.approx(share / (1 - share))
    assert out.metrics["training/effective_lambda"] == out.ledger.effective_lambda


def test_rl_as_sl_reports_its_gradient_variance_ratio(grid):
    task, ds = grid
    out = make_method("rl-as-sl", TINY).train(task, ds, Budget(gradient_steps=50), 0, NullLogger())
    ratio = out.metrics["charts/grad_variance_ratio"]
    assert np.isfinite(ratio) and ratio > 1.0  # the same gradient in expectation, with more variance
