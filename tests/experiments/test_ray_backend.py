"""The Ray backend gives the same run directories and metrics as the local one."""

import json

import numpy as np
import pytest

from metatoken.experiments.ray_backend import pack, unpack
from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import parse_spec

ray = pytest.importorskip("ray")  # a dev dependency; the import guard only serves a bare install

TINY = {"d_model": 16, "n_layers": 1, "context": 4}
SPEC = {
    "name": "ray",
    "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4, "reference_episodes": 30}}],
    "methods": [{"id": m, "hyperparameters": TINY} for m in ("bc", "condition")],
    "seeds": [0, 1],
    "budgets": {"gradient_steps": 40, "eval_episodes": 4},
}


def _spec():
    return parse_spec(SPEC)


def test_pack_round_trip(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / "sub" / "x.json").write_text('{"k": 1}')
    unpack(pack(tmp_path / "a"), tmp_path / "b")
    assert json.loads((tmp_path / "b" / "sub" / "x.json").read_text()) == {"k": 1}


def test_cli_backend_ray_matches_local_workers(tmp_path):
    """`metatoken run --backend ray` (a local Ray instance started by the CLI) gives the local backend's runs.

    One Ray start serves both checks: the CLI's --backend/--workers wiring and equality with the
    local backend. The order of results is the runner's (grid order), whatever the backend.
    """
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    local = run_experiment(_spec(), tmp_path / "local", workers=2)
    assert all(r.status == "ok" for r in local.results)
    spec = tmp_path / "ray.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    exe = Path(sys.executable).with_name("metatoken")
    r = subprocess.run([str(exe), "run", str(spec), "--backend", "ray", "--workers", "2", "--out", "ray"],
                       check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr  # 1 if any run failed
    remote_runs = sorted(p.name for p in (tmp_path / "ray" / "runs").iterdir())
    assert remote_runs == sorted(x.run_id for x in local.results)  # and no temporaries left behind
    for a in local.results:
        run_dir = tmp_path / "ray" / "runs" / a.run_id
        for name in ("spec.json", "metrics.json", "ledger.json", "rollouts.parquet", "policy/model.safetensors"):
            assert (run_dir / name).is_file(), name
        ma = {k: v for k, v in a.metrics.items() if k != "ledger/wall_time_s"}
        mb = {k: v for k, v in json.loads((run_dir / "metrics.json").read_text()).items() if k != "ledger/wall_time_s"}
        assert ma.keys() == mb.keys()  # exactly equal: one torch thread per run on both backends
        np.testing.assert_array_equal([ma[k] for k in sorted(ma)], [mb[k] for k in sorted(ma)], err_msg=a.run_id)
    assert (tmp_path / "ray" / "results.parquet").is_file()
