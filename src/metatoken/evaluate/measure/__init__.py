"""Measurements: pure functions from rollouts (plus task and reference data) to named numbers.

Each is defined in docs/MEASUREMENTS.md; its docstring states the definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.evaluate.rollout import Rollouts
from metatoken.registry import Registry

MeasureFn = Callable[[Rollouts, Task, Dataset], dict[str, float]]


@dataclass(frozen=True)
class Measurement:
    fn: MeasureFn


MEASUREMENTS: Registry[Measurement] = Registry("measurement")


def measurement(id: str):
    """Register a measurement function under `id`; its docstring's first line is the doc."""

    def wrap(fn: MeasureFn) -> MeasureFn:
        MEASUREMENTS.register(id, Measurement(fn), fn.__doc__ or id)
        return fn

    return wrap


def measure(ids: list[str], rollouts: Rollouts, task: Task, dataset: Dataset) -> dict[str, float]:
    out: dict[str, float] = {}
    for mid in ids:
        out.update(MEASUREMENTS.get(mid).fn(rollouts, task, dataset))
    return out


from metatoken.evaluate.measure import capability as _capability  # noqa: F401
from metatoken.evaluate.measure import controllability as _controllability  # noqa: F401
from metatoken.evaluate.measure import spookiness as _spookiness  # noqa: F401
