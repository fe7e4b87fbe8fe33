"""`text-dpo`: direct preference optimisation on pairs of p0 samples ranked by the reward.

    h = (log pi(a) - log pi_ref(a)) - (log pi(b) - log pi_ref(b)),   a, b ~ p0
    P(a preferred) = sigmoid((r(a) - r(b)) / tau)                   (Bradley-Terry labeller)
    loss = -[P log sigmoid(beta h) + (1 - P) log sigmoid(-beta h)]   (the expected label)

The population optimum satisfies beta log(pi / pi_ref) = r / tau + const, so the target is
pi_ref exp(r / (tau beta)) / Z: pi*_beta' with beta' = tau beta (relative to p0, up to
pretraining's error). Training on the expected label instead of a drawn one keeps that
optimum and removes the label noise. Every pair costs two offline reward labels; the loss
is built from them alone, so the update counts as reward-derived (reward_grad_share 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from metatoken.text.policy import copy_policy
from metatoken.text.recipes.base import (
    TEXT_METHODS,
    TextContext,
    TextMethodDef,
    TextParams,
    TextTrained,
    corpus,
    ledger_from,
    optim,
)
from metatoken.text.targets import tilted
from metatoken.text.train import Terms, run_updates


class DPOParams(TextParams):
    beta: float = Field(0.25, gt=0, description="DPO's KL coefficient")
    tau: float = Field(1.0, gt=0, description="Bradley-Terry temperature of the reward-ranked labels")


class DPO:
    def __init__(self, params: DPOParams):
        self.params = params

    def train(self, ctx: TextContext) -> TextTrained:
        p = self.params
        policy = copy_policy(ctx.reference)

        def terms(step: int) -> Terms:
            x, r = corpus(ctx, step, 2 * p.batch_size, ctx.reward)
            a, b = x[: p.batch_size], x[p.batch_size:]  # (n, L) each
            pref = torch.sigmoid(torch.as_tensor((r[: p.batch_size] - r[p.batch_size:]) / p.tau,
                                                 dtype=torch.float32))  # (n,) P(a preferred)
            with torch.no_grad():
                ref = ctx.reference.log_prob(a) - ctx.reference.log_prob(b)  # (n,)
            h = policy.log_prob(a) - policy.log_prob(b) - ref  # (n,)
            loss = -(pref * F.logsigmoid(p.beta * h) + (1 - pref) * F.logsigmoid(-p.beta * h)).mean()
            return Terms(reward=loss, tokens=x.numel())

        stats = run_updates(policy, ctx.budget.gradient_steps, terms, optim(p), ctx.logger, tag="dpo")
        beta_eff = p.tau * p.beta

        def target(logp0, r):
            return tilted(logp0, r, beta_eff)
        return TextTrained(policy, ledger_from(stats), target, f"tilted(beta={beta_eff:g})",
                           2 * p.batch_size * stats.steps, tilt_beta=beta_eff)


TEXT_METHODS.register("text-dpo", TextMethodDef(DPOParams, DPO), __doc__.split("\n")[0])
