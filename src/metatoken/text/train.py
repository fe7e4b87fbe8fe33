"""The one update loop every text recipe uses: AdamW, linear warmup, gradient clipping, ledger share.

A recipe supplies `step_terms(step) -> Terms(supervised, reward, tokens)`: the loss split into
its supervised part and its reward-derived part (either may be None). When both are present
the loop backpropagates them separately to measure each gradient's norm, so the ledger's
reward_grad_share is sum ||g_reward|| / sum (||g_supervised|| + ||g_reward||) over all updates,
measured, not declared; with one part present it is 0 or 1 exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from metatoken.logger import Logger, NullLogger
from metatoken.text.policy import TextPolicy


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 10
    grad_clip: float = 1.0


@dataclass
class Terms:
    supervised: torch.Tensor | None = None
    reward: torch.Tensor | None = None
    tokens: int = 0  # tokens the forward passes of this step trained on (for the FLOPs estimate)


@dataclass
class LoopStats:
    steps: int
    reward_grad_share: float
    wall_time_s: float
    train_flops: float
    last_loss: float


def _norm(params: list[torch.nn.Parameter]) -> float:
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None)))


def run_updates(policy: TextPolicy, steps: int, step_terms: Callable[[int], Terms], optim: OptimConfig,
                logger: Logger | None = None, tag: str = "text") -> LoopStats:
    """Up to `steps` optimiser steps on the losses step_terms(step) returns (from 1); empty Terms skip a step."""
    logger = logger or NullLogger()
    model = policy.model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, optim.warmup_steps)))
    t0, tokens, norm_sup, norm_rew, last, taken = time.perf_counter(), 0, 0.0, 0.0, float("nan"), 0
    model.train()
    for step in range(1, steps + 1):
        terms = step_terms(step)
        opt.zero_grad(set_to_none=True)
        parts = [t for t in (terms.supervised, terms.reward) if t is not None]
        if terms.supervised is not None and terms.reward is not None:
            terms.reward.backward(retain_graph=True)
            g_rew = [p.grad.clone() if p.grad is not None else None for p in params]
            norm_rew += _norm(params)
            opt.zero_grad(set_to_none=True)
            terms.supervised.backward()
            norm_sup += _norm(params)
            for p, g in zip(params, g_rew):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g
        elif parts:
            parts[0].backward()
            n = _norm(params)
            norm_rew, norm_sup = (norm_rew + n, norm_sup) if terms.reward is not None else (norm_rew, norm_sup + n)
        else:  # nothing to learn from this step (an empty filtered batch, a spent budget)
            continue
        taken += 1
        torch.nn.utils.clip_grad_norm_(params, optim.grad_clip)
        opt.step()
        sched.step()
        tokens += terms.tokens
        last = float(sum(float(t.detach()) for t in parts))
        if step % 25 == 0 or step == steps:
            logger.scalar(f"losses/{tag}_loss", last, step)
            logger.progress(step, steps)
    model.eval()
    total = norm_sup + norm_rew
    share = norm_rew / total if total > 0 else 0.0
    return LoopStats(taken, share, time.perf_counter() - t0, 3.0 * model.flops_per_token() * tokens, last)
