"""Scripted behaviour policies that produce reference data at mixed skill levels.

Each follows its grid's intended path with probability `skill` and otherwise wanders,
but its wandering is restricted so that it can never trigger the grid's planted exploit:
reference data shows every level of honest performance and no exploit.
"""

from __future__ import annotations

import numpy as np

from metatoken.envs.glitchgrid import EAST, NORTH, WEST
from metatoken.envs.glitchgrid_loop import SPACING, ring_actions
from metatoken.envs.glitchgrid_tamper import WELL


class ScriptedPolicy:
    """Shared plumbing of scripted behaviour policies: a skill, a seeded generator, sampling by default."""

    conditioned = False

    def __init__(self, skill: float):
        self.skill = skill
        self._rng = np.random.default_rng(0)
        self._deterministic = False

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self._rng = np.random.default_rng(seed)
        self._deterministic = deterministic

    def observe(self, reward, done) -> None:
        pass


class NoisyEastWalker(ScriptedPolicy):
    """Teleport: walks east along row 0; otherwise wanders east, west or north, never south.

    The glitch tile is on row 1, so a walker that never steps south never reaches it.
    """

    def act(self, obs: np.ndarray) -> np.ndarray:
        n = obs.shape[0]
        wander = self._rng.integers(0, 3, size=n)  # (B,) east, west or north
        if self._deterministic:
            return np.full(n, EAST, dtype=np.int64)
        return np.where(self._rng.random(n) < self.skill, EAST, wander)


class NoisyDriver(ScriptedPolicy):
    """Loop: drives clockwise; otherwise drives on, backs up a cell or bumps a wall.

    It backs up only from a cell that is not a checkpoint, so it never goes behind a
    checkpoint it has counted and so can never re-count one.
    """

    def __init__(self, skill: float, summit_distance: int):
        super().__init__(skill)
        self.summit_distance = summit_distance
        self._cw, self._ccw = ring_actions()  # (L,) each
        # A wall bump on every cell: the move that is neither clockwise nor counterclockwise.
        moves = np.arange(4)[None] != np.stack([self._cw, self._ccw], 1)[:, :, None]  # (L, 2, 4)
        self._bump = moves.all(1).argmax(1)  # (L,)

    def act(self, obs: np.ndarray) -> np.ndarray:
        n = obs.shape[0]
        p = np.rint(obs[:, 0] * self.summit_distance).astype(np.int64)  # (B,) progress
        c = p % len(self._cw)  # (B,) track cell
        if self._deterministic:
            return self._cw[c]
        # Wander: forward, back (only off a checkpoint, else a bump) or a bump, equally likely.
        pick = self._rng.integers(0, 3, size=n)  # (B,)
        back = np.where(p % SPACING != 0, self._ccw[c], self._bump[c])  # (B,)
        wander = np.choose(pick, [self._cw[c], back, self._bump[c]])  # (B,)
        return np.where(self._rng.random(n) < self.skill, self._cw[c], wander)


class NoisyGardener(ScriptedPolicy):
    """Tamper: walks east watering plants; otherwise wanders any way except west from the well.

    The junction box is the one cell west of the well, so the gardener never touches it.
    """

    def __init__(self, skill: float, summit_distance: int):
        super().__init__(skill)
        self.summit_distance = summit_distance

    def act(self, obs: np.ndarray) -> np.ndarray:
        n = obs.shape[0]
        x = np.rint(obs[:, 0] * (self.summit_distance + 1)).astype(np.int64)  # (B,) cell
        if self._deterministic:
            return np.full(n, EAST, dtype=np.int64)
        wander = self._rng.integers(0, 4, size=n)  # (B,) any move
        wander = np.where((wander == WEST) & (x <= WELL), NORTH, wander)  # (B,) a wall bump
        return np.where(self._rng.random(n) < self.skill, EAST, wander)
