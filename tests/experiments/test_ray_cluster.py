"""A real Ray cluster: `ray start --head` on loopback, a spec run with --backend ray --address,
one Ray worker killed mid-run; the run is retried and the results equal the local backend's.

Only processes of this test's cluster are touched: they are found by its own temp dir and
their descendants, never by name (`ray stop` would stop every cluster on the machine).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("ray")
RAY = Path(sys.executable).with_name("ray")
EXE = Path(sys.executable).with_name("metatoken")
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) for every process we can read."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            out[int(entry.name)] = (ppid, cmd)
    return out


def _cluster_pids(temp_dir: str, port: int) -> dict[int, str]:
    """This cluster's processes: those naming its temp dir or its port, and all their descendants."""
    procs = _processes()
    mine = {pid for pid, (_, cmd) in procs.items() if temp_dir in cmd or f":{port} " in f"{cmd} "}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in procs.items() if ppid in mine} - mine
        mine |= more
        grew = bool(more)
    ancestors, pid = set(), os.getpid()
    while pid in procs and pid not in ancestors:  # never this test process or what runs it
        ancestors.add(pid)
        pid = procs[pid][0]
    return {pid: procs[pid][1] for pid in mine - ancestors}


def _stop(temp_dir: str, port: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _cluster_pids(temp_dir, port):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(1)


@pytest.mark.skipif(not RAY.exists(), reason="the ray executable is not installed")
def test_cluster_run_survives_a_killed_ray_worker(tmp_path, two_tasks, calm_metrics):
    temp_dir = tempfile.mkdtemp(prefix="/tmp/mtray")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    # a private HOME: Ray keeps its auth token in ~/.ray, which other clusters on this machine share
    # and no RAY_* variables of this process: an in-process ray.init (an earlier test) leaves
    # RAY_AUTH_MODE=token behind, which would make `ray start` demand a token the cluster lacks
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
           "RAY_USAGE_STATS_ENABLED": "0", "HOME": temp_dir}
    try:
        for _ in range(2):  # a port taken between choosing and binding it: choose another, once
            head = subprocess.run([str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                                   "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}"],
                                  check=False, capture_output=True, text=True, timeout=120, env=env)
            if head.returncode == 0:
                break
            _stop(temp_dir, port)
            port = _free_port()
        assert head.returncode == 0, f"ray start failed: {(head.stdout + head.stderr)[-3000:]}"
        spec = tmp_path / "cluster.yaml"
        spec.write_text(yaml.safe_dump(two_tasks))
        driver = subprocess.Popen([str(EXE), "run", str(spec), "--backend", "ray", "--address", f"127.0.0.1:{port}",
                                   "--out", str(tmp_path / "ray"), "--retries", "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline, killed = time.monotonic() + TIMEOUT_S, None
        while killed is None and driver.poll() is None:
            assert time.monotonic() < deadline, "no Ray task started"
            running = [pid for pid, cmd in _cluster_pids(temp_dir, port).items() if cmd.startswith("ray::_remote_run")]
            if running:
                killed = running[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        _, err = driver.communicate(timeout=TIMEOUT_S)
        assert killed is not None, f"every run finished before a worker could be killed: {err[-2000:]}"
        assert driver.returncode == 0, err[-2000:]
    finally:
        _stop(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)
    for run_id, a in calm_metrics.items():  # the local backend's, one calm worker (conftest.py)
        remote = tmp_path / "ray" / "runs" / run_id / "metrics.json"
        b = {k: v for k, v in json.loads(remote.read_text()).items() if k != "ledger/wall_time_s"}
        assert a.keys() == b.keys()
        np.testing.assert_array_equal([a[k] for k in sorted(a)], [b[k] for k in sorted(a)], err_msg=run_id)
