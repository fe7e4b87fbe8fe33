"""Recipes with their own state resume from a training checkpoint to the uninterrupted run's weights and metrics.

Each recipe is trained straight through, then trained again inside a `checkpointing` block and
killed a few steps after a checkpoint, then trained a third time in the same block: the third
training must resume (not restart) and land on exactly the straight run's weights, ledger and metrics.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metatoken.data.collect import collect
from metatoken.envs import make_task
from metatoken.errors import UserError
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.mixture import PolicyGradientTerm
from metatoken.methods.rl_as_sl import ReinforceAsSL
from metatoken.models.checkpoint import checkpointing, latest_training_state

TINY = {"d_model": 16, "n_layers": 1, "context": 4, "warmup_steps": 5}
EVERY, KILL_AT, STEPS = 13, 28, 30  # checkpoints at 13 and 26 (the log at 25 lies before the second)


class Killed(Exception):
    """Stands for the worker being killed."""


@pytest.fixture(scope="module")
def grid():
    task = make_task("glitchgrid-teleport", {"reference_episodes": 30, "summit_distance": 6})
    return task, collect(task)


def _kill_at(monkeypatch, hooks_cls, at: int) -> None:
    """Make `hooks_cls` die when step `at` starts its update."""
    original = hooks_cls.after_backward

    def dying(self, step, model):
        if step == at:
            raise Killed
        return original(self, step, model)

    monkeypatch.setattr(hooks_cls, "after_backward", dying)


def _comparable(out) -> tuple[dict, dict]:
    ledger = {k: v for k, v in out.ledger.__dict__.items() if k != "wall_time_s"}
    return ledger, dict(out.metrics)


def _assert_resumes_exactly(tmp_path, monkeypatch, method: str, params: dict, budget: Budget, task, ds, hooks_cls):
    straight = make_method(method, params).train(task, ds, budget, 0, NullLogger())
    with monkeypatch.context() as m:
        _kill_at(m, hooks_cls, KILL_AT)
        with checkpointing(tmp_path, every=EVERY), pytest.raises(Killed):
            make_method(method, params).train(task, ds, budget, 0, NullLogger())
    _, meta = latest_training_state(tmp_path / "train-0")
    assert meta["step"] == 26 and meta["hooks"]  # killed after the checkpoint at 26, with the recipe's state in it
    with checkpointing(tmp_path, every=EVERY):
        resumed = make_method(method, params).train(task, ds, budget, 0, NullLogger())
    a, b = straight.policy.model.state_dict(), resumed.policy.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_equal(_comparable(resumed), _comparable(straight))
    return straight, meta


def test_mixture_resumes_to_the_same_weights_and_metrics(grid, tmp_path, monkeypatch):
    task, ds = grid
    budget = Budget(env_steps=3000, gradient_steps=STEPS)
    straight, meta = _assert_resumes_exactly(tmp_path, monkeypatch, "mixture", {**TINY, "lam": 0.5}, budget,
                                             task, ds, PolicyGradientTerm)
    # the held online batch and the reward term's Adam travel in the checkpoint; the run used both halves
    assert meta["hooks"]["groups"] and meta["hooks"]["opt"] is not None and 0 < meta["hooks"]["env_steps"]
    assert meta["hooks"]["env_steps"] < straight.ledger.online_env_steps
    assert np.isfinite(straight.metrics["training/equilibrium_drift"])


def test_rl_as_sl_resumes_to_the_same_weights_and_metrics(grid, tmp_path, monkeypatch):
    task, ds = grid
    straight, meta = _assert_resumes_exactly(tmp_path, monkeypatch, "rl-as-sl", TINY, Budget(gradient_steps=STEPS),
                                             task, ds, ReinforceAsSL)
    assert len(meta["hooks"]["var_rl"]) == 1  # the probe at 25 is restored; the one at 30 runs after the resume
    assert straight.metrics["charts/grad_variance_ratio"] > 0


def test_a_recipe_checkpoint_of_another_config_is_refused(grid, tmp_path, monkeypatch):
    task, ds = grid
    with monkeypatch.context() as m:
        _kill_at(m, ReinforceAsSL, KILL_AT)
        with checkpointing(tmp_path, every=EVERY), pytest.raises(Killed):
            make_method("rl-as-sl", TINY).train(task, ds, Budget(gradient_steps=STEPS), 0, NullLogger())
    with checkpointing(tmp_path, every=EVERY), pytest.raises(UserError, match="lr is 0.001 there, 0.002 here"):
        make_method("rl-as-sl", {**TINY, "lr": 2e-3}).train(task, ds, Budget(gradient_steps=STEPS), 0, NullLogger())
