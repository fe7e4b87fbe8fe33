"""`kl-finetune`: pretrain bc or condition, then maximise E[sum_t r_t] - beta * KL(pi || pi_base) online.

The base is pretrained for the same gradient budget as `bc` (`budget.gradient_steps`, unless
`pretrain_steps` says otherwise), so "RL" is not confounded with "less supervised training".
Then at most `finetune_steps` policy-gradient updates follow while env steps remain; each
plays `groups` x `k` episodes (a group shares its start) and steps on the KL-regularised
estimator (`methods/online.py: kl_regularised_loss`, derived in `methods/kl_regularised.py`):

    loss = -(1/N) sum_i sum_t [ log pi(a_t|h_t) (R_t - beta sum_{t'>t} KL_t' - b_t) - beta KL_t ],

KL_t = KL(pi(.|h_t) || pi_base(.|h_t)) in closed form at the visited states (pi_base is
teacher-forced along each episode while it is collected) and b_t the leave-one-out mean of
the group. The KL still to come enters the advantage, so the fixed point is the
KL-regularised optimum pi* proportional to pi_base exp(Q_soft / beta), not
pi_base exp(Q^R_pi / beta) (tests/methods/test_kl_regularised.py checks the estimator
against soft value iteration). The ledger counts pretraining and fine-tuning steps; its
update shares attribute every applied step (`methods/update_share.py`): pretraining steps
are supervised, a fine-tuning step splits between the reward term and the KL term
(`online.py: kl_regularised_terms`) by their share of Adam's first moment.
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
from metatoken.methods.online import collect, grad_norm, kl_regularised_terms
from metatoken.methods.update_share import AdamUpdateShares, UpdateMeter, clip_coef
from metatoken.models.flat import FlatParams
from metatoken.models.train import fit_predictor


class KLFinetuneParams(ConditionParams):
    base: Literal["bc", "condition"] = "bc"
    beta: float = Field(0.1, ge=0, description="weight of KL(pi || pi_base) in the score")
    pretrain_steps: int | None = Field(None, ge=1,
                                       description="supervised steps first; None = the whole gradient budget, as bc")
    finetune_steps: int = Field(100, ge=0,
                                description="policy-gradient updates after pretraining (while env steps last)")
    groups: int = Field(2, ge=1, description="start states per iteration")
    k: int = Field(4, ge=2, description="episodes per group (RLOO)")
    steps_per_episode: int = Field(32, ge=1, description="steps per episode in the gradient estimate")
    finetune_lr: float = Field(1e-4, gt=0)


class KLFinetune:
    def __init__(self, params: KLFinetuneParams):
        self.params = params

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        pre = p.pretrain_steps or budget.gradient_steps
        cond = p.condition if p.base == "condition" else "none"
        train = p.train_config(pre, seed)
        pretrain = UpdateMeter()
        opts = p.condition_options() if cond != "none" else {}
        policy, stats = fit_predictor(dataset, cond, opts,
                                      "transformer", {**p.model_options(), "continuous_head": p.continuous_head},
                                      train, logger, pretrain)
        model = policy.model
        base = type(policy)(copy.deepcopy(model), policy.condition)  # frozen pi_base
        target = float(command_levels(dataset)[-1]) if policy.conditioned else None
        params = list(model.parameters())
        # one flat buffer for Adam to step (models/flat.py): the same weights as stepping each tensor, fewer ops
        flat = FlatParams([{"params": params}])
        opt = torch.optim.Adam(flat.param_groups, lr=p.finetune_lr, foreach=True)
        shares = AdamUpdateShares(params, ("reward", "kl"), beta1=opt.defaults["betas"][0])
        rng = np.random.default_rng(seed)
        env_steps = updates = 0
        flops = stats.flops
        per_token = 3.0 * model.flops_per_token() * model.context
        while updates < p.finetune_steps and env_steps < budget.env_steps:
            model.eval()  # rollouts and the gradient both use the dropout-free policy that acts
            groups, used = collect(task, policy, p.groups, p.k, seeds.online(seed, updates * p.groups),
                                   budget.env_steps - env_steps, target, base)
            env_steps += used
            flops += 2 * used * model.flops_per_token()  # policy + base forward per step
            if not groups:
                break  # the remaining budget cannot finish a group
            loss_r, loss_k, info = kl_regularised_terms(model, groups, p.beta, p.steps_per_episode, rng)
            g_r = torch.autograd.grad(loss_r, params, allow_unused=True, retain_graph=True)
            g_k = (torch.autograd.grad(loss_k, params, allow_unused=True) if loss_k.requires_grad
                   else [None] * len(params))
            for q, a, b in zip(params, g_r, g_k):
                q.grad = a if b is None else (b if a is None else a + b)
            norm = grad_norm([q.grad for q in params])
            shares.record({"reward": list(g_r), "kl": list(g_k)}, clip_coef(norm, p.grad_clip))
            torch.nn.utils.clip_grad_norm_(params, p.grad_clip)
            flat.sync_grads()  # the summed grads above are new tensors: copy them into the flat buffer
            opt.step()
            shares.after_step()
            updates += 1
            flops += per_token * sum(len(g) for g in groups) * p.steps_per_episode
            logger.scalar("charts/episodic_return", info["episodic_return"], env_steps)
            logger.scalar("charts/kl_to_base", info["kl_to_base"], env_steps)
        flat.release()  # each parameter owns its storage again: the policy saves and copies as before
        model.eval()
        total = pretrain.moved + sum(shares.moved.values())
        ledger = Ledger(online_env_steps=env_steps, reward_queries=env_steps,
                        reward_update_share=shares.moved["reward"] / total if total > 0 else 0.0,
                        kl_update_share=shares.moved["kl"] / total if total > 0 else 0.0,
                        gradient_steps=stats.steps + updates, wall_time_s=time.perf_counter() - t0,
                        train_flops=flops,
                        **offline_use(dataset, dataset if reads_rewards(cond, opts) else None))
        return TrainedPolicy(policy, ledger)


METHODS.register("kl-finetune", MethodDef(KLFinetuneParams, KLFinetune),
                 "Pretrain bc/condition, then RLOO policy gradient on reward - beta * KL(pi || pi_base).")
