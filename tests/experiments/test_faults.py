"""Faults: a worker that dies has its run retried, then recorded as failed while the others go
on; a driver that dies takes its workers with it. The grid is conftest.py's two-task spec."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import parse_spec

TIMEOUT_S = 300


def _wait_for_a_run_in_flight(runs: Path) -> None:
    """Until a temporary run directory exists: a worker is executing a run."""
    deadline = time.monotonic() + TIMEOUT_S
    while not (runs.is_dir() and any(p.name.startswith(".") for p in runs.iterdir())):
        assert time.monotonic() < deadline, "no run started"
        time.sleep(0.05)


def _run_and_kill_one_worker(spec: dict, out: Path, retries: int):
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(
        run_experiment(parse_spec(spec), out, workers=2, retries=retries)))
    thread.start()
    _wait_for_a_run_in_flight(out / "runs")
    victim = mp.active_children()[0]
    os.kill(victim.pid, signal.SIGKILL)
    thread.join(TIMEOUT_S)
    assert not thread.is_alive() and outcome, "the experiment did not finish"
    return outcome[0]


def _metrics(results):
    return {r.run_id: {k: v for k, v in r.metrics.items() if k != "ledger/wall_time_s"} for r in results}


def test_a_killed_worker_is_retried_and_the_results_are_unchanged(tmp_path, two_tasks, calm_metrics):
    killed = _run_and_kill_one_worker(two_tasks, tmp_path / "killed", retries=1)
    assert [r.status for r in killed.results] == ["ok", "ok"]
    a, b = calm_metrics, _metrics(killed.results)
    assert a.keys() == b.keys()
    for run_id in a:
        np.testing.assert_array_equal(list(a[run_id].values()), list(b[run_id].values()), err_msg=run_id)
    assert not [p for p in (tmp_path / "killed" / "runs").iterdir() if p.name.startswith(".")]


def test_without_retries_the_dead_workers_run_is_recorded_failed_and_the_other_finishes(tmp_path, two_tasks):
    outcome = _run_and_kill_one_worker(two_tasks, tmp_path, retries=0)
    status = sorted(r.status for r in outcome.results)
    assert status == ["failed", "ok"]
    failed = next(r for r in outcome.results if r.status == "failed")
    assert failed.error.startswith("WorkerDied: the worker process died (exit code -9)")
    assert (tmp_path / "runs" / failed.run_id / "error.json").is_file()
    ok = next(r for r in outcome.results if r.status == "ok")
    tasks = {row["task"] for row in pq.read_table(outcome.results_path).to_pylist()}
    assert tasks == {ok.run_id.split("__")[0]}


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def test_workers_exit_when_the_driver_is_killed(tmp_path, two_tasks):
    spec = tmp_path / "faults.yaml"
    spec.write_text(yaml.safe_dump(two_tasks))
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("metatoken")
    driver = subprocess.Popen([str(exe), "run", str(spec), "--out", str(out), "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_a_run_in_flight(out / "runs")
        workers = _children(driver.pid)
        assert len(workers) >= 2
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() and "(Z)" not in _state(pid) for pid in workers):
            assert time.monotonic() < deadline, f"orphaned workers: {workers}"
            time.sleep(0.1)
    finally:
        driver.kill()
    # the next experiment in the same directory removes the temporary run directories left behind
    stale = [p for p in (out / "runs").iterdir() if p.name.startswith(".")]
    assert stale
    from metatoken.experiments import rundir

    rundir.ExperimentDir(out).remove_stale_temporaries()
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0].join("()")
    except OSError:
        return "(gone)"
