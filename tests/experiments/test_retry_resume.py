"""Retries resume: a local worker's retry from the checkpoints in the driver's runs/, a Ray task's when
its node sees the driver's checkpoint directory."""

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from metatoken.experiments import checkpoints, rundir
from metatoken.experiments.ray_backend import _land, _reference_blob, _remote_run, pack
from metatoken.experiments.runner import run_experiment
from metatoken.experiments.runs import expand
from metatoken.experiments.spec import parse_spec
from metatoken.models import train

SPEC = {
    "name": "retry", "seeds": [0],
    "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4, "reference_episodes": 20}}],
    "methods": [{"id": "bc", "hyperparameters": {"d_model": 16, "n_layers": 1, "context": 4}}],
    "budgets": {"gradient_steps": 40, "eval_episodes": 2},
}


class Killed(Exception):
    """Stands for the Ray worker dying mid-training."""


def _attempt(monkeypatch, run, data_blob, ref_blob, shared, kill_at=None):
    """One Ray attempt executed in this process; returns (result, packed run dir, steps it trained)."""
    steps = []

    def watch(self, step, model):
        if step == kill_at:
            raise Killed
        steps.append(step)
        return 0

    with monkeypatch.context() as m:
        m.setattr(train.TrainHooks, "after_backward", watch)
        result, blob, _ = _remote_run(run, data_blob, ref_blob, shared)
    return result, blob, steps


def test_a_retry_that_sees_the_drivers_checkpoints_resumes_from_them(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.EVERY_ENV, "10")
    calm = run_experiment(parse_spec(SPEC), tmp_path / "calm", workers=1)
    calm_exp = rundir.ExperimentDir(tmp_path / "calm")
    run = expand(parse_spec(SPEC))[0]
    data_blob, ref_blob = pack(calm_exp.datasets), _reference_blob(calm_exp.runs, run)

    driver_runs = tmp_path / "driver" / "runs"
    ck = checkpoints.for_run(driver_runs, run)
    shared = (str(ck), checkpoints.mark_for_driver(ck))
    first, _, steps = _attempt(monkeypatch, run, data_blob, ref_blob, shared, kill_at=25)
    assert first.status == "failed" and steps == list(range(1, 25))
    assert [p.name for p in (ck / "train-0").iterdir()] == [f"step-{20:09d}"]  # written in the driver's dir

    retry, blob, steps = _attempt(monkeypatch, run, data_blob, ref_blob, shared)
    assert retry.status == "ok" and steps == list(range(21, 41))  # resumed after step 20, not from step 1
    assert ck.is_dir()  # the task's scratch cleanup removed its link, never the driver's files
    _land(blob, driver_runs, run.run_id)
    a = load_file(str(calm_exp.run(run.run_id).policy / "model.safetensors"))
    b = load_file(str(rundir.RunDir(driver_runs / run.run_id).policy / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    want = next(r for r in calm.results if r.run_id == run.run_id).metrics
    strip = lambda m: {k: v for k, v in m.items() if "wall_time" not in k}
    np.testing.assert_equal(strip(retry.metrics), strip(want))


def test_a_task_that_cannot_see_the_drivers_directory_trains_in_its_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.EVERY_ENV, "10")
    run_experiment(parse_spec(SPEC), tmp_path / "calm", workers=1)
    calm_exp = rundir.ExperimentDir(tmp_path / "calm")
    run = expand(parse_spec(SPEC))[0]
    ck = checkpoints.for_run(tmp_path / "driver" / "runs", run)
    checkpoints.mark_for_driver(ck)
    elsewhere = (str(ck), "another-driver:1:2")  # what a node without the shared filesystem amounts to
    blobs = pack(calm_exp.datasets), _reference_blob(calm_exp.runs, run)
    first, _, _ = _attempt(monkeypatch, run, *blobs, elsewhere, kill_at=25)
    assert first.status == "failed" and not (ck / "train-0").exists()
    retry, _, steps = _attempt(monkeypatch, run, *blobs, elsewhere)
    assert retry.status == "ok" and steps[0] == 1  # nothing to resume from: step 0 again


TWO_RUNS = {**SPEC, "tasks": [{"id": "glitchgrid-teleport", "name": f"d{d}",
                               "options": {"summit_distance": d, "reference_episodes": 20}} for d in (4, 5)],
            "budgets": {"gradient_steps": 150, "eval_episodes": 2}}
TIMEOUT_S = 300


def _logged_steps(run_dir: Path) -> list[int]:
    """The gradient steps the run's landed training logged its loss at; none when it trained no step
    (a retry that resumed from the checkpoint its training wrote at its last step, then evaluated)."""
    events = EventAccumulator(str(run_dir / rundir.TENSORBOARD))
    events.Reload()
    if "losses/action_nll" not in events.Tags()["scalars"]:
        return []
    return [e.step for e in events.Scalars("losses/action_nll")]


def test_a_local_worker_killed_mid_training_is_retried_from_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.EVERY_ENV, "30")  # the spawned workers inherit it
    out, outcome = tmp_path / "killed", []
    thread = threading.Thread(target=lambda: outcome.append(
        run_experiment(parse_spec(TWO_RUNS), out, workers=2, retries=1)))
    thread.start()
    saved = out / "runs" / rundir.CHECKPOINTS
    deadline = time.monotonic() + TIMEOUT_S
    while len({p.parts[-4] for p in saved.glob("*/*/train-0/step-*")}) < 2:  # both runs past a checkpoint
        assert time.monotonic() < deadline and thread.is_alive(), "no checkpoints appeared"
        time.sleep(0.02)
    for worker in mp.active_children():
        os.kill(worker.pid, signal.SIGKILL)
    thread.join(TIMEOUT_S)
    assert not thread.is_alive() and outcome, "the experiment did not finish"
    assert [r.status for r in outcome[0].results] == ["ok", "ok"]
    # logs every 25 steps: from 25 when a training starts over, from 50 or later after a resume, and
    # nothing when the killed worker had already written the final step's checkpoint (a run can get
    # that far while the other is still before its first checkpoint on a loaded machine)
    logged = {r.run_id: _logged_steps(out / "runs" / r.run_id) for r in outcome[0].results}
    assert all(steps == sorted(steps) and all(s > 25 for s in steps) for steps in logged.values()), logged
    # the later run had only just passed its first checkpoint when both were killed: it trained on after resuming
    assert any(logged.values()), logged
    assert not saved.exists()
