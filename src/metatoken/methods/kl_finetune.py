"""`kl-finetune`: pretrain a `bc` or `condition` predictor, then maximise reward - beta * KL(pi || pi_base) online.

Policy gradient with a leave-one-out baseline (RLOO, `methods/online.py: rloo_pg_loss`):
each iteration plays `groups` x `k` episodes (a group shares its start), and steps on

    (1/N) sum_i [ -A_i sum_t log pi(a_t|h_t) + beta sum_t KL(pi(.|h_t) || pi_base(.|h_t)) ],

with A_i the episode's return minus the mean return of the other k - 1 (reward only) and
the per-state KL in closed form at the visited states (pi_base is teacher-forced along
each episode while it is collected). The KL term is not a score-function estimate of the
log-ratio, and it holds the visited states fixed: it does not carry the KL still to come
into the advantage. The whole fine-tuning update counts as reward-derived
(reward_grad_share 1 during fine-tuning); the ledger's share is weighted by gradient norm
over all steps, pretraining included.
"""

from __future__ import annotations

import copy
import time
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from metatoken import seeds
from metatoken.evaluate.evaluate import command_levels
from metatoken.methods.base import (
    METHODS,
    Budget,
    Ledger,
    Logger,
    MethodDef,
    TrainedPolicy,
    offline_use,
)
from metatoken.methods.condition import ConditionParams, reads_rewards
from metatoken.methods.online import GradNormTap, collect, grad_norm, rloo_pg_loss
from metatoken.models.train import fit_predictor


class KLFinetuneParams(ConditionParams):
    base: Literal["bc", "condition"] = "bc"
    beta: float = Field(0.1, ge=0, description="weight of KL(pi || pi_base) in the score")
    pretrain_steps: int | None = Field(None, ge=1, description="supervised steps first; None = 80% of the budget")
    groups: int = Field(2, ge=1, description="start states per iteration")
    k: int = Field(4, ge=2, description="episodes per group (RLOO)")
    steps_per_episode: int = Field(32, ge=1, description="steps per episode in the gradient estimate")
    finetune_lr: float = Field(1e-4, gt=0)


class KLFinetune:
    def __init__(self, params: KLFinetuneParams):
        self.params = params

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        pre = min(p.pretrain_steps or max(1, int(0.8 * budget.gradient_steps)), budget.gradient_steps)
        cond = p.condition if p.base == "condition" else "none"
        train = p.train_config(pre, seed)
        grads = GradNormTap(logger)
        opts = p.condition_options() if cond != "none" else {}
        policy, stats = fit_predictor(dataset, cond, opts,
                                      "transformer", {**p.model_options(), "continuous_head": p.continuous_head},
                                      train, grads)
        model = policy.model
        base = type(policy)(copy.deepcopy(model), policy.condition)  # frozen pi_base
        target = float(command_levels(dataset)[-1]) if policy.conditioned else None
        opt = torch.optim.Adam(model.parameters(), lr=p.finetune_lr)
        rng = np.random.default_rng(seed)
        env_steps = updates = 0
        norm_rl, flops = 0.0, stats.flops
        per_token = 3.0 * model.flops_per_token() * model.context
        while updates < budget.gradient_steps - pre and env_steps < budget.env_steps:
            model.eval()  # rollouts and the gradient both use the dropout-free policy that acts
            groups, used = collect(task, policy, p.groups, p.k, seeds.online(seed, updates * p.groups),
                                   budget.env_steps - env_steps, target, base)
            env_steps += used
            flops += 2 * used * model.flops_per_token()  # policy + base forward per step
            if not groups:
                break  # the remaining budget cannot finish a group
            loss, info = rloo_pg_loss(model, groups, p.beta, p.steps_per_episode, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm_rl += grad_norm([q.grad for q in model.parameters()])
            torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
            opt.step()
            updates += 1
            flops += per_token * sum(len(g) for g in groups) * p.steps_per_episode
            logger.scalar("charts/episodic_return", info["episodic_return"], env_steps)
            logger.scalar("charts/kl_to_base", info["kl_to_base"], env_steps)
        model.eval()
        norm_sl = grads.mean() * stats.steps  # sampled every log interval by the predictor's training loop
        share = norm_rl / (norm_rl + norm_sl) if norm_rl + norm_sl > 0 else 0.0
        ledger = Ledger(online_env_steps=env_steps, reward_queries=env_steps, reward_grad_share=share,
                        gradient_steps=stats.steps + updates, wall_time_s=time.perf_counter() - t0,
                        train_flops=flops,
                        **offline_use(dataset, dataset if reads_rewards(cond, opts) else None))
        return TrainedPolicy(policy, ledger)


METHODS.register("kl-finetune", MethodDef(KLFinetuneParams, KLFinetune),
                 "Pretrain bc/condition, then RLOO policy gradient on reward - beta * KL(pi || pi_base).")
