"""`bc`: behaviour cloning, the predictor with no condition."""

from pydantic import BaseModel, ConfigDict, Field

from metatoken.methods.base import METHODS, MethodDef
from metatoken.methods.slice_mlp import train_mlp


class BCParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(256, ge=1)


class BC:
    def __init__(self, params: BCParams):
        self.params = params

    def train(self, task, dataset, budget, seed, logger):
        p = self.params
        return train_mlp(dataset, budget, seed, logger, conditioned=False,
                         hidden=p.hidden, lr=p.lr, batch_size=p.batch_size)


METHODS.register("bc", MethodDef(BCParams, BC), "Behaviour cloning: the predictor with no condition.")
