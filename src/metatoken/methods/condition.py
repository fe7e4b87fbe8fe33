"""`condition`: a return-conditioned predictor trained on immutable reference data."""

from pydantic import BaseModel, ConfigDict, Field

from metatoken.methods.base import METHODS, MethodDef
from metatoken.methods.slice_mlp import train_mlp


class ConditionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(256, ge=1)


class Condition:
    conditioned = True

    def __init__(self, params: ConditionParams):
        self.params = params

    def train(self, task, dataset, budget, seed, logger):
        p = self.params
        return train_mlp(dataset, budget, seed, logger, conditioned=True,
                         hidden=p.hidden, lr=p.lr, batch_size=p.batch_size)


METHODS.register(
    "condition", MethodDef(ConditionParams, Condition),
    "Return-conditioned predictor (condition metatoken) trained on the reference data.",
)
