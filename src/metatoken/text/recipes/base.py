"""The text recipe seam: one entry point per recipe, the same Budget and Ledger as the control side.

    recipe.train(ctx: TextContext) -> TextTrained(policy, ledger, target, offline_labels)

Every recipe fine-tunes a copy of the pretrained model (ctx.reference, pi_ref) and declares
the exact distribution it should converge to (`target`: log p0 and rewards over the support
-> log-probabilities), so a run can report how far it ended from its own equilibrium.

Ledger conventions for text: an online env step is a token the optimiser sampled from its
own policy, a reward query a sequence of its own that it scored; rewards of p0 samples
(the offline corpus) are counted separately as `offline_reward_labels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from metatoken import seeds
from metatoken.logger import Logger, NullLogger
from metatoken.methods.base import Budget, Ledger
from metatoken.registry import Registry
from metatoken.text.policy import TextPolicy
from metatoken.text.train import LoopStats, OptimConfig
from metatoken.text.world import World

TargetFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (log p0 (N,), r (N,)) -> log target (N,)
CALIBRATION_SAMPLES = 4096  # p0 samples a recipe labels once to set thresholds and baselines


class TextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(128, ge=2, description="sequences per gradient step")
    lr: float = Field(1e-3, gt=0)


@dataclass
class TextContext:
    world: World
    reference: TextPolicy  # the pretrained model every recipe starts from (pi_ref)
    budget: Budget
    seed: int
    reward: str = "proxy"  # the task's reward: what the recipe optimises and labels with
    logger: Logger = field(default_factory=NullLogger)


@dataclass
class TextTrained:
    policy: TextPolicy
    ledger: Ledger
    target: TargetFn
    target_name: str  # e.g. "tilted(beta=0.25)"
    offline_reward_labels: int = 0
    info: dict[str, float] = field(default_factory=dict)
    tilt_beta: float | None = None  # set when the target is pi*_beta: large worlds estimate KL to it


@dataclass(frozen=True)
class TextMethodDef:
    params: type[TextParams]
    build: Callable[[Any], Any]


TEXT_METHODS: Registry[TextMethodDef] = Registry("text method")


def make_text_method(method_id: str, hyperparameters: dict[str, Any] | None = None):
    """A text recipe built from its id and validated hyperparameters."""
    mdef = TEXT_METHODS.get(method_id)
    return mdef.build(mdef.params.model_validate(hyperparameters or {}))


def corpus(ctx: TextContext, batch: int, n: int, reward: str) -> tuple[torch.Tensor, np.ndarray]:
    """Corpus batch `batch` (0 = calibration): n fresh p0 samples (n, L) and their rewards (n,)."""
    x = ctx.world.sample(n, seeds.text_corpus(ctx.seed, batch))
    return torch.as_tensor(x), ctx.world.reward(reward, x)


def optim(params: TextParams) -> OptimConfig:
    return OptimConfig(lr=params.lr)


def ledger_from(stats: LoopStats, online_tokens: int = 0, reward_queries: int = 0) -> Ledger:
    """A Ledger filled from the update loop's statistics (KL is set later, by the metrics)."""
    return Ledger(online_env_steps=online_tokens, reward_queries=reward_queries,
                  reward_grad_share=stats.reward_grad_share, gradient_steps=stats.steps,
                  wall_time_s=stats.wall_time_s, train_flops=stats.train_flops)
