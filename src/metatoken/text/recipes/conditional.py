"""`text-conditional`: conditional training, a condition metatoken prepended to each p0 sample by its reward.

    loss = -log pi(x | c(x)),   x ~ p0,   c(x) from the scheme below

| scheme | c(x) | sampled with | target (exact) |
|---|---|---|---|
| `threshold` | good if r(x) >= the p0 (1 - fraction) quantile, else bad | good | p0(x given r >= threshold) |
| `quantile` | bucket of r(x) among K p0 quantiles | top bucket | p0(x given r in the top bucket) |
| `bayes` | good with P(good given x) = exp((r(x) - r_max) / beta) | good | pi*_beta = p0 exp(r / beta) / Z |

With probability `drop` the condition is replaced by the start token (Korbak et al.'s
drop-token fraction), so the model also keeps an unconditional p0. The Bayesian scheme
trains on the expected label (weight P(good given x) on the good token, the rest on bad):
the same fixed point as drawing the label, with less variance. Thresholds and quantiles
come from a calibration batch of p0 samples (counted as offline reward labels). At
sampling time the condition token is set and control tokens are blocked (TextPolicy).
Ledger: no online steps, reward_grad_share 0 (the loss is a likelihood; rewards only pick tokens).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from metatoken import seeds
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
from metatoken.text.targets import restricted, tilted
from metatoken.text.train import Terms, run_updates

GOOD, BAD = 0, 1  # condition-token indices of the two-label schemes


class ConditionalParams(TextParams):
    scheme: Literal["threshold", "quantile", "bayes"] = "bayes"
    beta: float = Field(0.25, gt=0, description="bayes: temperature of P(good | x)")
    fraction: float = Field(0.25, gt=0, le=1, description="threshold: share of p0 labelled good")
    k: int = Field(4, ge=2, le=4, description="quantile: number of reward buckets")
    drop: float = Field(0.0, ge=0, lt=1, description="share of samples trained with the start token instead")


class Conditional:
    def __init__(self, params: ConditionalParams):
        self.params = params

    def _edges(self, r_cal: np.ndarray) -> np.ndarray:
        p = self.params
        if p.scheme == "threshold":
            return np.array([np.quantile(r_cal, 1 - p.fraction)])
        return np.quantile(r_cal, np.arange(1, p.k) / p.k)  # (K-1,) inner bucket edges

    def train(self, ctx: TextContext) -> TextTrained:
        p = self.params
        policy = copy_policy(ctx.reference)
        vocab = policy.vocab
        r_max = ctx.world.reward_max(ctx.reward)
        edges = None if p.scheme == "bayes" else self._edges(corpus(ctx, 0, CALIBRATION_SAMPLES, ctx.reward)[1])
        gen = torch.Generator().manual_seed(seeds.training(ctx.seed))  # the drop-token mask, like dropout

        def labels(r: np.ndarray) -> torch.Tensor:
            if p.scheme == "threshold":  # good = 0 for r >= threshold
                return torch.as_tensor(np.where(r >= edges[0], GOOD, BAD))
            top = len(edges)  # quantile buckets, numbered from the top: 0 is the best
            return torch.as_tensor(top - np.searchsorted(edges, r, side="right"))

        def terms(step: int) -> Terms:
            x, r = corpus(ctx, step, p.batch_size, ctx.reward)
            keep = torch.rand(len(x), generator=gen) >= p.drop  # (B,) False: start token
            start = torch.full((len(x),), vocab.start)
            if p.scheme == "bayes":
                w_good = torch.as_tensor(np.exp((r - r_max) / p.beta), dtype=torch.float32)  # P(good | x)
                nll_good = -policy.log_prob(x, torch.where(keep, vocab.condition(GOOD), start))
                nll_bad = -policy.log_prob(x, torch.where(keep, vocab.condition(BAD), start))
                loss = (w_good * nll_good + (1 - w_good) * nll_bad).mean()
                return Terms(supervised=loss, tokens=2 * x.numel())
            first = torch.where(keep, labels(r) + vocab.condition(0), start)
            return Terms(supervised=-policy.log_prob(x, first).mean(), tokens=x.numel())

        stats = run_updates(policy, ctx.budget.gradient_steps, terms, optim(p), ctx.logger, tag="conditional")
        labelled = p.batch_size * stats.steps + (0 if edges is None else CALIBRATION_SAMPLES)
        if p.scheme == "bayes":
            def target(logp0, r):
                return tilted(logp0, r, p.beta)
            name = f"tilted(beta={p.beta:g})"
        else:
            cut = float(edges[-1])

            def target(logp0, r):
                return restricted(logp0, r >= cut)
            name = f"p0 | r >= {cut:.3g}"
        return TextTrained(policy.with_condition(GOOD), ledger_from(stats), target, name, labelled,
                           tilt_beta=p.beta if p.scheme == "bayes" else None)


TEXT_METHODS.register("text-conditional", TextMethodDef(ConditionalParams, Conditional), __doc__.split("\n")[0])
