"""`text-mixture`: the pretraining loss plus lam x a policy-gradient term, with fixed point pi_lam = p0 / (mu - lam r).

    loss = -mean log pi(x0)  +  lam * (-mean_i A_i log pi(x_i)),   x0 ~ p0,  x_i ~ pi,  A = RLOO(r)

The gradient is that of -sum p0 log pi - lam sum pi r, whose stationary point for a fully
flexible pi is `targets.mixture_equilibrium` (derivation in docs/TEXT.md): no KL term, an
"RL-derived gradient inserted into pretraining". The p0 batch is fresh corpus samples
(maximum likelihood needs no reward labels); the ledger's reward_grad_share is measured
every update from the two parts' gradient norms.
"""

from __future__ import annotations

import torch
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
from metatoken.text.recipes.pg import OnlineSampler, rloo
from metatoken.text.targets import mixture_equilibrium
from metatoken.text.train import Terms, run_updates


class MixtureParams(TextParams):
    lam: float = Field(2.0, ge=0, description="weight of the policy-gradient term")


class Mixture:
    def __init__(self, params: MixtureParams):
        self.params = params

    def train(self, ctx: TextContext) -> TextTrained:
        p = self.params
        policy = copy_policy(ctx.reference)
        sampler = OnlineSampler(ctx, policy, p.batch_size)

        def terms(step: int) -> Terms:
            x0, _ = corpus(ctx, step, p.batch_size, ctx.reward)  # rewards of p0 samples are not used
            sup = -policy.log_prob(x0).mean()
            drawn = sampler.draw(ctx.reward) if p.lam > 0 else None
            if drawn is None:
                return Terms(supervised=sup, tokens=x0.numel())
            x, r = drawn
            adv = rloo(torch.as_tensor(r, dtype=torch.float32))  # (n,)
            rl = p.lam * -(adv * policy.log_prob(x)).mean()
            return Terms(supervised=sup, reward=rl, tokens=x0.numel() + x.numel())

        stats = run_updates(policy, ctx.budget.gradient_steps, terms, optim(p), ctx.logger, tag="mixture")

        def target(logp0, r):
            return mixture_equilibrium(logp0, r, p.lam)
        ledger = ledger_from(stats, sampler.tokens, sampler.sequences)
        return TextTrained(policy, ledger, target, f"mixture(lam={p.lam:g})")


TEXT_METHODS.register("text-mixture", TextMethodDef(MixtureParams, Mixture), __doc__.split("\n")[0])
