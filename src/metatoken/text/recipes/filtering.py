"""`text-filter`: maximum likelihood on the p0 samples whose reward is in the top `fraction` of p0.

    loss = -mean over kept x of log pi(x),   x ~ p0,   kept: r(x) >= q_{1 - fraction}

The threshold is the (1 - fraction) quantile of a calibration batch's rewards; with discrete
rewards ties at the threshold are kept, so slightly more than `fraction` may pass. Target
(exact): p0 restricted to r >= threshold. Ledger: offline labels only, reward_grad_share 0
(supervised learning on a subset, like the control side's filtered-bc).
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
from metatoken.text.targets import restricted
from metatoken.text.train import Terms, run_updates


class FilterParams(TextParams):
    fraction: float = Field(0.25, gt=0, le=1, description="share of p0 (by reward rank) trained on")


class Filter:
    def __init__(self, params: FilterParams):
        self.params = params

    def train(self, ctx: TextContext) -> TextTrained:
        p = self.params
        policy = copy_policy(ctx.reference)
        cut = float(np.quantile(corpus(ctx, 0, CALIBRATION_SAMPLES, ctx.reward)[1], 1 - p.fraction))

        def terms(step: int) -> Terms:
            x, r = corpus(ctx, step, p.batch_size, ctx.reward)
            kept = x[torch.as_tensor(r >= cut)]
            if len(kept) == 0:
                return Terms()
            return Terms(supervised=-policy.log_prob(kept).mean(), tokens=kept.numel())

        stats = run_updates(policy, ctx.budget.gradient_steps, terms, optim(p), ctx.logger, tag="filter")

        def target(logp0, r):
            return restricted(logp0, r >= cut)
        return TextTrained(policy, ledger_from(stats), target, f"p0 | r >= {cut:.3g}",
                           p.batch_size * stats.steps + CALIBRATION_SAMPLES)


TEXT_METHODS.register("text-filter", TextMethodDef(FilterParams, Filter), __doc__.split("\n")[0])
