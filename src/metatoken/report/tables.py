"""Read a finished experiment directory into plain structures for the report."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from metatoken.experiments import rundir
from metatoken.experiments.results import current_run_dirs, failures


@dataclass
class ExperimentData:
    name: str
    spec: dict
    # values[metric][(task, method)] -> per-seed values
    values: dict[str, dict[tuple[str, str], list[float]]]
    # rollouts[(task, method)] -> list of per-run dicts of arrays (target, return, ...)
    rollouts: dict[tuple[str, str], list[dict[str, np.ndarray]]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return [t["name"] for t in self.spec["tasks"]]

    @property
    def methods(self) -> list[str]:
        return [m["name"] for m in self.spec["methods"]]

    def cell(self, metric: str, task: str, method: str) -> np.ndarray:
        return np.asarray(self.values.get(metric, {}).get((task, method), []), dtype=float)


def load_experiment(out_dir: Path) -> ExperimentData:
    """The experiment's spec, results table, failures and each current run's rollouts."""
    exp = rundir.ExperimentDir(Path(out_dir))
    spec = exp.read_experiment()
    table = pq.read_table(exp.results).to_pydict()
    values: dict = defaultdict(lambda: defaultdict(list))
    for task, method, metric, value in zip(table["task"], table["method"], table["metric"],
                                           table["value"]):
        values[metric][(task, method)].append(value)
    rollouts: dict = defaultdict(list)
    for run_dir in current_run_dirs(exp.root):
        if run_dir.rollouts.is_file():
            run = run_dir.read_spec()
            cols = pq.read_table(run_dir.rollouts).to_pydict()
            rollouts[(run["task_name"], run["method_name"])].append(
                {k: np.asarray(v) for k, v in cols.items()})
    return ExperimentData(spec["name"], spec, {k: dict(v) for k, v in values.items()},
                          dict(rollouts), failures(exp.root))
