"""Snapshot evaluation: smaller ppo budgets derived from one training at the largest give the metrics a direct
training at each budget gives, and train once."""

import json
import math
import shutil
from dataclasses import asdict

import pytest

from metatoken.experiments import rundir, runs, snapshots
from metatoken.experiments.runner import run_experiment
from metatoken.experiments.runs import Schedule, expand
from metatoken.experiments.spec import parse_spec
from metatoken.methods import Budget, make_method
from metatoken.methods.ppo import PPOMethod

TINY = {"d_model": 16, "n_layers": 1, "context": 4}
# one rollout is 4 x 16 = 64 env steps and 2 gradient steps; obs normalisation on, so a snapshot must fold it
PPO = {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "normalize_obs": True}
BUDGETS = [64, 128, 256]  # 1, 2 and 4 iterations
TRAINER = "glitchgrid-teleport__ppo-env_steps=256__seed0"
SNAPSHOT_RUNS = [f"glitchgrid-teleport__ppo-env_steps={n}__seed0" for n in BUDGETS[:2]]


def _spec(ppo=PPO, gradient_steps=1000, env_steps=BUDGETS, before=()):
    return parse_spec({
        "name": "snap", "seeds": [0],
        "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4, "reference_episodes": 20}}],
        "methods": [*before, {"id": "ppo", "hyperparameters": ppo, "budgets": {"gradient_steps": gradient_steps},
                     "sweep": {"budgets.env_steps": list(env_steps)}}],
        "reference": {"id": "bc", "hyperparameters": TINY, "budgets": {"gradient_steps": 20}},
        "budgets": {"gradient_steps": 20, "eval_episodes": 2},
    })


def _metrics(outcome) -> dict[str, dict[str, float]]:
    """run id -> metrics without the wall time, NaN as a string so that == compares them."""
    return {r.run_id: {k: "nan" if isinstance(v, float) and math.isnan(v) else v
                       for k, v in r.metrics.items() if k != "ledger/wall_time_s"}
            for r in outcome.results if r.status != "skipped"}


def _ledger(out, run_id) -> dict:
    return json.loads((out / "runs" / run_id / "ledger.json").read_text())


def _run_patched(tmp_path_factory, name: str, patch):
    """The spec run with one worker under `patch(monkeypatch)` (undone after); every run must be ok."""
    mp = pytest.MonkeyPatch()
    patch(mp)
    try:
        out = tmp_path_factory.mktemp(name)
        outcome = run_experiment(_spec(), out, workers=1)
    finally:
        mp.undo()
    assert all(r.status == "ok" for r in outcome.results)
    return out, outcome


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    """The three ppo budgets each trained by itself (snapshot linking switched off)."""
    out, outcome = _run_patched(tmp_path_factory, "direct", lambda mp: mp.setattr(runs, "link_snapshots",
                                                                                  lambda rs: rs))
    assert all("snapshot_of" not in _ledger(out, r) for r in [TRAINER, *SNAPSHOT_RUNS])
    return _metrics(outcome)


@pytest.fixture(scope="module")
def snapped(tmp_path_factory):
    """The same grid with snapshots, one worker, counting ppo trainings; returns (out dir, metrics, trainings)."""
    trainings = []
    train = PPOMethod.train
    out, outcome = _run_patched(tmp_path_factory, "snapped", lambda mp: mp.setattr(
        PPOMethod, "train", lambda self, task, ds, budget, *a: trainings.append(budget.env_steps)
        or train(self, task, ds, budget, *a)))
    return out, _metrics(outcome), trainings


def test_snapshot_runs_measure_what_direct_trainings_measure_and_the_trainer_trains_once(direct, snapped):
    out, metrics, trainings = snapped
    assert trainings == [256]  # the trainer only: its two snapshot runs loaded
    assert metrics == direct  # every run, every metric (wall time aside), snapshot runs included
    assert metrics[SNAPSHOT_RUNS[0]]["ledger/online_env_steps"] == 64  # and they differ by budget
    assert metrics[SNAPSHOT_RUNS[1]]["ledger/gradient_steps"] == 4
    for run_id in SNAPSHOT_RUNS:
        assert _ledger(out, run_id)["snapshot_of"] == TRAINER
        assert 0 < _ledger(out, run_id)["wall_time_s"] < _ledger(out, TRAINER)["wall_time_s"]
    assert "snapshot_of" not in _ledger(out, TRAINER)
    assert not (out / "runs" / rundir.SNAPSHOTS).exists()  # every snapshot run landed: none left


def test_two_workers_agree_with_one(snapped, tmp_path):
    outcome = run_experiment(_spec(), tmp_path, workers=2)
    assert _metrics(outcome) == snapped[1]
    assert _ledger(tmp_path, SNAPSHOT_RUNS[0])["snapshot_of"] == TRAINER


def test_resume_reuses_and_a_snapshot_run_without_its_snapshot_trains_itself(snapped, tmp_path):
    out = tmp_path / "exp"
    shutil.copytree(snapped[0], out)
    again = run_experiment(_spec(), out, workers=1, resume=True)
    assert {r.status for r in again.results} == {"skipped"}
    # the trainer is reused and its snapshots are gone: the lost run trains at its own budget, same metrics
    shutil.rmtree(out / "runs" / SNAPSHOT_RUNS[0])
    trainings = []
    mp = pytest.MonkeyPatch()
    train = PPOMethod.train
    mp.setattr(PPOMethod, "train", lambda self, task, ds, budget, *a: trainings.append(budget.env_steps)
               or train(self, task, ds, budget, *a))
    try:
        resumed = run_experiment(_spec(), out, workers=1, resume=True)
    finally:
        mp.undo()
    assert trainings == [64]
    assert [r.run_id for r in resumed.results if r.status == "ok"] == [SNAPSHOT_RUNS[0]]
    assert _metrics(resumed)[SNAPSHOT_RUNS[0]] == snapped[1][SNAPSHOT_RUNS[0]]
    assert "snapshot_of" not in _ledger(out, SNAPSHOT_RUNS[0])


def test_expand_links_prefix_consistent_budgets_to_the_largest():
    grid = {r.run_id: r for r in expand(_spec())}
    assert grid[TRAINER].snapshot_of == "" and sorted(grid[TRAINER].snapshots) == sorted(SNAPSHOT_RUNS)
    for run_id in SNAPSHOT_RUNS:
        run = grid[run_id]
        assert run.snapshot_of == TRAINER and not run.snapshots
        assert run.depends_on == (run.reference, TRAINER)
        assert grid[TRAINER].snapshots[run_id] == {"identity": run.identity, "budgets": run.budgets}
    ref = grid["glitchgrid-teleport__reference__seed0"]
    assert ref.snapshot_of == "" and not ref.snapshots
    # linking does not change what a run is
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runs, "link_snapshots", lambda rs: rs)
        plain = {r.run_id: r.identity for r in expand(_spec())}
    assert plain == {k: r.identity for k, r in grid.items()}


@pytest.mark.parametrize("spec", [
    _spec(ppo={**PPO, "lr_schedule": "linear"}),  # the rate at iteration k depends on the total
    _spec(ppo={**PPO, "clip_schedule": "linear"}),
    _spec(gradient_steps=6),  # 3 iterations' worth: gradient steps bind at 256 env steps
    _spec(ppo={**PPO, "env_steps": 128}),  # the entry's own cap binds at 256
])
def test_budgets_that_are_not_prefixes_train_directly(spec):
    assert all(r.snapshot_of == "" and not r.snapshots for r in expand(spec))


def test_gradient_steps_that_do_not_bind_keep_snapshots():
    linked = [r for r in expand(_spec(gradient_steps=8)) if r.snapshot_of]  # 4 iterations x 2 fit exactly
    assert len(linked) == 2


def test_ppo_prefix_consistent():
    ppo = make_method("ppo", PPO)
    assert ppo.prefix_consistent([Budget(env_steps=n, gradient_steps=100) for n in (64, 100, 3200)])  # 50 x 2 = 100 fit
    assert not ppo.prefix_consistent([Budget(env_steps=n, gradient_steps=100) for n in (63, 640)])  # 0 iterations
    assert not ppo.prefix_consistent([Budget(env_steps=n, gradient_steps=10) for n in (64, 640)])


def test_schedule_runs_trainers_before_others_and_holds_snapshot_runs():
    schedule = Schedule(expand(_spec(before=[{"id": "condition", "hyperparameters": TINY}])))
    assert schedule.next_ready().run_id == "glitchgrid-teleport__reference__seed0"
    assert schedule.next_ready() is None
    schedule.finish("glitchgrid-teleport__reference__seed0")
    assert schedule.next_ready().run_id == TRAINER  # before condition, which comes first in grid order
    assert schedule.next_ready().run_id == "glitchgrid-teleport__condition__seed0"
    assert schedule.next_ready() is None  # the snapshot runs wait for their trainer
    schedule.finish(TRAINER)
    assert sorted(schedule.next_ready().run_id for _ in range(2)) == sorted(SNAPSHOT_RUNS)


def test_stale_snapshots_are_pruned_and_an_unfinished_run_keeps_its_own(tmp_path):
    exp = rundir.ExperimentDir(tmp_path)
    done, pending = exp.run("t__ppo__seed0"), "t__ppo-b__seed0"
    done.path.mkdir(parents=True)
    rundir.write_json(done.spec, {"identity": "aaa"})
    rundir.write_json(done.metrics, {})
    for run_id, identity in ((done.run_id, "aaa"), (pending, "bbb"), (pending, ".tmp-x")):
        snapshots.directory(exp.runs, run_id, identity).mkdir(parents=True)
    exp.remove_stale_temporaries()
    assert sorted(p.name for p in (exp.runs / rundir.SNAPSHOTS).iterdir()) == [pending]
    assert [p.name for p in (exp.runs / rundir.SNAPSHOTS / pending).iterdir()] == ["bbb"]


def test_ray_backend_ships_snapshots_and_agrees(snapped, tmp_path):
    pytest.importorskip("ray")
    outcome = run_experiment(_spec(), tmp_path, workers=2, backend="ray")
    assert _metrics(outcome) == snapped[1]
    assert _ledger(tmp_path, SNAPSHOT_RUNS[1])["snapshot_of"] == TRAINER  # its snapshot crossed to its task
    assert not (tmp_path / "runs" / rundir.SNAPSHOTS).exists()


def test_a_failed_trainer_leaves_its_snapshot_runs_to_train_themselves(snapped, tmp_path):
    trainings = []
    train = PPOMethod.train

    def failing_trainer(self, task, ds, budget, *a):
        trainings.append(budget.env_steps)
        if budget.env_steps == 256:
            raise RuntimeError("trainer down")
        return train(self, task, ds, budget, *a)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PPOMethod, "train", failing_trainer)
        outcome = run_experiment(_spec(), tmp_path, workers=1)
    status = {r.run_id: r.status for r in outcome.results}
    assert status[TRAINER] == "failed" and [status[r] for r in SNAPSHOT_RUNS] == ["ok", "ok"]
    assert trainings == [256, 64, 128]
    metrics = _metrics(outcome)
    assert all(metrics[r] == snapped[1][r] for r in SNAPSHOT_RUNS)


def test_a_snapshot_round_trips_the_training_result(tmp_path):
    from metatoken.envs import make_task
    from metatoken.logger import NullLogger

    task = make_task("glitchgrid-teleport", {"summit_distance": 4})
    trained = make_method("ppo", PPO).train(task, None, Budget(env_steps=128, gradient_steps=1000), 0, NullLogger())
    assert len(trained.curve) == 2  # one row per iteration
    snapshots.save(tmp_path / "s", trained)
    loaded = snapshots.load(tmp_path / "s")
    assert loaded.curve == trained.curve and loaded.metrics == trained.metrics
    assert json.dumps(asdict(loaded.ledger)) == json.dumps(asdict(trained.ledger))  # NaN fields compare as text
    assert snapshots.load(tmp_path / "missing") is None
