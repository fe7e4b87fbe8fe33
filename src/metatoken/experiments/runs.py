"""Runs: the grid a spec expands into (task × method × seed), and what each run returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from metatoken.experiments.spec import ExperimentSpec


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; JSON-serialisable so it can cross process boundaries."""

    experiment: str
    task_name: str
    task_id: str
    task_options: dict[str, Any]
    method_name: str
    method_id: str
    hyperparameters: dict[str, Any]
    seed: int
    budgets: dict[str, int]
    measurements: list[str]
    reference_hyperparameters: dict[str, Any] = field(default_factory=dict)  # bc's, for pi_ref

    @property
    def run_id(self) -> str:
        return f"{self.task_name}__{self.method_name}__seed{self.seed}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    run_id: str
    status: str  # "ok" | "failed" | "skipped" (complete already, --resume)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


def reference_hyperparameters(spec: ExperimentSpec) -> dict[str, Any]:
    """pi_ref is the spec's own bc (its first `bc` entry), so KL compares like with like."""
    return next((dict(m.hyperparameters) for m in spec.methods if m.id == "bc"), {})


def expand(spec: ExperimentSpec) -> list[RunSpec]:
    """The grid in a stable order: tasks, then methods, then seeds."""
    ref = reference_hyperparameters(spec)
    return [
        RunSpec(
            experiment=spec.name,
            task_name=t.name, task_id=t.id, task_options=dict(t.options),
            method_name=m.name, method_id=m.id, hyperparameters=dict(m.hyperparameters),
            seed=seed,
            budgets=spec.budgets.model_dump(),
            measurements=list(spec.measurements),
            reference_hyperparameters=ref,
        )
        for t in spec.tasks for m in spec.methods for seed in spec.seeds
    ]
