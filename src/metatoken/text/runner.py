"""Running a text spec: the same spec schema, run directories and results.parquet as the control side.

    python -m metatoken.text.runner specs/text.yaml --out runs/text [--workers 2]

Until the experiment runner dispatches text tasks itself, this is the entry point: it
validates the spec (task id `text-world`, text recipe ids and hyperparameters), pretrains
pi_ref once per (task, seed) into out/datasets/, executes the grid in worker processes,
writes each run directory atomically (spec.json, metrics.json, ledger.json, policy/),
gathers results.parquet with `experiments.results.write_results` and renders
report.html with the text section (`report/text.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml
from pydantic import ValidationError

from metatoken.errors import UserError
from metatoken.experiments.results import write_results
from metatoken.experiments.runs import RunSpec, expand
from metatoken.experiments.spec import ExperimentSpec
from metatoken.methods.base import Budget
from metatoken.text.experiment import TEXT_TASK, reference_policy, run_text, task_options
from metatoken.text.recipes import TEXT_METHODS
from metatoken.text.world import make_world


def load_text_spec(path: Path | str) -> ExperimentSpec:
    """Read and validate a text spec; any problem is a one-line UserError naming the field."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such spec file")
    try:
        data = yaml.safe_load(path.read_text())
        spec = ExperimentSpec.model_validate(data)
    except yaml.YAMLError as err:
        raise UserError(f"{path}: invalid YAML ({getattr(err, 'problem', err)})") from None
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        raise UserError(f"{path}: {where}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}") from None
    for i, task in enumerate(spec.tasks):
        if task.id != TEXT_TASK:
            raise UserError(f"{path}: tasks[{i}].id: text specs use task {TEXT_TASK!r}, not {task.id!r}")
        task_options(task.options, f"{path}: tasks[{i}].options")
    for i, method in enumerate(spec.methods):
        mdef = TEXT_METHODS.get(method.id) if method.id in TEXT_METHODS else None
        if mdef is None:
            raise UserError(f"{path}: methods[{i}].id: text method {method.id!r} unknown "
                            f"(known: {', '.join(e.id for e in TEXT_METHODS)})")
        try:
            mdef.params.model_validate(method.hyperparameters)
        except ValidationError as err:
            e = err.errors()[0]
            field = ".".join(str(p) for p in e["loc"])
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            raise UserError(f"{path}: methods[{i}].hyperparameters.{field}: {msg}") from None
    return spec


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float))


def execute_text_run(run: RunSpec, runs_dir: Path, cache_dir: Path) -> tuple[str, str]:
    """One run into runs_dir/<run_id> (complete or a recorded failure, never half); returns (run_id, status)."""
    import torch

    torch.set_num_threads(1)
    final = runs_dir / run.run_id
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=runs_dir, prefix=f".{run.run_id}."))
    start, cpu = time.perf_counter(), time.process_time()
    status = "ok"
    try:
        _write_json(tmp / "spec.json", run.to_json())
        try:
            budget = Budget(**run.budgets)
            result = run_text(run.task_options, run.method_id, run.hyperparameters, run.seed, budget, cache_dir)
            result.metrics["text/run_wall_s"] = time.perf_counter() - start
            result.metrics["text/run_cpu_s"] = time.process_time() - cpu
            result.policy.save(tmp / "policy")
            _write_json(tmp / "ledger.json", result.ledger.__dict__)
            _write_json(tmp / "metrics.json", result.metrics)
            (tmp / "target.txt").write_text(result.target_name + "\n")
        except Exception as err:  # noqa: BLE001  (a failing run is recorded; the others go on)
            for child in tmp.iterdir():
                if child.name != "spec.json":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            _write_json(tmp / "error.json", {"error": f"{type(err).__name__}: {err}",
                                             "traceback": traceback.format_exc()})
            status = "failed"
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        return run.run_id, status
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pretrain(options: dict, seed: int, cache_dir: Path) -> None:
    import torch

    torch.set_num_threads(1)
    opts = task_options(options)
    reference_policy(make_world(opts.world, seed=opts.world_seed), opts, seed, cache_dir)


def run_text_experiment(spec: ExperimentSpec, out_dir: Path, workers: int = 1) -> Path:
    """Execute every run of a text spec into out_dir; returns the report's path."""
    from metatoken.report.text import write_text_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "experiment.json", spec.model_dump())
    runs, cache = expand(spec), out_dir / "datasets"
    cache.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    pretrains = {(json.dumps(r.task_options, sort_keys=True), r.seed): r.task_options for r in runs}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_pretrain, [o for o in pretrains.values()], [s for _, s in pretrains],
                      [cache] * len(pretrains)))
        results = list(pool.map(execute_text_run, runs, [out_dir / "runs"] * len(runs), [cache] * len(runs)))
    failed = [rid for rid, status in results if status != "ok"]
    for rid in failed:
        print(f"run {rid} failed: {json.loads((out_dir / 'runs' / rid / 'error.json').read_text())['error']}",
              file=sys.stderr)
    _write_json(out_dir / "timing.json", {"wall_time_s": time.perf_counter() - t0, "runs": len(runs),
                                          "failed": len(failed), "workers": workers})
    write_results(out_dir)
    return write_text_report(out_dir)


def main(argv: list[str] | None = None) -> int:
    """Command line: validate the spec, run it, print where the report is (exit 2 on a user error)."""
    ap = argparse.ArgumentParser(prog="python -m metatoken.text.runner", description=__doc__.split("\n")[0])
    ap.add_argument("spec")
    ap.add_argument("--out", default="runs/text")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    try:
        spec = load_text_spec(args.spec)
        report = run_text_experiment(spec, Path(args.out), args.workers)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
