"""One run, start to finish: train, evaluate, save the policy, measure, write its directory.

Every run trains and evaluates with one torch thread and one BLAS thread (experiments/threads.py),
whatever the backend and worker count, so the same spec and seed give the same metrics with
--workers 1, 2 or Ray (a float reduction split over a different number of threads rounds
differently), and with malloc keeping freed memory (experiments/allocator.py: fewer page faults, same arithmetic).

The run directory is built under a temporary name and renamed into place (experiments/
rundir.py), so it holds either a complete result or a recorded failure, never half of one.

Training checkpoints: `Method.train` runs inside `models.checkpoint.checkpointing(dir)` with the
run's checkpoint directory (experiments/checkpoints.py), which every `train_predictor` call
reads; so a re-executed run resumes its training without any method knowing. They are
removed when the run lands with a result.

Snapshot evaluation (experiments/snapshots.py): a trainer trains inside `taking_snapshots` with the
budgets of its snapshot runs; a snapshot run loads its snapshot instead of training (or trains when
there is none), then evaluates, measures and writes its directory like any run.
"""

from __future__ import annotations

import shutil
import time
import traceback
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from metatoken.data import minari_io
from metatoken.envs import make_task
from metatoken.evaluate.evaluate import evaluate, first_top_episode
from metatoken.evaluate.measure import RunContext, measure
from metatoken.evaluate.measure.reference import LEDGER_MEASUREMENTS, top_level_recorder
from metatoken.evaluate.recorders import ActionEntropy, EpisodeActions
from metatoken.evaluate.rollout import Rollouts
from metatoken.experiments import checkpoints, rundir, snapshots
from metatoken.experiments.allocator import retain_freed_memory
from metatoken.experiments.logger import ProgressFn, RunLogger
from metatoken.experiments.runs import RunResult, RunSpec
from metatoken.experiments.threads import run_threads
from metatoken.methods import Budget, TrainedPolicy, make_method
from metatoken.methods.base import taking_snapshots
from metatoken.models.checkpoint import checkpointing
from metatoken.policy import SavablePolicy, ScoredPolicy
from metatoken.report.filmstrip import Evaluated, evaluated_filmstrip
from metatoken.text.integration import execute_text, is_text_task

GREEDY = "greedy/"  # prefix of the metrics measured on the policy acting on its mean / mode


def _rollouts_table(r: Rollouts) -> pa.Table:
    return pa.table({
        "target": r.target, "return": r.returns, "length": r.lengths,
        "intended": r.intended, "exploit_steps": r.exploit_steps,
        "exploits": [",".join(sorted(s)) for s in r.exploits_fired],
    })


def _write_filmstrip(task, policy, episode: Evaluated, tmp: rundir.RunDir) -> None:
    """Frames of the first evaluation episode at the top data level (replayed from the sampled evaluation's
    actions), when the env can draw itself."""
    if "rgb_array" not in _render_modes(task):
        return
    try:
        png = evaluated_filmstrip(task, policy, episode).png
    except gym.error.DependencyNotInstalled:  # e.g. a classic-control env without pygame: no picture, not a failure
        return
    tmp.filmstrip.write_bytes(png)


def _render_modes(task) -> list[str]:
    env = task.make_env()
    try:
        return list(env.metadata.get("render_modes", []))
    finally:
        env.close()


def _train_and_measure(run: RunSpec, tmp: rundir.RunDir, runs_dir: Path, data_dir: Path,
                       on_progress: ProgressFn | None) -> dict[str, float]:
    if is_text_task(run.task_id):
        return execute_text(run, tmp, data_dir)
    task = make_task(run.task_id, run.task_options)
    dataset = minari_io.load(Path(data_dir) / task.key)
    method = make_method(run.method_id, run.hyperparameters)
    budget = Budget(**run.budgets)
    torch.manual_seed(run.seed)
    logger = RunLogger(tmp.tensorboard, on_progress)
    try:
        trained, snapshot_of = _train(run, method, task, dataset, budget, runs_dir, logger)
        entropy = [ActionEntropy(trained.policy)] if isinstance(trained.policy, ScoredPolicy) else []
        # the filmstrip's episode: its actions are kept so that the strip replays it instead of playing again
        shown = EpisodeActions(first_top_episode(trained.policy.conditioned, budget.eval_episodes))
        # KL to pi_ref scores pi_ref along these episodes at the top data level instead of playing again
        top = top_level_recorder(trained.policy, budget.eval_episodes)
        record = "distribution" in run.measurements  # it compares whole episodes' states with the data's
        rollouts = evaluate(task, trained.policy, dataset, budget.eval_episodes, run.seed,
                            recorders=[*entropy, shown, *([top] if top is not None else [])], record=record)
        # noise versus intent: the same episodes (same env seeds) acting on the mean / mode
        greedy = evaluate(task, trained.policy, dataset, budget.eval_episodes, run.seed, deterministic=True,
                          record=record)
        if isinstance(trained.policy, SavablePolicy):
            trained.policy.save(tmp.policy)
        # pi_ref is its own reference: it is scored against its saved copy, still in the temporary dir
        ref = tmp if run.is_reference else rundir.RunDir(Path(runs_dir) / run.reference)
        context = RunContext(trained.policy, run.seed, budget.eval_episodes,
                             ref.policy if ref.policy.is_dir() else None, run.exact_beta, top)
        metrics = {**trained.ledger.as_metrics(), **trained.metrics}  # the ledger, then what training measured
        ids = list(dict.fromkeys(run.measurements + LEDGER_MEASUREMENTS))  # the ledger's, listed or not
        metrics.update(measure(ids, rollouts, task, dataset, context))
        metrics["policy/action_entropy"] = entropy[0].mean if entropy else float("nan")
        # run-aware measurements use the sampled evaluation (or play it); the greedy set is the rollout-based ones
        metrics.update({f"{GREEDY}{k}": v for k, v in measure(ids, greedy, task, dataset).items()})
        for name, value in metrics.items():
            if np.isfinite(value):
                logger.scalar(f"eval/{name}", value, budget.gradient_steps)
    finally:
        logger.close()
    pq.write_table(_rollouts_table(rollouts), tmp.rollouts)
    _write_filmstrip(task, trained.policy, Evaluated.of(rollouts, shown), tmp)
    # what the method itself recorded; KL to pi_ref is a measurement (metrics.json), not the method's
    ledger = {k: v for k, v in trained.ledger.__dict__.items() if k != "kl_to_reference_nats"}
    if snapshot_of:  # its wall time is the trainer's up to the snapshot
        ledger["snapshot_of"] = snapshot_of
    rundir.write_json(tmp.ledger, ledger)
    return metrics


def _train(run: RunSpec, method, task, dataset, budget: Budget, runs_dir: Path,
           logger: RunLogger) -> tuple[TrainedPolicy, str]:
    """Train (saving the snapshots a trainer owes), or load this run's snapshot; returns the result and the
    trainer's run id when it was a snapshot ("" when trained here)."""
    if run.snapshot_of:
        trained = snapshots.load(snapshots.directory(runs_dir, run.run_id, run.identity))
        if trained is not None:
            snapshots.replay_history(trained.curve, logger)  # the curve training logged
            return trained, run.snapshot_of
        # no snapshot (the trainer failed before this budget, or resumed past it): train, same result
    owed: dict[Budget, list[Path]] = {}
    for run_id, snap in run.snapshots.items():
        owed.setdefault(Budget(**snap["budgets"]), []).append(snapshots.directory(runs_dir, run_id, snap["identity"]))

    def save(b: Budget, trained: TrainedPolicy) -> None:
        for path in owed[b]:
            snapshots.save(path, trained)

    with checkpointing(checkpoints.for_run(runs_dir, run), checkpoints.every_from_env()), \
            taking_snapshots(list(owed), save):
        return method.train(task, dataset, budget, run.seed, logger), ""


def _record(tmp: rundir.RunDir, error: str, trace: str, wall_time_s: float) -> None:
    tmp.clear_result()
    rundir.write_json(tmp.error, {"error": error, "traceback": trace, "wall_time_s": wall_time_s})


def record_failure(run: RunSpec, runs_dir: Path, error: str) -> RunResult:
    """Record a run that could not execute at all (its worker died) as a failed run directory."""
    tmp = rundir.temporary_run_dir(runs_dir, run.run_id)
    rundir.write_json(tmp.spec, run.to_json())
    _record(tmp, error, "", 0.0)
    rundir.land(tmp, runs_dir, run.run_id)
    return RunResult(run.run_id, "failed", error=error)


def execute_run(run: RunSpec, runs_dir: Path, data_dir: Path,
                on_progress: ProgressFn | None = None) -> RunResult:
    """Execute one run into runs_dir/<run_id>; failures are recorded, not raised.

    pi_ref's run (`run.reference`) must have finished in runs_dir before this one starts."""
    retain_freed_memory()  # training reuses the same large buffers: keep them mapped (allocation only)
    tmp = rundir.temporary_run_dir(runs_dir, run.run_id)
    start = time.perf_counter()
    try:
        rundir.write_json(tmp.spec, run.to_json())
        try:
            with run_threads():
                metrics = _train_and_measure(run, tmp, runs_dir, data_dir, on_progress)
            rundir.write_json(tmp.metrics, metrics)
            result = RunResult(run.run_id, "ok", metrics)
        except Exception as err:  # noqa: BLE001  (a failing run is recorded; the others go on)
            msg = f"{type(err).__name__}: {err}"
            _record(tmp, msg, traceback.format_exc(), time.perf_counter() - start)
            result = RunResult(run.run_id, "failed", error=msg)
        rundir.land(tmp, runs_dir, run.run_id)
        if result.status == "ok":  # a recorded failure keeps them: a retry continues where it stopped
            checkpoints.remove(runs_dir, run.run_id)
            snapshots.remove(runs_dir, run.run_id)
        return result
    finally:
        if tmp.path.exists():  # an interrupted run leaves nothing behind
            shutil.rmtree(tmp.path, ignore_errors=True)
