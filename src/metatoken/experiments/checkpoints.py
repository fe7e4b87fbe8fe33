"""Where a run's training checkpoints live, and when they go.

    <out>/runs/.checkpoints/<run id>/<identity>/train-<k>/step-<N>/   (models/checkpoint.py)

Keyed by the run's identity, so a run whose spec changed never resumes a checkpoint of the
old one. `execute_run` opens `checkpointing(for_run(...))` around `Method.train`; a re-executed
run (a retry after its worker died, or `--resume` after a killed experiment) continues from the
newest checkpoint. A run that lands with a result drops its checkpoints; a recorded failure
keeps them, so a retry continues where the failed attempt stopped. Stale ones (other
identities, or runs that are complete) go at the next `ExperimentDir.remove_stale_temporaries`.

`METATOKEN_CHECKPOINT_EVERY` (gradient steps) overrides `TrainConfig.checkpoint_every` (250); 0 turns
checkpoints off.

Retries. The local backend's workers share the driver's `runs/`, so a retried run resumes from
the checkpoints its dead worker wrote. A Ray task runs in a scratch directory on its node; the
driver leaves a mark (`DRIVER_MARK`, a token naming this driver) in the run's checkpoint
directory, and a task that can read the same mark at the same path (the driver's node, or a
filesystem shared with it) checkpoints there, so a retry on such a node resumes. A retry on a
node that cannot see the driver's directory starts from step 0 (same result, more time).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from metatoken.errors import UserError
from metatoken.experiments import rundir
from metatoken.experiments.runs import RunSpec

EVERY_ENV = "METATOKEN_CHECKPOINT_EVERY"
DRIVER_MARK = ".driver"  # in a run's checkpoint directory: the token of the driver that shares it


def every_from_env() -> int | None:
    """The checkpoint interval the environment asks for, or None (each training's own default)."""
    raw = os.environ.get(EVERY_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise UserError(f"{EVERY_ENV}={raw!r}: expected a whole number of gradient steps (0: no checkpoints)")
    return int(raw)


def for_run(runs_dir: Path, run: RunSpec) -> Path:
    """This run's checkpoint directory; checkpoints of its other identities are removed first."""
    base = Path(runs_dir) / rundir.CHECKPOINTS / run.run_id
    if base.is_dir():
        for other in base.iterdir():
            if other.name != run.identity:
                shutil.rmtree(other, ignore_errors=True)
    return base / run.identity


def remove(runs_dir: Path, run_id: str) -> None:
    """Drop every checkpoint of run `run_id` (it has landed with a result)."""
    rundir.remove_per_run(runs_dir, rundir.CHECKPOINTS, run_id)


def prune_stale(runs_dir: Path) -> list[Path]:
    """Remove checkpoints no resumed run can use; returns them.

    Per run: those of a run that is complete with that identity, and all but the newest identity
    (a resumed experiment re-creates the current one, so an older one belongs to an older spec)."""

    def stale(entries: list[Path], landed: str | None) -> list[Path]:
        by_age = sorted(entries, key=lambda p: p.stat().st_mtime)
        return [p for i, p in enumerate(by_age) if p.name == landed or i < len(by_age) - 1]

    return rundir.prune_per_run(runs_dir, rundir.CHECKPOINTS, stale)


def mark_for_driver(directory: Path) -> str:
    """Mark a run's checkpoint directory as this driver's; returns the token a worker must read back."""
    token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"  # unique per driver and call, not random
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / DRIVER_MARK).write_text(token)
    return token


def shared_with_driver(directory: Path, token: str) -> bool:
    """True when this process sees the driver's checkpoint directory (its mark holds `token`)."""
    try:
        return (Path(directory) / DRIVER_MARK).read_text() == token
    except OSError:  # another node without a shared filesystem: the path is absent or someone else's
        return False
