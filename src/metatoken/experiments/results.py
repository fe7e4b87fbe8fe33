"""The results store: one long-format Parquet file per experiment, and the runs it covers.

Columns: experiment, task, method (the entry's label), seed, metric, value, then the run's
metadata, one value per run repeated on each of its rows: method_id, task_id, `task.<option>`
for every task option, `task.sparsity_bits` (exact on tables-backed tasks, a Monte Carlo estimate on
tasks with a sparse reward variant such as Mountain, NaN elsewhere) with its 95% interval
`task.sparsity_bits_low` / `_high` (high = inf: no uniform episode succeeded, so the bits are a lower bound),
`hp.<name>` for every hyperparameter set in the spec and `budget.<name>` for every budget.
A metadata column a run does not set is null. Numeric metadata is float64, other values strings.
A phase diagram is one group-by (e.g. over `task.sparsity_bits` and `budget.env_steps`).
Readable with pandas, polars or duckdb. It holds exactly the grid runs of the experiment's
current spec (experiment.json): run directories of runs no longer in the spec, and pi_ref runs
the grid does not contain, are left out.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from metatoken import seeds
from metatoken.envs.sparsity import RESOLVING_EPISODES, Bits
from metatoken.experiments import rundir
from metatoken.experiments.runs import RunSpec, expand
from metatoken.experiments.spec import parse_spec

SCHEMA = pa.schema([
    ("experiment", pa.string()), ("task", pa.string()), ("method", pa.string()),
    ("seed", pa.int64()), ("metric", pa.string()), ("value", pa.float64()),
    ("method_id", pa.string()), ("task_id", pa.string()),
])
META_PREFIXES = ("task.", "hp.", "budget.")  # the per-run metadata columns after SCHEMA's
SPARSITY_COLUMN = "task.sparsity_bits"
SPARSITY_LOW, SPARSITY_HIGH = "task.sparsity_bits_low", "task.sparsity_bits_high"  # 95%; high = inf: a bound
SPARSITY_CACHE = "sparsity.json"  # in the experiment directory: each task variant's sparsity, computed once


def task_sparsity(task_id: str, options: dict[str, Any]) -> Bits | None:
    """-log2 P(a uniform-random policy finds the sparse reward): exact where the task has tables, else a
    Monte Carlo estimate (RESOLVING_EPISODES at `seeds.sparsity()`) where its env has a reward variant;
    None where neither applies (text worlds, envs without a sparse reward)."""
    from metatoken.envs import make_task
    from metatoken.envs.sparsity import NotMonteCarloReady, exact_sparsity, monte_carlo, sparse_variant
    from metatoken.text.integration import is_text_task

    if is_text_task(task_id):  # a text world has no env and no sparse reward to find
        return None
    task = make_task(task_id, options)
    exact = exact_sparsity(task)
    if exact is not None:
        return exact.reward
    if "reward" not in task.env_kwargs:  # no sparse variant: every episode of a dense reward "succeeds"
        return None
    try:
        return monte_carlo(sparse_variant(task), RESOLVING_EPISODES, seeds.sparsity()).reward
    except NotMonteCarloReady:  # a vector env without NEXT_STEP autoreset
        return None


def _cache_key(task_id: str, options: dict[str, Any]) -> str:
    """The cache's key: the task variant and how its Monte Carlo estimate is drawn (a change there misses)."""
    return json.dumps({"task": task_id, "options": options, "episodes": RESOLVING_EPISODES,
                       "seed": seeds.sparsity()}, sort_keys=True, default=str)


def _measured_env(task_id: str, options: dict[str, Any]) -> str:
    """What `task_sparsity` actually plays: the env of the task's sparse variant (gait 20 m and sparse 20 m
    are one), or the task itself where it has no env (a text world)."""
    from metatoken.envs import make_task
    from metatoken.envs.sparsity import sparse_variant
    from metatoken.text.integration import is_text_task

    if is_text_task(task_id):
        return _cache_key(task_id, options)
    task = sparse_variant(make_task(task_id, options))
    return json.dumps({"env": task.env_id, "kwargs": task.env_kwargs, "limit": task.max_episode_steps},
                      sort_keys=True, default=str)


def _bits_json(bits: Bits | None) -> dict[str, Any] | None:
    """Bits as JSON (an unbounded end as null), or None."""
    if bits is None:
        return None
    return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in dataclasses.asdict(bits).items()}


def _bits_from_json(obj: dict[str, Any] | None) -> Bits | None:
    """Bits from `_bits_json` (null ends as inf); raises TypeError on an entry of another shape."""
    if obj is None:
        return None
    return Bits(**{k: (math.inf if v is None else v) for k, v in obj.items()})


def _readable(entry: Any) -> bool:
    try:
        _bits_from_json(entry)
        return True
    except (TypeError, AttributeError):
        return False


def cached_sparsity(out_dir: Path, tasks: list[tuple[str, dict[str, Any]]]) -> dict[str, Bits | None]:
    """`task_sparsity` of each (task id, options), keyed by `_cache_key`, computed once per variant and
    kept in out_dir/sparsity.json (a Monte Carlo estimate costs ~5 CPU s on Mountain-v1)."""
    path = Path(out_dir) / SPARSITY_CACHE
    try:
        stored = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        stored = {}  # a damaged cache is recomputed, never trusted
    wanted = {_cache_key(t, o): (t, o) for t, o in tasks}
    missing = {k: v for k, v in wanted.items() if k not in stored or not _readable(stored[k])}
    measured: dict[str, Any] = {}  # per measured env: variants that differ only in their reward share it
    for key, (task_id, options) in missing.items():
        env = _measured_env(task_id, options)
        if env not in measured:
            measured[env] = _bits_json(task_sparsity(task_id, options))
        stored[key] = measured[env]
    if missing:
        rundir.write_json(path, stored)
    return {k: _bits_from_json(stored[k]) for k in wanted}


def run_metadata(spec: dict[str, Any], sparsity: Bits | None) -> dict[str, Any]:
    """A run's metadata columns (task options, sparsity, hyperparameters, budgets) from its spec.json."""
    meta: dict[str, Any] = {f"task.{k}": v for k, v in spec["task_options"].items()}
    meta[SPARSITY_COLUMN] = math.nan if sparsity is None else float(sparsity.bits)
    meta[SPARSITY_LOW] = math.nan if sparsity is None else float(sparsity.low)
    meta[SPARSITY_HIGH] = math.nan if sparsity is None else float(sparsity.high)
    meta.update({f"hp.{k}": v for k, v in spec["hyperparameters"].items()})
    meta.update({f"budget.{k}": v for k, v in spec["budgets"].items()})
    return meta


def _column(values: list[Any]) -> pa.Array:
    """float64 when every set value is a number (bools excluded), else strings (JSON for containers)."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    text = [None if v is None else (v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for v in values]
    return pa.array(text, pa.string())


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
    """Read every complete current run's metrics and metadata into the long table."""
    rows: dict[str, list] = {name: [] for name in SCHEMA.names}
    metas: list[dict[str, Any]] = []
    complete = [d for d in current_run_dirs(out_dir) if d.is_complete()]
    specs = [d.read_spec() for d in complete]
    sparsity = cached_sparsity(out_dir, [(s["task_id"], s["task_options"]) for s in specs])
    for run_dir, spec in zip(complete, specs):
        metrics = run_dir.read_metrics()
        meta = run_metadata(spec, sparsity[_cache_key(spec["task_id"], spec["task_options"])])
        for metric in sorted(metrics):
            rows["experiment"].append(spec["experiment"])
            rows["task"].append(spec["task_name"])
            rows["method"].append(spec["method_name"])
            rows["seed"].append(int(spec["seed"]))
            rows["metric"].append(metric)
            rows["value"].append(float(metrics[metric]))
            rows["method_id"].append(spec["method_id"])
            rows["task_id"].append(spec["task_id"])
            metas.append(meta)
    table = pa.table(rows, schema=SCHEMA)
    names = sorted({k for m in metas for k in m}, key=lambda k: (META_PREFIXES.index(k.split(".")[0] + "."), k))
    for name in names:
        table = table.append_column(name, _column([m.get(name) for m in metas]))
    return table


def failures(out_dir: Path) -> list[tuple[str, str]]:
    """(run_id, error line) for every recorded failure among the current runs, pi_ref's included."""
    return [(d.run_id, d.read_error()) for d in current_run_dirs(out_dir, grid_only=False) if d.is_failed()]


def claims_frame(table: pa.Table) -> pd.DataFrame:
    """The results table as the claims read it: `method` is the method id, the entry's label is `label`."""
    return table.to_pandas().rename(columns={"method": "label"}).rename(columns={"method_id": "method"})


def write_claims(out_dir: Path, table: pa.Table) -> Path:
    """Write out_dir/claims.json (C1-C9 from the results table, docs/CLAIMS.md) and return its path."""
    from metatoken.evidence.claims import claims_json

    path = rundir.ExperimentDir(Path(out_dir)).claims
    rundir.write_json(path, claims_json(claims_frame(table)))
    return path


def write_results(out_dir: Path) -> Path:
    """Write out_dir/results.parquet atomically, then claims.json from it; return the results' path."""
    path = rundir.ExperimentDir(Path(out_dir)).results
    table = gather(out_dir)
    with rundir.atomic_file(path) as tmp:
        pq.write_table(table, tmp)
    from metatoken.text.integration import is_text_task

    if not any(is_text_task(t) for t in table.column("task_id").to_pylist()):  # C1-C9 are control-side claims
        write_claims(out_dir, table)
    return path
