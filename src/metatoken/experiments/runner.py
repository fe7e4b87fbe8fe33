"""The runner: spec -> reference data -> grid of runs -> results.parquet -> report.html."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from metatoken.data.collect import reference_data
from metatoken.envs import make_task
from metatoken.experiments.local import execute_local, make_progress
from metatoken.experiments.results import write_results
from metatoken.experiments.run_one import is_complete
from metatoken.experiments.runs import RunResult, expand, reference_hyperparameters
from metatoken.experiments.spec import ExperimentSpec
from metatoken.methods.reference import ensure_reference_policy


@dataclass
class Outcome:
    out_dir: Path
    results: list[RunResult]
    results_path: Path
    report_path: Path

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status == "failed"]


def run_experiment(spec: ExperimentSpec, out_dir: Path, workers: int | None = None,
                   resume: bool = False, console: Console | None = None,
                   backend: str = "local", address: str | None = None) -> Outcome:
    """Execute every run of the spec into out_dir and build the results table and report."""
    from metatoken.report.html import write_report

    console = console or Console(stderr=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "experiment.json").write_text(json.dumps(spec.model_dump(), indent=2))
    runs_dir, data_dir = out_dir / "runs", out_dir / "datasets"
    runs = expand(spec)
    todo = [r for r in runs if not (resume and is_complete(runs_dir / r.run_id))]
    skipped = [RunResult(r.run_id, "skipped") for r in runs if r not in todo]
    if skipped:
        console.print(f"resume: {len(skipped)} complete run(s) skipped")
    with make_progress() as progress:
        tasks = {r.task_name: (r.task_id, r.task_options) for r in todo}
        collecting = progress.add_task("reference data and policy", total=len(tasks))
        for task_id, options in tasks.values():
            task = make_task(task_id, options)
            # pi_ref for the ledger's KL: bc on the reference data, trained once per task variant.
            ensure_reference_policy(reference_data(task, data_dir), data_dir, task.key,
                                    spec.budgets.gradient_steps, reference_hyperparameters(spec))
            progress.advance(collecting)
        workers = workers or os.cpu_count() or 1
        if backend == "ray":
            from metatoken.experiments.ray_backend import execute_ray

            results = execute_ray(todo, runs_dir, data_dir, workers, progress, address)
        else:
            results = execute_local(todo, runs_dir, data_dir, workers, progress)
    for r in results:
        if r.status == "failed":
            console.print(f"[red]run {r.run_id} failed:[/red] {r.error}")
    results_path = write_results(out_dir)
    report_path = write_report(out_dir)
    return Outcome(out_dir, skipped + results, results_path, report_path)
