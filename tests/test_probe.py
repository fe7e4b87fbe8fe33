"""`metatoken probe`: the summary's known answers, a grid and Mountain probe, and the CLI contract."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metatoken.envs import make_task
from metatoken.envs.sparsity import sparsity, wilson
from metatoken.evaluate.rollout import Rollouts
from metatoken.probe import behaviours, probe, summarise, table

EXE = Path(sys.executable).with_name("metatoken")
ROOT = Path(__file__).resolve().parents[1]


def test_summarise_known_answers():
    r = Rollouts(returns=np.array([1.0, 0.0, 1.0, 0.0]), lengths=np.array([10, 5, 20, 7]),
                 intended=np.zeros(4), exploit_steps=np.array([0, 3, 0, 0]), target=np.full(4, np.nan),
                 exploits_fired=[set(), {"launch"}, set(), set()],
                 implementations=["walk", "launch", "walk", "fall"])
    s = summarise(r)
    assert s.episodes == 4 and s.success_rate.value == 0.5 and s.exploit_rate.value == 0.25
    assert (s.success_rate.low, s.success_rate.high) == pytest.approx(wilson(2, 4))
    half = 1.959964 * np.std([10, 20], ddof=1) / np.sqrt(2)
    assert s.steps_to_success.value == 15.0 and s.steps_to_success.high == pytest.approx(15 + half)
    assert s.implementations == {"walk": 0.5, "launch": 0.25, "fall": 0.25}
    none = summarise(Rollouts(np.zeros(2), np.array([3, 3]), np.zeros(2), np.zeros(2), np.zeros(2),
                              [set(), set()], implementations=["", ""]))
    assert none.steps_to_success.value is None and none.implementations == {}


def test_grid_probe_matches_its_exact_answers():
    p = probe("glitchgrid-teleport", {"summit_distance": 4, "reward": "dense"}, episodes=400, seed=1)
    exact = sparsity(make_task("glitchgrid-teleport", {"summit_distance": 4}))
    assert p.sparsity == exact.reward  # exact on tables, and computed on the sparse variant
    assert next(iter(p.behaviours)) == "uniform" and "gaussian-1" not in p.behaviours  # discrete actions
    u = p.behaviours["uniform"].success_rate
    low, high = wilson(round(u.value * 400), 400, z=3.29)
    assert low <= exact.reward.probability <= high
    best = p.behaviours["east-walker@1"]
    assert best.success_rate.value == 1.0 and best.steps_to_success.value == 4.0
    assert best.exploit_rate.value == 0.0 and p.behaviours["uniform"].exploit_rate.value > 0.3
    out = p.to_json()
    assert list(out) == ["task", "options", "sparsity_bits", "sparsity_bits_ci", "behaviours"]
    assert out["options"] == {"summit_distance": 4, "reward": "dense"}
    assert set(out["behaviours"]["uniform"]) == {"episodes", "success_rate", "exploit_rate",
                                                 "steps_to_success", "implementations"}
    assert "east-walker@1" in table(p)


def test_mountain_probe_runs_every_behaviour():
    names = [name for name, _ in behaviours(make_task("mountain"))]
    assert names == ["uniform", "gaussian-0.5", "gaussian-1", "walker@0", "walker@0.25", "walker@0.5",
                     "walker@0.75", "walker@1", "walker@1+noise0.2", "exploiter"]
    p = probe("mountain", {"summit_distance": 3, "skills": [1.0]}, episodes=48, seed=0)
    assert list(p.behaviours) == ["uniform", "gaussian-0.5", "gaussian-1", "walker@1", "walker@1+noise0.2",
                                  "exploiter"]
    assert p.behaviours["exploiter"].exploit_rate.value >= 0.95
    assert p.behaviours["exploiter"].implementations.get("launch", 0) >= 0.95
    assert p.behaviours["walker@1"].implementations == {"walk": 1.0}
    assert all(p.behaviours[b].exploit_rate.value == 0 for b in ("uniform", "gaussian-0.5", "gaussian-1"))
    assert not p.sparsity.exact and p.sparsity.episodes == 48


def cli(*args):
    return subprocess.run([str(EXE), *map(str, args)], check=False, capture_output=True, text=True, cwd=ROOT,
                          timeout=600, env={**os.environ, "COLUMNS": "120"})


def test_cli_prints_json_and_rejects_bad_input_with_one_line(cli_here):
    """The executable prints the probe as JSON; bad inputs (through the entrypoint in-process) are one line, exit 2."""
    r = cli("probe", "glitchgrid-tamper", "--set", "summit_distance=3", "--episodes", "20", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["task"] == "glitchgrid-tamper" and out["options"] == {"summit_distance": 3}
    assert out["behaviours"]["uniform"]["episodes"] == 20 and out["sparsity_bits"] > 0
    for args, needle in ((("nope",), "unknown task id 'nope'"),
                         (("mountain", "--set", "bogus=1"), "--set bogus"),
                         (("mountain", "--set", "summit_distance=0.1"), "--set summit_distance")):
        bad = cli_here(["probe", *args], ROOT)
        assert bad.returncode == 2 and bad.stdout == ""
        assert len(bad.stderr.strip().splitlines()) == 1 and needle in bad.stderr
