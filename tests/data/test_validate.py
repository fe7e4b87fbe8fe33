"""Reference data is validated before anything trains: one line naming the file and the problem."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from metatoken.data import minari_io
from metatoken.data.collect import collect, reference_data
from metatoken.data.dataset import Dataset
from metatoken.data.validate import preflight, user_dataset, validate
from metatoken.envs import make_task
from metatoken.errors import UserError

SOURCE = "/data/mine"


@pytest.fixture(scope="module")
def pendulum():
    task = make_task("gym", {"env_id": "Pendulum-v1", "reference_episodes": 3, "max_episode_steps": 20})
    return task, collect(task)


def _with(dataset: Dataset, index: int = 1, **changes) -> Dataset:
    """A copy of `dataset` whose episode `index` has `changes`."""
    eps = list(dataset.episodes)
    eps[index] = replace(eps[index], **changes)
    return Dataset(eps, dataset.observation_space, dataset.action_space, dataset.task_key)


def _error(dataset, task) -> str:
    with pytest.raises(UserError) as err:
        validate(dataset, task, SOURCE)
    text = str(err.value)
    assert text.startswith(f"{SOURCE}: ") and "\n" not in text
    return text


def test_good_data_passes(pendulum, grid_task, grid_dataset):
    task, data = pendulum
    validate(data, task, SOURCE)
    validate(grid_dataset, grid_task, SOURCE)


def test_each_problem_is_named(pendulum):
    task, data = pendulum
    ep = data.episodes[1]
    obs_nan = ep.observations.copy()
    obs_nan[4, 2] = np.nan
    act_inf = ep.actions.copy()
    act_inf[7] = np.inf
    rew_nan = ep.rewards.copy()
    rew_nan[0] = np.nan
    act_out = ep.actions.copy()
    act_out[5] = 2.5  # Pendulum torque is in [-2, 2]
    cases = [
        (_with(data, observations=obs_nan), "episode 1 has non-finite observations (NaN or inf) at step 4"),
        (_with(data, actions=act_inf), "episode 1 has non-finite actions (NaN or inf) at step 7"),
        (_with(data, rewards=rew_nan), "episode 1 has non-finite rewards (NaN or inf) at step 0"),
        (_with(data, actions=act_out), "episode 1: action at step 5 is outside the action space"),
        (_with(data, observations=ep.observations[:-1]), "episode 1 has 20 observations for 20 rewards (expected 21)"),
        (_with(data, actions=ep.actions[:-2]), "episode 1 has 18 actions for 20 rewards (expected 20)"),
        (_with(data, observations=ep.observations[:, :2]), "episode 1: observations have shape (2,) per step"),
        (Dataset([], data.observation_space, data.action_space), "the dataset has no episodes"),
        (Dataset(data.episodes, data.observation_space, data.action_space, "glitchgrid-teleport__data0"),
         "recorded for task 'glitchgrid-teleport__data0', not 'gym-Pendulum-v1__data0__steps20'"),
    ]
    for bad, message in cases:
        assert message in _error(bad, task)


def test_spaces_must_match_the_task(pendulum, grid_task, grid_dataset):
    task, data = pendulum
    assert "observation space Box(0.0, 1.0, (2,), float32) does not match" in _error(Dataset(
        grid_dataset.episodes, grid_dataset.observation_space,
                                                          grid_dataset.action_space), task)
    assert "action space Box" in _error(Dataset(data.episodes, grid_task.make_env().observation_space,
                                                data.action_space), grid_task)


def test_discrete_action_out_of_range(grid_task, grid_dataset):
    acts = grid_dataset.episodes[0].actions.copy()
    acts[2] = grid_dataset.action_space.n  # one past the last action
    assert "episode 0: action at step 2 is outside" in _error(_with(grid_dataset, 0, actions=acts), grid_task)


def test_constant_returns_warn_in_one_line(pendulum, caplog):
    task, data = pendulum
    flat = Dataset([replace(e, rewards=np.full(len(e), -1.0)) for e in data.episodes],
                   data.observation_space, data.action_space)
    with caplog.at_level(logging.WARNING, logger="metatoken.data.validate"):
        validate(flat, task, SOURCE)
        validate(data, task, SOURCE)
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert msg == f"{SOURCE}: every reference episode has return -20, so normalised scores are NaN (not measured)"


def test_a_bad_user_dataset_is_refused_before_anything_is_written(tmp_path, pendulum):
    _, data = pendulum
    rewards = data.episodes[0].rewards.copy()
    rewards[3] = np.inf
    minari_io.save(_with(data, 0, rewards=rewards), tmp_path / "user")
    user = make_task("gym", {"env_id": "Pendulum-v1", "max_episode_steps": 20, "dataset": str(tmp_path / "user")})
    with pytest.raises(UserError, match=f"^{tmp_path / 'user'}: episode 0 has non-finite rewards"):
        user_dataset(user)
    with pytest.raises(UserError, match="non-finite rewards"):
        preflight(user)
    with pytest.raises(UserError, match="non-finite rewards"):
        reference_data(user, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    # the same data, good, is imported and cached
    minari_io.save(data, tmp_path / "user")
    preflight(user)
    preflight(make_task("gym", {"env_id": "Pendulum-v1"}))  # no user dataset: nothing to check
    assert reference_data(user, tmp_path / "cache").total_steps == data.total_steps
