"""A retried Ray task resumes from the checkpoints of the attempt before it when its node sees the driver's."""

import numpy as np
import torch
from safetensors.torch import load_file

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
        result, blob = _remote_run(run, data_blob, ref_blob, shared)
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
