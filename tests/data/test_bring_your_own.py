"""docs/BRING_YOUR_OWN.md's worked example, run as written: record a Pendulum-v1 dataset
through the project's writer, point the page's spec at it, train (with a tiny budget)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml
from minari import MinariDataset

from metatoken.data import minari_io

PAGE = Path(__file__).resolve().parents[2] / "docs" / "BRING_YOUR_OWN.md"
TINY = ["methods=[{id: bc}]", "seeds=[0]", "budgets.gradient_steps=30", "budgets.eval_episodes=3"]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_worked_example_runs_as_documented(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the page's paths are relative to where you run
    record, run = _blocks("python")
    exec(compile(record, "BRING_YOUR_OWN.md: record", "exec"), {})  # noqa: S102  (the page, run as written)
    recorded = minari_io.load(Path("my-pendulum"))
    assert len(recorded) == 20 and recorded.total_steps == 20 * 50
    assert MinariDataset("my-pendulum/data").total_episodes == 20
    assert np.ptp(recorded.returns()) > 10  # mixed skill: the noise varies by episode

    spec_text = next(b for b in _blocks("yaml") if b.startswith("name: my-pendulum"))
    Path("my-pendulum.yaml").write_text(spec_text)
    assert yaml.safe_load(spec_text)["tasks"][0]["options"]["dataset"] == "my-pendulum"
    run_code = run.replace('load_spec("my-pendulum.yaml")', f'load_spec("my-pendulum.yaml", {TINY!r})')
    assert run_code != run
    exec(compile(run_code, "BRING_YOUR_OWN.md: run", "exec"), {})  # noqa: S102

    out = tmp_path / "runs" / "my-pendulum"
    (run_dir,) = (out / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["ledger/gradient_steps"] == 30
    assert np.isnan(metrics["spookiness/exploit_rate"]) and np.isnan(metrics["capability/intended"])
    assert -50 * 16.3 <= metrics["capability/return"] <= 0  # Pendulum's reward is in [-16.3, 0] per step
    rollouts = pq.read_table(run_dir / "rollouts.parquet").to_pandas()
    assert len(rollouts) == 3 and (rollouts["length"] == 50).all()
    # the cached reference data is the user's, untouched
    (cached,) = [p for p in (out / "datasets").iterdir() if p.name.startswith("gym-Pendulum-v1")]
    np.testing.assert_array_equal(minari_io.load(cached).returns(), recorded.returns())
    assert "—" in (out / "report.html").read_text()
