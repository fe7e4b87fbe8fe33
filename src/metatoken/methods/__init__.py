"""Training recipes, all with train(task, dataset, budget, seed, logger) -> TrainedPolicy."""

from metatoken.methods import legacy_gym

legacy_gym.import_quietly()  # before stable-baselines3 imports it (methods/legacy_gym.py says why)

from metatoken.methods import bc as _bc  # noqa: F401
from metatoken.methods import condition as _condition  # noqa: F401
from metatoken.methods import condition_mlp as _condition_mlp  # noqa: F401
from metatoken.methods import filtered_bc as _filtered_bc  # noqa: F401
from metatoken.methods import kl_finetune as _kl_finetune  # noqa: F401
from metatoken.methods import mixture as _mixture  # noqa: F401
from metatoken.methods import offline_rl as _offline_rl  # noqa: F401  (d3rlpy imported only when trained)
from metatoken.methods import ppo as _ppo  # noqa: F401
from metatoken.methods import rl_as_sl as _rl_as_sl  # noqa: F401
from metatoken.methods.base import METHODS, Budget, Ledger, TrainedPolicy, make_method

__all__ = ["METHODS", "Budget", "Ledger", "TrainedPolicy", "make_method"]
