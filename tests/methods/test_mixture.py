"""mixture: lambda keeps its meaning under Adam, online batches cover the run, and lambda orders capability and KL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metatoken.data.collect import collect
from metatoken.envs import make_task
from metatoken.evaluate.kl import kl_per_step
from metatoken.evaluate.rollout import rollout
from metatoken.logger import Logger
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger

TINY = {"d_model": 16, "n_layers": 1, "context": 4}


@pytest.fixture(scope="module")
def grid():
    task = make_task("glitchgrid-teleport", {"reference_episodes": 60, "summit_distance": 6})
    return task, collect(task)


def _weights(policy) -> torch.Tensor:
    return torch.cat([v.flatten().double() for v in policy.model.state_dict().values()])


class _Scalars(Logger):
    def __init__(self):
        self.seen: dict[str, list[tuple[int, float]]] = {}

    def scalar(self, name: str, value: float, step: int) -> None:
        self.seen.setdefault(name, []).append((step, value))

    def progress(self, done: int, total: int) -> None:
        pass


def test_weight_distance_from_bc_grows_with_lambda(grid):
    """Each term has its own Adam, so lambda scales the reward update: 1e-4 moves the weights ~1e4 x less than 1."""
    task, ds = grid
    budget = Budget(env_steps=3000, gradient_steps=30)
    w_bc = _weights(make_method("bc", TINY).train(task, ds, budget, 0, NullLogger()).policy)
    dist, led = {}, {}
    for lam in (0.0, 1e-4, 1e-2, 1.0):
        out = make_method("mixture", {**TINY, "lam": lam}).train(task, ds, budget, 0, NullLogger())
        dist[lam], led[lam] = float((_weights(out.policy) - w_bc).norm()), out.ledger
    assert dist[0.0] == 0.0
    assert dist[1e-4] < dist[1e-2] < dist[1.0]
    assert dist[1e-4] < 1e-2 * dist[1.0]  # a shared Adam would move them about equally
    lams = [led[k].effective_lambda for k in (0.0, 1e-4, 1e-2, 1.0)]
    assert lams[0] == 0.0 and lams == sorted(lams) and lams[1] > 0
    assert led[1e-4].effective_lambda == pytest.approx(1e-4, rel=0.5)  # tiny lambda: the realised ratio is lambda


def test_online_batches_cover_the_whole_run(grid):
    """With pg_every unset, the env budget is spread so that batches keep arriving until the last steps."""
    task, ds = grid
    budget = Budget(env_steps=3000, gradient_steps=60)
    log = _Scalars()
    out = make_method("mixture", {**TINY, "lam": 1.0}).train(task, ds, budget, 0, log)
    steps = [s for s, _ in log.seen["charts/episodic_return"]]
    assert len(steps) >= 3 and steps[0] == 1
    assert steps[-1] > 0.6 * budget.gradient_steps  # a front-loaded schedule stops after a few batches
    assert out.ledger.online_env_steps <= budget.env_steps
    assert dict(log.seen["charts/pg_updates"])[budget.gradient_steps] == budget.gradient_steps


def test_capability_and_kl_to_bc_rise_with_lambda(grid):
    """On a grid task, larger lambda gives a higher return and a larger per-step KL to the bc policy."""
    task, ds = grid
    budget = Budget(env_steps=6000, gradient_steps=40)
    bc = make_method("bc", TINY).train(task, ds, budget, 0, NullLogger()).policy
    ret, kl = [], []
    for lam in (0.0, 1.0, 3.0):
        pol = make_method("mixture", {**TINY, "lam": lam}).train(task, ds, budget, 0, NullLogger()).policy
        ret.append(rollout(task, pol, 100, seed=5).returns.mean())
        kl.append(kl_per_step(task, pol, bc, 20, seed=9).per_step)
    assert ret[0] < ret[1] < ret[2]
    assert kl[0] == pytest.approx(0.0, abs=1e-9) and kl[0] < kl[1] < kl[2]
    assert np.all(np.isfinite(kl))
