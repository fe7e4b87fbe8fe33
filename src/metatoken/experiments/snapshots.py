"""Snapshot evaluation: smaller-budget runs derived from one training at the largest budget.

    <out>/runs/.snapshots/<snapshot run id>/<its identity>/   policy/, ledger.json, metrics.json,
                                                              history.json, rng.safetensors

`runs.expand` links grid runs that differ only in `budgets.env_steps`, for a method whose training at each
of those budgets is a prefix of the largest's (`Method.prefix_consistent`): the largest-budget run is the
*trainer* (`RunSpec.snapshots`), each smaller one a *snapshot run* (`RunSpec.snapshot_of`) that starts once
the trainer has finished. The trainer trains inside `methods.base.taking_snapshots`, and its training
saves here, as it passes each smaller budget, what a training at that budget would have returned: the
policy, the ledger up to that point (wall time included), the learning curve, the training metrics, and
the global torch RNG state (so evaluation draws what it would have drawn after that training).

A snapshot run loads its snapshot instead of training, then evaluates and measures as any run; its
ledger.json says `snapshot_of: <trainer run id>`. When there is no snapshot to load (the trainer failed
before reaching it, or a resumed trainer restarted past it from a checkpoint), the snapshot run trains
itself: the same result, more time. A snapshot goes when its run lands with a result; a recorded failure
keeps it, so does a killed experiment (for --resume); stale ones go with `prune_stale`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from metatoken.experiments import rundir
from metatoken.methods.base import Ledger, TrainedPolicy
from metatoken.policy import SavablePolicy

_DONE = "metrics.json"  # written last: a snapshot directory without it is not one
_HISTORY, _RNG = "history.json", "rng.safetensors"


def directory(runs_dir: Path, run_id: str, identity: str) -> Path:
    """Where the snapshot of run `run_id` (with this identity) lives."""
    return Path(runs_dir) / rundir.SNAPSHOTS / run_id / identity


def save(path: Path, trained: TrainedPolicy) -> None:
    """Write a training's result (and the current torch RNG state) to `path`, atomically (a rename)."""
    if not isinstance(trained.policy, SavablePolicy):
        raise TypeError(f"snapshot evaluation needs a savable policy, got {type(trained.policy).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tmp-"))
    try:
        trained.policy.save(tmp / rundir.POLICY)
        rundir.write_json(tmp / rundir.LEDGER, asdict(trained.ledger))
        rundir.write_json(tmp / _HISTORY, trained.curve)
        save_file({"torch": torch.get_rng_state()}, str(tmp / _RNG))
        rundir.write_json(tmp / _DONE, trained.metrics)
        if path.exists():  # a retried trainer writes the same snapshot again
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(path: Path) -> TrainedPolicy | None:
    """The training result saved at `path`, the torch RNG state restored as it was; None when there is none."""
    from metatoken.evaluate.measure.reference import load_saved_policy

    path = Path(path)
    if not (path / _DONE).is_file():
        return None
    policy = load_saved_policy(path / rundir.POLICY)
    ledger = Ledger(**rundir.read_json(path / rundir.LEDGER))
    torch.set_rng_state(load_file(str(path / _RNG))["torch"])  # after the load, whose network init draws from it
    return TrainedPolicy(policy, ledger, dict(rundir.read_json(path / _DONE)), list(rundir.read_json(path / _HISTORY)))


def remove(runs_dir: Path, run_id: str) -> None:
    """Drop run `run_id`'s snapshots (it has landed with a result)."""
    rundir.remove_per_run(runs_dir, rundir.SNAPSHOTS, run_id)


def prune_stale(runs_dir: Path) -> list[Path]:
    """Remove snapshots no run can use (unfinished writes, and those of runs complete with that identity)."""
    return rundir.prune_per_run(runs_dir, rundir.SNAPSHOTS,
                                lambda entries, landed: [p for p in entries if p.name == landed
                                                         or p.name.startswith(".")])


def replay_history(rows: list[dict[str, float]], logger) -> None:
    """Log a loaded learning curve as PPOLoop logged it while training (`charts/<key>` against env steps)."""
    for row in rows:
        for key, value in row.items():
            if key != "env_steps":
                logger.scalar(f"charts/{key}", value, int(row.get("env_steps", 0)))
