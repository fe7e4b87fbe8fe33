"""The one owner of the experiment and run directory layout.

    <out>/experiment.json          the validated spec the experiment ran
    <out>/datasets/<task key>/     reference data (Minari), shared by every run of the task
    <out>/runs/<run id>/           one run: spec.json plus either a result or a failure
    <out>/runs/.checkpoints/       training checkpoints of unfinished runs (experiments/checkpoints.py)
    <out>/runs/.snapshots/         trainers' snapshots for smaller-budget runs (experiments/snapshots.py)
    <out>/results.parquet          one row per run × metric (experiments/results.py)
    <out>/claims.json              claims C1-C9 computed from results.parquet (experiments/results.py)
    <out>/report.html              the self-contained report (report/html.py)

A run directory is built under a temporary name (`runs/.<run id>.<random>`) and renamed into
place, so it holds either a complete result (`spec.json`, `metrics.json`, `ledger.json`,
`rollouts.parquet`, `policy/`, `tensorboard/`) or a recorded failure (`spec.json`,
`error.json`), never half of one. Every other module takes these names from here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metatoken.errors import UserError

EXPERIMENT, RUNS, DATASETS = "experiment.json", "runs", "datasets"
RESULTS, REPORT, CLAIMS = "results.parquet", "report.html", "claims.json"
SPEC, METRICS, ERROR, LEDGER = "spec.json", "metrics.json", "error.json", "ledger.json"
ROLLOUTS, POLICY, TENSORBOARD = "rollouts.parquet", "policy", "tensorboard"
FILMSTRIP = "filmstrip.png"  # frames of one evaluation episode (episode 0 at the top data level), for the report
_TEMP_PREFIX = "."  # temporary run directories and files start with a dot
CHECKPOINTS = ".checkpoints"  # under runs/: hidden from run_dirs, kept (pruned) by remove_stale_temporaries
SNAPSHOTS = ".snapshots"  # under runs/: likewise


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as JSON to `path` atomically (a temporary name, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f"{_TEMP_PREFIX}{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing, unreadable or corrupt one is a one-line UserError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})") from None


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp = path.with_name(f"{_TEMP_PREFIX}{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class RunDir:
    """One run's directory and the files in it."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    spec = property(lambda self: self.path / SPEC)
    metrics = property(lambda self: self.path / METRICS)
    error = property(lambda self: self.path / ERROR)
    ledger = property(lambda self: self.path / LEDGER)
    rollouts = property(lambda self: self.path / ROLLOUTS)
    policy = property(lambda self: self.path / POLICY)
    tensorboard = property(lambda self: self.path / TENSORBOARD)
    filmstrip = property(lambda self: self.path / FILMSTRIP)

    def is_complete(self) -> bool:
        """A finished, successful run (its metrics were written last, atomically)."""
        return self.metrics.is_file()

    def is_failed(self) -> bool:
        return self.error.is_file()

    def read_spec(self) -> dict[str, Any]:
        return read_json(self.spec)

    def read_metrics(self) -> dict[str, float]:
        return read_json(self.metrics)

    def read_error(self) -> str:
        return read_json(self.error)["error"]

    def clear_result(self) -> None:
        """Remove everything but spec.json (before recording a failure in a temporary run dir)."""
        for child in self.path.iterdir():
            if child.name != SPEC:
                shutil.rmtree(child) if child.is_dir() else child.unlink()


@dataclass(frozen=True)
class ExperimentDir:
    """An experiment's output directory."""

    root: Path

    experiment = property(lambda self: Path(self.root) / EXPERIMENT)
    runs = property(lambda self: Path(self.root) / RUNS)
    datasets = property(lambda self: Path(self.root) / DATASETS)
    results = property(lambda self: Path(self.root) / RESULTS)
    report = property(lambda self: Path(self.root) / REPORT)
    claims = property(lambda self: Path(self.root) / CLAIMS)

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.runs / run_id)

    def read_experiment(self) -> dict[str, Any]:
        return read_json(self.experiment)

    def run_dirs(self) -> list[RunDir]:
        """Completed or failed run directories (temporary ones excluded), by name."""
        if not self.runs.is_dir():
            return []
        return [RunDir(p) for p in sorted(self.runs.iterdir())
                if p.is_dir() and not p.name.startswith(_TEMP_PREFIX)]

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporary run directories that a killed experiment left behind, and checkpoints and
        snapshots no run can use; returns them. Those of unfinished runs stay (for --resume)."""
        from metatoken.experiments import checkpoints, snapshots

        if not self.runs.is_dir():
            return []
        stale = [p for p in self.runs.iterdir()
                 if p.name.startswith(_TEMP_PREFIX) and p.name not in (CHECKPOINTS, SNAPSHOTS)]
        for p in stale:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return stale + checkpoints.prune_stale(self.runs) + snapshots.prune_stale(self.runs)


def temporary_run_dir(runs_dir: Path, run_id: str) -> RunDir:
    """A fresh, empty temporary directory for building run `run_id` under `runs_dir`."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    return RunDir(Path(tempfile.mkdtemp(dir=runs_dir, prefix=f"{_TEMP_PREFIX}{run_id}.")))


def land(tmp: RunDir, runs_dir: Path, run_id: str) -> RunDir:
    """Rename a finished temporary run directory into place, replacing an older one."""
    final = Path(runs_dir) / run_id
    if final.exists():
        shutil.rmtree(final)
    tmp.path.rename(final)
    return RunDir(final)


def remove_temporaries(runs_dir: Path, run_id: str) -> None:
    """Delete the temporary directories of run `run_id` (its worker died while building one)."""
    for p in Path(runs_dir).glob(f"{_TEMP_PREFIX}{run_id}.*"):
        shutil.rmtree(p, ignore_errors=True)


def remove_per_run(runs_dir: Path, kind: str, run_id: str) -> None:
    """Drop `<runs_dir>/<kind>/<run_id>/` (CHECKPOINTS or SNAPSHOTS: the run has landed with a result)."""
    root = Path(runs_dir) / kind
    shutil.rmtree(root / run_id, ignore_errors=True)
    _remove_if_empty(root)


def prune_per_run(runs_dir: Path, kind: str, stale: Callable[[list[Path], str | None], list[Path]]) -> list[Path]:
    """Remove, under `<runs_dir>/<kind>/<run id>/<identity>/`, what `stale(entries, landed)` names for each
    run (`landed`: the identity of that run's complete directory, if any); empty directories go too."""
    root = Path(runs_dir) / kind
    if not root.is_dir():
        return []
    gone: list[Path] = []
    for base in root.iterdir():
        done = RunDir(Path(runs_dir) / base.name)
        landed = done.read_spec().get("identity") if done.is_complete() else None
        these = stale(list(base.iterdir()), landed) if base.is_dir() else []
        for p in these:
            shutil.rmtree(p, ignore_errors=True)
        gone += these
        _remove_if_empty(base)
    _remove_if_empty(root)
    return gone


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:  # not empty (another run's), or already gone
        pass
