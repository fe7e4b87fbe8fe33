"""Ray backend: the same runs as the local backend, on a Ray cluster (or a local Ray instance).

Nodes need no shared filesystem. The driver ships the experiment's reference data (Minari
datasets and pi_ref) to the cluster once, each task unpacks it on its node, executes the
run there with `execute_run` and returns its finished run directory as bytes, which the
driver unpacks under a temporary name and renames into place, as the local backend does.
metatoken must be installed, at the same version, on every node.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from rich.progress import Progress

from metatoken.errors import UserError
from metatoken.experiments.run_one import execute_run
from metatoken.experiments.runs import RunResult, RunSpec


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


def _remote_run(run: RunSpec, data_blob: bytes) -> tuple[RunResult, bytes]:
    """Executed on a Ray worker: one run in a scratch directory, returned packed."""
    import torch

    torch.set_num_threads(1)  # one CPU per Ray task, as the local backend's workers
    with tempfile.TemporaryDirectory(prefix="metatoken-ray-") as scratch:
        data_dir, runs_dir = Path(scratch) / "datasets", Path(scratch) / "runs"
        unpack(data_blob, data_dir)
        result = execute_run(run, runs_dir, data_dir)
        return result, pack(runs_dir / run.run_id)


def _land(blob: bytes, runs_dir: Path, run_id: str) -> None:
    """Unpack a returned run directory under a temporary name, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(dir=runs_dir, prefix=f".{run_id}."))
    try:
        unpack(blob, tmp)
        final = runs_dir / run_id
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def execute_ray(runs: list[RunSpec], runs_dir: Path, data_dir: Path, workers: int,
                progress: Progress, address: str | None = None) -> list[RunResult]:
    """Execute runs as Ray tasks (one CPU each); `address` joins a cluster, else a local instance."""
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
        remote = ray.remote(num_cpus=1)(_remote_run)
        pending = {remote.remote(run, data_ref): run for run in runs}
        overall = progress.add_task(f"runs (ray, {len(runs)})", total=len(runs))
        results: list[RunResult] = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                run = pending.pop(ref)
                result, blob = ray.get(ref)
                _land(blob, runs_dir, run.run_id)
                results.append(result)
                progress.advance(overall)
        order = {run.run_id: i for i, run in enumerate(runs)}
        return sorted(results, key=lambda r: order[r.run_id])
    finally:
        if started:
            ray.shutdown()
