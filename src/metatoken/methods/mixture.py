"""`mixture`: bc's supervised update on the reference data plus lambda x an Adam-normalised policy-gradient update.

    dtheta_s = AdamW_sl(grad NLL(data batch s)) + lambda * Adam_rl(grad RLOO(current online batch))   (every step s)

The supervised part is the house's one training loop (`models/train.py: train_predictor`)
run exactly as `bc` runs it. The reward term is a hook: `after_backward` computes the RLOO
gradient of the current online batch (clipped like the data gradient), `after_step` applies
it through its own Adam at lambda x the loop's current learning rate. Each term is
normalised by its own Adam, so lambda keeps its meaning under Adam: it is the ratio of the
reward update's per-coordinate step size to the supervised one's (in one shared Adam a
parameter that only the reward term touches would take full learning-rate steps at any
lambda > 0). Hence lambda = 1e-6 barely moves the weights off `bc`'s (test).

A fresh batch of `groups` x `k` episodes is collected every `pg_every` steps; with
`pg_every` unset it is derived from the env budget after the first batch
(ceil(gradient steps / (env budget // env steps per batch))), so the batches cover the
whole run. Between collections the surrogate -A log pi(a|h) is re-evaluated under the
current weights on the held batch (slightly off-policy, as in PPO's epochs without the
ratio). With lambda = 0 no hook acts and no online step is taken, so the weights are
`bc`'s bit for bit by construction.

Ledger: each step's two updates are measured on the weights (before and after each
optimiser step), so the attribution is exact: reward_update_share =
sum_s |dtheta_rl|_1 / sum_s (|dtheta_sl|_1 + |dtheta_rl|_1), and effective_lambda =
sum_s |dtheta_rl|_1 / sum_s |dtheta_sl|_1, the realised ratio of update sizes.

Run metrics for claim C7 (`TrainedPolicy.metrics`): `training/effective_lambda` (the ledger's
value); `training/probe_nll`, the action NLL of a fixed batch of reference windows (drawn once
from the auxiliary stream, scored in eval mode at every log interval) at the end; and
`training/equilibrium_drift` = |probe NLL at the end - probe NLL at the log point nearest 3/4 of
training| in nats per action, small when the pull of data and reward has settled (NaN with fewer
than two log points).
"""

from __future__ import annotations

import math
import time
from dataclasses import fields

import numpy as np
import torch
from pydantic import Field
from torch import nn

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
from metatoken.methods.online import Trajectory, collect, grad_norm, rloo_pg_loss
from metatoken.models.checkpoint import load_optimizer_state, optimizer_state
from metatoken.models.policy import PredictorPolicy
from metatoken.models.sequences import SequenceBatch, SequenceSampler
from metatoken.models.train import TrainHooks, action_nll, train_predictor

PROBE_WINDOWS = 64  # reference windows in the fixed NLL probe
DRIFT_FROM = 0.75  # equilibrium drift compares the end of training with this fraction of it

class MixtureParams(BCParams):
    lam: float = Field(0.1, ge=0, description="lambda, weight of the policy-gradient term")
    pg_every: int | None = Field(None, ge=1, description="gradient steps between online batches; None = spread "
                                 "the env budget over the whole run")
    groups: int = Field(2, ge=1)
    k: int = Field(4, ge=2, description="episodes per group (RLOO)")
    steps_per_episode: int = Field(32, ge=1)


class PolicyGradientTerm(TrainHooks):
    """Steps lambda x the Adam-normalised RLOO gradient of the current online batch after every supervised step."""

    def __init__(self, p: MixtureParams, task, policy: PredictorPolicy, budget: Budget, seed: int, logger: Logger,
                 total_steps: int, probe: SequenceBatch):
        self.p, self.task, self.policy, self.budget, self.seed, self.logger = p, task, policy, budget, seed, logger
        self.total_steps = total_steps
        self.probe, self.probe_nll = probe, []  # (step, NLL) at each log interval
        self.rng = np.random.default_rng(seed)
        self.env_steps, self.pg_updates, self.batches, self.rollout_flops = 0, 0, 0, 0.0
        self.pg_every, self.next_collect, self.groups = p.pg_every, 1, []
        self.moved_sl, self.moved_rl = 0.0, 0.0  # sum over steps of |dtheta|_1 per term
        self.opt: torch.optim.Adam | None = None
        self.g_rl: list[torch.Tensor | None] = []
        self.before: list[torch.Tensor] = []

    def _collect(self, step: int, model: nn.Module) -> None:
        """A fresh online batch if it is due and the env budget can still pay for one."""
        left = self.budget.env_steps - self.env_steps
        if step < self.next_collect or left <= 0:
            return
        groups, used = collect(self.task, self.policy, self.p.groups, self.p.k, seeds.online(self.seed, step), left)
        self.env_steps += used
        self.rollout_flops += used * model.flops_per_token()
        self.batches += 1
        if self.pg_every is None:  # spread the whole env budget evenly over the gradient budget
            affordable = max(1, self.budget.env_steps // max(used, 1))
            self.pg_every = max(1, math.ceil(self.total_steps / affordable))
        self.next_collect = step + self.pg_every
        if groups:
            self.groups = groups
            self.logger.scalar("charts/episodic_return", float(np.mean([t.ret for g in groups for t in g])), step)

    def after_backward(self, step: int, model: nn.Module) -> int:
        p = self.p
        if p.lam == 0:
            return 0
        params = list(model.parameters())
        self.before = [q.detach().clone() for q in params]
        model.eval()  # collect and score with the dropout-free policy that acts
        self._collect(step, model)
        self.g_rl = []
        if not self.groups:
            model.train()
            return 0
        pg, _ = rloo_pg_loss(model, self.groups, p.steps_per_episode, self.rng)
        self.g_rl = list(torch.autograd.grad(pg, params, allow_unused=True))  # leaves the data gradient in .grad
        self.g_rl = [None if g is None else g.detach() for g in self.g_rl]
        norm = grad_norm(self.g_rl)
        if norm > p.grad_clip:  # clipped like the supervised gradient
            self.g_rl = [None if g is None else g * (p.grad_clip / norm) for g in self.g_rl]
        model.train()
        return sum(len(g) for g in self.groups) * p.steps_per_episode * model.context

    def after_step(self, step: int, model: nn.Module, lr: float) -> None:
        if self.p.lam == 0:
            return
        params = list(model.parameters())
        with torch.no_grad():
            mid = [q.detach().clone() for q in params]
            self.moved_sl += float(sum((m - b).abs().sum() for m, b in zip(mid, self.before)))
            if not self.g_rl:
                return
            if self.opt is None:
                self.opt = torch.optim.Adam(params, lr=lr)
            self.opt.param_groups[0]["lr"] = self.p.lam * lr
            data_grads = [q.grad for q in params]
            for q, g in zip(params, self.g_rl):
                q.grad = g
            self.opt.step()
            for q, g in zip(params, data_grads):
                q.grad = g
            self.moved_rl += float(sum((q - m).abs().sum() for q, m in zip(params, mid)))
        self.pg_updates += 1

    def state(self) -> dict:
        """Counters, the RLOO generator, the held online batch and the reward term's Adam (see TrainHooks.state)."""
        return {"rng": self.rng.bit_generator.state, "env_steps": self.env_steps, "pg_updates": self.pg_updates,
                "batches": self.batches, "rollout_flops": self.rollout_flops, "pg_every": self.pg_every,
                "next_collect": self.next_collect, "moved_sl": self.moved_sl, "moved_rl": self.moved_rl,
                "probe_nll": self.probe_nll,
                "groups": [[{f.name: getattr(t, f.name) for f in fields(t)} for t in g] for g in self.groups],
                "opt": None if self.opt is None else optimizer_state(self.opt)}

    def load_state(self, state: dict) -> None:
        """Restore what `state` captured; the reward term's Adam is rebuilt on the model's parameters."""
        self.rng.bit_generator.state = state["rng"]
        for key in ("env_steps", "pg_updates", "batches", "rollout_flops", "pg_every", "next_collect",
                    "moved_sl", "moved_rl"):
            setattr(self, key, state[key])
        self.probe_nll = [(int(at), nll) for at, nll in state["probe_nll"]]
        self.groups = [[Trajectory(**t) for t in g] for g in state["groups"]]  # numpy fields come back as numpy
        if state["opt"] is not None:
            self.opt = torch.optim.Adam(list(self.policy.model.parameters()), lr=0.0)
            load_optimizer_state(self.opt, state["opt"])

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
        eff = self.effective_lambda()
        if len(self.probe_nll) < 2:
            return {"training/effective_lambda": eff, "training/probe_nll": float("nan"),
                    "training/equilibrium_drift": float("nan")}
        at, nll = np.array(self.probe_nll).T  # (P,) each
        earlier = int(np.argmin(np.abs(at[:-1] - DRIFT_FROM * steps)))  # never the last point itself
        return {"training/effective_lambda": eff, "training/probe_nll": float(nll[-1]),
                "training/equilibrium_drift": float(abs(nll[-1] - nll[earlier]))}

    def effective_lambda(self) -> float:
        """Realised ratio of update sizes: sum |dtheta_rl|_1 / sum |dtheta_sl|_1 over the run."""
        return self.moved_rl / self.moved_sl if self.moved_sl > 0 else 0.0

    def reward_update_share(self) -> float:
        """Share of the applied update (L1 over coordinates and steps) made by the reward term."""
        total = self.moved_rl + self.moved_sl
        return self.moved_rl / total if total > 0 else 0.0


class Mixture:
    def __init__(self, params: MixtureParams):
        self.params = params

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        cfg, cond, model, sampler = bc_setup(p, dataset, budget.gradient_steps, seed)
        policy = PredictorPolicy(model, cond)
        probe_sampler = SequenceSampler(dataset, cond, model.context, model.head.discrete, seed=seeds.auxiliary(seed))
        probe = probe_sampler.sample(PROBE_WINDOWS)  # the same windows at every log interval
        term = PolicyGradientTerm(p, task, policy, budget, seed, logger, cfg.steps, probe)
        stats = train_predictor(model, sampler, cfg, logger, term)
        ledger = Ledger(online_env_steps=term.env_steps, reward_queries=term.env_steps,
                        effective_lambda=term.effective_lambda(),
                        reward_update_share=term.reward_update_share(),
                        gradient_steps=stats.steps, wall_time_s=time.perf_counter() - t0,
                        train_flops=stats.flops + term.rollout_flops, **offline_use(dataset, None))
        logger.scalar("charts/pg_updates", term.pg_updates, cfg.steps)
        logger.scalar("charts/online_batches", term.batches, cfg.steps)
        return TrainedPolicy(policy, ledger, term.training_metrics(stats.steps))


METHODS.register("mixture", MethodDef(MixtureParams, Mixture),
                 "bc pretraining loss plus lambda x an RLOO policy-gradient term on online reward.")
