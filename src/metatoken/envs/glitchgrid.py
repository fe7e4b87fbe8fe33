"""GlitchGrid core: tables, the one pure dynamics function, and the single and vector envs.

Every grid (teleport, loop, tamper; one module each) compiles into `GridTables`: next
state, reward, intended-performance change, exploit id and terminal flag, indexed by
tabular state and action. `grid_step` steps any batch of states through those tables.
`GridEnv` (one episode) and `GridVectorEnv` (B episodes, NEXT_STEP autoreset) both call
it, and exact dynamic programming (`metatoken.envs.exact`) reads the same tables, so the
audit is ground truth by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from metatoken.envs.glitchgrid_render import draw_cells
from metatoken.envs.tabular import MDPTables, absorbing

# Actions: 0 east, 1 west, 2 north, 3 south (row 0 is the top row).
MOVES = np.array([[1, 0], [-1, 0], [0, -1], [0, 1]])  # (A, 2) as (dx, dy)
EAST, WEST, NORTH, SOUTH = range(4)
NO_EXPLOIT = ""
REWARDS = ("sparse", "dense", "shaped")


@dataclass(frozen=True)
class GridTables:
    """The complete dynamics of a grid, indexed [state, action]; arrays are read-only."""

    next_state: np.ndarray  # (S, A) int
    reward: np.ndarray  # (S, A) float64
    intended: np.ndarray  # (S, A) float64 change in intended performance
    exploit: np.ndarray  # (S, A) int, 0 = none, else index into exploit_names
    terminal: np.ndarray  # (S,) bool, the episode ends on entering
    observation: np.ndarray  # (S, obs_dim) float32 in [0, 1], what the agent sees
    start: int
    exploit_names: tuple[str, ...]  # index 0 is NO_EXPLOIT

    def __post_init__(self):
        for name in ("next_state", "reward", "intended", "exploit", "terminal", "observation"):
            getattr(self, name).setflags(write=False)  # tables are cached and shared

    @property
    def n_states(self) -> int:
        return self.next_state.shape[0]

    @property
    def n_actions(self) -> int:
        return self.next_state.shape[1]


def grid_step(tables: GridTables, state, action):
    """Pure dynamics for scalars or (B,) arrays: -> next, reward, d_intended, exploit id, terminated."""
    nxt = tables.next_state[state, action]  # (B,)
    return (
        nxt,
        tables.reward[state, action],  # (B,)
        tables.intended[state, action],  # (B,)
        tables.exploit[state, action],  # (B,) int
        tables.terminal[nxt],  # (B,) bool
    )


def check_options(reward: str, summit_distance: int, low: int, high: int, multiple: int = 1):
    """Raise ValueError for an unknown reward variant or an out-of-range distance."""
    if reward not in REWARDS:
        raise ValueError(f"reward must be sparse, dense or shaped, got {reward!r}")
    if not (low <= summit_distance <= high) or summit_distance % multiple:
        rule = f" and a multiple of {multiple}" if multiple > 1 else ""
        raise ValueError(f"summit_distance must be in [{low}, {high}]{rule}, got {summit_distance}")


class _Grid:
    """What the single and vector env share: building (cached) tables from the arguments."""

    make_tables: ClassVar[Callable[..., GridTables]]  # (summit_distance, reward, shaping_weight)
    default_summit_distance: ClassVar[int] = 8

    @staticmethod
    def cells(summit_distance: int, state: int) -> tuple[np.ndarray, tuple[int, int]]:
        """The grid's picture at a tabular state: cell codes (H, W) and the agent's (x, y)."""
        raise NotImplementedError

    def _picture(self, state: int) -> np.ndarray | None:
        """An (H, W, 3) uint8 picture of `state` when render_mode is "rgb_array", else None."""
        if self.render_mode != "rgb_array":
            return None
        return draw_cells(*type(self).cells(self.summit_distance, int(state)))

    def _build(self, reward: str, summit_distance: int | None, shaping_weight: float) -> GridTables:
        d = self.default_summit_distance if summit_distance is None else int(summit_distance)
        self.reward_variant, self.summit_distance, self.shaping_weight = reward, d, float(shaping_weight)
        return type(self).make_tables(d, reward, float(shaping_weight))

    def exact_tables(self, horizon: int | None = None) -> MDPTables:
        """This grid as an MDP for exact analysis: transition (S, A, S'), reward per variant, intent, start, horizon.

        Built from the same tables the env steps through, with terminal states made absorbing
        at reward 0 (see `metatoken.envs.tabular`). `horizon` defaults to the env's time limit
        (the vector env's `max_episode_steps`, else the limit registered for the env's id;
        `metatoken.envs.tabular.task_tables` passes the task's own limit).
        """
        if horizon is None:
            registered = gym.spec(self.spec.id).max_episode_steps if self.spec is not None else None
            horizon = getattr(self, "max_episode_steps", None) or registered
        if not horizon or horizon < 1:
            raise ValueError("exact_tables needs a horizon: pass one or give the env a time limit")
        cls, d, w = type(self), self.summit_distance, self.shaping_weight
        variants = {v: cls.make_tables(d, v, w) for v in REWARDS}
        own = variants[self.reward_variant]
        transition, intended, *rewards = absorbing(own.next_state, own.terminal, own.intended,
                                                   *(t.reward for t in variants.values()))
        return MDPTables(transition, dict(zip(variants, rewards)), self.reward_variant, intended,
                         np.eye(own.n_states)[own.start], int(horizon), own.observation, own.terminal)


class GridEnv(_Grid, gym.Env):
    """One episode of a GlitchGrid; each grid subclass sets `make_tables` and the spec docstring."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, reward: str = "dense", summit_distance: int | None = None,
                 shaping_weight: float = 0.5, render_mode: str | None = None):
        self.tables = self._build(reward, summit_distance, shaping_weight)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, self.tables.observation.shape[1:], np.float32)
        self.action_space = spaces.Discrete(self.tables.n_actions)
        self._state, self._intended = self.tables.start, 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state, self._intended = self.tables.start, 0.0
        return self.tables.observation[self._state].copy(), {"intended": 0.0, "exploit": NO_EXPLOIT}

    def step(self, action):
        a = int(action)
        if not 0 <= a < self.tables.n_actions:
            raise ValueError(f"action must be in [0, {self.tables.n_actions}), got {action!r}")
        nxt, rew, d_int, exp, term = grid_step(self.tables, self._state, a)
        self._state = int(nxt)
        self._intended += float(d_int)
        info = {"intended": self._intended, "exploit": self.tables.exploit_names[exp]}
        return self.tables.observation[self._state].copy(), float(rew), bool(term), False, info

    def render(self):
        """A small picture of the grid and the agent (render_mode "rgb_array"), else None."""
        return self._picture(self._state)

    @property
    def state(self) -> int:
        """The current tabular state index (for exact analysis and tests)."""
        return self._state


class GridVectorEnv(_Grid, VectorEnv):
    """B episodes of a GlitchGrid over (B,) state arrays, with NEXT_STEP autoreset and a time limit.

    Semantics match `SyncVectorEnv` over `gym.make(id)`: after an env terminates or is
    truncated, its next `step` ignores the action, resets it and returns the reset
    observation with reward 0, both flags False and the reset info. Info is a dict of
    arrays: `intended` (B,) float64 and `exploit` (B,) object array of names.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 4,
                                "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None,
                 reward: str = "dense", summit_distance: int | None = None,
                 shaping_weight: float = 0.5, render_mode: str | None = None):
        self.tables = self._build(reward, summit_distance, shaping_weight)
        self.num_envs, self.max_episode_steps, self.render_mode = num_envs, max_episode_steps, render_mode
        self.single_observation_space = spaces.Box(0.0, 1.0, self.tables.observation.shape[1:], np.float32)
        self.single_action_space = spaces.Discrete(self.tables.n_actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        # Names preallocated once: the per-step audit is one gather, no string churn.
        self._names = np.array(self.tables.exploit_names, dtype=object)  # (E,)
        self._limit = np.iinfo(np.int64).max if max_episode_steps is None else int(max_episode_steps)
        self._state = np.full(num_envs, self.tables.start, dtype=np.int64)  # (B,)
        self._intended = np.zeros(num_envs)  # (B,)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)  # (B,)
        self._autoreset = np.zeros(num_envs, dtype=bool)  # (B,) reset on the next step

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        mask = np.ones(self.num_envs, bool) if not options or "reset_mask" not in options \
            else np.asarray(options["reset_mask"], dtype=bool)  # (B,)
        self._state[mask], self._intended[mask], self._elapsed[mask] = self.tables.start, 0.0, 0
        self._autoreset[mask] = False
        return self.tables.observation[self._state], self._info(np.zeros(self.num_envs, np.int64))

    def step(self, actions):
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or (a.astype(np.uint64) >= self.tables.n_actions).any():
            raise ValueError(f"actions must be ({self.num_envs},) ints in [0, {self.tables.n_actions})")
        nxt, rew, d_int, exp, term = grid_step(self.tables, self._state, a)  # each (B,)
        elapsed = self._elapsed + 1  # (B,)
        intended = self._intended + d_int  # (B,)
        reset = self._autoreset  # (B,) finished last step: this step is their reset
        if reset.any():
            nxt = np.where(reset, self.tables.start, nxt)
            rew, intended = np.where(reset, 0.0, rew), np.where(reset, 0.0, intended)
            exp, elapsed = np.where(reset, 0, exp), np.where(reset, 0, elapsed)
            term = term & ~reset
        trunc = (elapsed >= self._limit) & ~reset  # (B,) like TimeLimit: may coincide with term
        self._state, self._intended, self._elapsed = nxt, intended, elapsed
        self._autoreset = term | trunc
        return self.tables.observation[nxt], rew, term, trunc, self._info(exp)

    def _info(self, exploit_ids: np.ndarray) -> dict[str, np.ndarray]:
        return {"intended": self._intended.copy(), "exploit": self._names[exploit_ids]}

    def render(self):
        """A picture of env 0, as its single env draws it (render_mode "rgb_array"), else None."""
        return self._picture(self._state[0])

    @property
    def state(self) -> np.ndarray:
        """The current tabular state indices, (B,)."""
        return self._state.copy()


def vectorised(single: type[GridEnv]) -> type[GridVectorEnv]:
    """A grid's vector env, taking its tables builder and default distance from the single env."""
    grid = single.__name__.removesuffix("Env")
    return type(f"{grid}VectorEnv", (GridVectorEnv,), {
        "__doc__": f"B {grid} GlitchGrids in lockstep; the same dynamics as `{single.__name__}`.",
        "__module__": single.__module__,
        "make_tables": staticmethod(single.make_tables),
        "cells": staticmethod(single.cells),
        "default_summit_distance": single.default_summit_distance,
    })
