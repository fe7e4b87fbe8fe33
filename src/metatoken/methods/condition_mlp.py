"""`condition-mlp`: the RvS-style MLP predictor, conditioned like `condition`, no history."""

from __future__ import annotations

from pydantic import Field

from metatoken.methods.base import METHODS, MethodDef, TrainedPolicy
from metatoken.methods.condition import ConditionChoice, OptimParams, train_predictor_method


class ConditionMLPParams(OptimParams, ConditionChoice):
    hidden: int = Field(256, ge=1)
    n_layers: int = Field(2, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)


class ConditionMLP:
    def __init__(self, params: ConditionMLPParams):
        self.params = params

    def train(self, task, dataset, budget, seed, logger) -> TrainedPolicy:
        p = self.params
        opts = p.model_dump(include={"hidden", "n_layers", "dropout"})
        return train_predictor_method(p, dataset, budget, seed, logger, "mlp", opts,
                                      p.condition, p.condition_options())


METHODS.register(
    "condition-mlp", MethodDef(ConditionMLPParams, ConditionMLP),
    "RvS-style MLP predictor conditioned like `condition` (no history), for comparison.",
)
