"""Read a finished experiment directory into plain structures for the report."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metatoken.errors import UserError
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
    # filmstrips[(task, method)] -> PNG of the lowest seed's run (runs on envs that can draw themselves)
    filmstrips: dict[tuple[str, str], bytes] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return [t["name"] for t in self.spec["tasks"]]

    @property
    def methods(self) -> list[str]:
        return [m["name"] for m in self.spec["methods"]]

    def cell(self, metric: str, task: str, method: str) -> np.ndarray:
        return np.asarray(self.values.get(metric, {}).get((task, method), []), dtype=float)


def _read_parquet(path: Path) -> dict:
    """A Parquet file's columns; a corrupt or unreadable one is a one-line UserError naming it."""
    try:
        return pq.read_table(path).to_pydict()
    except (OSError, pa.ArrowException) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{path}: cannot read ({first})") from None


def load_experiment(out_dir: Path) -> ExperimentData:
    """The experiment's spec, results table, failures and each current run's rollouts."""
    exp = rundir.ExperimentDir(Path(out_dir))
    spec = exp.read_experiment()
    table = _read_parquet(exp.results)
    values: dict = defaultdict(lambda: defaultdict(list))
    for task, method, metric, value in zip(table["task"], table["method"], table["metric"],
                                           table["value"]):
        values[metric][(task, method)].append(value)
    rollouts: dict = defaultdict(list)
    strips: dict[tuple[str, str], tuple[int, bytes]] = {}
    for run_dir in current_run_dirs(exp.root):
        if run_dir.rollouts.is_file():
            run = run_dir.read_spec()
            key = (run["task_name"], run["method_name"])
            cols = _read_parquet(run_dir.rollouts)
            rollouts[key].append({k: np.asarray(v) for k, v in cols.items()})
            if run_dir.filmstrip.is_file() and (key not in strips or run["seed"] < strips[key][0]):
                strips[key] = (run["seed"], run_dir.filmstrip.read_bytes())
    return ExperimentData(spec["name"], spec, {k: dict(v) for k, v in values.items()},
                          dict(rollouts), failures(exp.root), {k: png for k, (_, png) in strips.items()})
