"""Recorders: what the rollout primitive keeps from each lockstep step.

`evaluate.rollout.play` steps B episodes and hands every step to its recorders as one
`Transition` (before the policy hears the reward). A recorder keeps what its caller
needs and nothing else: the outcome and audit of each episode, whole episodes, one
episode's actions (to replay it), the policy's log-probabilities, a second policy scored
along the same trajectory, or the exact inputs the predictor consumed (for online policy
gradients). To record something new, subclass `Recorder` and override `record`.

All per-step records are masked by `alive`: an env whose episode has ended keeps being
stepped by the vector env, but nothing it does after its end reaches a recorder's result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from metatoken.data.dataset import Episode
from metatoken.models.policy import PredictorPolicy, StepInputs
from metatoken.policy import ActionDistribution, ScoredPolicy, Seeds


@dataclass(frozen=True)
class Transition:
    """One lockstep step of B envs."""

    t: int  # step index since reset
    obs: np.ndarray  # (B, *obs_shape) what the policy acted on
    action: np.ndarray  # (B, *action_shape)
    reward: np.ndarray  # (B,) float, 0 where the env's episode had already ended
    terminated: np.ndarray  # (B,) bool
    truncated: np.ndarray  # (B,) bool
    info: dict[str, Any]  # the vector env's info of this step
    alive: np.ndarray  # (B,) bool: the env's episode was still running when it took this step (a copy)

    @property
    def done(self) -> np.ndarray:
        """(B,) this step ended the episode (meaningful where alive)."""
        return np.logical_or(self.terminated, self.truncated)


class Recorder:
    """Keeps something from each step of a batched rollout; the defaults keep nothing."""

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        """Called after the env reset, with the env seeds of the B episodes."""

    def record(self, step: Transition) -> None:
        """Called once per lockstep step, after `env.step` and before the policy observes."""

    def end(self, last_obs: np.ndarray) -> None:
        """Called once after the last step with the observations it returned: (B, *obs_shape)."""

    def frame(self, t: int, draw: Callable[[], np.ndarray], last: bool) -> None:
        """With `play(..., render=True)`: env 0 after t steps (t = 0 right after reset); `draw()` renders
        its picture (only when called: drawing every step of a long episode is costly); `last`
        marks env 0's final step."""


def _audit(info: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(intended so far, exploit name) per env; NaN / "" where the env reports no audit."""
    intended = np.asarray(info.get("intended", np.full(n, np.nan)), dtype=float)
    exploit = np.asarray(info.get("exploit", np.full(n, "", dtype=object)), dtype=object)
    exploit = np.where(exploit == None, "", exploit)  # elementwise: None where an env gave no name
    return intended, exploit


def _labels(info: dict, key: str, n: int) -> np.ndarray:
    """A per-env string field of a vector env's info: (B,) object, "" where absent or not a string."""
    if key not in info:
        return np.full(n, "", dtype=object)
    values, present = np.asarray(info[key], dtype=object), np.asarray(info.get(f"_{key}", np.ones(n, bool)))
    return np.array([v if p and isinstance(v, str) else "" for v, p in zip(values, present)], dtype=object)


class Outcomes(Recorder):
    """Per-episode return, length and audit: intended performance, exploits, implementation label."""

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        n = num_envs
        self.returns, self.lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
        self.exploit_steps, self.intended = np.zeros(n, np.int64), np.full(n, np.nan)
        self.exploits_fired: list[set[str]] = [set() for _ in range(n)]
        self.implementations = [""] * n
        self.terminated = np.zeros(n, dtype=bool)  # ended by the env (goal or failure), not by a time limit

    def record(self, step: Transition) -> None:
        alive, n = step.alive, len(step.alive)
        itd, exp = _audit(step.info, n)
        self.returns += step.reward
        self.lengths += alive
        self.intended = np.where(alive, itd, self.intended)
        hit = alive & (exp != "")
        self.exploit_steps += hit
        for i in np.flatnonzero(hit):
            self.exploits_fired[i].add(str(exp[i]))
        self.terminated |= alive & np.asarray(step.terminated, bool) & ~np.asarray(step.truncated, bool)
        ended = np.flatnonzero(alive & step.done)
        if len(ended) and "implementation" in step.info:  # labelled by the audit at each episode's last step
            labels = _labels(step.info, "implementation", n)
            for i in ended:
                self.implementations[i] = labels[i]


class Episodes(Recorder):
    """Whole episodes (observations, actions, rewards, flags, audit), cut from the lockstep trace."""

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        self.seeds, self.trace, self.episodes = seeds, [], []

    def record(self, step: Transition) -> None:
        itd, exp = _audit(step.info, len(step.alive))
        self.trace.append((step.obs, step.action, step.reward, step.terminated, step.truncated, itd, exp != "",
                           step.alive))

    def end(self, last_obs: np.ndarray) -> None:
        obs, act, rew, term, trunc, itd, exp, alive = (np.stack(x) for x in zip(*self.trace))  # each (T, B, ...)
        length = alive.sum(0)  # (B,)
        for i in range(obs.shape[1]):
            t = int(length[i])
            # The observation after the last step: the env autoresets on the following step,
            # so step t's next_obs is the trace's obs at t (or the final obs of the loop).
            final = obs[t, i] if t < obs.shape[0] else last_obs[i]
            self.episodes.append(Episode(
                observations=np.concatenate([obs[:t, i], final[None]]),
                actions=act[:t, i],
                rewards=rew[:t, i],
                terminations=term[:t, i].astype(bool),
                truncations=trunc[:t, i].astype(bool),
                intended=itd[:t, i],
                exploit=exp[:t, i].astype(bool),
                seed=self.seeds[i],
            ))


class EpisodeActions(Recorder):
    """The actions of one env's episode (env `index` of the batch) and its env seed: what replays it."""

    def __init__(self, index: int):
        self.index = index

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        if not 0 <= self.index < num_envs:
            raise ValueError(f"episode {self.index} is not in a batch of {num_envs}")
        self.seed, self.steps = seeds[self.index], []

    def record(self, step: Transition) -> None:
        if step.alive[self.index]:
            self.steps.append(np.array(step.action[self.index]))  # a copy: a policy may reuse its buffer

    @property
    def actions(self) -> np.ndarray:
        """(T, *action_shape) in step order."""
        return np.stack(self.steps)


def sum_over_episode(steps: list[np.ndarray], alive: list[np.ndarray]) -> np.ndarray:
    """Per-env sums of per-step values over each episode's own steps, added in step order: (B,)."""
    total = np.zeros(len(alive[0])) if alive else np.zeros(0)
    for value, a in zip(steps, alive):
        total += np.where(a, value, 0.0)
    return total


class LogProbs(Recorder):
    """log pi(a_t | h_t) of the acting policy for the action it took, per step: `steps` (T arrays of (B,))."""

    def __init__(self, policy: ScoredPolicy):
        if not isinstance(policy, ScoredPolicy):
            raise TypeError(f"{type(policy).__name__} is not a ScoredPolicy: it has no log-probabilities")
        self.policy = policy

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        self.steps: list[np.ndarray] = []
        self.alive: list[np.ndarray] = []

    def record(self, step: Transition) -> None:
        self.steps.append(np.asarray(self.policy.log_prob(step.action), dtype=float))
        self.alive.append(step.alive)


class Distributions(Recorder):
    """The acting policy's closed-form distribution at every step: `steps` (T `ActionDistribution`s of B envs)."""

    def __init__(self, policy: ScoredPolicy):
        if not isinstance(policy, ScoredPolicy):
            raise TypeError(f"{type(policy).__name__} is not a ScoredPolicy: it has no distribution")
        self.policy = policy

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        self.steps: list[ActionDistribution] = []
        self.alive: list[np.ndarray] = []

    def record(self, step: Transition) -> None:
        self.steps.append(self.policy.distribution())
        self.alive.append(step.alive)


class ScoredEpisodes(Recorder):
    """The acting policy's episodes on a range of rows (one commanded level), as a second policy needs them.

    Per step, for rows `rows` of the batch only: the acting policy's closed-form distribution, the
    observations, actions, (masked) rewards, done flags and which rows were still alive. Recording
    stops once every row of the range has ended. This is what `evaluate.kl.kl_along` scores a
    reference policy on, so KL to pi_ref needs no second play of the episodes.
    """

    def __init__(self, policy: ScoredPolicy, rows: range):
        if not isinstance(policy, ScoredPolicy):
            raise TypeError(f"{type(policy).__name__} is not a ScoredPolicy: it has no distribution")
        self.policy, self.rows = policy, rows

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        if not (0 <= self.rows.start and self.rows.stop <= num_envs and len(self.rows) > 0 and self.rows.step == 1):
            raise ValueError(f"rows {self.rows.start}..{self.rows.stop - 1} are not a range in a batch of {num_envs}")
        self.seeds = seeds[self.rows.start:self.rows.stop]  # env seeds of the recorded rows (policy seeds too)
        self.distributions: list[ActionDistribution] = []
        self.obs: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.done: list[np.ndarray] = []
        self.alive: list[np.ndarray] = []

    def record(self, step: Transition) -> None:
        lo, hi = self.rows.start, self.rows.stop
        alive = step.alive[lo:hi]
        if not alive.any():
            return  # every recorded episode has ended: later steps score nothing
        d = self.policy.distribution()
        self.distributions.append(ActionDistribution(d.family, d.params[lo:hi], d.loc, d.scale))  # (E, P)
        self.obs.append(np.array(step.obs[lo:hi]))  # copies: a vector env may reuse its buffers
        self.actions.append(np.array(step.action[lo:hi]))
        self.rewards.append(np.array(step.reward[lo:hi]))
        self.done.append(step.done[lo:hi])
        self.alive.append(alive)


class TeacherForced(Recorder):
    """A second scored policy led along the acting policy's trajectory: its log-prob of each action taken.

    It sees the same observations and, as its previous action, the action actually taken;
    it hears the same (masked) rewards. `distributions` keeps its closed-form distribution
    per step when asked (for exact per-state KLs).
    """

    def __init__(self, policy: ScoredPolicy, seed: Seeds, target: np.ndarray | None = None,
                 keep_distributions: bool = False):
        if not isinstance(policy, ScoredPolicy):
            raise TypeError(f"{type(policy).__name__} is not a ScoredPolicy: it cannot be teacher-forced")
        self.policy, self.seed, self.target, self.keep = policy, seed, target, keep_distributions

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        self.policy.reset(num_envs, target=self.target if self.policy.conditioned else None, seed=self.seed)
        self.steps: list[np.ndarray] = []
        self.alive: list[np.ndarray] = []
        self.distributions: list[ActionDistribution] = []

    def record(self, step: Transition) -> None:
        self.policy.teacher_force(step.obs, step.action)
        self.steps.append(np.asarray(self.policy.log_prob(step.action), dtype=float))
        self.alive.append(step.alive)
        if self.keep:
            self.distributions.append(self.policy.distribution())
        self.policy.observe(step.reward, step.done | ~step.alive)


class ModelInputs(Recorder):
    """The exact inputs a PredictorPolicy consumed at every step and the action it took (online gradients)."""

    def __init__(self, policy: PredictorPolicy):
        self.policy = policy

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        self.inputs: list[StepInputs] = []
        self.actions: list[torch.Tensor] = []
        self.alive: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []  # (B,) per step: the KL-regularised advantage needs reward-to-go

    def record(self, step: Transition) -> None:
        self.inputs.append(self.policy.last_inputs())
        self.rewards.append(step.reward)
        a = torch.as_tensor(np.asarray(step.action))
        self.actions.append(a.long() if self.policy.model.head.discrete else a.float())  # (B,) or (B, A)
        self.alive.append(step.alive)


def entropy_nats(d: ActionDistribution) -> torch.Tensor:
    """Entropy of each env's action distribution in nats: (B,).

    Categorical: exact. Continuous families: the entropy of the Gaussian over pre-squash units u
    (for tanh and clipped policies the env action's entropy has no closed form; the Gaussian's
    is the policy's own noise level, which is what noise versus intent asks about).
    """
    if d.discrete:
        logp = torch.log_softmax(d.params, -1)  # (B, n)
        return -(logp.exp() * logp).sum(-1)  # (B,)
    half_log_2pie = 0.5 * float(np.log(2 * np.pi * np.e))
    return (half_log_2pie + d.log_std).sum(-1)  # (B,)


class ActionEntropy(Recorder):
    """Mean entropy (nats per step) of the acting policy's action distribution over the steps it acted on."""

    def __init__(self, policy: ScoredPolicy):
        if not isinstance(policy, ScoredPolicy):
            raise TypeError(f"{type(policy).__name__} is not a ScoredPolicy: it has no distribution")
        self.policy = policy

    def begin(self, num_envs: int, seeds: list[int]) -> None:
        self.total, self.steps = 0.0, 0

    def record(self, step: Transition) -> None:
        h = entropy_nats(self.policy.distribution()).detach().double().numpy()  # (B,)
        self.total += float(h[step.alive].sum())
        self.steps += int(step.alive.sum())

    @property
    def mean(self) -> float:
        """Mean entropy per alive step; NaN before any step."""
        return self.total / self.steps if self.steps else float("nan")
