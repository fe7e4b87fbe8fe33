"""The demo with tiny overrides gives the same metrics as a stored copy made before the
rollout-room redesign (issue 8): refactors must not move numbers.

The stored copy `tests/data/golden/demo_tiny_metrics.json` was written by `golden_metrics`
on the commit before the redesign. A change that is meant to move a metric regenerates it
(`python tests/experiments/test_golden_demo.py`) and says why in its commit message.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden" / "demo_tiny_metrics.json"
# The demo's offline recipes only (kl-finetune and ppo are covered by their own tests; this keeps it fast).
OVERRIDES = ["seeds=[0,1]", "budgets.gradient_steps=60", "budgets.eval_episodes=6",
             "tasks.0.options.reference_episodes=40", "tasks.1.options.reference_episodes=40",
             "methods=[{id: bc}, {id: condition}]"]
VOLATILE = ("ledger/wall_time_s",)


def golden_metrics(out: Path) -> dict[str, dict[str, float]]:
    """run id -> metrics of specs/demo.yaml under OVERRIDES, one worker (fixed thread count)."""
    spec = load_spec(ROOT / "specs" / "demo.yaml", OVERRIDES)
    run_experiment(spec, out, workers=1)
    metrics = {}
    for run_dir in sorted((out / "runs").iterdir()):
        values = json.loads((run_dir / "metrics.json").read_text())
        metrics[run_dir.name] = {k: v for k, v in sorted(values.items()) if k not in VOLATILE}
    return metrics


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_demo_metrics_match_the_stored_copy(tmp_path):
    stored = json.loads(GOLDEN.read_text())
    now = golden_metrics(tmp_path)
    assert now.keys() == stored.keys()
    for run_id, values in stored.items():
        assert now[run_id].keys() == values.keys(), run_id
        moved = {k: (v, now[run_id][k]) for k, v in values.items() if not _same(v, now[run_id][k])}
        assert not moved, f"{run_id}: {moved}"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(golden_metrics(Path(d)), indent=1, sort_keys=True) + "\n")
    sys.exit(0)
