"""`rl-as-sl`: REINFORCE whose reward makes its expected gradient the supervised gradient.

On each reference window the policy samples its own action a ~ pi(.|h) and is paid

    r(h, a) = 1[a = a_data] / pi(a | h)                      (discrete; exact)
    r(h, a) = N(a - a_data; 0, (bandwidth * scale)^2) / pi(a | h)   (continuous; kernel-smoothed)

For discrete actions E_{a~pi}[r grad log pi(a|h)] = grad log pi(a_data|h) exactly: the
`bc` gradient reached through "RL" with extra variance. For continuous actions the pi(a)
cancels against the sampling density and the estimator's mean is the kernel-smoothed
supervised gradient

    E_{a~pi}[r grad log pi(a|h)] = integral over the action bounds of K(a - a_data) grad log pi(a|h) da,

the SL gradient at data actions jittered by the kernel (mass jittered outside the bounds
drops out). It equals the SL gradient only as bandwidth -> 0; at a finite bandwidth it can
point elsewhere. The method runs the house's one supervised loop with this surrogate as
the loss. Every log interval it logs charts/grad_variance_rl and charts/grad_variance_sl,
the variance of one minibatch's gradient estimate, measured in eval mode and averaged over
`PROBE_PAIRS` random half-batch splits (||g_A - g_B||^2 / 2 per half, scaled to the full
batch). Their ratio, mean RL variance over mean SL variance across log intervals, is the run
metric `charts/grad_variance_ratio` (`TrainedPolicy.metrics`). No env steps, no reward queries
beyond the data; the update is reward-derived in form (reward_grad_share 1).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from pydantic import Field

from metatoken import seeds
from metatoken.methods.base import (
    METHODS,
    Budget,
    Ledger,
    Logger,
    MethodDef,
    TrainedPolicy,
    offline_use,
)
from metatoken.methods.bc import BCParams, bc_setup
from metatoken.models.policy import PredictorPolicy
from metatoken.models.sequences import SequenceBatch
from metatoken.models.train import TrainHooks, action_nll, train_predictor

PROBE_PAIRS = 8  # random half-batch splits per variance probe


class RLAsSLParams(BCParams):
    bandwidth: float = Field(0.05, gt=0, description="continuous actions: kernel width in half-ranges")
    max_weight: float = Field(1e4, gt=0, description="cap on the reward 1/pi (rare-sample blow-ups)")


def rl_as_sl_loss(model: torch.nn.Module, batch: SequenceBatch, generator: torch.Generator,
                  bandwidth: float = 0.05, max_weight: float = 1e4) -> torch.Tensor:
    """A surrogate whose gradient is the REINFORCE estimate -r grad log pi(a), a ~ pi, averaged over real positions."""
    params = model(batch.obs, batch.prev_action, batch.cond, batch.timestep)  # (B, K, P)
    head = model.head
    flat = params.detach().reshape(-1, params.shape[-1])  # (N, P)
    noise = head.draw_noise(len(flat), generator)  # (N, n)
    a = head.sample(flat, noise, False).reshape(batch.action.shape)  # (B, K[, A]) a ~ pi
    logp = -head.nll(params, a)  # (B, K)
    with torch.no_grad():
        if head.discrete:
            hit = (a == batch.action).float()  # (B, K)
        else:  # a Gaussian kernel around the data action, in environment units
            sd = bandwidth * head.scale  # (A,)
            z = (a - batch.action) / sd
            hit = torch.exp((-0.5 * z.pow(2) - torch.log(sd) - 0.5 * math.log(2 * math.pi)).sum(-1))
        reward = (hit * torch.exp(-logp.detach())).clamp(max=max_weight)  # (B, K) = 1[a = a_data] / pi(a)
    m = batch.mask.float()
    return -(reward * logp * m).sum() / m.sum()


def _rows(batch: SequenceBatch, rows: torch.Tensor) -> SequenceBatch:
    return SequenceBatch(*(x[rows] for x in batch))


def _grads(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    gs = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(q)).reshape(-1)
                      for g, q in zip(gs, model.parameters())])  # (n_params,)


def grad_variances(model, batch: SequenceBatch, generator: torch.Generator, bandwidth: float,
                   max_weight: float, pairs: int = PROBE_PAIRS) -> tuple[float, float]:
    """(RL, SL) variance (trace) of one full-batch gradient estimate, averaged over `pairs` random half-batch splits.

    Measured in eval mode, so dropout's noise is not counted as the estimator's. The two
    halves of a split are independent samples, so ||g_A - g_B||^2 / 2 is unbiased for the
    variance of a half-batch estimate, and a full batch has half of it; every split draws
    fresh actions a ~ pi for the RL estimate.
    """
    was_training, n = model.training, batch.obs.shape[0] // 2
    model.eval()
    rl_sum = sl_sum = 0.0
    for _ in range(pairs):
        order = torch.randperm(2 * n, generator=generator)
        a, b = _rows(batch, order[:n]), _rows(batch, order[n:])
        rl = _grads(model, rl_as_sl_loss(model, a, generator, bandwidth, max_weight)) - \
            _grads(model, rl_as_sl_loss(model, b, generator, bandwidth, max_weight))
        sl = _grads(model, action_nll(model, a)) - _grads(model, action_nll(model, b))
        rl_sum, sl_sum = rl_sum + float(rl.pow(2).sum()) / 4, sl_sum + float(sl.pow(2).sum()) / 4
    model.train(was_training)
    return rl_sum / pairs, sl_sum / pairs


class ReinforceAsSL(TrainHooks):
    """The supervised loop with rl-as-sl's REINFORCE surrogate as its loss, probing gradient variances when it logs."""

    loss_name = "losses/rl_as_sl_surrogate"

    def __init__(self, p: RLAsSLParams, seed: int):
        self.p = p
        self.gen = torch.Generator().manual_seed(seeds.auxiliary(seed))  # the sampled actions a ~ pi
        self.var_rl: list[float] = []
        self.var_sl: list[float] = []

    def loss(self, model: torch.nn.Module, batch: SequenceBatch) -> torch.Tensor:
        return rl_as_sl_loss(model, batch, self.gen, self.p.bandwidth, self.p.max_weight)

    def state(self) -> dict:
        """The sampling generator and the variance probes so far (see TrainHooks.state)."""
        return {"gen": self.gen.get_state(), "var_rl": self.var_rl, "var_sl": self.var_sl}

    def load_state(self, state: dict) -> None:
        """Restore what `state` captured."""
        self.gen.set_state(state["gen"])
        self.var_rl, self.var_sl = list(state["var_rl"]), list(state["var_sl"])

    def on_log(self, step: int, model: torch.nn.Module, batch: SequenceBatch, logger: Logger) -> int:
        vr, vs = grad_variances(model, batch, self.gen, self.p.bandwidth, self.p.max_weight)
        self.var_rl.append(vr)
        self.var_sl.append(vs)
        logger.scalar("charts/grad_variance_rl", vr, step)
        logger.scalar("charts/grad_variance_sl", vs, step)
        with torch.no_grad():
            logger.scalar("losses/action_nll", action_nll(model, batch).item(), step)
        return 2 * PROBE_PAIRS * int(batch.mask.sum())  # per split, two half-batch gradients of each kind


class RLAsSL:
    def __init__(self, params: RLAsSLParams):
        self.params = params

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        cfg, cond, model, sampler = bc_setup(p, dataset, budget.gradient_steps, seed)
        hooks = ReinforceAsSL(p, seed)
        stats = train_predictor(model, sampler, cfg, logger, hooks)
        ratio = float(np.mean(hooks.var_rl) / max(np.mean(hooks.var_sl), 1e-30))
        logger.scalar("charts/grad_variance_ratio", ratio, cfg.steps)
        ledger = Ledger(reward_update_share=1.0, gradient_steps=stats.steps, wall_time_s=time.perf_counter() - t0,
                        train_flops=stats.flops, **offline_use(dataset, None))
        return TrainedPolicy(PredictorPolicy(model, cond), ledger, {"charts/grad_variance_ratio": ratio})


METHODS.register("rl-as-sl", MethodDef(RLAsSLParams, RLAsSL),
                 "REINFORCE with reward 1[a = a_data]/pi(a): the bc gradient in expectation, with more variance.")
