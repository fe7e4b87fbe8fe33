"""The results store: one long-format Parquet file per experiment, and the runs it covers.

Columns: experiment, task, method, seed, metric, value. Readable with pandas, polars or duckdb.
It holds exactly the grid runs of the experiment's current spec (experiment.json): run
directories of runs no longer in the spec, and pi_ref runs the grid does not contain, are
left out.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from metatoken.experiments import rundir
from metatoken.experiments.runs import RunSpec, expand
from metatoken.experiments.spec import parse_spec

SCHEMA = pa.schema([
    ("experiment", pa.string()), ("task", pa.string()), ("method", pa.string()),
    ("seed", pa.int64()), ("metric", pa.string()), ("value", pa.float64()),
])


def current_runs(out_dir: Path, grid_only: bool = True) -> list[RunSpec]:
    """The runs of the spec stored in out_dir/experiment.json (its grid, or also pi_ref's extra runs)."""
    exp = rundir.ExperimentDir(Path(out_dir))
    runs = expand(parse_spec(exp.read_experiment(), str(exp.experiment)))
    return [r for r in runs if r.in_grid or not grid_only]


def current_run_dirs(out_dir: Path, grid_only: bool = True) -> list[rundir.RunDir]:
    """The existing directories of the current spec's runs (complete or failed), in run order."""
    exp = rundir.ExperimentDir(Path(out_dir))
    dirs = [exp.run(r.run_id) for r in current_runs(out_dir, grid_only)]
    return [d for d in dirs if d.is_complete() or d.is_failed()]


def gather(out_dir: Path) -> pa.Table:
    """Read every complete current run's metrics into the long table."""
    rows = {name: [] for name in SCHEMA.names}
    for run_dir in current_run_dirs(out_dir):
        if not run_dir.is_complete():
            continue
        spec, metrics = run_dir.read_spec(), run_dir.read_metrics()
        for metric in sorted(metrics):
            rows["experiment"].append(spec["experiment"])
            rows["task"].append(spec["task_name"])
            rows["method"].append(spec["method_name"])
            rows["seed"].append(int(spec["seed"]))
            rows["metric"].append(metric)
            rows["value"].append(float(metrics[metric]))
    return pa.table(rows, schema=SCHEMA)


def failures(out_dir: Path) -> list[tuple[str, str]]:
    """(run_id, error line) for every recorded failure among the current runs, pi_ref's included."""
    return [(d.run_id, d.read_error()) for d in current_run_dirs(out_dir, grid_only=False) if d.is_failed()]


def write_results(out_dir: Path) -> Path:
    """Write out_dir/results.parquet atomically and return its path."""
    path = rundir.ExperimentDir(Path(out_dir)).results
    with rundir.atomic_file(path) as tmp:
        pq.write_table(gather(out_dir), tmp)
    return path
