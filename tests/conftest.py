"""Shared fixtures: a small reference dataset on the slice task, collected once per session."""

import pytest

from metatoken.data.collect import collect
from metatoken.envs import make_task


@pytest.fixture(scope="session")
def grid_task():
    return make_task("glitchgrid-teleport", {"summit_distance": 6, "reference_episodes": 60})


@pytest.fixture(scope="session")
def grid_dataset(grid_task):
    return collect(grid_task)
