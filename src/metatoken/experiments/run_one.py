"""One run, start to finish: train, evaluate, measure, write its directory atomically.

The run directory is built under a temporary name and renamed into place, so a run
directory either holds a complete result (`metrics.json`) or a recorded failure
(`error.json`), never half of one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from metatoken.data import minari_io
from metatoken.envs import make_task
from metatoken.evaluate.evaluate import EVAL_SEED_OFFSET, command_levels, evaluate
from metatoken.evaluate.kl import has_log_prob, kl_per_episode
from metatoken.evaluate.measure import measure
from metatoken.evaluate.rollout import Rollouts
from metatoken.experiments.logger import ProgressFn, RunLogger
from metatoken.experiments.runs import RunResult, RunSpec
from metatoken.methods import Budget, make_method
from metatoken.methods.reference import load_reference_policy

METRICS, ERROR = "metrics.json", "error.json"
KL_EPISODES = 10  # episodes for the KL(pi || pi_ref) estimate


def is_complete(run_dir: Path) -> bool:
    return (run_dir / METRICS).is_file()


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float))


def _rollouts_table(r: Rollouts) -> pa.Table:
    return pa.table({
        "target": r.target, "return": r.returns, "length": r.lengths,
        "intended": r.intended, "exploit_steps": r.exploit_steps,
        "exploits": [",".join(sorted(s)) for s in r.exploits_fired],
    })


def _train_and_measure(run: RunSpec, tmp: Path, data_dir: Path, on_progress: ProgressFn | None):
    task = make_task(run.task_id, run.task_options)
    dataset = minari_io.load(data_dir / task.key)
    method = make_method(run.method_id, run.hyperparameters)
    budget = Budget(**run.budgets)
    torch.manual_seed(run.seed)
    logger = RunLogger(tmp / "tensorboard", on_progress)
    try:
        trained = method.train(task, dataset, budget, run.seed, logger)
        rollouts = evaluate(task, trained.policy, dataset, budget.eval_episodes, run.seed)
        trained.ledger.kl_to_reference_nats = _kl_to_reference(
            task, trained.policy, dataset, budget, run.seed, data_dir, run.reference_hyperparameters)
        metrics = measure(run.measurements, rollouts, task, dataset)
        metrics.update(trained.ledger.as_metrics())
        for name, value in metrics.items():
            if np.isfinite(value):
                logger.scalar(f"eval/{name}", value, budget.gradient_steps)
    finally:
        logger.close()
    if hasattr(trained.policy, "save"):
        (tmp / "policy").mkdir()
        trained.policy.save(tmp / "policy")
    pq.write_table(_rollouts_table(rollouts), tmp / "rollouts.parquet")
    _write_json(tmp / "ledger.json", trained.ledger.__dict__)
    return metrics


def _kl_to_reference(task, policy, dataset, budget: Budget, seed: int, data_dir: Path,
                     reference_hyperparameters: dict) -> float:
    """Mean KL(pi || pi_ref) nats per episode on evaluation-seeded episodes (top commanded level); NaN without pi_ref."""
    reference = load_reference_policy(data_dir, task.key, budget.gradient_steps, reference_hyperparameters)
    if reference is None or not has_log_prob(policy):  # no pi_ref, or a policy with no log-probs
        return float("nan")
    target = float(command_levels(dataset)[-1]) if policy.conditioned else None
    episodes = min(budget.eval_episodes, KL_EPISODES)
    return float(np.mean(kl_per_episode(task, policy, reference, episodes, EVAL_SEED_OFFSET + 1000 * seed,
                                        target)))


def execute_run(run: RunSpec, runs_dir: Path, data_dir: Path,
                on_progress: ProgressFn | None = None) -> RunResult:
    """Execute one run into runs_dir/<run_id>; failures are recorded, not raised."""
    final = runs_dir / run.run_id
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=runs_dir, prefix=f".{run.run_id}."))
    start = time.perf_counter()
    try:
        _write_json(tmp / "spec.json", run.to_json())
        try:
            metrics = _train_and_measure(run, tmp, data_dir, on_progress)
            _write_json(tmp / METRICS, metrics)
            result = RunResult(run.run_id, "ok", metrics)
        except Exception as err:  # noqa: BLE001  (a failing run is recorded; the others go on)
            for child in tmp.iterdir():
                if child.name != "spec.json":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            msg = f"{type(err).__name__}: {err}"
            _write_json(tmp / ERROR, {"error": msg, "traceback": traceback.format_exc(),
                                      "wall_time_s": time.perf_counter() - start})
            result = RunResult(run.run_id, "failed", error=msg)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
