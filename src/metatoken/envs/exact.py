"""Exact dynamic programming on a GlitchGrid's tables: optimal plans for reward and for intent.

Finite-horizon backward induction, because episodes are cut by a time limit: the optimal
action can depend on how many steps are left. Ties go to the lowest action index, so a
plan is a deterministic function of the tables.
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
