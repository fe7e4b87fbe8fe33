"""The one rollout primitive: B episodes of a policy stepped in lockstep through one vector env.

Every environment runs exactly one episode. Environments that finish early keep being
stepped by the vector env (its autoreset) but are masked: their rewards are zeroed, the
policy hears `done` for them on every later step, and recorders see `alive` False, so each
episode's record ends at its own termination or truncation. What a caller keeps is chosen
by recorders (`evaluate/recorders.py`); `rollout` is evaluation's view with the outcomes,
the audit and optionally whole episodes.

This is the only module that steps a vector env for a batch of policy episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from metatoken.data.dataset import Episode
from metatoken.envs.task import Task
from metatoken.evaluate.recorders import Episodes, Outcomes, Recorder, Transition
from metatoken.policy import Policy, Seeds, env_seeds


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
    implementations: list[str] = field(default_factory=list)  # audit label at the final step ("" if none)
    terminated: np.ndarray | None = None  # (E,) bool: ended by the env, not a time limit (None: not recorded)

    def __len__(self) -> int:
        return len(self.returns)

    @staticmethod
    def concat(parts: list[Rollouts]) -> Rollouts:
        """One Rollouts of all parts' episodes, in order."""
        return Rollouts(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in
              ("returns", "lengths", "intended", "exploit_steps", "target")),
            exploits_fired=[s for p in parts for s in p.exploits_fired],
            episodes=[e for p in parts for e in p.episodes],
            implementations=[s for p in parts for s in p.implementations],
            terminated=None if any(p.terminated is None for p in parts) else
            np.concatenate([p.terminated for p in parts]),
        )


@dataclass(frozen=True)
class Played:
    """What `play` itself reports; everything else is in its recorders."""

    env_steps: int  # steps of envs whose episode was still running (finished envs not counted)
    finished: np.ndarray  # (B,) bool: the episode ended (False only when max_steps cut it)


def _runs(seeds: list[int]) -> list[list[int]]:
    """Split a seed list into maximal runs of consecutive seeds [s, s + 1, ...]."""
    runs = [[seeds[0]]]
    for s in seeds[1:]:
        if s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


class _Lockstep:
    """Several vector envs stepped as one batch (their outputs concatenated in order)."""

    def __init__(self, envs: list[gym.vector.VectorEnv], sizes: list[int]):
        self.envs, self.bounds = envs, np.cumsum([0, *sizes])

    def step(self, actions: np.ndarray):
        outs = [env.step(actions[lo:hi]) for env, lo, hi in zip(self.envs, self.bounds[:-1], self.bounds[1:])]
        obs, rew, term, trunc = (np.concatenate([o[k] for o in outs]) for k in range(4))
        return obs, rew, term, trunc, _concat_infos([o[4] for o in outs], np.diff(self.bounds))

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _concat_infos(infos: list[dict], sizes: np.ndarray) -> dict:
    """Vector-env infos of consecutive parts as one: a key a part lacks is None there (mask False)."""
    out = {}
    for key in dict.fromkeys(k for info in infos for k in info):
        parts = [np.asarray(info[key]) if key in info else
                 np.zeros(n, bool) if key.startswith("_") else np.full(n, None, dtype=object)
                 for info, n in zip(infos, sizes)]
        out[key] = np.concatenate(parts) if len({p.dtype for p in parts}) == 1 else \
            np.concatenate([p.astype(object) for p in parts])
    return out


def _open(task: Task, seeds: list[int], **render):
    """A batch of len(seeds) envs, env i reset with seeds[i]; returns (env, first observations).

    One vector env when it can seed each env (a consecutive run is passed as one int, which
    every vector env takes as env i: seed + i; otherwise a list). A vector env that takes
    only one seed (GlitchGrid's, CartPole's) is opened once per consecutive run of seeds and
    stepped in lockstep, so every episode starts exactly as in a rollout of its run alone.
    """
    runs = _runs(seeds)
    env = task.make_vec(len(seeds), **render)
    try:
        return env, env.reset(seed=seeds[0] if len(runs) == 1 else seeds)[0]
    except (gym.error.Error, TypeError, ValueError):
        env.close()
    envs = [task.make_vec(len(run), **render) for run in runs]
    obs = np.concatenate([e.reset(seed=run[0])[0] for e, run in zip(envs, runs)])
    return _Lockstep(envs, [len(run) for run in runs]), obs


def play(
    task: Task,
    policy: Policy,
    num_envs: int,
    seed: Seeds,
    *,
    policy_seed: Seeds | None = None,
    target: np.ndarray | None = None,
    deterministic: bool = False,
    recorders: Sequence[Recorder] = (),
    max_steps: int | None = None,
    render: bool = False,
) -> Played:
    """Step `num_envs` episodes of `policy` in lockstep until all end (or the next step would pass max_steps).

    `seed` seeds the envs (an int: env i takes seed + i; or one per env); the policy's
    sampling streams take `policy_seed` (default: the env seeds). `target` (B,) is the
    commanded condition per env for conditioned policies. With `render`, the envs draw
    `rgb_array` pictures and recorders' `frame` hook gets env 0's after reset and every step.
    """
    n = num_envs
    seeds = env_seeds(seed, n)
    env, obs = _open(task, seeds, **({"render_mode": "rgb_array"} if render else {}))
    try:
        policy.reset(n, target=target, seed=_compact(seeds if policy_seed is None else policy_seed),
                     deterministic=deterministic)
        for r in recorders:
            r.begin(n, seeds)
        alive, steps, t = np.ones(n, dtype=bool), 0, 0
        _frame(env, recorders, 0, render)
        running = n  # alive.sum(), kept as an int so the loop test costs no array pass
        while running and (max_steps is None or steps + running <= max_steps):
            action = policy.act(obs)
            next_obs, reward, term, trunc, info = env.step(action)
            reward = np.where(alive, np.asarray(reward, dtype=float), 0.0)  # (B,)
            step = Transition(t, obs, action, reward, term, trunc, info, alive.copy())
            for r in recorders:
                r.record(step)
            done = step.done  # (B,)
            policy.observe(reward, done | ~alive)
            steps += running
            alive &= ~done
            running = int(alive.sum())
            obs, t = next_obs, t + 1
            if render:
                _frame(env, recorders, t, bool(step.alive[0]), bool(done[0]))  # up to env 0's last step
        for r in recorders:
            r.end(obs)
    finally:
        env.close()
    return Played(steps, ~alive)


def _frame(env, recorders: Sequence[Recorder], t: int, render: bool, last: bool = False) -> None:
    """Offer env 0's picture to the recorders (a sync vector env renders a tuple, one per env)."""
    if not render:
        return

    def draw() -> np.ndarray:
        image = env.envs[0].render() if isinstance(env, _Lockstep) else env.render()
        return np.asarray(image[0] if isinstance(image, (tuple, list)) else image)

    for r in recorders:
        r.frame(t, draw, last)


def _compact(seed: Seeds) -> Seeds:
    """A seed list [s, s + 1, ...] as the int s (which every policy takes, scripted ones included)."""
    if isinstance(seed, (int, np.integer)):
        return int(seed)
    s = [int(x) for x in seed]
    return s[0] if s == list(range(s[0], s[0] + len(s))) else s


def rollout(
    task: Task,
    policy: Policy,
    num_episodes: int,
    seed: Seeds,
    target: float | np.ndarray | None = None,
    deterministic: bool = False,
    record: bool = False,
    recorders: Sequence[Recorder] = (),
) -> Rollouts:
    """Run `num_episodes` episodes of `policy` on `task` in one batch; env i and its policy noise take seed + i."""
    n = num_episodes
    targets = None if target is None else np.broadcast_to(np.asarray(target, float), (n,)).copy()
    outcomes, episodes = Outcomes(), Episodes()
    play(task, policy, n, seed, target=targets, deterministic=deterministic,
         recorders=[outcomes, *([episodes] if record else []), *recorders])
    o = outcomes
    return Rollouts(o.returns, o.lengths, o.intended, o.exploit_steps,
                    np.full(n, np.nan) if targets is None else targets, o.exploits_fired,
                    episodes.episodes if record else [], o.implementations, o.terminated)
