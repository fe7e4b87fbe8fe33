"""The runner: spec -> reference data -> runs (pi_ref's first) -> results.parquet -> claims.json.

While the workers train, a driver thread estimates each task's sparsity (results.cached_sparsity: a
Monte Carlo of uniform-random episodes, ~7 s per Mountain-v1 variant), so that the results table finds
it cached instead of the estimate following the last run on one core.

The report is not the runner's business: the CLI asks for it once the runner returns.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from safetensors import SafetensorError

from metatoken.data.collect import reference_data
from metatoken.data.validate import preflight
from metatoken.envs import make_task
from metatoken.errors import UserError
from metatoken.experiments import rundir
from metatoken.experiments.local import execute_local
from metatoken.experiments.progress import make_progress
from metatoken.experiments.results import cached_sparsity, write_results
from metatoken.experiments.runs import RunResult, RunSpec, expand
from metatoken.experiments.spec import ExperimentSpec
from metatoken.models.checkpoint import CONFIG
from metatoken.text.integration import is_text_task


@dataclass
class Outcome:
    out_dir: Path
    results: list[RunResult]  # every run, pi_ref's extra runs included, in run order
    results_path: Path

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status == "failed"]


def _reusable(exp: rundir.ExperimentDir, run: RunSpec) -> bool:
    """A complete run directory made by exactly this run (same identity hash)."""
    d = exp.run(run.run_id)
    return d.is_complete() and d.read_spec().get("identity") == run.identity


def _preflight(spec: ExperimentSpec, exp: rundir.ExperimentDir, runs: list[RunSpec], resume: bool) -> None:
    """Refuse, writing nothing, a bad --out, a bad user dataset, or a reused run whose policy cannot load."""
    root = exp.root
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root}: exists and is not a directory")
    for t in spec.tasks:
        if not is_text_task(t.id):  # text tasks have no reference dataset to check
            preflight(make_task(t.id, t.options))
    if resume:
        for run in runs:
            d = exp.run(run.run_id)
            if _reusable(exp, run) and (d.policy / CONFIG).is_file():
                _check_policy_loads(d.policy)


def _check_policy_loads(directory: Path) -> None:
    """A reused run's saved policy (pi_ref's, for the runs measured against it) must load; safetensors + JSON only."""
    from metatoken.evaluate.measure.reference import load_saved_policy

    try:
        load_saved_policy(directory)
    # torch's and safetensors' messages can span many lines: the first names the problem
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot load checkpoint {directory}: {first}") from None


def _sparsity_beside_runs(out_dir: Path, runs: list[RunSpec]) -> threading.Thread:
    """Start filling out_dir's sparsity cache for the runs' task variants in a driver thread.

    The driver only waits on its workers meanwhile, so the thread uses time the pool leaves idle (the tail
    of the grid) or shares the cores with it; the estimate is seeded (seeds.sparsity()), so its numbers are
    the same wherever it runs. A failure here is not reported: `write_results` computes what is missing.
    """
    tasks = list({r.task_name: (r.task_id, r.task_options) for r in runs}.values())

    def fill() -> None:
        with contextlib.suppress(Exception):  # what failed is recomputed, and then raised, by write_results
            cached_sparsity(out_dir, tasks)

    thread = threading.Thread(target=fill, name="sparsity", daemon=True)
    thread.start()
    return thread


def run_experiment(spec: ExperimentSpec, out_dir: Path, workers: int | None = None, resume: bool = False,
                   backend: str = "local", address: str | None = None, retries: int = 1,
                   log: TextIO | None = None) -> Outcome:
    """Execute every run of the spec into out_dir and write the results table."""
    exp = rundir.ExperimentDir(Path(out_dir))
    runs = expand(spec)
    _preflight(spec, exp, runs, resume)  # every check that can refuse, before anything is written
    try:
        exp.root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out_dir}: cannot create the directory ({err.strerror or err})") from None
    exp.remove_stale_temporaries()  # left by a killed experiment
    rundir.write_json(exp.experiment, spec.model_dump())
    todo = [r for r in runs if not (resume and _reusable(exp, r))]
    skipped = [RunResult(r.run_id, "skipped") for r in runs if r not in todo]
    progress = make_progress(len(todo), log)
    if skipped:
        print(f"resume: {len(skipped)} complete run(s) with the same identity reused", file=progress.stream,
              flush=True)
    for task_id, options in {r.task_name: (r.task_id, r.task_options) for r in todo}.values():
        if not is_text_task(task_id):  # the text world samples p0 itself
            reference_data(make_task(task_id, options), exp.datasets)  # collected once per task variant
    workers = workers or os.cpu_count() or 1
    # beside a worker pool only: with one worker the run shares the driver's process and its interpreter lock
    sparsity = _sparsity_beside_runs(exp.root, todo) if todo and (backend == "ray" or workers > 1) else None
    with progress:
        if backend == "ray":
            from metatoken.experiments.ray_backend import execute_ray

            results = execute_ray(todo, exp.runs, exp.datasets, workers, progress, address, retries)
        else:
            results = execute_local(todo, exp.runs, exp.datasets, workers, progress, retries)
    if sparsity is not None:
        sparsity.join()  # the cache file is the thread's until then
    by_id = {r.run_id: r for r in skipped + results}
    return Outcome(exp.root, [by_id[r.run_id] for r in runs], write_results(exp.root))
