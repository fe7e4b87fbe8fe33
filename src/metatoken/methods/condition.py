"""`condition`: the condition-token transformer trained on immutable reference data.

No RL gradient: the predictor learns what each level of performance looks like from a
condition metatoken (return-to-go, quantile bucket, good/bad or attribute vector) and is
commanded at evaluation time. `bc` and `condition-mlp` reuse this module's training.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from metatoken.data.dataset import Dataset
from metatoken.methods.base import (
    METHODS,
    Budget,
    Ledger,
    Logger,
    MethodDef,
    TrainedPolicy,
    offline_use,
)
from metatoken.models.train import TrainConfig, fit_predictor


class OptimParams(BaseModel):
    """Optimiser settings shared by every predictor method."""

    model_config = ConfigDict(extra="forbid")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(100, ge=0)
    grad_clip: float = Field(0.25, gt=0)
    batch_size: int = Field(64, ge=1)
    continuous_head: Literal["tanh", "gaussian"] = "tanh"

    def train_config(self, steps: int, seed: int) -> TrainConfig:
        """These optimiser settings as the trainer's config, for `steps` gradient steps."""
        return TrainConfig(steps=steps, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                           warmup_steps=self.warmup_steps, grad_clip=self.grad_clip, seed=seed)


class TransformerParams(OptimParams):
    """Transformer size. Defaults are demo-sized (the demo must finish in 3 minutes on 2 cores);
    the reference decision transformer is d_model 128, n_layers 3, context 20."""

    d_model: int = Field(64, ge=1)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(1, ge=1)
    context: int = Field(10, ge=1, description="K, steps in the attention window")
    dropout: float = Field(0.1, ge=0, lt=1)
    max_timestep: int = Field(1024, ge=1)

    def model_options(self) -> dict[str, Any]:
        return self.model_dump(include={"d_model", "n_layers", "n_heads", "context", "dropout", "max_timestep"})


class ConditionChoice(BaseModel):
    """Which condition metatoken, and its options."""

    model_config = ConfigDict(extra="forbid")
    condition: Literal["rtg", "quantile", "binary", "attribute"] = "rtg"
    buckets: int = Field(5, ge=2, description="quantile: number of return buckets")
    good_quantile: float = Field(0.5, gt=0, lt=1, description="binary: returns at or above it are good")
    attributes: list[Literal["return", "length", "intended", "exploit_rate"]] = ["return", "length"]

    def condition_options(self) -> dict[str, Any]:
        return {"quantile": {"buckets": self.buckets}, "binary": {"quantile": self.good_quantile},
                "attribute": {"names": tuple(self.attributes)}}.get(self.condition, {})


class ConditionParams(TransformerParams, ConditionChoice):
    pass


def reads_rewards(condition: str, condition_options: dict[str, Any]) -> bool:
    """Whether this condition reads the data's rewards (every kind but none and reward-free attribute vectors)."""
    if condition == "attribute":
        return "return" in condition_options.get("names", ())
    return condition != "none"


def train_predictor_method(
    params: OptimParams, dataset: Dataset, budget: Budget, seed: int, logger: Logger,
    model: str, model_options: dict[str, Any], condition: str, condition_options: dict[str, Any],
    rewards_read: Dataset | None = None,
) -> TrainedPolicy:
    """Train a predictor for budget.gradient_steps and fill the ledger (no online data, no rewards queried).

    The ledger counts the rewards of `dataset` as read when the condition reads them, or of
    `rewards_read` when the caller read them itself (filtered-bc's ranking of the full data).
    """
    t0 = time.perf_counter()
    train = params.train_config(budget.gradient_steps, seed)
    policy, stats = fit_predictor(dataset, condition, condition_options, model,
                                  {**model_options, "continuous_head": params.continuous_head}, train, logger)
    read = rewards_read if rewards_read is not None else \
        dataset if reads_rewards(condition, condition_options) else None
    ledger = Ledger(gradient_steps=stats.steps, wall_time_s=time.perf_counter() - t0, train_flops=stats.flops,
                    **offline_use(dataset, read))
    return TrainedPolicy(policy, ledger)


class ConditionMethod:
    def __init__(self, params: ConditionParams):
        self.params = params

    def train(self, task, dataset, budget, seed, logger) -> TrainedPolicy:
        p = self.params
        return train_predictor_method(p, dataset, budget, seed, logger, "transformer", p.model_options(),
                                      p.condition, p.condition_options())


METHODS.register(
    "condition", MethodDef(ConditionParams, ConditionMethod),
    "Condition-token transformer (decision-transformer family) trained on the reference data.",
)
