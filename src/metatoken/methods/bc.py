"""`bc`: behaviour cloning, the condition-token transformer with no condition."""

from __future__ import annotations

from metatoken.methods.base import METHODS, MethodDef, TrainedPolicy
from metatoken.methods.condition import TransformerParams, train_predictor_method


class BCParams(TransformerParams):
    pass


class BC:
    def __init__(self, params: BCParams):
        self.params = params

    def train(self, task, dataset, budget, seed, logger) -> TrainedPolicy:
        p = self.params
        return train_predictor_method(p, dataset, budget, seed, logger, "transformer", p.model_options(),
                                      "none", {})


METHODS.register("bc", MethodDef(BCParams, BC), "Behaviour cloning: the same transformer with no condition.")
