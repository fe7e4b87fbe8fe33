"""`metatoken run` on a text spec: validation, run directories, results.parquet and the text report."""

import json

import pyarrow.parquet as pq
import pytest
import yaml

from metatoken.errors import UserError
from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import load_spec
from metatoken.methods.base import METHODS, Budget
from metatoken.report.html import write_report
from metatoken.text.experiment import run_text

TINY = {"world": "tiny", "pretrain_steps": 20, "pretrain_batch": 64, "d_model": 16, "kl_samples": 64}


def _spec(tmp_path, **changes):
    spec = {"name": "t", "tasks": [{"id": "text-world", "options": TINY}],
            "methods": [{"id": "text-conditional", "hyperparameters": {"scheme": "bayes", "batch_size": 32}},
                        {"id": "text-kl-pg", "hyperparameters": {"batch_size": 16}}],
            "seeds": [0], "budgets": {"gradient_steps": 4}, "measurements": []}
    spec.update(changes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_text_recipes_are_in_the_method_registry():
    for mid in ("text-conditional", "text-filter", "text-rwr", "text-awr", "text-kl-pg", "text-mixture", "text-dpo"):
        assert mid in METHODS


def test_run_text_returns_exact_metrics_and_ledger(tmp_path):
    out = run_text(TINY, "text-kl-pg", {"batch_size": 16, "beta": 0.5}, 0, Budget(gradient_steps=3), tmp_path)
    m = out.metrics
    assert m["text/mass"] == pytest.approx(1.0, abs=1e-5)
    assert m["ledger/gradient_steps"] == 3 and m["ledger/reward_queries"] == 48
    assert m["ledger/online_env_steps"] == 48 * 5
    assert m["ledger/kl_to_reference_nats"] >= 0 and m["text/kl_target"] > 0
    assert {"text/kl_k1", "text/kl_k2", "text/kl_k3", "text/kl_k1_negative"} <= set(m)
    assert out.target_name == "tilted(beta=0.5)"
    assert any(p.name.startswith("pretrained_tiny") for p in tmp_path.iterdir())  # pi_ref cached


def test_metatoken_run_writes_runs_results_and_text_report(tmp_path):
    out = tmp_path / "out"
    outcome = run_experiment(load_spec(_spec(tmp_path)), out, workers=1)
    assert not outcome.failed
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["text-world__text-conditional__seed0", "text-world__text-kl-pg__seed0"]  # no pi_ref run
    for name in runs:
        assert {"spec.json", "metrics.json", "ledger.json", "target.txt", "policy"} <= {
            p.name for p in (out / "runs" / name).iterdir()}
    table = pq.read_table(out / "results.parquet").to_pydict()
    assert set(table["method"]) == {"text-conditional", "text-kl-pg"}
    assert "text/kl_target" in table["metric"]
    report = write_report(out).read_text()
    assert "Text lab" in report and report.count("data:image/png;base64,") == 4
    assert "tilted(beta=0.25)" in report
    assert json.loads((out / "runs" / runs[1] / "ledger.json").read_text())["reward_queries"] == 64


@pytest.mark.parametrize("change, message", [
    ({"methods": [{"id": "text-nope"}]}, "methods[0].id: 'text-nope' is not a text recipe"),
    ({"methods": [{"id": "bc"}]}, "methods[0].id: 'bc' is not a text recipe"),
    ({"methods": [{"id": "text-kl-pg", "hyperparameters": {"beta": -1}}]}, "methods[0].hyperparameters.beta"),
    ({"tasks": [{"id": "text-world", "options": {"world": "huge"}}]}, "tasks[0].options.world"),
    ({"tasks": [{"id": "text-world"}, {"id": "glitchgrid-teleport"}]}, "tasks[1].id"),
    ({"tasks": [{"id": "glitchgrid-teleport"}]}, "methods[0].id: 'text-conditional' is a text recipe"),
])
def test_spec_errors_are_one_line_user_errors(tmp_path, change, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec(_spec(tmp_path, **change))
