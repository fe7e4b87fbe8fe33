"""The Method seam: every training recipe has one entry point and returns a policy plus a ledger.

    train(task, dataset, budget, seed, logger) -> TrainedPolicy(policy, ledger)

A method's hyperparameters are a pydantic model (unknown keys rejected); the registry
builds the method object from them, so `train` itself has the same signature everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.logger import Logger, NullLogger  # noqa: F401  (re-exported for methods)
from metatoken.policy import Policy
from metatoken.registry import Registry


@dataclass(frozen=True)
class Budget:
    """What a run may spend. Methods must stay within it; the ledger records what they used."""

    env_steps: int = 0  # online environment steps (0 = offline only)
    gradient_steps: int = 1000
    eval_episodes: int = 20  # per commanded condition level


@dataclass
class Ledger:
    """The amount of RL a run used."""

    online_env_steps: int = 0
    reward_queries: int = 0  # rewards the optimiser saw from online interaction
    offline_env_steps: int = 0  # steps of reference data the method trained on (collected by scripted behaviours)
    offline_reward_labels: int = 0  # reward values it read from the reference data (returns-to-go, filtering)
    reward_update_share: float = 0.0  # share of the applied parameter updates made by reward-derived terms
    kl_update_share: float = 0.0  # share made by KL-penalty terms (kl-finetune's beta terms)
    reward_grad_share: float = 0.0  # text recipes only: share of gradient norm (not an update share; 0 here)
    effective_lambda: float = 0.0  # mixture: mean over steps of lambda ||g_rl|| / ||g_sl|| (0 for every other method)
    kl_to_reference_nats: float = math.nan  # KL(pi || pi_ref) per episode on eval states
    gradient_steps: int = 0
    wall_time_s: float = 0.0
    train_flops: float = 0.0  # estimate

    def as_metrics(self) -> dict[str, float]:
        return {f"ledger/{k}": float(v) for k, v in asdict(self).items()}


def offline_use(trained_on: Dataset | None, rewards_read: Dataset | None) -> dict[str, int]:
    """The ledger's offline fields: steps of the data trained on, and steps whose rewards were read (0 for None)."""
    return {"offline_env_steps": trained_on.total_steps if trained_on is not None else 0,
            "offline_reward_labels": rewards_read.total_steps if rewards_read is not None else 0}


@dataclass
class TrainedPolicy:
    policy: Policy
    ledger: Ledger
    # what training itself measured for the claims (`training/...`, `charts/...`): run_one merges it into metrics
    metrics: dict[str, float] = field(default_factory=dict)
    # the learning curve as training logged it (one row per iteration); a snapshot run replays it
    curve: list[dict[str, float]] = field(default_factory=list)


class Method(Protocol):
    def train(
        self, task: Task, dataset: Dataset, budget: Budget, seed: int, logger: Logger
    ) -> TrainedPolicy: ...

    # Optional: `prefix_consistent(budgets: list[Budget]) -> bool`, True when training at each of these
    # budgets is exactly a prefix of training at the largest (snapshot evaluation, experiments/snapshots.py).
    # Such a method also honours `snapshot_request()` inside `train`.


def prefix_consistent(method: Method, budgets: list[Budget]) -> bool:
    """Whether `method` declares its trainings at these budgets prefixes of the largest one's."""
    check = getattr(method, "prefix_consistent", None)
    return bool(check(budgets)) if check is not None else False


SaveSnapshot = Callable[[Budget, TrainedPolicy], None]
_SNAPSHOTS: ContextVar[tuple[tuple[Budget, ...], SaveSnapshot] | None] = ContextVar("snapshots", default=None)


@contextmanager
def taking_snapshots(budgets: list[Budget], save: SaveSnapshot) -> Iterator[None]:
    """Within this block a prefix-consistent `train` calls `save(b, trained)` when its training passes each
    budget b, with exactly what a training at b would have returned."""
    token = _SNAPSHOTS.set((tuple(budgets), save))
    try:
        yield
    finally:
        _SNAPSHOTS.reset(token)


def snapshot_request() -> tuple[tuple[Budget, ...], SaveSnapshot] | None:
    """The budgets to snapshot at and the function that saves a snapshot, inside `taking_snapshots`."""
    return _SNAPSHOTS.get()


@dataclass(frozen=True)
class MethodDef:
    """A registered method: its hyperparameter model and how to build it."""

    params: type[BaseModel]
    build: Callable[[Any], Method]


METHODS: Registry[MethodDef] = Registry("method")


def make_method(method_id: str, hyperparameters: dict[str, Any] | None = None) -> Method:
    mdef = METHODS.get(method_id)
    return mdef.build(mdef.params.model_validate(hyperparameters or {}))

