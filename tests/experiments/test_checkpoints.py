"""A run's training checkpoints: keyed by identity, resumed after a kill, removed when the run lands."""

import os
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from metatoken.errors import UserError
from metatoken.experiments import checkpoints, rundir
from metatoken.experiments.runner import run_experiment
from metatoken.experiments.runs import RunSpec
from metatoken.experiments.spec import parse_spec
from metatoken.models import train

SPEC = {
    "name": "ckpt", "seeds": [0],
    "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4, "reference_episodes": 20}}],
    "methods": [{"id": "bc", "hyperparameters": {"d_model": 16, "n_layers": 1, "context": 4}}],
    "budgets": {"gradient_steps": 40, "eval_episodes": 2},
}


def _run(**kw) -> RunSpec:
    base = {"experiment": "e", "task_name": "t", "task_id": "glitchgrid-teleport", "task_options": {},
            "method_name": "bc", "method_id": "bc", "hyperparameters": {}, "seed": 0,
            "budgets": {"gradient_steps": 10}, "measurements": []}
    return RunSpec(**{**base, **kw})


class Killed(Exception):
    """Stands for the worker being killed mid-training."""


def test_a_run_killed_mid_training_resumes_to_the_same_weights_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.EVERY_ENV, "10")
    calm = run_experiment(parse_spec(SPEC), tmp_path / "calm", workers=1)
    assert not (tmp_path / "calm" / "runs" / rundir.CHECKPOINTS).exists()  # removed as each run landed

    def die_at_25(self, step, model):
        if step == 25:
            raise Killed
        return 0

    out = tmp_path / "killed"
    with monkeypatch.context() as m:
        m.setattr(train.TrainHooks, "after_backward", die_at_25)
        first = run_experiment(parse_spec(SPEC), out, workers=1)
    assert {r.status for r in first.results} == {"failed"}
    kept = sorted((out / "runs" / rundir.CHECKPOINTS).glob("*/*/train-0/step-*"))
    assert kept and all(p.name == f"step-{20:09d}" for p in kept)  # a failure keeps its checkpoints

    resumed = run_experiment(parse_spec(SPEC), out, workers=1, resume=True)
    assert [r.status for r in resumed.results] == ["ok"] * len(calm.results)
    assert not (out / "runs" / rundir.CHECKPOINTS).exists()
    for r in calm.results:
        a = load_file(str(rundir.ExperimentDir(tmp_path / "calm").run(r.run_id).policy / "model.safetensors"))
        b = load_file(str(rundir.ExperimentDir(out).run(r.run_id).policy / "model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), r.run_id
    strip = lambda res: {x.run_id: {k: v for k, v in x.metrics.items() if "wall_time" not in k} for x in res}
    np.testing.assert_equal(strip(resumed.results), strip(calm.results))  # exactly, NaN (not measured) included


def test_checkpoints_are_keyed_by_identity(tmp_path):
    old, new = _run(), _run(budgets={"gradient_steps": 20})
    assert old.run_id == new.run_id and old.identity != new.identity
    stale = checkpoints.for_run(tmp_path, old) / "train-0"
    stale.mkdir(parents=True)
    fresh = checkpoints.for_run(tmp_path, new)
    assert fresh.name == new.identity and not stale.exists()  # a changed spec never resumes the old one


def _made(path, age_s):
    path.mkdir(parents=True)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_remove_stale_temporaries_keeps_only_resumable_checkpoints(tmp_path):
    exp = rundir.ExperimentDir(tmp_path)
    ck = exp.runs / rundir.CHECKPOINTS
    older, newer = _made(ck / "a" / "old-identity", 100), _made(ck / "a" / "new-identity", 0)
    landed = _made(ck / "b" / "done-identity", 0)
    b = exp.run("b")
    b.path.mkdir(parents=True)
    rundir.write_json(b.spec, {"identity": "done-identity"})
    rundir.write_json(b.metrics, {})
    temp = _made(exp.runs / ".c.x1y2", 0)
    removed = exp.remove_stale_temporaries()
    assert sorted(removed) == sorted([older, landed, temp])
    assert newer.is_dir() and not (ck / "b").exists() and [d.run_id for d in exp.run_dirs()] == ["b"]


def test_a_landed_run_drops_its_checkpoints(tmp_path):
    run = _run()
    (checkpoints.for_run(tmp_path, run) / "train-0").mkdir(parents=True)
    checkpoints.remove(tmp_path, run.run_id)
    assert not (tmp_path / rundir.CHECKPOINTS / run.run_id).exists()


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(checkpoints.EVERY_ENV, raising=False)
    assert checkpoints.every_from_env() is None
    monkeypatch.setenv(checkpoints.EVERY_ENV, "0")
    assert checkpoints.every_from_env() == 0
    monkeypatch.setenv(checkpoints.EVERY_ENV, "ten")
    with pytest.raises(UserError, match=checkpoints.EVERY_ENV):
        checkpoints.every_from_env()

