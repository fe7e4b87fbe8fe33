"""Exact measurements on tabular tasks: a run's distance to its own KL-regularised target.

The target of a run with a KL coefficient beta is the optimum of E[sum r] - beta KL(pi || pi_ref),
pi*_t(a | s) proportional to pi_ref(a | s) exp(Q_soft,t(s, a) / beta), from soft value iteration on the task's
tables (`metatoken.envs.tabular.task_tables`) with the tabular pi_ref of the reference data
(`metatoken.envs.tabular.tabular_reference`).

These are pure functions of the tables, pi_ref, beta and what the policy did. The policy's
action probabilities at the (state, time) pairs of its evaluation episodes come in as
arrays, so any policy (history-dependent ones included) can be scored: map the rollouts'
observations to states with `metatoken.envs.tabular.states_of`, and take the time from each step's
index in its episode.

- `exact/kl_to_soft_optimal` (nats per step): mean over the visited (state, time) pairs of
  the exact KL(pi(. | h_t) || pi*_t(. | s_t)).
- `exact/intended_value`: expected total intended performance of pi* from the start
  distribution over the horizon (exact, by backward induction on the intended table).
- `exact/intended_value_achieved`: the run's own mean intended performance, passed in, beside it.
- `exact/reward_value` and `exact/soft_value`: pi*'s expected return and its regularised objective.
"""

from __future__ import annotations

import numpy as np

from metatoken.envs.exact import policy_value, soft_value_iteration
from metatoken.envs.tabular import MDPTables


def soft_optimum(tables: MDPTables, pi_ref: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """pi* (H, S, A) and its soft values (H+1, S), by time, for the task's own reward."""
    return soft_value_iteration(tables.transition, tables.reward, pi_ref, beta, tables.horizon)


def kl_to_soft_optimal(tables: MDPTables, pi_ref: np.ndarray, beta: float, probs: np.ndarray,
                       states: np.ndarray, times: np.ndarray) -> float:
    """Mean over visited (state, time) pairs of KL(probs[n] || pi*_times[n](. | states[n])), nats per step.

    `probs` (N, A) are the policy's action probabilities at those steps; `states` and `times` are (N,) ints.
    Infinite where the policy puts mass on an action pi* excludes (one pi_ref never takes).
    """
    probs, states, times = np.asarray(probs, np.float64), np.asarray(states), np.asarray(times)
    if len(probs) == 0 or probs.shape != (len(states), tables.n_actions) or states.shape != times.shape:
        raise ValueError(f"need probs (N, {tables.n_actions}) and states, times (N,) with N > 0")
    if times.min() < 0 or times.max() >= tables.horizon:
        raise ValueError(f"times must lie in [0, {tables.horizon})")
    policy, _ = soft_optimum(tables, pi_ref, beta)
    target = policy[times, states]  # (N, A)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * (np.log(probs) - np.log(target)), 0.0)  # (N, A), 0 log 0 = 0
    return float(terms.sum(1).mean())


def exact_metrics(tables: MDPTables, pi_ref: np.ndarray, beta: float, probs: np.ndarray, states: np.ndarray,
                  times: np.ndarray, achieved_intended: float) -> dict[str, float]:
    """The `exact/*` metrics of one run: KL per step to pi*, and pi*'s values beside the achieved intent."""
    policy, soft = soft_optimum(tables, pi_ref, beta)
    start = tables.start
    return {
        "exact/kl_to_soft_optimal": kl_to_soft_optimal(tables, pi_ref, beta, probs, states, times),
        "exact/intended_value": float(start @ policy_value(tables.transition, tables.intended, policy)[0]),
        "exact/intended_value_achieved": float(achieved_intended),
        "exact/reward_value": float(start @ policy_value(tables.transition, tables.reward, policy)[0]),
        "exact/soft_value": float(start @ soft[0]),
    }
