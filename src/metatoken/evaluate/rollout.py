"""Batched rollouts: B episodes stepped in lockstep through one vectorised env.

Every environment runs exactly one episode. Environments that finish early keep being
stepped by the vector env (its autoreset) but their outputs are masked out, so each
episode's record ends at its own termination or truncation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metatoken.data.dataset import Episode
from metatoken.envs.task import Task
from metatoken.policy import Policy


@dataclass
class Rollouts:
    """Per-episode outcomes of one batch of evaluation episodes, with the audit."""

    returns: np.ndarray  # (E,)
    lengths: np.ndarray  # (E,) int
    intended: np.ndarray  # (E,) final intended performance (NaN when the env has no audit)
    exploit_steps: np.ndarray  # (E,) int, steps on which a planted exploit fired
    target: np.ndarray  # (E,) commanded condition (NaN for unconditioned policies)
    exploits_fired: list[set[str]] = field(default_factory=list)  # names, per episode
    episodes: list[Episode] = field(default_factory=list)  # filled when record=True
    implementations: list[str] = field(default_factory=list)  # info["implementation"] at each episode's end

    def __len__(self) -> int:
        return len(self.returns)

    @staticmethod
    def concat(parts: list[Rollouts]) -> Rollouts:
        return Rollouts(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in
              ("returns", "lengths", "intended", "exploit_steps", "target")),
            exploits_fired=[s for p in parts for s in p.exploits_fired],
            episodes=[e for p in parts for e in p.episodes],
            implementations=[s for p in parts for s in p.implementations],
        )


def _audit(info: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(intended so far, exploit name) per env; NaN / "" where the env reports no audit."""
    intended = np.asarray(info.get("intended", np.full(n, np.nan)), dtype=float)
    exploit = np.asarray(info.get("exploit", np.full(n, "", dtype=object)), dtype=object)
    exploit = np.where(exploit == None, "", exploit)
    return intended, exploit


def rollout(
    task: Task,
    policy: Policy,
    num_episodes: int,
    seed: int,
    target: float | np.ndarray | None = None,
    deterministic: bool = False,
    record: bool = False,
) -> Rollouts:
    """Run `num_episodes` episodes of `policy` on `task` in one batch."""
    n = num_episodes
    targets = None if target is None else np.broadcast_to(np.asarray(target, float), (n,)).copy()
    env = task.make_vec(n)
    try:
        obs, _ = env.reset(seed=seed)
        policy.reset(n, target=targets, seed=seed, deterministic=deterministic)
        alive = np.ones(n, dtype=bool)
        ret, length, exploit_steps = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, np.int64)
        intended = np.full(n, np.nan)
        fired: list[set[str]] = [set() for _ in range(n)]
        implementations = [""] * n
        trace: list[tuple] = []
        while alive.any():
            action = policy.act(obs)
            next_obs, reward, term, trunc, info = env.step(action)
            reward = np.asarray(reward, dtype=float)
            done = np.logical_or(term, trunc)
            itd, exp = _audit(info, n)
            ret += np.where(alive, reward, 0.0)
            length += alive
            intended = np.where(alive, itd, intended)
            hit = alive & (exp != "")
            exploit_steps += hit
            for i in np.flatnonzero(hit):
                fired[i].add(str(exp[i]))
            for i in np.flatnonzero(alive & done & ("implementation" in info)):
                implementations[i] = str(info["implementation"][i] or "")
            if record:
                trace.append((obs, action, reward, term, trunc, itd, exp != ""))
            policy.observe(np.where(alive, reward, 0.0), done | ~alive)
            alive &= ~done
            obs = next_obs
    finally:
        env.close()
    out = Rollouts(ret, length, intended, exploit_steps,
                   np.full(n, np.nan) if targets is None else targets, fired, implementations=implementations)
    if record:
        out.episodes = _episodes(trace, obs, length, seed)
    return out


def _episodes(trace: list[tuple], last_obs: np.ndarray, length: np.ndarray, seed: int) -> list[Episode]:
    """Cut the lockstep trace into one Episode per env."""
    obs, act, rew, term, trunc, itd, exp = (np.stack(x) for x in zip(*trace))  # each (T, B, ...)
    episodes = []
    for i in range(obs.shape[1]):
        t = int(length[i])
        # The observation after the last step: the env autoresets on the following step,
        # so step t's next_obs is the trace's obs at t (or the final obs of the loop).
        final = obs[t, i] if t < obs.shape[0] else last_obs[i]
        episodes.append(Episode(
            observations=np.concatenate([obs[:t, i], final[None]]),
            actions=act[:t, i],
            rewards=rew[:t, i],
            terminations=term[:t, i].astype(bool),
            truncations=trunc[:t, i].astype(bool),
            intended=itd[:t, i],
            exploit=exp[:t, i].astype(bool),
            seed=seed + i,
        ))
    return episodes
