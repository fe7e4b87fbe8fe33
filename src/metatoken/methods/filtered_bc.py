"""`filtered-bc` (%BC): the `bc` transformer trained only on the top X% of reference episodes by return.

Selecting episodes by return reads the reference rewards once, offline (the ledger's
offline_reward_labels counts every step of the full data): no online interaction, no
reward queries and no reward-derived gradient term (reward_grad_share 0).
"""

from __future__ import annotations

from pydantic import Field

from metatoken.methods.base import METHODS, MethodDef, TrainedPolicy
from metatoken.methods.bc import BCParams
from metatoken.methods.condition import train_predictor_method


class FilteredBCParams(BCParams):
    fraction: float = Field(0.1, gt=0, le=1, description="share of episodes kept, best returns first")


class FilteredBC:
    def __init__(self, params: FilteredBCParams):
        self.params = params

    def train(self, task, dataset, budget, seed, logger) -> TrainedPolicy:
        p = self.params
        top = dataset.top_fraction(p.fraction)
        return train_predictor_method(p, top, budget, seed, logger, "transformer", p.model_options(), "none", {},
                                      rewards_read=dataset)  # ranking by return read every reward


METHODS.register("filtered-bc", MethodDef(FilteredBCParams, FilteredBC),
                 "%BC: the bc transformer trained on the top `fraction` of reference episodes by return.")
