"""Sparsity in bits: how distant a task's reward (or its exploit) is for a policy that knows nothing.

    sparsity_bits = -log2 P(a uniform-random policy obtains any reward in an episode)

computed on the task's `sparse` reward variant (when it has one), at its distance and time
limit. The same for P(the uniform-random policy fires a planted exploit). On GlitchGrids both
are exact: a forward pass of the random policy's state distribution through `GridTables`,
removing mass at the first rewarded (or exploiting) step. Elsewhere they are Monte Carlo
estimates with a 95% Wilson interval; when no episode succeeds the estimate is only a lower
bound on the bits (`bits` is then that bound and `high` is inf).

The Monte Carlo runs `envs` vector-env walkers, each playing its share of the episodes back to
back (the vector env's autoreset), so a batch does not wait on its longest episode once per
episode: a uniform walker on Mountain-v1 falls in ~90 steps but the slowest of 16,384 lasts ~400.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from gymnasium.vector import AutoresetMode

from metatoken.envs.glitchgrid import GridTables
from metatoken.envs.noise import UniformRandom
from metatoken.envs.task import Task

Z95 = 1.959964  # two-sided 95% normal quantile
RESOLVING_EPISODES = 16_384  # 0 hits in 16,384 episodes bounds the bits at >= 12.06 (Wilson)


class NotMonteCarloReady(ValueError):
    """The task's vector env cannot play episodes back to back (no NEXT_STEP autoreset)."""


@dataclasses.dataclass(frozen=True)
class Bits:
    """-log2 of a probability, with its 95% interval (low <= bits <= high; equal when exact)."""

    bits: float  # the estimate; the interval's lower end when no episode succeeded
    low: float
    high: float  # inf when no episode succeeded
    probability: float
    exact: bool
    hits: int = 0  # Monte Carlo: episodes with the event
    episodes: int = 0  # Monte Carlo: episodes run (0 when exact)

    def to_json(self) -> dict:
        """`{"bits", "ci": [low, high]}` with an unbounded end as null."""
        finite = lambda v: None if math.isinf(v) else round(v, 4)
        return {"bits": finite(self.bits), "ci": [finite(self.low), finite(self.high)]}


@dataclasses.dataclass(frozen=True)
class Sparsity:
    """A task variant's sparsity of reward and of exploit, in bits."""

    reward: Bits
    exploit: Bits


def _bits(p: float) -> float:
    return math.inf if p <= 0.0 else -math.log2(p)


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) for a binomial proportion hits / n."""
    if n <= 0:
        raise ValueError("wilson needs at least one trial")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def estimated(hits: int, n: int) -> Bits:
    """Bits from a Monte Carlo count, with the Wilson interval mapped through -log2."""
    low_p, high_p = wilson(hits, n)
    point = _bits(hits / n) if hits else _bits(high_p)
    return Bits(point, _bits(high_p), _bits(low_p), hits / n, False, hits, n)


def first_hit_probability(tables: GridTables, event: np.ndarray, horizon: int) -> float:
    """P(the uniform-random policy meets `event` (S, A) bool within `horizon` steps), exactly."""
    n_states, n_actions = tables.next_state.shape
    alive = np.zeros(n_states)  # (S,) probability of being here, episode running, no event yet
    alive[tables.start] = 1.0
    hit = 0.0
    for _ in range(horizon):
        flow = np.repeat(alive[:, None] / n_actions, n_actions, axis=1)  # (S, A)
        hit += float(flow[event].sum())
        flow[event] = 0.0
        alive = np.bincount(tables.next_state.ravel(), weights=flow.ravel(), minlength=n_states)  # (S,)
        alive[tables.terminal] = 0.0  # entering a terminal state ends the episode
    return hit


def sparse_variant(task: Task) -> Task:
    """The same task with its `sparse` reward, when its env takes a `reward` argument."""
    if "reward" not in task.env_kwargs:
        return task
    return dataclasses.replace(task, env_kwargs={**task.env_kwargs, "reward": "sparse"})


def exact_sparsity(task: Task) -> Sparsity | None:
    """Exact sparsity from the env's tables (GlitchGrids, with a time limit), else None."""
    task = sparse_variant(task)
    env = task.make_env().unwrapped
    tables = getattr(env, "tables", None)
    env.close()
    horizon = task.max_episode_steps
    if not isinstance(tables, GridTables) or horizon is None:
        return None
    exact = lambda p: Bits(_bits(p), _bits(p), _bits(p), p, True)
    return Sparsity(exact(first_hit_probability(tables, tables.reward > 0, horizon)),
                    exact(first_hit_probability(tables, tables.exploit > 0, horizon)))


def _exploited(info: dict, n: int) -> np.ndarray:
    """(B,) bool: the env named an exploit on this step ("" or None: none)."""
    names = np.asarray(info.get("exploit", np.full(n, "", dtype=object)), dtype=object)  # (B,)
    return np.array([bool(v) for v in names])


def monte_carlo(task: Task, episodes: int, seed: int, envs: int = 1024) -> Sparsity:
    """Uniform-random episodes of `task` as it is (no sparse variant taken): bits of reward and exploit.

    Env i of `min(envs, episodes)` is reset with seed + i and plays episodes // B episodes (one more
    when i < episodes % B) back to back; the action sampler is seeded with `seed`."""
    n = min(envs, episodes)
    quota = np.full(n, episodes // n) + (np.arange(n) < episodes % n)  # (B,) episodes per env
    vec = task.make_vec(n)
    if vec.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) != AutoresetMode.NEXT_STEP:
        vec.close()
        raise NotMonteCarloReady(f"{task.id}: Monte Carlo sparsity needs a NEXT_STEP autoreset vector env")
    policy = UniformRandom(vec.single_action_space)
    policy.reset(n, seed=seed)
    obs, _ = vec.reset(seed=seed)
    played = np.zeros(n, dtype=np.int64)  # (B,) finished episodes per env
    rewarded, fired = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)  # (B,) within the current episode
    resetting = np.zeros(n, dtype=bool)  # (B,) this step is an autoreset step, not part of an episode
    hits = exploits = 0
    try:
        while (played < quota).any():
            obs, reward, term, trunc, info = vec.step(policy.act(obs))
            live = ~resetting & (played < quota)  # (B,)
            rewarded |= live & (np.asarray(reward) > 0)
            fired |= live & _exploited(info, n)
            done = live & (np.asarray(term) | np.asarray(trunc))  # (B,)
            hits += int((done & rewarded).sum())
            exploits += int((done & fired).sum())
            played += done
            rewarded &= ~done
            fired &= ~done
            resetting = np.asarray(term) | np.asarray(trunc)
    finally:
        vec.close()
    return Sparsity(estimated(hits, episodes), estimated(exploits, episodes))


def sparsity(task: Task, episodes: int = 2048, seed: int = 0) -> Sparsity:
    """Sparsity of reward and exploit of `task` (exact on GlitchGrids, else Monte Carlo)."""
    exact = exact_sparsity(task)
    if exact is not None:
        return exact
    return monte_carlo(sparse_variant(task), episodes, seed)
