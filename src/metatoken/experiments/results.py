"""The results table: one long-format Parquet file per experiment.

Columns: experiment, task, method, seed, metric, value. Readable with pandas, polars or duckdb.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from metatoken.experiments.run_one import ERROR, METRICS

SCHEMA = pa.schema([
    ("experiment", pa.string()), ("task", pa.string()), ("method", pa.string()),
    ("seed", pa.int64()), ("metric", pa.string()), ("value", pa.float64()),
])


def run_dirs(out_dir: Path) -> list[Path]:
    """Completed or failed run directories under out_dir/runs (temporary ones excluded)."""
    root = Path(out_dir) / "runs"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def gather(out_dir: Path) -> pa.Table:
    """Read every complete run's metrics into the long table."""
    rows = {name: [] for name in SCHEMA.names}
    for run_dir in run_dirs(out_dir):
        if not (run_dir / METRICS).is_file():
            continue
        spec = json.loads((run_dir / "spec.json").read_text())
        metrics = json.loads((run_dir / METRICS).read_text())
        for metric in sorted(metrics):
            rows["experiment"].append(spec["experiment"])
            rows["task"].append(spec["task_name"])
            rows["method"].append(spec["method_name"])
            rows["seed"].append(int(spec["seed"]))
            rows["metric"].append(metric)
            rows["value"].append(float(metrics[metric]))
    return pa.table(rows, schema=SCHEMA)


def failures(out_dir: Path) -> list[tuple[str, str]]:
    """(run_id, error line) for every recorded failure."""
    out = []
    for run_dir in run_dirs(out_dir):
        if (run_dir / ERROR).is_file():
            out.append((run_dir.name, json.loads((run_dir / ERROR).read_text())["error"]))
    return out


def write_results(out_dir: Path) -> Path:
    """Write out_dir/results.parquet atomically and return its path."""
    path = Path(out_dir) / "results.parquet"
    tmp = path.with_name(".results.parquet.tmp")
    pq.write_table(gather(out_dir), tmp)
    os.replace(tmp, path)
    return path
