"""Tabular tasks as explicit MDP tables, and a tabular pi_ref counted from the reference data.

`MDPTables` is what exact analysis (`metatoken.envs.exact.soft_value_iteration`, the
`exact/*` measurements) reads: a transition tensor, the reward of every variant, the
intended-performance table, the start distribution and the horizon (the task's time limit).

Terminal states become absorbing: every action stays put with reward 0 and intended 0.
Within the horizon that is the same process as "the episode ends on entering", and the
KL-regularised optimum there is pi_ref itself at no cost (its soft value is 0).

The tabular pi_ref counts (state, action) pairs over every step of the reference data,
mapping each observation back to its state (GlitchGrid observations are one row of the
table per state), with additive smoothing:

    pi_ref(a | s) = (n(s, a) + alpha) / (n(s) + A alpha),

so a state the data never visits gets the uniform policy and no action has probability 0
when alpha > 0 (every KL to it stays finite). It is stationary, (S, A): the scripted
behaviours that make the reference data do not look at the time step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.errors import UserError


@dataclass(frozen=True)
class MDPTables:
    """A finite-horizon tabular task: dynamics, rewards per variant, intent, start and horizon.

    The transition is dense, S * A * S float64s: fine for the default grids (18 to 180 states),
    about 128 MB for a teleport grid at its largest distance (2002 states).
    """

    transition: np.ndarray  # (S, A, S') float64, rows sum to 1
    rewards: dict[str, np.ndarray]  # variant -> (S, A) float64 (sparse, dense, shaped)
    variant: str  # the task's own reward variant, a key of `rewards`
    intended: np.ndarray  # (S, A) float64 change in intended performance
    start: np.ndarray  # (S,) float64 start distribution
    horizon: int  # the time limit: steps per episode at most
    observation: np.ndarray  # (S, obs_dim) float32, what the agent sees in each state
    terminal: np.ndarray  # (S,) bool, absorbing with reward 0

    @property
    def reward(self) -> np.ndarray:
        """The task's own reward table, (S, A)."""
        return self.rewards[self.variant]

    @property
    def n_states(self) -> int:
        return self.transition.shape[0]

    @property
    def n_actions(self) -> int:
        return self.transition.shape[1]


@runtime_checkable
class Tabular(Protocol):
    """An env whose whole dynamics are tables (every GlitchGrid)."""

    def exact_tables(self, horizon: int | None = None) -> MDPTables: ...


def absorbing(next_state: np.ndarray, terminal: np.ndarray, *tables: np.ndarray):
    """One-hot transitions (S, A, S') from a next-state table, with terminal states absorbing at 0 per table."""
    n_states, n_actions = next_state.shape
    nxt = np.where(terminal[:, None], np.arange(n_states)[:, None], next_state)  # (S, A)
    transition = np.zeros((n_states, n_actions, n_states))  # (S, A, S')
    np.put_along_axis(transition, nxt[:, :, None], 1.0, axis=2)
    zeroed = [np.where(terminal[:, None], 0.0, np.asarray(t, dtype=np.float64)) for t in tables]  # each (S, A)
    return transition, *zeroed


def states_of(tables: MDPTables, observations: np.ndarray) -> np.ndarray:
    """The state index of each observation row, (N,); ValueError if one matches no state."""
    obs = np.asarray(observations, dtype=np.float32).reshape(len(observations), -1)  # (N, O)
    lookup = {row.tobytes(): s for s, row in enumerate(tables.observation)}
    if len(lookup) != tables.n_states:
        raise ValueError("two states share an observation: observations do not identify states")
    try:
        return np.array([lookup[row.tobytes()] for row in obs], dtype=np.int64)
    except KeyError:
        raise ValueError("an observation matches no state of the tables") from None


def tabular_reference(dataset: Dataset, tables: MDPTables, smoothing: float = 1.0) -> np.ndarray:
    """pi_ref (S, A) from (state, action) counts over every step of the data, smoothed by `smoothing`."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    counts = np.zeros((tables.n_states, tables.n_actions))  # (S, A)
    for e in dataset.episodes:
        if len(e):
            np.add.at(counts, (states_of(tables, e.observations[:-1]), np.asarray(e.actions).reshape(-1)), 1.0)
    smoothed = counts + smoothing  # (S, A)
    total = smoothed.sum(1, keepdims=True)  # (S, 1)
    # An unvisited state with smoothing 0 has no evidence at all: uniform, as with any smoothing.
    return np.where(total > 0, smoothed / np.where(total > 0, total, 1.0), 1.0 / tables.n_actions)


def task_tables(task: Task) -> MDPTables:
    """The MDP tables of a tabular task (its env's `exact_tables` at the task's time limit)."""
    env = task.make_env()
    try:
        grid = env.unwrapped
        if not isinstance(grid, Tabular):
            raise UserError(f"task {task.id!r} has no tables: exact analysis needs a tabular (GlitchGrid) task")
        return grid.exact_tables(task.max_episode_steps)
    finally:
        env.close()
