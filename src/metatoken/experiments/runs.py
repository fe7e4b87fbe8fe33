"""Runs: the grid a spec expands into (task × method × seed), pi_ref's run per task, and results.

pi_ref is an ordinary run: the spec's `reference` method entry (default: its first `bc`
entry, else `bc` with default hyperparameters) trained on the task at seed
`seeds.REFERENCE_TRAIN_SEED` with its budgets (the spec's, or the entry's own). When the grid already holds that run
(same method, hyperparameters, budgets and seed), the grid run *is* pi_ref; otherwise one
extra run, `<task>__reference__seed0`, is scheduled and kept out of the results. Every run
names its pi_ref's run id, and the backends start a run only once its pi_ref has finished.

Snapshot evaluation (experiments/snapshots.py): grid runs that differ only in `budgets.env_steps`, of a
method whose trainings at those budgets are prefixes of one another (`Method.prefix_consistent`), are
linked: the largest-budget run trains and snapshots, the others (`snapshot_of`) start after it and load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from metatoken import seeds
from metatoken.experiments.spec import REFERENCE_NAME, ExperimentSpec, MethodSpec, method_budgets
from metatoken.text.integration import is_text_task


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
    reference: str = ""  # run id of the pi_ref this run's KL is measured against (its own id for pi_ref)
    reference_identity: str = ""  # that run's identity: a changed pi_ref changes this run too
    in_grid: bool = True  # False for a pi_ref run the grid does not contain (not in the results)
    exact_beta: float = 0.1  # beta of the exact KL-regularised target (exact/* on tabular tasks)
    # snapshot evaluation (experiments/snapshots.py): how a run is obtained, not what it is (not in its identity)
    snapshot_of: str = ""  # run id of the trainer whose training this run's policy is a snapshot of
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # a trainer's: run id -> identity, budgets

    @property
    def run_id(self) -> str:
        return f"{self.task_name}__{self.method_name}__seed{self.seed}"

    @property
    def is_reference(self) -> bool:
        return self.reference == self.run_id

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The runs that must finish before this one starts: its pi_ref (unless it is pi_ref), its trainer."""
        return tuple(r for r in ("" if self.is_reference else self.reference, self.snapshot_of) if r)

    @property
    def identity(self) -> str:
        """A hash of everything that determines this run's result, code version included (a snapshot run's
        result is the trained run's, so the snapshot fields are left out)."""
        from metatoken import __version__

        run = {k: v for k, v in asdict(self).items() if k not in ("snapshot_of", "snapshots")}
        blob = json.dumps({"run": run, "version": __version__}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "identity": self.identity}


@dataclass
class RunResult:
    run_id: str
    status: str  # "ok" | "failed" | "skipped" (complete already, --resume)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


def reference_method(spec: ExperimentSpec) -> MethodSpec:
    """The method entry pi_ref is trained with: `reference`, else the first `bc`, else default bc."""
    if spec.reference is not None:
        return spec.reference
    return next((m for m in spec.methods if m.id == "bc"), MethodSpec(id="bc", name=REFERENCE_NAME))


def exact_beta(spec: ExperimentSpec) -> float:
    """The spec's `beta`, else its first kl-finetune entry's beta, else kl-finetune's default 0.1."""
    if spec.beta is not None:
        return float(spec.beta)
    return next((float(m.hyperparameters.get("beta", 0.1)) for m in spec.methods if m.id == "kl-finetune"), 0.1)


def _same_training(a: RunSpec, method: MethodSpec, budgets: dict[str, int]) -> bool:
    return (a.method_id == method.id and a.hyperparameters == dict(method.hyperparameters)
            and a.budgets == budgets and a.seed == seeds.REFERENCE_TRAIN_SEED)


def expand(spec: ExperimentSpec) -> list[RunSpec]:
    """Every run to execute: per task, pi_ref's run first when the grid lacks it, then the grid
    in a stable order (methods, then seeds)."""
    ref_method = reference_method(spec)
    ref_budgets = method_budgets(spec, ref_method)
    runs: list[RunSpec] = []
    for t in spec.tasks:
        common = {"experiment": spec.name, "task_name": t.name, "task_id": t.id, "task_options": dict(t.options),
                  "measurements": list(spec.measurements), "exact_beta": exact_beta(spec)}
        grid = [RunSpec(method_name=m.name, method_id=m.id, hyperparameters=dict(m.hyperparameters), seed=seed,
                        budgets=method_budgets(spec, m), **common)
                for m in spec.methods for seed in spec.seeds]
        if is_text_task(t.id):  # each text run pretrains (or loads) its own pi_ref: nothing to wait for
            runs += grid
            continue
        ref = next((r for r in grid if _same_training(r, ref_method, ref_budgets)), None)
        if ref is None:
            ref = RunSpec(method_name=REFERENCE_NAME, method_id=ref_method.id,
                          hyperparameters=dict(ref_method.hyperparameters), seed=seeds.REFERENCE_TRAIN_SEED,
                          budgets=ref_budgets, in_grid=False, **common)
            grid.insert(0, ref)
        ref = replace(ref, reference=ref.run_id)
        runs += link_snapshots([ref if r.run_id == ref.run_id else
                                replace(r, reference=ref.run_id, reference_identity=ref.identity) for r in grid])
    return runs


def _snapshot_group(run: RunSpec) -> str:
    """What runs must share to be one training's prefixes: all but the env-step budget (and the label)."""
    others = {k: v for k, v in run.budgets.items() if k != "env_steps"}
    return json.dumps([run.task_name, run.method_id, run.hyperparameters, run.seed, others], sort_keys=True,
                      default=str)


def link_snapshots(runs: list[RunSpec]) -> list[RunSpec]:
    """Make the largest-budget run of each group of prefix-consistent runs the trainer of the others.

    pi_ref's run is left out (the trainer may depend on it; it must not depend on a trainer)."""
    from metatoken.methods import Budget, make_method
    from metatoken.methods.base import prefix_consistent

    groups: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        if not r.is_reference:
            groups.setdefault(_snapshot_group(r), []).append(i)
    out = list(runs)
    for members in groups.values():
        budgets = [Budget(**runs[i].budgets) for i in members]
        if len(members) < 2 or not prefix_consistent(make_method(runs[members[0]].method_id,
                                                                 runs[members[0]].hyperparameters), budgets):
            continue
        trainer = max(members, key=lambda i: runs[i].budgets["env_steps"])  # the first of the largest
        snapshots = {}
        for i in members:
            if i != trainer:
                out[i] = replace(runs[i], snapshot_of=runs[trainer].run_id)
                snapshots[out[i].run_id] = {"identity": out[i].identity, "budgets": dict(runs[i].budgets)}
        out[trainer] = replace(runs[trainer], snapshots=snapshots)
    return out


class Schedule:
    """Hands out runs once their dependencies (pi_ref, trainer) have finished (ok or failed); pi_ref runs
    first, then trainers (their snapshot runs wait on them), then the rest in grid order."""

    def __init__(self, runs: list[RunSpec]):
        self._pending = list(runs)
        self._unfinished = {r.run_id for r in runs}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def next_ready(self) -> RunSpec | None:
        """The next run whose dependency is met, references before the others; None if none is."""
        ready = [r for r in self._pending if not any(d in self._unfinished for d in r.depends_on)]
        if not ready:
            return None
        run = min(ready, key=lambda r: (not r.is_reference, not r.snapshots))  # stable: grid order otherwise
        self._pending.remove(run)
        return run

    def finish(self, run_id: str) -> None:
        self._unfinished.discard(run_id)

    def retry(self, run: RunSpec) -> None:
        """Put a run back at the front (its worker died)."""
        self._pending.insert(0, run)
