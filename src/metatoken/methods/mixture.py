"""`mixture`: the bc pretraining loss on the reference data plus lambda x a policy-gradient term on the reward.

    g = grad NLL(data) + lambda * grad RLOO(return)        (one combined, clipped AdamW step)

The supervised part is the house's one training loop (`models/train.py: train_predictor`)
run exactly as `bc` runs it; the reward term is a `TrainHooks.after_backward` that adds
lambda x the RLOO gradient to the data gradient before clipping. With lambda = 0 the hook
adds nothing and takes no online steps, so the weights are `bc`'s bit for bit by
construction. With lambda > 0, every `pg_every` steps a fresh batch of `groups` x `k`
online episodes adds the reward term while env steps remain; the ledger's
reward_grad_share is sum ||lambda g_rl|| / sum (||g_sl|| + ||lambda g_rl||) over all steps.

Run metrics for claim C7 (`TrainedPolicy.metrics`): `training/effective_lambda` = sum ||lambda g_rl||
/ sum ||g_sl|| over all steps (the RL term's realised weight against the data term's: 0 when no
online batch was taken); `training/probe_nll`, the action NLL of a fixed batch of reference windows
(drawn once from the auxiliary stream, scored in eval mode at every log interval) at the end; and
`training/equilibrium_drift` = |probe NLL at the end - probe NLL at the log point nearest 3/4 of
training| in nats per action, small when the pull of data and reward has settled (NaN with fewer
than two log points).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from pydantic import Field
from torch import nn

from metatoken import seeds
from metatoken.methods.base import METHODS, Budget, Ledger, Logger, MethodDef, TrainedPolicy
from metatoken.methods.bc import BCParams, bc_setup
from metatoken.methods.online import collect, grad_norm, rloo_pg_loss
from metatoken.models.policy import PredictorPolicy
from metatoken.models.sequences import SequenceBatch, SequenceSampler
from metatoken.models.train import TrainHooks, action_nll, train_predictor

PROBE_WINDOWS = 64  # reference windows in the fixed NLL probe
DRIFT_FROM = 0.75  # equilibrium drift compares the end of training with this fraction of it


class MixtureParams(BCParams):
    lam: float = Field(0.1, ge=0, description="lambda, weight of the policy-gradient term")
    pg_every: int = Field(10, ge=1, description="gradient steps between online batches")
    groups: int = Field(2, ge=1)
    k: int = Field(4, ge=2, description="episodes per group (RLOO)")
    steps_per_episode: int = Field(32, ge=1)


class PolicyGradientTerm(TrainHooks):
    """Adds lambda x the RLOO gradient of a fresh online batch to the data gradient every `pg_every` steps."""

    def __init__(self, p: MixtureParams, task, policy: PredictorPolicy, budget: Budget, seed: int, logger: Logger,
                 probe: SequenceBatch):
        self.p, self.task, self.policy, self.budget, self.seed, self.logger = p, task, policy, budget, seed, logger
        self.rng = np.random.default_rng(seed)
        self.env_steps, self.pg_updates, self.norm_sl, self.norm_rl, self.rollout_flops = 0, 0, 0.0, 0.0, 0.0
        self.probe, self.probe_nll = probe, []  # (step, NLL) at each log interval

    def on_log(self, step: int, model: nn.Module, batch: SequenceBatch, logger: Logger) -> int:
        model.eval()  # dropout off: the same windows score the same weights the same way, and no RNG is drawn
        with torch.no_grad():
            nll = action_nll(model, self.probe).item()
        model.train()
        self.probe_nll.append((step, nll))
        logger.scalar("losses/probe_nll", nll, step)
        return int(self.probe.mask.sum()) // 3  # a forward pass: a third of the loop's 3x FLOPs per token

    def training_metrics(self, steps: int) -> dict[str, float]:
        """effective lambda, final probe NLL and equilibrium drift (see the module docstring)."""
        eff = self.norm_rl / self.norm_sl if self.norm_sl > 0 else 0.0
        if len(self.probe_nll) < 2:
            return {"training/effective_lambda": eff, "training/probe_nll": float("nan"),
                    "training/equilibrium_drift": float("nan")}
        at, nll = np.array(self.probe_nll).T  # (P,) each
        earlier = int(np.argmin(np.abs(at[:-1] - DRIFT_FROM * steps)))  # never the last point itself
        return {"training/effective_lambda": eff, "training/probe_nll": float(nll[-1]),
                "training/equilibrium_drift": float(abs(nll[-1] - nll[earlier]))}

    def after_backward(self, step: int, model: nn.Module) -> int:
        p = self.p
        if p.lam == 0:
            return 0
        params = list(model.parameters())
        self.norm_sl += grad_norm([q.grad for q in params])
        if step % p.pg_every or self.env_steps >= self.budget.env_steps:
            return 0
        g_sl = [q.grad.clone() if q.grad is not None else None for q in params]
        model.eval()  # collect and score with the dropout-free policy that acts
        groups, used = collect(self.task, self.policy, p.groups, p.k, seeds.online(self.seed, step),
                               self.budget.env_steps - self.env_steps)
        self.env_steps += used
        self.rollout_flops += used * model.flops_per_token()
        tokens = 0
        if groups:
            for q in params:
                q.grad = None
            pg, info = rloo_pg_loss(model, groups, p.steps_per_episode, self.rng)
            (p.lam * pg).backward()
            self.norm_rl += grad_norm([q.grad for q in params])
            for q, g in zip(params, g_sl):
                q.grad = g if q.grad is None else (q.grad if g is None else q.grad + g)
            tokens = sum(len(g) for g in groups) * p.steps_per_episode * model.context
            self.pg_updates += 1
            self.logger.scalar("charts/episodic_return", info["episodic_return"], step)
        else:
            for q, g in zip(params, g_sl):
                q.grad = g
        model.train()
        return tokens


class Mixture:
    def __init__(self, params: MixtureParams):
        self.params = params

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        cfg, cond, model, sampler = bc_setup(p, dataset, budget.gradient_steps, seed)
        policy = PredictorPolicy(model, cond)
        probe_sampler = SequenceSampler(dataset, cond, model.context, model.head.discrete, seed=seeds.auxiliary(seed))
        probe = probe_sampler.sample(PROBE_WINDOWS)  # the same windows at every log interval
        term = PolicyGradientTerm(p, task, policy, budget, seed, logger, probe)
        stats = train_predictor(model, sampler, cfg, logger, term)
        share = term.norm_rl / (term.norm_rl + term.norm_sl) if term.norm_rl > 0 else 0.0
        ledger = Ledger(online_env_steps=term.env_steps, reward_queries=term.env_steps, reward_grad_share=share,
                        gradient_steps=stats.steps, wall_time_s=time.perf_counter() - t0,
                        train_flops=stats.flops + term.rollout_flops)
        logger.scalar("charts/pg_updates", term.pg_updates, cfg.steps)
        return TrainedPolicy(policy, ledger, term.training_metrics(stats.steps))


METHODS.register("mixture", MethodDef(MixtureParams, Mixture),
                 "bc pretraining loss plus lambda x an RLOO policy-gradient term on online reward.")
