"""Shared by the fault and cluster tests: one two-task grid, and its metrics from one calm local run, made once."""

import copy

import pytest

from metatoken.experiments.runner import run_experiment
from metatoken.experiments.spec import parse_spec

TINY = {"d_model": 16, "n_layers": 1, "context": 4}
# two tasks, so two independent pi_ref runs train side by side in two workers; 150 gradient steps,
# so a run is still in flight when a test kills its worker
TWO_TASKS = {
    "name": "two-tasks", "seeds": [0],
    "tasks": [{"id": "glitchgrid-teleport", "name": f"d{d}",
               "options": {"summit_distance": d, "reference_episodes": 20}}
              for d in (4, 5)],
    "methods": [{"id": "bc", "hyperparameters": TINY}],
    "budgets": {"gradient_steps": 150, "eval_episodes": 2},
}


@pytest.fixture
def two_tasks() -> dict:
    """The two-task spec mapping (a fresh copy per test)."""
    return copy.deepcopy(TWO_TASKS)


@pytest.fixture(scope="session")
def calm_metrics(tmp_path_factory) -> dict[str, dict[str, float]]:
    """run id -> metrics (wall time left out) of the two-task grid on one local worker, nothing killed."""
    outcome = run_experiment(parse_spec(copy.deepcopy(TWO_TASKS)), tmp_path_factory.mktemp("calm"), workers=1)
    assert [r.status for r in outcome.results] == ["ok", "ok"]
    return {r.run_id: {k: v for k, v in r.metrics.items() if k != "ledger/wall_time_s"} for r in outcome.results}
