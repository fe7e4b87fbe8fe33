"""`bc`: behaviour cloning, the condition-token transformer with no condition."""

from __future__ import annotations

from typing import NamedTuple

from torch import nn

from metatoken.data.dataset import Dataset
from metatoken.methods.base import METHODS, MethodDef, TrainedPolicy
from metatoken.methods.condition import TransformerParams, train_predictor_method
from metatoken.models.conditions import Condition, fit_condition
from metatoken.models.sequences import SequenceSampler
from metatoken.models.train import TrainConfig, build_predictor


class BCParams(TransformerParams):
    pass


class BCSetup(NamedTuple):
    """What `bc` trains, built the way `fit_predictor` builds it, for recipes that add terms to it."""

    config: TrainConfig
    condition: Condition
    model: nn.Module
    sampler: SequenceSampler


def bc_setup(p: BCParams, dataset: Dataset, steps: int, seed: int) -> BCSetup:
    """The unconditioned transformer, its trainer config and its window sampler."""
    cond = fit_condition("none", dataset)
    model = build_predictor(dataset, cond, "transformer", seed=seed,
                            **{**p.model_options(), "continuous_head": p.continuous_head})
    sampler = SequenceSampler(dataset, cond, model.context, model.head.discrete, seed=seed)
    return BCSetup(p.train_config(steps, seed), cond, model, sampler)


class BC:
    def __init__(self, params: BCParams):
        self.params = params

    def train(self, task, dataset, budget, seed, logger) -> TrainedPolicy:
        p = self.params
        return train_predictor_method(p, dataset, budget, seed, logger, "transformer", p.model_options(),
                                      "none", {})


METHODS.register("bc", MethodDef(BCParams, BC), "Behaviour cloning: the same transformer with no condition.")
