"""The Ray backend gives the same run directories and metrics as the local one."""

import json

import pytest

from metatoken.experiments.ray_backend import pack, unpack
from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import parse_spec

ray = pytest.importorskip("ray")  # a dev dependency; the import guard only serves a bare install

TINY = {"d_model": 16, "n_layers": 1, "context": 4}


def _spec(methods=("bc", "condition")):
    return parse_spec({
        "name": "ray",
        "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4, "reference_episodes": 30}}],
        "methods": [{"id": m, "hyperparameters": TINY} for m in methods],
        "seeds": [0, 1],
        "budgets": {"gradient_steps": 40, "eval_episodes": 4},
    })


def test_pack_round_trip(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / "sub" / "x.json").write_text('{"k": 1}')
    unpack(pack(tmp_path / "a"), tmp_path / "b")
    assert json.loads((tmp_path / "b" / "sub" / "x.json").read_text()) == {"k": 1}


def test_ray_matches_local_workers(tmp_path):
    local = run_experiment(_spec(), tmp_path / "local", workers=2)
    remote = run_experiment(_spec(), tmp_path / "ray", workers=2, backend="ray")
    assert [r.run_id for r in remote.results] == [r.run_id for r in local.results]
    assert all(r.status == "ok" for r in remote.results)
    for a, b in zip(local.results, remote.results):
        ma = {k: v for k, v in a.metrics.items() if k != "ledger/wall_time_s"}
        mb = {k: v for k, v in b.metrics.items() if k != "ledger/wall_time_s"}
        assert ma == pytest.approx(mb, nan_ok=True)
        run_dir = tmp_path / "ray" / "runs" / b.run_id
        for name in ("spec.json", "metrics.json", "ledger.json", "rollouts.parquet", "policy/model.safetensors"):
            assert (run_dir / name).is_file(), name
    assert remote.results_path.is_file()
    assert not [p for p in (tmp_path / "ray" / "runs").iterdir() if p.name.startswith(".")]


def test_cli_backend_ray(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("metatoken")
    root = Path(__file__).resolve().parents[2]
    tiny = "{d_model: 16, n_layers: 1, context: 4}"
    r = subprocess.run(
        [str(exe), "run", "specs/demo.yaml", "--backend", "ray", "--workers", "2", "--out", str(tmp_path / "o"),
         "--set", "seeds=[0]", "--set", f"methods=[{{id: condition, hyperparameters: {tiny}}}]",
         "--set", "budgets={gradient_steps: 20, eval_episodes: 2}", "--set", "tasks.0.options.reference_episodes=20"],
        check=False, capture_output=True, text=True, cwd=root, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "runs" / "glitchgrid-teleport__condition__seed0" / "metrics.json").is_file()
    bad = subprocess.run([str(exe), "run", "specs/demo.yaml", "--address", "127.0.0.1:6379"], check=False,
                         capture_output=True, text=True, cwd=root, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --address: only meaningful with --backend ray"
