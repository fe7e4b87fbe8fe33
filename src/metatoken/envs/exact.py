"""Exact dynamic programming on tabular tasks: optimal plans, the KL-regularised optimum, policy values.

Finite-horizon backward induction, because episodes are cut by a time limit: the optimal
action can depend on how many steps are left. Ties go to the lowest action index, so a
plan is a deterministic function of the tables.

Two indexings live here, both written out on each function:
- `Plan` (hard max, discounted) indexes by *steps left* k: `value[k]`, `policy[k]`, row 0 unused.
- `soft_value_iteration` and `policy_value` index by *time* t = H - k: `policy[t]` is used at
  step t of the episode (t = 0 first), `value[t]` is the value with H - t steps left, and
  `value[H] = 0`. So `soft value[t]` in the beta -> 0 limit equals `Plan.value[H - t]` at gamma = 1.

The KL-regularised objective of a policy pi over horizon H is

    J(pi) = E_pi[ sum_t r(s_t, a_t) - beta * log pi_t(a_t | s_t) / pi_ref(a_t | s_t) ],

an expectation over trajectories, so it is E[sum r] - beta * KL(P_pi || P_ref) over whole
trajectories (the dynamics' factors cancel in the ratio). Its optimum is Markov and
time-indexed: with V_H = 0 and, backwards,

    Q_t(s, a) = r(s, a) + sum_s' P(s' | s, a) V_{t+1}(s')
    V_t(s)    = beta * log sum_a pi_ref(a | s) exp(Q_t(s, a) / beta)
    pi*_t(a | s) = pi_ref(a | s) exp((Q_t(s, a) - V_t(s)) / beta).

With stochastic dynamics this is *not* the trajectory-level tilt P_ref(tau) exp(R(tau) / beta):
the tilt would reweight the dynamics' outcomes too, which no policy controls (its log-partition
beta * log E_ref[exp(R / beta)] is an upper bound on V_0, equal only when the dynamics are
deterministic; tests/envs/test_soft_vi.py checks both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metatoken.envs.glitchgrid import GridTables


@dataclass(frozen=True)
class Plan:
    """The optimum of one objective: values and greedy actions by steps left."""

    value: np.ndarray  # (H+1, S) optimal expected discounted objective with k steps left
    policy: np.ndarray  # (H+1, S) int argmax action with k steps left (row 0 unused)

    def start_value(self, tables: GridTables) -> float:
        """Optimal value from the start state with the full horizon left."""
        return float(self.value[-1, tables.start])


@dataclass(frozen=True)
class Optimum:
    """Plans that maximise the reward and the hidden intended performance."""

    reward: Plan
    intended: Plan


@dataclass
class Path:
    """One episode of a plan followed from the start state: what the reward and audit saw."""

    ret: float  # undiscounted return
    intended: float  # intended performance at the end
    length: int
    exploits: list[str] = field(default_factory=list)  # one name per step an exploit fired
    states: list[int] = field(default_factory=list)  # (length + 1) visited states


def plan(tables: GridTables, objective: np.ndarray, gamma: float, horizon: int) -> Plan:
    """Backward induction for the per-(state, action) `objective` table, (S, A)."""
    alive = ~tables.terminal[tables.next_state]  # (S, A) the episode goes on after this step
    value = np.zeros((horizon + 1, tables.n_states))  # (H+1, S)
    policy = np.zeros((horizon + 1, tables.n_states), dtype=np.int64)  # (H+1, S)
    for k in range(1, horizon + 1):
        q = objective + gamma * alive * value[k - 1][tables.next_state]  # (S, A)
        policy[k] = q.argmax(1)
        value[k] = q.max(1)
    return Plan(value, policy)


def value_iteration(tables: GridTables, gamma: float, horizon: int) -> Optimum:
    """Optimal values and policies for the reward and for intended performance."""
    if not 0.0 <= gamma <= 1.0 or horizon < 1:
        raise ValueError(f"need 0 <= gamma <= 1 and horizon >= 1, got {gamma}, {horizon}")
    return Optimum(plan(tables, tables.reward, gamma, horizon),
                   plan(tables, tables.intended, gamma, horizon))


def _reference_by_time(pi_ref: np.ndarray, horizon: int) -> np.ndarray:
    """pi_ref as (H, S, A): a stationary (S, A) table is repeated for every step."""
    ref = np.asarray(pi_ref, dtype=np.float64)
    if ref.ndim == 2:
        ref = np.broadcast_to(ref, (horizon, *ref.shape))
    return ref


def _check_mdp(P: np.ndarray, R: np.ndarray, ref: np.ndarray, horizon: int) -> None:
    """ValueError naming the first argument whose shape or normalisation is wrong."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if P.ndim != 3 or P.shape[0] != P.shape[2] or R.shape != P.shape[:2]:
        raise ValueError(f"need P (S, A, S) and R (S, A), got {P.shape} and {R.shape}")
    if ref.shape != (horizon, *R.shape):
        raise ValueError(f"pi_ref must be (S, A) or (H, S, A) = {(horizon, *R.shape)}, got {ref.shape}")
    for name, table in (("P", P), ("pi_ref", ref)):
        if (table < 0).any() or not np.allclose(table.sum(-1), 1.0, atol=1e-9):
            raise ValueError(f"{name} rows must be probability distributions")


def soft_value_iteration(P: np.ndarray, R: np.ndarray, pi_ref: np.ndarray, beta: float,
                         horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The optimum of E[sum r] - beta KL(pi || pi_ref): time-indexed policy (H, S, A) and values (H+1, S).

    `P` is (S, A, S'), `R` is (S, A), `pi_ref` is (S, A) or time-indexed (H, S, A); indexing is by
    time t (policy[t] acts at step t, value[H] = 0). Actions with pi_ref = 0 get probability 0.
    `beta = 0` is the limit beta -> 0: the hard optimum among pi_ref's support, ties shared in
    proportion to pi_ref (what pi_ref exp(Q / beta) tends to).
    """
    P, R = np.asarray(P, dtype=np.float64), np.asarray(R, dtype=np.float64)
    ref = _reference_by_time(pi_ref, horizon)
    _check_mdp(P, R, ref, horizon)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    n_states = R.shape[0]
    value = np.zeros((horizon + 1, n_states))  # (H+1, S) by time; value[H] = 0
    policy = np.zeros((horizon, *R.shape))  # (H, S, A) by time
    for t in range(horizon - 1, -1, -1):
        q = R + P @ value[t + 1]  # (S, A)
        support = ref[t] > 0  # (S, A)
        q_on = np.where(support, q, -np.inf)  # (S, A) actions pi_ref never takes are out
        top = q_on.max(1, keepdims=True)  # (S, 1) shifts the exponent: exp never overflows
        if beta == 0:
            weight = ref[t] * np.isclose(q_on, top, rtol=0.0, atol=1e-12)  # (S, A)
            value[t] = top[:, 0]
        else:
            with np.errstate(divide="ignore"):
                log_w = np.log(ref[t]) + (q_on - top) / beta  # (S, A), -inf off the support
            weight = np.exp(log_w)  # (S, A), the largest is >= pi_ref of the argmax
            value[t] = top[:, 0] + beta * np.log(weight.sum(1))
        policy[t] = weight / weight.sum(1, keepdims=True)
    return policy, value


def policy_value(P: np.ndarray, R: np.ndarray, policy: np.ndarray) -> np.ndarray:
    """Expected sum of R under a time-indexed policy (H, S, A): values (H+1, S) by time, value[H] = 0."""
    horizon = policy.shape[0]
    value = np.zeros((horizon + 1, R.shape[0]))  # (H+1, S)
    for t in range(horizon - 1, -1, -1):
        value[t] = (policy[t] * (R + P @ value[t + 1])).sum(1)
    return value


def follow(tables: GridTables, p: Plan) -> Path:
    """Run a plan from the start state for its horizon (or until termination)."""
    horizon = p.policy.shape[0] - 1
    s, path = tables.start, Path(0.0, 0.0, 0, states=[tables.start])
    for k in range(horizon, 0, -1):
        a = p.policy[k, s]
        path.ret += float(tables.reward[s, a])
        path.intended += float(tables.intended[s, a])
        if tables.exploit[s, a]:
            path.exploits.append(tables.exploit_names[tables.exploit[s, a]])
        s = int(tables.next_state[s, a])
        path.states.append(s)
        path.length += 1
        if tables.terminal[s]:
            break
    return path
