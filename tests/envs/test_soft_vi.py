"""Soft value iteration against brute-force enumeration of every trajectory of tiny random MDPs."""

import itertools

import numpy as np
import pytest
import torch

from metatoken.envs.exact import policy_value, soft_value_iteration


def random_mdp(seed: int, n_states: int = 3, n_actions: int = 2, stochastic: bool = True):
    """P (S, A, S'), R (S, A), pi_ref (S, A), start distribution (S,)."""
    rng = np.random.default_rng(seed)
    if stochastic:
        P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))  # (S, A, S)
    else:
        P = np.eye(n_states)[rng.integers(0, n_states, (n_states, n_actions))]  # (S, A, S) one-hot
    R = rng.normal(size=(n_states, n_actions))
    ref = rng.dirichlet(np.ones(n_actions), size=n_states)  # (S, A)
    return P, R, ref, rng.dirichlet(np.ones(n_states))


def trajectories(n_states: int, n_actions: int, horizon: int):
    """Every (s_0, a_0, ..., a_{H-1}, s_H): states (M, H+1) and actions (M, H), M = S (A S)^H."""
    rows = np.array(list(itertools.product(range(n_states), *[range(n_actions), range(n_states)] * horizon)))
    return rows[:, 0::2], rows[:, 1::2]


def enumerated(P, R, ref, start, policy, beta):
    """E[sum r] - beta KL(P_pi || P_ref) by summing over every trajectory; torch, so it has a gradient."""
    horizon = policy.shape[0]
    states, actions = trajectories(R.shape[0], R.shape[1], horizon)
    ref = np.broadcast_to(ref, (horizon, *R.shape))  # (H, S, A) a stationary pi_ref repeats
    P, R, ref, start = (torch.tensor(np.array(x), dtype=torch.float64) for x in (P, R, ref, start))
    t = torch.arange(horizon)
    s, a, s2 = torch.as_tensor(states[:, :-1]), torch.as_tensor(actions), torch.as_tensor(states[:, 1:])
    pi = policy[t, s, a]  # (M, H)
    prob = start[states[:, 0]] * (P[s, a, s2] * pi).prod(1)  # (M,)
    ratio = torch.where(pi > 0, pi / ref[t, s, a], 1.0)  # (M, H); a step pi never takes adds nothing
    objective = R[s, a].sum(1) - beta * torch.log(ratio).sum(1)  # (M,)
    return (prob * objective).sum()


def tilt(P, R, ref, start, beta, horizon):
    """The trajectory-level tilt P_ref(tau) exp(R(tau) / beta): its log-partition x beta and first actions (S, A)."""
    states, actions = trajectories(R.shape[0], R.shape[1], horizon)
    s, a, s2 = states[:, :-1], actions, states[:, 1:]
    w = start[states[:, 0]] * np.prod(ref[s, a] * P[s, a, s2], 1) * np.exp(R[s, a].sum(1) / beta)  # (M,)
    first = np.zeros(R.shape)
    np.add.at(first, (states[:, 0], actions[:, 0]), w)
    return beta * np.log(w.sum()), first / np.maximum(first.sum(1, keepdims=True), 1e-300)


@pytest.mark.parametrize(("seed", "n_states", "n_actions", "horizon", "beta"),
                         [(0, 3, 2, 4, 0.3), (1, 2, 2, 3, 1.0), (2, 3, 2, 3, 2.5), (3, 2, 3, 2, 0.5)])
def test_soft_optimum_matches_enumeration(seed, n_states, n_actions, horizon, beta):
    P, R, ref, start = random_mdp(seed, n_states, n_actions)
    policy, value = soft_value_iteration(P, R, ref, beta, horizon)
    assert policy.shape == (horizon, n_states, n_actions) and value.shape == (horizon + 1, n_states)
    assert np.allclose(policy.sum(-1), 1.0) and np.all(value[horizon] == 0)
    logits = torch.tensor(np.log(policy), requires_grad=True)
    j_star = enumerated(P, R, ref, start, torch.softmax(logits, -1), beta)
    assert j_star.item() == pytest.approx(start @ value[0], abs=1e-10)
    # A stationary point of the enumerated objective, and no nearby or random policy does better.
    (grad,) = torch.autograd.grad(j_star, logits)
    assert grad.abs().max().item() < 1e-9
    rng = np.random.default_rng(seed)
    for scale in (0.05, 0.5, 3.0):
        other = torch.softmax(logits.detach() + torch.tensor(rng.normal(scale=scale, size=policy.shape)), -1)
        assert enumerated(P, R, ref, start, other, beta).item() < j_star.item()


def tilts(P, R, ref, beta, horizon):
    """The tilt from each fixed start state (a random start would be reweighted too): (S,) and (S, A)."""
    n_states = R.shape[0]
    each = [tilt(P, R, ref, np.eye(n_states)[s], beta, horizon) for s in range(n_states)]
    return np.array([v for v, _ in each]), np.array([first[s] for s, (_, first) in enumerate(each)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stochastic_dynamics_optimum_is_not_the_trajectory_tilt(seed):
    P, R, ref, _ = random_mdp(seed)
    beta, horizon = 0.3, 4
    policy, value = soft_value_iteration(P, R, ref, beta, horizon)
    log_partition, first = tilts(P, R, ref, beta, horizon)
    # The tilt also reweights the dynamics' outcomes: an unreachable upper bound on the value.
    assert np.all(log_partition >= value[0] - 1e-12) and (log_partition - value[0]).max() > 0.05
    assert 0.5 * np.abs(first - policy[0]).sum(1).max() > 5e-3  # numerical noise is ~1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deterministic_dynamics_optimum_is_the_trajectory_tilt(seed):
    P, R, ref, _ = random_mdp(seed, stochastic=False)
    beta, horizon = 0.3, 4
    policy, value = soft_value_iteration(P, R, ref, beta, horizon)
    log_partition, first = tilts(P, R, ref, beta, horizon)
    assert np.allclose(log_partition, value[0], atol=1e-9)
    assert np.allclose(first, policy[0], atol=1e-9)


def test_beta_limits():
    P, R, ref, _ = random_mdp(4, n_states=3, n_actions=3)
    horizon = 5
    hard = np.zeros((horizon + 1, 3))  # plain backward induction, by time
    for t in range(horizon - 1, -1, -1):
        hard[t] = (R + P @ hard[t + 1]).max(1)
    policy0, value0 = soft_value_iteration(P, R, ref, 0.0, horizon)
    assert np.allclose(value0, hard, atol=1e-12)
    assert np.allclose(policy_value(P, R, policy0), hard, atol=1e-12)  # the beta = 0 policy attains it
    _, value_small = soft_value_iteration(P, R, ref, 1e-4, horizon)
    assert np.allclose(value_small, hard, atol=1e-2)  # no overflow, and it tends to the hard value
    policy_big, value_big = soft_value_iteration(P, R, ref, 1e6, horizon)
    assert np.allclose(policy_big, ref, atol=1e-5)  # huge beta: stay on pi_ref
    assert np.allclose(value_big, policy_value(P, R, np.broadcast_to(ref, (horizon, 3, 3))), atol=1e-4)


def test_time_indexed_reference_and_its_zeros():
    P, R, ref, start = random_mdp(5, n_states=3, n_actions=3)
    horizon = 3
    ref_t = np.broadcast_to(ref, (horizon, 3, 3)).copy()
    ref_t[0, :, 2] = 0.0  # pi_ref never takes action 2 at the first step
    ref_t[0] /= ref_t[0].sum(1, keepdims=True)
    policy, value = soft_value_iteration(P, R, ref_t, 0.7, horizon)
    assert np.all(policy[0, :, 2] == 0) and np.all(policy[1:, :, 2] > 0)
    _, stationary = soft_value_iteration(P, R, ref, 0.7, horizon)
    assert np.allclose(value[1:], stationary[1:]) and not np.allclose(value[0], stationary[0])
    j = enumerated(P, R, ref_t, start, torch.tensor(policy), 0.7)
    assert j.item() == pytest.approx(start @ value[0], abs=1e-10)


def test_bad_arguments():
    P, R, ref, _ = random_mdp(0)
    with pytest.raises(ValueError, match="P rows"):
        soft_value_iteration(P * 2, R, ref, 1.0, 3)
    with pytest.raises(ValueError, match="pi_ref"):
        soft_value_iteration(P, R, ref[:, :1], 1.0, 3)
    with pytest.raises(ValueError, match="beta"):
        soft_value_iteration(P, R, ref, -1.0, 3)
    with pytest.raises(ValueError, match="horizon"):
        soft_value_iteration(P, R, ref, 1.0, 0)
