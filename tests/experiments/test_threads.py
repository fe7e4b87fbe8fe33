"""Every run computes with one torch thread and one BLAS thread, and the caller's counts come back after."""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from metatoken.experiments import run_one
from metatoken.experiments.runs import RunSpec
from metatoken.experiments.threads import run_threads


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_run_threads_fixes_torch_and_blas_and_restores_them():
    np.ones((2, 2)) @ np.ones((2, 2))  # numpy's BLAS is loaded
    with threadpool_limits(limits=2, user_api="blas"):
        torch.set_num_threads(2)
        assert _blas_threads() and all(n == 2 for n in _blas_threads())
        with run_threads():
            assert torch.get_num_threads() == 1 and all(n == 1 for n in _blas_threads())
        assert torch.get_num_threads() == 2 and all(n == 2 for n in _blas_threads())


def test_a_run_measures_inside_the_fixed_counts(tmp_path, monkeypatch):
    seen = {}

    def fake(run, tmp, runs_dir, data_dir, on_progress):
        seen["torch"], seen["blas"] = torch.get_num_threads(), _blas_threads()
        return {"capability/success_rate": 1.0}

    monkeypatch.setattr(run_one, "_train_and_measure", fake)
    run = RunSpec("e", "glitchgrid", "glitchgrid", {}, "bc", "bc", {}, 0, {}, [])
    with threadpool_limits(limits=2, user_api="blas"):
        result = run_one.execute_run(run, tmp_path / "runs", tmp_path / "data")
    assert result.status == "ok" and seen == {"torch": 1, "blas": [1] * len(_blas_threads())}
