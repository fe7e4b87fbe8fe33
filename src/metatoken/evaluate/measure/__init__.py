"""Measurements: pure functions from rollouts (plus task and reference data) to named numbers.

Each is defined in docs/MEASUREMENTS.md; its docstring states the definition. A measurement
registered with `needs_run=True` also receives the run's `RunContext` (the trained policy,
the run seed and budget, and where pi_ref's saved policy lives), for numbers that need to
play the policy again, or score another policy along its evaluation episodes, such as KL to
the reference policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.evaluate.recorders import ScoredEpisodes
from metatoken.evaluate.rollout import Rollouts
from metatoken.policy import Policy
from metatoken.registry import Registry

MeasureFn = Callable[..., dict[str, float]]  # (rollouts, task, dataset[, run]) -> {name: value}


@dataclass(frozen=True)
class RunContext:
    """What a run-aware measurement may use besides the rollouts."""

    policy: Policy  # the trained policy (not reset: a measurement plays it from scratch)
    seed: int  # the run seed; evaluation streams derive from it (metatoken.seeds)
    eval_episodes: int
    reference_policy_dir: Path | None  # pi_ref's saved policy; None when pi_ref has none
    exact_beta: float = 0.1  # beta of the exact KL-regularised target on tabular tasks (exact/*)
    # the sampled evaluation's episodes at the top data level, kept for KL to pi_ref
    # (measure.reference.top_level_recorder); None: not recorded, the KL plays those episodes again
    top_episodes: ScoredEpisodes | None = None


@dataclass(frozen=True)
class Measurement:
    fn: MeasureFn
    needs_run: bool = False


MEASUREMENTS: Registry[Measurement] = Registry("measurement")


def measurement(id: str, needs_run: bool = False):
    """Register a measurement function under `id`; its docstring's first line is the doc."""

    def wrap(fn: MeasureFn) -> MeasureFn:
        MEASUREMENTS.register(id, Measurement(fn, needs_run), fn.__doc__ or id)
        return fn

    return wrap


def measure(ids: list[str], rollouts: Rollouts, task: Task, dataset: Dataset,
            run: RunContext | None = None) -> dict[str, float]:
    """The named measurements' numbers; run-aware ones are skipped when no `run` is given."""
    out: dict[str, float] = {}
    for mid in ids:
        m = MEASUREMENTS.get(mid)
        if m.needs_run:
            if run is not None:
                out.update(m.fn(rollouts, task, dataset, run))
        else:
            out.update(m.fn(rollouts, task, dataset))
    return out


from metatoken.evaluate.measure import capability as _capability  # noqa: F401
from metatoken.evaluate.measure import controllability as _controllability  # noqa: F401
from metatoken.evaluate.measure import exact as _exact  # noqa: F401
from metatoken.evaluate.measure import implementation as _implementation  # noqa: F401
from metatoken.evaluate.measure import reference as _reference  # noqa: F401
from metatoken.evaluate.measure import spookiness as _spookiness  # noqa: F401
from metatoken.evaluate.measure import visitation as _visitation  # noqa: F401
