"""KL(pi || pi_ref) in nats per episode, estimated on the policy's own evaluation trajectories.

    KL_episode ~= sum_t [log pi(a_t | h_t) - log pi_ref(a_t | h_t)],   a_t ~ pi

averaged over episodes (an unbiased Monte Carlo estimate of the sequence-level KL). The
reference policy is teacher-forced along the same trajectory: it sees the same
observations and, as its previous action, the action pi actually took.

A policy exposes log-probabilities either with `action_log_prob(action) -> (B,)` (the
distribution of its last `act`) or, for a PredictorPolicy, through `last_params` and its
model's head. For continuous actions both densities are taken at the environment action
(a Gaussian that the env clips has point masses at the bounds, so there the estimate is
approximate).
"""

from __future__ import annotations

import numpy as np
import torch

from metatoken.envs.task import Task
from metatoken.policy import Policy


def has_log_prob(policy: Policy) -> bool:
    """Whether `policy` exposes its action log-probabilities (scripted policies do not)."""
    return hasattr(policy, "action_log_prob") or hasattr(policy, "last_params")


def action_log_prob(policy: Policy, action: np.ndarray) -> np.ndarray:
    """log pi(action) under the distribution `policy` used at its last act: (B,)."""
    if hasattr(policy, "action_log_prob"):
        return np.asarray(policy.action_log_prob(action), dtype=float)
    params = getattr(policy, "last_params", None)
    if params is None:
        raise TypeError(f"{type(policy).__name__} exposes no action log-probabilities")
    head = policy.model.head
    a = torch.as_tensor(np.asarray(action))
    a = a.long() if head.discrete else a.float().reshape(params.shape[0], -1)
    with torch.no_grad():
        return (-head.nll(params, a)).double().numpy()


def teacher_force(policy: Policy, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Advance `policy` one step on obs as if it had taken `action`; returns log pi(action): (B,)."""
    policy.act(obs)
    logp = action_log_prob(policy, action)
    if hasattr(policy, "prev"):  # a history-keeping predictor must see the action really taken
        prev = torch.as_tensor(np.asarray(action))
        policy.prev = prev.long() if policy.model.head.discrete else prev.float().reshape(policy.prev.shape)
    return logp


def kl_per_episode(
    task: Task, policy: Policy, reference: Policy, episodes: int, seed: int,
    target: float | None = None,
) -> np.ndarray:
    """Per-episode estimates of KL(policy || reference) in nats on `episodes` episodes: (E,)."""
    n = episodes
    targets = None if target is None else np.full(n, float(target))
    env = task.make_vec(n)
    try:
        obs, _ = env.reset(seed=seed)
        policy.reset(n, target=targets, seed=seed)
        reference.reset(n, target=targets if reference.conditioned else None, seed=seed + 7919)
        alive, kl = np.ones(n, dtype=bool), np.zeros(n)
        while alive.any():
            action = policy.act(obs)
            logp = action_log_prob(policy, action)
            logq = teacher_force(reference, obs, action)
            kl += np.where(alive, logp - logq, 0.0)
            obs, reward, term, trunc, _ = env.step(action)
            done = np.logical_or(term, trunc) | ~alive
            r = np.where(alive, np.asarray(reward, float), 0.0)
            policy.observe(r, done)
            reference.observe(r, done)
            alive &= ~np.logical_or(term, trunc)
    finally:
        env.close()
    return kl
