"""`text-rwr` and `text-awr`: maximum likelihood on p0 samples weighted by a function of their reward.

    RWR: loss = -sum_i w_i log pi(x_i) / sum_i w_i,   w_i = exp(r_i / beta)   (self-normalised per batch)
    AWR: loss = -mean_i w_i log pi(x_i),   w_i = min(exp((r_i - V) / beta), w_max),   V = E_p0 r (calibration)

The population fixed point of weighted likelihood on p0 samples is p0 w / Z, so RWR's target
is pi*_beta (up to the self-normalisation's O(1/batch) bias) and AWR's is p0 min(exp((r - V) / beta),
w_max) / Z with the V it used: the clip is what separates the two. The weights come from the
reward, so the update counts as reward-derived (reward_grad_share 1), like rl-as-sl's.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from metatoken.text.policy import copy_policy
from metatoken.text.recipes.base import (
    CALIBRATION_SAMPLES,
    TEXT_METHODS,
    TextContext,
    TextMethodDef,
    TextParams,
    TextTrained,
    corpus,
    ledger_from,
    optim,
)
from metatoken.text.targets import normalise, tilted
from metatoken.text.train import Terms, run_updates


class RWRParams(TextParams):
    beta: float = Field(0.25, gt=0, description="temperature of the weights exp(r / beta)")


class AWRParams(RWRParams):
    w_max: float = Field(20.0, gt=1, description="clip of the advantage weights")


class RWR:
    def __init__(self, params: RWRParams):
        self.params = params

    def train(self, ctx: TextContext) -> TextTrained:
        p = self.params
        policy = copy_policy(ctx.reference)

        def terms(step: int) -> Terms:
            x, r = corpus(ctx, step, p.batch_size, ctx.reward)
            w = torch.as_tensor(np.exp((r - r.max()) / p.beta), dtype=torch.float32)  # (B,) shift cancels
            return Terms(reward=-(w * policy.log_prob(x)).sum() / w.sum(), tokens=x.numel())

        stats = run_updates(policy, ctx.budget.gradient_steps, terms, optim(p), ctx.logger, tag="rwr")

        def target(logp0, r):
            return tilted(logp0, r, p.beta)
        return TextTrained(policy, ledger_from(stats), target, f"tilted(beta={p.beta:g})",
                           p.batch_size * stats.steps, tilt_beta=p.beta)


class AWR:
    def __init__(self, params: AWRParams):
        self.params = params

    def train(self, ctx: TextContext) -> TextTrained:
        p = self.params
        policy = copy_policy(ctx.reference)
        value = float(corpus(ctx, 0, CALIBRATION_SAMPLES, ctx.reward)[1].mean())  # V = E_p0 r

        def weights(r: np.ndarray) -> np.ndarray:
            return np.minimum(np.exp((r - value) / p.beta), p.w_max)

        def terms(step: int) -> Terms:
            x, r = corpus(ctx, step, p.batch_size, ctx.reward)
            w = torch.as_tensor(weights(r), dtype=torch.float32)  # (B,)
            return Terms(reward=-(w * policy.log_prob(x)).mean(), tokens=x.numel())

        stats = run_updates(policy, ctx.budget.gradient_steps, terms, optim(p), ctx.logger, tag="awr")

        def target(logp0, r):
            return normalise(logp0 + np.log(weights(r)))
        return TextTrained(policy, ledger_from(stats), target, f"clipped tilt(beta={p.beta:g}, w_max={p.w_max:g})",
                           p.batch_size * stats.steps + CALIBRATION_SAMPLES, {"awr_value": value})


TEXT_METHODS.register("text-rwr", TextMethodDef(RWRParams, RWR),
                      "Reward-weighted regression: likelihood of p0 samples weighted by exp(r / beta).")
TEXT_METHODS.register("text-awr", TextMethodDef(AWRParams, AWR),
                      "Advantage-weighted regression: weights exp((r - V) / beta) clipped at w_max.")
