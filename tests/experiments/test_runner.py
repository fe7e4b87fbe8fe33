import json
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, ConfigDict

from metatoken.evidence.claims import claims_json
from metatoken.experiments.results import SCHEMA, cached_sparsity, claims_frame
from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import parse_spec
from metatoken.methods.base import METHODS, MethodDef
from metatoken.report.html import write_report


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Explodes:
    def __init__(self, params):
        pass

    def train(self, task, dataset, budget, seed, logger):
        raise RuntimeError(f"boom at seed {seed}")


if "test-explodes" not in METHODS:
    METHODS.register("test-explodes", MethodDef(_Params, _Explodes), "Always fails (tests).")


TINY = {"d_model": 16, "n_layers": 1, "context": 4}  # a small predictor keeps these tests fast


def _spec(methods=("bc", "condition"), seeds=(0,)):
    return parse_spec({
        "name": "rt",
        "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4, "reference_episodes": 30}}],
        "methods": [{"id": m, "hyperparameters": TINY if m in ("bc", "condition") else {}}
                    for m in methods],
        "seeds": list(seeds),
        "budgets": {"gradient_steps": 60, "eval_episodes": 4},
    })


def test_run_directory_contents_and_results_table(tmp_path):
    outcome = run_experiment(_spec(), tmp_path, workers=1)
    assert [r.status for r in outcome.results] == ["ok", "ok"]
    run_dir = tmp_path / "runs" / "glitchgrid-teleport__condition__seed0"
    for name in ("spec.json", "metrics.json", "ledger.json", "rollouts.parquet",
                 "policy/model.safetensors", "policy/config.json", "filmstrip.png"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "filmstrip.png").read_bytes().startswith(b"\x89PNG")
    assert any((run_dir / "tensorboard").iterdir())
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]  # no temp dirs left
    table = pq.read_table(tmp_path / "results.parquet")
    assert table.schema.names[:len(SCHEMA)] == SCHEMA.names
    assert pa.schema(list(table.schema)[:len(SCHEMA)]).equals(SCHEMA)
    meta = table.schema.names[len(SCHEMA):]
    assert {"task.summit_distance", "task.reference_episodes", "task.sparsity_bits", "hp.d_model",
            "budget.env_steps", "budget.gradient_steps", "budget.eval_episodes"} <= set(meta)
    assert all(n.startswith(("task.", "hp.", "budget.")) for n in meta)
    rows = table.to_pylist()
    assert {(r["method_id"], r["task_id"], r["task.summit_distance"], r["budget.gradient_steps"]) for r in rows} == {
        ("bc", "glitchgrid-teleport", 4.0, 60.0), ("condition", "glitchgrid-teleport", 4.0, 60.0)}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    mine = {r["metric"]: r["value"] for r in rows if r["method"] == "condition"}
    assert mine.keys() == metrics.keys() and "ledger/gradient_steps" in mine
    assert mine["ledger/gradient_steps"] == 60
    # pi_ref is the spec's own bc trained at seed 0, so bc at seed 0 is exactly pi_ref
    bc = {r["metric"]: r["value"] for r in rows if r["method"] == "bc"}
    assert bc["ledger/kl_to_reference_nats"] == pytest.approx(0.0, abs=1e-5)
    assert mine["ledger/kl_to_reference_nats"] > 0.01
    # claims.json is computed in the results step, from the table just written
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert claims == json.loads(json.dumps(claims_json(claims_frame(table))))
    assert [c["claim"] for c in claims["claims"]] == [f"C{i}" for i in range(1, 10)]
    assert {c["verdict"] for c in claims["claims"]} <= {"supported", "contradicted", "inconclusive"}


def test_same_spec_and_seed_give_same_metrics(tmp_path):
    a = run_experiment(_spec(), tmp_path / "a", workers=1).results
    b = run_experiment(_spec(), tmp_path / "b", workers=1).results
    for ra, rb in zip(a, b):
        ma = {k: v for k, v in ra.metrics.items() if k != "ledger/wall_time_s"}
        mb = {k: v for k, v in rb.metrics.items() if k != "ledger/wall_time_s"}
        assert ma.keys() == mb.keys()
        np.testing.assert_array_equal(list(ma.values()), list(mb.values()))


def test_failed_run_is_recorded_and_others_finish(tmp_path):
    outcome = run_experiment(_spec(methods=("test-explodes", "bc")), tmp_path, workers=1)
    assert [r.status for r in outcome.results] == ["failed", "ok"]
    err = json.loads((tmp_path / "runs" / "glitchgrid-teleport__test-explodes__seed0" / "error.json").read_text())
    assert err["error"] == "RuntimeError: boom at seed 0" and "Traceback" in err["traceback"]
    assert "boom at seed 0" in write_report(tmp_path).read_text()
    methods = {r["method"] for r in pq.read_table(tmp_path / "results.parquet").to_pylist()}
    assert methods == {"bc"}


def test_resume_skips_complete_runs_and_retries_failed(tmp_path):
    run_experiment(_spec(methods=("test-explodes", "bc")), tmp_path, workers=1)
    done = tmp_path / "runs" / "glitchgrid-teleport__bc__seed0" / "metrics.json"
    stamp = done.stat().st_mtime_ns
    outcome = run_experiment(_spec(methods=("test-explodes", "bc")), tmp_path, workers=1, resume=True)
    status = {r.run_id: r.status for r in outcome.results}
    assert status == {"glitchgrid-teleport__bc__seed0": "skipped",
                      "glitchgrid-teleport__test-explodes__seed0": "failed"}
    assert done.stat().st_mtime_ns == stamp


def test_metrics_do_not_depend_on_the_worker_count(tmp_path):
    """Every run trains and evaluates with one torch thread: --workers 1 and 2 agree exactly."""
    single = run_experiment(_spec(seeds=(0, 1)), tmp_path / "one", workers=1).results
    multi = run_experiment(_spec(seeds=(0, 1)), tmp_path / "two", workers=2).results
    assert [r.run_id for r in multi] == [r.run_id for r in single]  # grid order, not finish order
    assert len(multi) == 4 and all(r.status == "ok" for r in multi)
    for a, b in zip(single, multi):
        ma = {k: v for k, v in a.metrics.items() if k != "ledger/wall_time_s"}
        mb = {k: v for k, v in b.metrics.items() if k != "ledger/wall_time_s"}
        assert ma.keys() == mb.keys()
        np.testing.assert_array_equal(list(ma.values()), list(mb.values()), err_msg=a.run_id)
    # the sparsity columns too: with two workers a driver thread estimated them while the runs trained
    one, two = (pq.read_table(tmp_path / d / "results.parquet").to_pandas() for d in ("one", "two"))
    for column in ("task.sparsity_bits", "task.sparsity_bits_low", "task.sparsity_bits_high"):
        assert one[column].notna().all() and one[column].tolist() == two[column].tolist()


def test_a_pool_estimates_sparsity_beside_the_runs(tmp_path, monkeypatch):
    """With a worker pool the sparsity cache is filled by the driver's thread during the runs, so the results
    table reads it; with one worker (the runs in the driver's process) the table computes it itself."""
    from metatoken.experiments import results, runner

    callers, estimated = [], []
    task_sparsity = results.task_sparsity

    def recording(out_dir, tasks):
        callers.append(threading.current_thread().name)
        return cached_sparsity(out_dir, tasks)

    def counting(task_id, options):
        estimated.append(threading.current_thread().name)
        return task_sparsity(task_id, options)

    monkeypatch.setattr(runner, "cached_sparsity", recording)
    monkeypatch.setattr(results, "task_sparsity", counting)
    run_experiment(_spec(), tmp_path / "two", workers=2)
    # estimated once, in the thread: the results table found the thread's cache entry under its own key
    assert callers == ["sparsity"] and estimated == ["sparsity"]
    callers.clear(), estimated.clear()
    run_experiment(_spec(), tmp_path / "one", workers=1)
    assert callers == [] and estimated == ["MainThread"]  # one worker: the results table estimates it


def test_pi_ref_is_the_grid_bc_run_and_the_driver_trains_nothing_else(tmp_path, monkeypatch):
    """specs/mountain.yaml, tiny: bc is trained once per bc run (pi_ref is bc at seed 0, not a
    second training), and pi_ref finishes before the run measured against it starts."""
    from pathlib import Path

    from metatoken.experiments.spec import load_spec
    from metatoken.methods.bc import BC

    root = Path(__file__).resolve().parents[2]
    trained = []
    original = BC.train

    def counting(self, task, dataset, budget, seed, logger):
        trained.append(seed)
        return original(self, task, dataset, budget, seed, logger)

    monkeypatch.setattr(BC, "train", counting)
    tiny = "{d_model: 16, n_layers: 1, context: 4}"
    spec = load_spec(root / "specs" / "mountain.yaml", [
        "tasks=[{id: mountain, name: sparse-2m, options: {reward: sparse, summit_distance: 2, reference_episodes: 4}}]",
        f"methods=[{{id: condition, hyperparameters: {tiny}}}, {{id: bc, hyperparameters: {tiny}}}]",
        "seeds=[0, 1]", "budgets={env_steps: 0, gradient_steps: 10, eval_episodes: 2}"])
    outcome = run_experiment(spec, tmp_path, workers=1)
    assert [r.status for r in outcome.results] == ["ok"] * 4
    assert trained == [0, 1]  # pi_ref (bc seed 0) first, then bc seed 1; no extra training
    metrics = {r.run_id: r.metrics for r in outcome.results}
    assert metrics["sparse-2m__bc__seed0"]["ledger/kl_to_reference_nats"] == 0.0
    assert np.isfinite(metrics["sparse-2m__condition__seed0"]["ledger/kl_to_reference_nats"])


def test_pi_ref_outside_the_grid_is_run_but_not_reported(tmp_path):
    outcome = run_experiment(_spec(methods=("condition",)), tmp_path, workers=1)
    assert [r.run_id for r in outcome.results] == ["glitchgrid-teleport__reference__seed0",
                                                   "glitchgrid-teleport__condition__seed0"]
    assert (tmp_path / "runs" / "glitchgrid-teleport__reference__seed0" / "policy" / "config.json").is_file()
    rows = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert {r["method"] for r in rows} == {"condition"}
    kl = {r["metric"]: r["value"] for r in rows}["ledger/kl_to_reference_nats"]
    assert np.isfinite(kl) and kl > 0.01  # measured against the default bc trained at seed 0


def _small(methods=("bc", "condition"), steps=10):
    spec = _spec(methods=methods).model_dump()
    spec["budgets"] = {"gradient_steps": steps, "eval_episodes": 2}
    return parse_spec(spec)


def test_resume_reuses_only_runs_whose_identity_matches(tmp_path):
    run_experiment(_small(), tmp_path, workers=1)
    stale = tmp_path / "runs" / ".glitchgrid-teleport__bc__seed0.killed"  # left by a killed experiment
    stale.mkdir()
    again = run_experiment(_small(), tmp_path, workers=1, resume=True)
    assert [r.status for r in again.results] == ["skipped", "skipped"]
    assert not stale.exists()
    changed = run_experiment(_small(steps=12), tmp_path, workers=1, resume=True)  # a changed budget
    assert [r.status for r in changed.results] == ["ok", "ok"]
    rows = pq.read_table(changed.results_path).to_pylist()
    assert {r["value"] for r in rows if r["metric"] == "ledger/gradient_steps"} == {12.0}


def test_resume_with_a_method_removed_reports_exactly_the_current_runs(tmp_path):
    run_experiment(_small(methods=("test-explodes", "bc")), tmp_path, workers=1)
    outcome = run_experiment(_small(methods=("bc",)), tmp_path, workers=1, resume=True)
    assert [(r.run_id, r.status) for r in outcome.results] == [("glitchgrid-teleport__bc__seed0", "skipped")]
    assert {r["method"] for r in pq.read_table(outcome.results_path).to_pylist()} == {"bc"}
    page = write_report(tmp_path).read_text()
    assert "boom at seed 0" not in page and "test-explodes" not in page  # the old run is on disk, not reported
    assert (tmp_path / "runs" / "glitchgrid-teleport__test-explodes__seed0").is_dir()


def test_swept_runs_carry_their_settings_so_a_phase_diagram_is_one_group_by(tmp_path):
    """Two swept task options x two swept budgets: the metadata columns index every cell."""
    spec = parse_spec({
        "name": "sw", "seeds": [0, 1],
        "tasks": [{"id": "glitchgrid-teleport", "options": {"reward": "sparse", "reference_episodes": 20},
                   "sweep": {"summit_distance": [2, 4]}}],
        "methods": [{"id": "bc", "hyperparameters": TINY, "sweep": {"budgets.gradient_steps": [2, 5]}}],
        "budgets": {"gradient_steps": 2, "eval_episodes": 2},
        "measurements": ["capability"],
    })
    outcome = run_experiment(spec, tmp_path, workers=1)
    assert all(r.status == "ok" for r in outcome.results) and len(outcome.results) == 8
    frame = pq.read_table(tmp_path / "results.parquet").to_pandas()
    steps = frame[frame.metric == "ledger/gradient_steps"]
    assert (steps["value"] == steps["budget.gradient_steps"]).all()  # each run trained with its own budget
    cells = steps.groupby(["task.sparsity_bits", "budget.gradient_steps"])["seed"].count()
    assert len(cells) == 4 and (cells == 2).all()  # 2 sparsities x 2 budgets, 2 seeds each
    bits = sorted(frame["task.sparsity_bits"].unique())
    assert len(bits) == 2 and 0 < bits[0] < bits[1]  # farther summit: rarer for a random walker
    assert set(frame.method) == {"bc-gradient_steps=2", "bc-gradient_steps=5"}
    assert set(frame.task) == {"glitchgrid-teleport-summit_distance=2", "glitchgrid-teleport-summit_distance=4"}
