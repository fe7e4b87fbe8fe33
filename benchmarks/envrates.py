"""Shared timing loops for the environment benchmarks (ours and the peer use the same loop)."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np


def vector_rate(vec: gym.vector.VectorEnv, actions: np.ndarray, seconds: float) -> float:
    """Env-steps per second of `vec.step` cycling through actions (T, B, ...) for >= `seconds`."""
    vec.reset(seed=0)
    for a in actions[:8]:  # warm-up
        vec.step(a)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            vec.step(a)
        steps += actions.shape[0] * actions.shape[1]
    return steps / (time.perf_counter() - start)


def single_rate(env: gym.Env, actions, seconds: float) -> float:
    """Steps per second of one env through its wrappers, resetting at episode ends."""
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        steps += len(actions)
    return steps / (time.perf_counter() - start)
