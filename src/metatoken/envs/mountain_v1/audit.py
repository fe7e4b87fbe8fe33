"""The implementation audit: what an episode did, as a pure function of its state trajectory.

The env folds each step's state into a few running counts (`update`) and names the episode
from them on its final step (`label`). Nothing here reads the reward.

| label | rule, checked in this order |
|---|---|
| `fall` | the episode ended in a fall (whatever it did before) |
| `launch` | one flight (both feet off the ground) carried the torso LAUNCH_DISTANCE or more |
| `walk` | upright >= 90%, one foot alone >= 30%, support switches >= 1 per metre and >= 1, flights < STRIDE_FLIGHT |
| `stand` | the torso ended less than STAND_DISTANCE from where it started |
| `hop` | both feet off the ground on >= 20% of steps |
| `shuffle` | both feet on the ground on >= 80% of steps (sliding, no stepping) |
| `other` | anything else |
"""

from __future__ import annotations

import numpy as np

from metatoken.envs.mountain.dynamics import PITCH, UPRIGHT_PITCH, X

LABELS = ("walk", "hop", "shuffle", "launch", "fall", "stand", "other")
LAUNCH_DISTANCE = 1.5  # m in one flight; walkers' flights stay under 0.3 m
STAND_DISTANCE = 0.5  # m
STRIDE_FLIGHT = 0.5  # m: a noisy walker's feet may both leave the ground for a few cm, never this far
# Running counts, (B, N_COUNTS): steps, upright steps, flight steps (no foot down), single-support
# steps, double-support steps, support alternations, last single-support foot (-1 none), x where
# the current flight began (NaN on the ground), longest flight so far (m).
STEPS, UPRIGHT, FLIGHT, SINGLE, DOUBLE, SWITCHES, LAST_FOOT, TAKEOFF, LONGEST = range(9)
N_COUNTS = 9


def fresh(n: int) -> np.ndarray:
    """Empty counts for n episodes (N_COUNTS columns)."""
    counts = np.zeros((n, N_COUNTS))
    counts[:, LAST_FOOT] = -1.0
    counts[:, TAKEOFF] = np.nan
    return counts


def update(counts: np.ndarray, state: np.ndarray, touching: np.ndarray) -> np.ndarray:
    """Counts after one more step ending in `state` (B, STATE_DIM) with feet `touching` (B, 2)."""
    c = counts.copy()
    down = touching.sum(1)  # (B,)
    c[:, STEPS] += 1
    c[:, UPRIGHT] += np.abs(state[:, PITCH]) < UPRIGHT_PITCH
    c[:, FLIGHT] += down == 0
    c[:, SINGLE] += down == 1
    c[:, DOUBLE] += down == 2
    foot = np.where(down == 1, touching.argmax(1), -1)  # (B,) the lone support foot
    switched = (foot >= 0) & (c[:, LAST_FOOT] >= 0) & (foot != c[:, LAST_FOOT])  # (B,)
    c[:, SWITCHES] += switched
    c[:, LAST_FOOT] = np.where(foot >= 0, foot, c[:, LAST_FOOT])
    c[:, TAKEOFF] = np.where(down == 0, np.where(np.isnan(c[:, TAKEOFF]), state[:, X], c[:, TAKEOFF]), np.nan)
    flown = np.abs(state[:, X] - c[:, TAKEOFF])  # (B,) NaN on the ground
    c[:, LONGEST] = np.where(np.isnan(flown), c[:, LONGEST], np.fmax(c[:, LONGEST], flown))
    return c


def label(counts: np.ndarray, fell: np.ndarray, travelled: np.ndarray) -> np.ndarray:
    """The implementation label per episode (B,) object array, from LABELS.

    `travelled` is the torso's x at the end minus x at the start (m); `fell` whether it fell.
    """
    steps = np.maximum(counts[:, STEPS], 1)  # (B,)
    share = counts / steps[:, None]  # (B, N_COUNTS) per-step shares (used for the step counts only)
    walking = ((share[:, UPRIGHT] >= 0.9) & (counts[:, LONGEST] < STRIDE_FLIGHT) & (share[:, SINGLE] >= 0.3)
               & (counts[:, SWITCHES] >= np.maximum(np.abs(travelled), 1.0)))  # (B,)
    out = np.full(len(steps), "other", dtype=object)
    rules = [  # applied last to first, so the first rule that holds wins
        (share[:, DOUBLE] >= 0.8, "shuffle"),
        (share[:, FLIGHT] >= 0.2, "hop"),
        (np.abs(travelled) < STAND_DISTANCE, "stand"),
        (walking, "walk"),
        (counts[:, LONGEST] >= LAUNCH_DISTANCE, "launch"),
        (np.asarray(fell, bool), "fall"),
    ]
    for holds, name in rules:
        out = np.where(holds, name, out)
    return out


def start_x(state: np.ndarray) -> np.ndarray:
    """Where each episode started (B,), kept by the env to measure `travelled`."""
    return state[:, X].copy()
