"""`mixture`: the bc pretraining loss on the reference data plus lambda x a policy-gradient term on the reward.

    g = grad NLL(data) + lambda * grad RLOO(return)        (one combined, clipped AdamW step)

The supervised part is exactly the predictor's training loop (same seeding, windows,
optimiser, schedule and clipping), so lambda = 0 takes no online steps and yields the
`bc` weights bit for bit. With lambda > 0, every `pg_every` steps a fresh batch of
`groups` x `k` online episodes adds the reward term while env steps remain; the ledger's
reward_grad_share is sum ||lambda g_rl|| / sum (||g_sl|| + ||lambda g_rl||) over all steps.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from pydantic import Field

from metatoken.methods.base import METHODS, Budget, Ledger, Logger, MethodDef, TrainedPolicy
from metatoken.methods.bc import BCParams, bc_setup
from metatoken.methods.online import collect, grad_norm, rloo_pg_loss
from metatoken.models.policy import PredictorPolicy
from metatoken.models.train import _optimizer, action_nll


class MixtureParams(BCParams):
    lam: float = Field(0.1, ge=0, description="lambda, weight of the policy-gradient term")
    pg_every: int = Field(10, ge=1, description="gradient steps between online batches")
    groups: int = Field(2, ge=1)
    k: int = Field(4, ge=2, description="episodes per group (RLOO)")
    steps_per_episode: int = Field(32, ge=1)


class Mixture:
    def __init__(self, params: MixtureParams):
        self.params = params

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        cfg, cond, model, sampler = bc_setup(p, dataset, budget.gradient_steps, seed)
        policy = PredictorPolicy(model, cond)
        # As train_predictor, step for step, so lambda = 0 reproduces bc exactly.
        torch.manual_seed(cfg.seed)
        opt = _optimizer(model, cfg)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)))
        rng = np.random.default_rng(seed)
        params = list(model.parameters())
        env_steps, tokens, pg_updates, norm_sl, norm_rl, rollout_flops = 0, 0, 0, 0.0, 0.0, 0.0
        model.train()
        for step in range(1, cfg.steps + 1):
            batch = sampler.sample(cfg.batch_size)
            loss = action_nll(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            tokens += int(batch.mask.sum())
            if p.lam > 0:
                norm_sl += grad_norm([q.grad for q in params])
            if p.lam > 0 and step % p.pg_every == 0 and env_steps < budget.env_steps:
                g_sl = [q.grad.clone() if q.grad is not None else None for q in params]
                model.eval()  # collect and score with the dropout-free policy that acts
                groups, used = collect(task, policy, p.groups, p.k, seed * 100_003 + step,
                                       budget.env_steps - env_steps)
                env_steps += used
                rollout_flops += used * model.flops_per_token()
                if groups:
                    opt.zero_grad(set_to_none=True)
                    pg, info = rloo_pg_loss(model, groups, 0.0, p.steps_per_episode, rng)
                    (p.lam * pg).backward()
                    norm_rl += grad_norm([q.grad for q in params])
                    for q, g in zip(params, g_sl):
                        q.grad = g if q.grad is None else (q.grad if g is None else q.grad + g)
                    tokens += sum(len(g) for g in groups) * p.steps_per_episode * model.context
                    pg_updates += 1
                    logger.scalar("charts/episodic_return", info["episodic_return"], step)
                else:
                    for q, g in zip(params, g_sl):
                        q.grad = g
                model.train()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            if step % cfg.log_every == 0 or step == cfg.steps:
                logger.scalar("losses/action_nll", loss.item(), step)
                logger.progress(step, cfg.steps)
        model.eval()
        share = norm_rl / (norm_rl + norm_sl) if norm_rl > 0 else 0.0
        ledger = Ledger(online_env_steps=env_steps, reward_queries=env_steps, reward_grad_share=share,
                        gradient_steps=cfg.steps, wall_time_s=time.perf_counter() - t0,
                        train_flops=3.0 * model.flops_per_token() * tokens + rollout_flops)
        logger.scalar("charts/pg_updates", pg_updates, cfg.steps)
        return TrainedPolicy(policy, ledger)


METHODS.register("mixture", MethodDef(MixtureParams, Mixture),
                 "bc pretraining loss plus lambda x an RLOO policy-gradient term on online reward.")
