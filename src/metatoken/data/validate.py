"""Reference data is checked before anything trains on it.

`validate(dataset, task, source)` raises a one-line UserError naming `source` (the file or
directory the data came from) and the first problem found:

- at least one episode, each with at least one step;
- the observation and action spaces match the task's env (as `task.make_env()` shows them);
- lengths agree: T + 1 observations, T actions, rewards, terminations and truncations;
- each observation and action has the space's shape;
- every observation, action and reward is finite;
- every action lies inside the action space;
- the task the data was recorded for (its `metatoken_task_key`), if any, is this task.

A reference set whose episodes all have the same return cannot normalise scores: that is
not an error (the data may still be worth imitating) but a one-line warning, and the
normalised metrics are then NaN (`evaluate/measure/capability.py`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import gymnasium as gym
import numpy as np

from metatoken.data import minari_io
from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.errors import UserError

log = logging.getLogger(__name__)
USER_SUFFIX = "__user-"  # the part of a generic task's key that names where the user data was found


def validate(dataset: Dataset, task: Task, source: Path | str) -> None:
    """Raise a one-line UserError naming `source` if `dataset` cannot be `task`'s reference data."""

    def fail(problem: str) -> None:
        raise UserError(f"{source}: {problem}")

    if len(dataset.episodes) == 0:
        fail("the dataset has no episodes")
    _check_task_key(dataset.task_key, task.key, fail)
    env = task.make_env()
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    for role, got, want in (("observation", dataset.observation_space, obs_space),
                            ("action", dataset.action_space, act_space)):
        if not same_space(got, want):
            fail(f"{role} space {got} does not match the task's env ({want})")
    obs_shape, act_shape = _shape(obs_space), _shape(act_space)
    for i, ep in enumerate(dataset.episodes):
        _check_episode(i, ep, obs_shape, act_shape, act_space, fail)
    if np.ptp(dataset.returns()) <= 1e-9 * max(1.0, float(np.abs(dataset.returns()).max())):
        log.warning("%s: every reference episode has return %.6g, so normalised scores are NaN (not measured)",
                     source, dataset.returns()[0])


def user_dataset(task: Task) -> Dataset:
    """Load the user dataset `task.dataset` in the task's env spaces, validated; writes nothing.

    The runner calls this for every task of a spec before it writes anything, so a bad
    dataset is one line and exit 2 with nothing on disk.
    """
    source = minari_io.locate(task.dataset)
    try:
        data = task.encode(minari_io.load(source))
    except ValueError as err:
        raise UserError(f"{source}: {err}") from None
    validate(data, task, source)
    return Dataset(data.episodes, data.observation_space, data.action_space, task.key, dict(data.metadata))


def preflight(task: Task) -> None:
    """Check a task's user dataset, if it names one, without writing anything (the runner's first step)."""
    if task.dataset is not None:
        user_dataset(task)


def _check_task_key(recorded: str, key: str, fail) -> None:
    """The recorded task key must be this task's (a generic task's user-data suffix aside)."""
    if recorded and recorded.split(USER_SUFFIX)[0] != key.split(USER_SUFFIX)[0]:
        fail(f"recorded for task {recorded!r}, not {key!r}")


def _shape(space: gym.Space) -> tuple[int, ...]:
    return () if space.shape is None else tuple(space.shape)


def same_space(a: gym.Space, b: gym.Space) -> bool:
    """Same kind, shape and bounds (dtype aside: a float64 recording of a float32 env is fine)."""
    if type(a) is not type(b) or _shape(a) != _shape(b):
        return False
    if isinstance(a, gym.spaces.Box):
        return bool(np.array_equal(a.low, b.low) and np.array_equal(a.high, b.high))
    if isinstance(a, gym.spaces.Discrete):
        return a.n == b.n and a.start == b.start
    if isinstance(a, gym.spaces.MultiDiscrete):
        return bool(np.array_equal(a.nvec, b.nvec) and np.array_equal(a.start, b.start))
    return a == b


def _check_episode(i: int, ep, obs_shape, act_shape, act_space: gym.Space, fail) -> None:
    """Lengths, shapes, finiteness and action bounds of episode i."""
    t = len(ep.rewards)
    if t == 0:
        fail(f"episode {i} has no steps")
    lengths = {"observations": (len(ep.observations), t + 1), "actions": (len(ep.actions), t),
               "terminations": (len(ep.terminations), t), "truncations": (len(ep.truncations), t)}
    for name, (got, want) in lengths.items():
        if got != want:
            fail(f"episode {i} has {got} {name} for {t} rewards (expected {want})")
    for name, arr, shape in (("observation", ep.observations, obs_shape), ("action", ep.actions, act_shape)):
        if tuple(np.shape(arr)[1:]) != shape:
            fail(f"episode {i}: {name}s have shape {tuple(np.shape(arr)[1:])} per step, the space {shape}")
    for name, arr in (("observations", ep.observations), ("actions", ep.actions), ("rewards", ep.rewards)):
        arr = np.asarray(arr)
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            fail(f"episode {i} has non-numeric {name} (dtype {arr.dtype})")
        bad = ~np.isfinite(arr)
        if bad.any():
            step = int(np.argwhere(bad)[0][0])
            fail(f"episode {i} has non-finite {name} (NaN or inf) at step {step}")
    outside = _outside(np.asarray(ep.actions), act_space)
    if outside is not None:
        fail(f"episode {i}: action at step {outside} is outside the action space {act_space}")


def _outside(actions: np.ndarray, space: gym.Space) -> int | None:
    """The first step whose action is outside `space`, or None."""
    if isinstance(space, gym.spaces.Box):
        out = ((actions < space.low) | (actions > space.high)).reshape(len(actions), -1).any(1)
    elif isinstance(space, gym.spaces.Discrete):
        out = (actions != np.round(actions)) | (actions < space.start) | (actions >= space.start + space.n)
    elif isinstance(space, gym.spaces.MultiDiscrete):
        low, high = space.start, space.start + space.nvec
        out = ((actions != np.round(actions)) | (actions < low) | (actions >= high)).reshape(len(actions), -1).any(1)
    elif isinstance(space, gym.spaces.MultiBinary):
        out = ((actions != 0) & (actions != 1)).reshape(len(actions), -1).any(1)
    else:
        out = np.array([not space.contains(a) for a in actions])
    hits = np.flatnonzero(out)
    return int(hits[0]) if len(hits) else None
