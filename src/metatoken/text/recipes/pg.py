"""`text-kl-pg`: KL-regularised policy gradient (RLOO) whose fixed point is pi*_beta = pi_ref exp(r / beta) / Z.

    R(x) = r(x) - beta (log pi(x) - log pi_ref(x))        the sequence-level log-ratio enters the reward
    A_i  = R_i - mean of the other n - 1 R_j              (RLOO baseline over the batch)
    loss = -mean_i A_i log pi(x_i),   x_i ~ pi

E_pi[R ∇ log pi] is the gradient of E_pi r - beta KL(pi || pi_ref) (the log-ratio's own
gradient has expectation 0), whose maximiser is the tilt of pi_ref; with pi_ref the
pretrained model, that is pi*_beta up to pretraining's own error KL(pi_ref || p0).
With `epochs` > 1 each sampled batch is reused for `epochs` PPO-clip steps (ratio clipped
to 1 +- clip), each one gradient step. Online steps: tokens sampled; reward queries:
sequences scored; stops sampling when the next batch would pass budget.env_steps (> 0).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from metatoken import seeds
from metatoken.text.policy import TextPolicy, copy_policy
from metatoken.text.recipes.base import (
    TEXT_METHODS,
    TextContext,
    TextMethodDef,
    TextParams,
    TextTrained,
    ledger_from,
    optim,
)
from metatoken.text.targets import tilted
from metatoken.text.train import Terms, run_updates


class KLPGParams(TextParams):
    beta: float = Field(0.25, gt=0, description="KL coefficient; the target is pi_ref exp(r / beta)")
    epochs: int = Field(1, ge=1, description="PPO-clip steps per sampled batch (1: plain RLOO)")
    clip: float = Field(0.2, gt=0, description="PPO ratio clip (used when epochs > 1)")


def rloo(values: torch.Tensor) -> torch.Tensor:
    """Leave-one-out advantages: each value minus the mean of the others (n,)."""
    n = len(values)
    return values - (values.sum() - values) / (n - 1)


class OnlineSampler:
    """Draws the optimiser's own batches and counts them against budget.env_steps (tokens)."""

    def __init__(self, ctx: TextContext, policy: TextPolicy, n: int):
        self.ctx, self.policy, self.n = ctx, policy, n
        self.gen = torch.Generator().manual_seed(seeds.auxiliary(ctx.seed))
        self.tokens = self.sequences = 0

    def draw(self, reward: str) -> tuple[torch.Tensor, np.ndarray] | None:
        """n sequences from the current policy and their rewards, or None when the budget is spent."""
        cap, cost = self.ctx.budget.env_steps, self.n * self.policy.length
        if cap > 0 and self.tokens + cost > cap:
            return None
        x = self.policy.sample(self.n, self.gen)  # (n, L)
        self.tokens += cost
        self.sequences += self.n
        return x, self.ctx.world.reward(reward, x.numpy())


class KLPG:
    def __init__(self, params: KLPGParams):
        self.params = params

    def train(self, ctx: TextContext) -> TextTrained:
        p = self.params
        policy = copy_policy(ctx.reference)
        sampler = OnlineSampler(ctx, policy, p.batch_size)
        batch: dict = {}

        def terms(step: int) -> Terms:
            if (step - 1) % p.epochs == 0:
                drawn = sampler.draw(ctx.reward)
                if drawn is None:
                    batch.clear()
                    return Terms()
                x, r = drawn
                with torch.no_grad():
                    old = policy.log_prob(x)  # (n,)
                    ref = ctx.reference.log_prob(x)  # (n,)
                shaped = torch.as_tensor(r, dtype=torch.float32) - p.beta * (old - ref)
                batch.update(x=x, old=old, adv=rloo(shaped))
            if not batch:
                return Terms()
            logp = policy.log_prob(batch["x"])  # (n,)
            adv = batch["adv"]
            if p.epochs == 1:
                loss = -(adv * logp).mean()
            else:
                ratio = (logp - batch["old"]).exp()
                loss = -torch.minimum(ratio * adv, ratio.clamp(1 - p.clip, 1 + p.clip) * adv).mean()
            return Terms(reward=loss, tokens=batch["x"].numel())

        stats = run_updates(policy, ctx.budget.gradient_steps, terms, optim(p), ctx.logger, tag="kl_pg")

        def target(logp0, r):
            return tilted(logp0, r, p.beta)
        ledger = ledger_from(stats, sampler.tokens, sampler.sequences)
        return TextTrained(policy, ledger, target, f"tilted(beta={p.beta:g})", tilt_beta=p.beta)


TEXT_METHODS.register("text-kl-pg", TextMethodDef(KLPGParams, KLPG), __doc__.split("\n")[0])
