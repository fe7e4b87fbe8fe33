"""Importing the recipes prints nothing, even with d3rlpy's `gym` dependency (and its notice) installed."""

import importlib.util
import subprocess
import sys

import pytest


@pytest.mark.skipif(importlib.util.find_spec("gym") is None, reason="the legacy gym package is not installed")
def test_importing_the_methods_prints_no_legacy_gym_notice():
    # stable-baselines3 imports `gym` when present; its notice (4 lines on stderr) must not reach the user
    r = subprocess.run([sys.executable, "-c", "import metatoken.methods, stable_baselines3, gym"],
                       capture_output=True, text=True, check=True)
    assert "Gym has been unmaintained" not in r.stderr
    assert r.stderr == "", r.stderr
