"""Ray backend: the same runs as the local backend, on a Ray cluster (or a local Ray instance).

Nodes need no shared filesystem. The driver ships the experiment's reference data (Minari
datasets) to the cluster once, and each run's pi_ref policy with the run once pi_ref has
finished; each task unpacks them on its node, executes the run there with `execute_run` and
returns its finished run directory as bytes, which the driver unpacks under a temporary name
and renames into place, as the local backend does.
metatoken must be installed, at the same version, on every node.

A retried task resumes its training from the checkpoints of the attempt before it when its
node sees the driver's `runs/.checkpoints/` (the driver's own node, or a shared filesystem):
the task links the driver's checkpoint directory into its scratch `runs/` (experiments/
checkpoints.py: `mark_for_driver`). On any other node a retry trains from step 0.

Snapshot evaluation: a trainer's task returns the snapshots it saved, which the driver unpacks
under its `runs/.snapshots/`; a snapshot run's task receives its snapshot with the run.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from metatoken.errors import UserError
from metatoken.experiments import checkpoints, rundir, snapshots
from metatoken.experiments.progress import RunProgress
from metatoken.experiments.run_one import execute_run, record_failure
from metatoken.experiments.runs import RunResult, RunSpec, Schedule


def pack(directory: Path) -> bytes:
    """A directory as an in-memory gzip tarball (its contents at the archive root)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for child in sorted(Path(directory).iterdir()):
            tar.add(child, arcname=child.name)
    return buf.getvalue()


def unpack(blob: bytes, directory: Path) -> None:
    """Extract a `pack` archive into `directory` (regular files and folders only)."""
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(directory, filter="data")


def _remote_run(run: RunSpec, data_blob: bytes, reference_blob: bytes | None,
                shared: tuple[str, str] | None = None,
                snapshot_blob: bytes | None = None) -> tuple[RunResult, bytes, bytes | None]:
    """Executed on a Ray worker: one run in a scratch directory, returned packed, with a trainer's snapshots.

    `shared` is (the driver's checkpoint directory for this run, its mark's token): when this
    node sees that directory, the run checkpoints there, so a retry resumes. `snapshot_blob` is a
    snapshot run's snapshot, packed."""
    from metatoken.plugins import load_plugins

    load_plugins()  # the driver's --import modules (runtime_env) and entry points
    with tempfile.TemporaryDirectory(prefix="metatoken-ray-") as scratch:
        exp = rundir.ExperimentDir(Path(scratch))
        if shared is not None and checkpoints.shared_with_driver(Path(shared[0]), shared[1]):
            # a link, not a copy: the scratch's cleanup removes the link and leaves the driver's files
            local = checkpoints.for_run(exp.runs, run)
            local.parent.mkdir(parents=True)
            local.symlink_to(Path(shared[0]), target_is_directory=True)
        unpack(data_blob, exp.datasets)
        if reference_blob is not None:  # pi_ref's saved policy, where the KL measurement looks for it
            unpack(reference_blob, exp.run(run.reference).policy)
        if snapshot_blob is not None:
            unpack(snapshot_blob, snapshots.directory(exp.runs, run.run_id, run.identity))
        result = execute_run(run, exp.runs, exp.datasets)
        saved = exp.runs / rundir.SNAPSHOTS  # a trainer's snapshots (a snapshot run removed its own on success)
        return result, pack(exp.run(run.run_id).path), pack(saved) if run.snapshots and saved.is_dir() else None


def _land(blob: bytes, runs_dir: Path, run_id: str) -> None:
    """Unpack a returned run directory under a temporary name, then rename it into place."""
    tmp = rundir.temporary_run_dir(runs_dir, run_id)
    try:
        unpack(blob, tmp.path)
        rundir.land(tmp, runs_dir, run_id)
    finally:
        shutil.rmtree(tmp.path, ignore_errors=True)


def _reference_blob(runs_dir: Path, run: RunSpec) -> bytes | None:
    """pi_ref's saved policy for `run`, packed; None for pi_ref itself or when it saved none."""
    if run.is_reference:
        return None
    policy = rundir.RunDir(runs_dir / run.reference).policy
    return pack(policy) if policy.is_dir() else None


def _snapshot_blob(runs_dir: Path, run: RunSpec) -> bytes | None:
    """A snapshot run's snapshot, packed; None for other runs or when there is none (it then trains)."""
    path = snapshots.directory(runs_dir, run.run_id, run.identity)
    return pack(path) if run.snapshot_of and path.is_dir() else None


def execute_ray(runs: list[RunSpec], runs_dir: Path, data_dir: Path, workers: int, progress: RunProgress,
                address: str | None = None, retries: int = 1) -> list[RunResult]:
    """Execute runs as Ray tasks (one CPU each), each pi_ref before the runs that need it; `address`
    joins a cluster, else a local instance. A task whose worker dies is retried `retries` times."""
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray: Ray is not installed (pip install 'metatoken[ray]')") from None
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        data_ref = ray.put(pack(data_dir))
        from metatoken.plugins import plugin_env

        remote = ray.remote(num_cpus=1, max_retries=retries,
                            runtime_env={"env_vars": plugin_env()})(_remote_run)
        schedule, pending, results = Schedule(runs), {}, []
        while schedule or pending:
            while (run := schedule.next_ready()) is not None:
                ck = checkpoints.for_run(runs_dir, run).resolve()
                shared = (str(ck), checkpoints.mark_for_driver(ck))
                pending[remote.remote(run, data_ref, _reference_blob(runs_dir, run), shared,
                                      _snapshot_blob(runs_dir, run))] = run
                progress.start(run.run_id)
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                run = pending.pop(ref)
                try:
                    result, blob, saved = ray.get(ref)
                    if saved is not None:  # before the trainer lands, so its snapshot runs find them
                        unpack(saved, runs_dir / rundir.SNAPSHOTS)
                    _land(blob, runs_dir, run.run_id)
                    if result.status == "ok":  # a task that shared the checkpoints could not drop them itself
                        checkpoints.remove(runs_dir, run.run_id)
                        snapshots.remove(runs_dir, run.run_id)
                except ray.exceptions.RayError as err:  # the worker died on every attempt
                    result = record_failure(run, runs_dir, f"WorkerDied: {type(err).__name__} after "
                                                           f"{retries + 1} attempt(s)")
                schedule.finish(run.run_id)
                progress.finish(result)
                results.append(result)
        order = {run.run_id: i for i, run in enumerate(runs)}
        return sorted(results, key=lambda r: order[r.run_id])
    finally:
        if started:
            ray.shutdown()
