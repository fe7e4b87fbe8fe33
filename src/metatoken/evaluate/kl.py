"""KL(pi || pi_ref) in nats per episode, estimated on the policy's own evaluation trajectories.

    KL_episode ~= sum_t [log pi(a_t | h_t) - log pi_ref(a_t | h_t)],   a_t ~ pi

averaged over episodes (an unbiased Monte Carlo estimate of the sequence-level KL). The
reference policy is teacher-forced along the same trajectory (`recorders.TeacherForced`):
it sees the same observations and, as its previous action, the action pi actually took.

Both policies must be `ScoredPolicy`s. For continuous actions both densities are taken at
the environment action (a Gaussian that the env clips has point masses at the bounds, so
there the estimate is approximate).
"""

from __future__ import annotations

import numpy as np

from metatoken import seeds
from metatoken.envs.task import Task
from metatoken.evaluate.recorders import LogProbs, TeacherForced, sum_over_episode
from metatoken.evaluate.rollout import play
from metatoken.policy import Policy, ScoredPolicy


def has_log_prob(policy: Policy) -> bool:
    """Whether `policy` exposes its action log-probabilities (scripted policies do not)."""
    return isinstance(policy, ScoredPolicy)


def kl_per_episode(
    task: Task, policy: ScoredPolicy, reference: ScoredPolicy, episodes: int, seed: int,
    target: float | None = None,
) -> np.ndarray:
    """Per-episode estimates of KL(policy || reference) in nats on `episodes` episodes: (E,)."""
    n = episodes
    targets = None if target is None else np.full(n, float(target))
    logp, ref = LogProbs(policy), TeacherForced(reference, seeds.second_policy(seed), targets)
    play(task, policy, n, seed, target=targets, recorders=[logp, ref])
    return sum_over_episode([p - q for p, q in zip(logp.steps, ref.steps)], logp.alive)
