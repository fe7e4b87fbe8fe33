"""Pretraining: a small causal LM trained by maximum likelihood on fresh samples from p0.

Every step draws a new batch from the world (seed stream `seeds.text_pretraining`), so the
model sees an unbounded corpus and its only error is approximation and optimisation:
KL(pi_pre || p0) over the support measures how close pretraining gets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from metatoken import seeds
from metatoken.logger import Logger
from metatoken.text.policy import TextPolicy, new_policy
from metatoken.text.train import LoopStats, OptimConfig, Terms, run_updates
from metatoken.text.world import World


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 800
    batch_size: int = 256
    lr: float = 3e-3
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2

    def to_json(self) -> dict:
        return asdict(self)


def pretrain(world: World, cfg: PretrainConfig, seed: int, logger: Logger | None = None
             ) -> tuple[TextPolicy, LoopStats]:
    """Maximum-likelihood pretraining on p0 samples: the reference policy pi_ref of every text recipe."""
    torch.manual_seed(seeds.training(seed))
    policy = new_policy(world.n_words, world.length, cfg.d_model, cfg.n_layers, cfg.n_heads)

    def terms(step: int) -> Terms:
        x = torch.as_tensor(world.sample(cfg.batch_size, seeds.text_pretraining(seed, step)))  # (B, L)
        return Terms(supervised=-policy.log_prob(x).mean(), tokens=x.numel())

    stats = run_updates(policy, cfg.steps, terms, OptimConfig(lr=cfg.lr), logger, tag="pretrain")
    return policy, stats
