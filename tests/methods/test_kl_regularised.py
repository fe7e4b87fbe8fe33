"""The KL-regularised policy gradient against the exact optimum (soft value iteration) on a tabular MDP.

A time-indexed softmax policy, logits (H, S, A), on a small stochastic MDP. Its expected
gradient is computed exactly by weighting the estimator's surrogate on every trajectory
(all action sequences x all outcomes) with the trajectory's probability. Ascent on it
reaches soft value iteration's policy. The sampled estimator's mean is checked against
that exact gradient with a z-test. The reward-only estimator lands elsewhere.
"""

import itertools

import numpy as np
import pytest
import torch

from metatoken.envs.exact import soft_value_iteration
from metatoken.methods.kl_regularised import (
    regularised_returns,
    regularised_returns_exact_kl,
    rloo_baseline,
    surrogate,
    to_go,
)

HORIZON = 4


def random_mdp(seed: int = 12, n_states: int = 2, n_actions: int = 3):
    """A stochastic MDP whose future KL depends on the action now (seed chosen for that, fixed)."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, 0.3), size=(n_states, n_actions))  # (S, A, S)
    R = rng.normal(size=(n_states, n_actions))  # (S, A)
    ref = rng.dirichlet(np.ones(n_actions), size=n_states)  # (S, A)
    return P, R, ref, rng.dirichlet(np.ones(n_states))


class Tabular:
    """Every trajectory of the MDP for HORIZON steps, and the estimators' surrogates on them."""

    def __init__(self, P, R, ref, start):
        n_states, n_actions = R.shape
        rows = np.array(list(itertools.product(range(n_states), *[range(n_actions), range(n_states)] * HORIZON)))
        st, ac = rows[:, 0::2], rows[:, 1::2]  # (M, H+1), (M, H)
        self.P, self.R, self.ref, self.start = (torch.tensor(x) for x in (P, R, ref, start))
        self.s, self.a, self.t = torch.tensor(st[:, :-1]), torch.tensor(ac), torch.arange(HORIZON)
        self.dynamics = self.start[st[:, 0]] * self.P[self.s, self.a, torch.tensor(st[:, 1:])].prod(1)  # (M,)
        self.rewards = self.R[self.s, self.a]  # (M, H)
        self.mask = torch.ones_like(self.rewards, dtype=torch.bool)  # (M, H)

    def per_state_kl(self, logits: torch.Tensor) -> torch.Tensor:
        """Exact KL(pi_t(. | s) || pi_ref(. | s)), (H, S), with gradient."""
        lp = torch.log_softmax(logits, -1)  # (H, S, A)
        return (lp.exp() * (lp - torch.log(self.ref))).sum(-1)

    def surrogates(self, logits: torch.Tensor, estimator: str, beta: float):
        """Per-trajectory surrogate (M,) of an estimator, and the trajectories' probabilities (M,)."""
        logp = torch.log_softmax(logits, -1)[self.t, self.s, self.a]  # (M, H)
        prob = self.dynamics * logp.detach().exp().prod(1)  # (M,)
        kl = self.per_state_kl(logits)[self.t, self.s]  # (M, H)
        if estimator == "log-ratio":
            g = regularised_returns(self.rewards, logp, torch.log(self.ref)[self.s, self.a], self.mask, beta)
            return surrogate(logp, g, self.mask), prob
        if estimator == "exact-kl":
            g = regularised_returns_exact_kl(self.rewards, kl, self.mask, beta)
        else:  # "reward-only": reward-to-go advantage plus the per-state KL (kl-finetune before issue 10)
            g = to_go(self.rewards, self.mask)
        return surrogate(logp, g, self.mask, kl, beta), prob

    def gradient(self, logits: torch.Tensor, estimator: str, beta: float) -> torch.Tensor:
        """The estimator's exact expected gradient, (H, S, A)."""
        logits = logits.detach().requires_grad_(True)
        sur, prob = self.surrogates(logits, estimator, beta)
        (grad,) = torch.autograd.grad((prob * sur).sum(), logits)
        return grad

    def objective(self, logits: torch.Tensor, beta: float) -> float:
        """E[sum r] - beta KL(P_pi || P_ref), summed over every trajectory."""
        lp = torch.log_softmax(logits, -1)
        logp = lp[self.t, self.s, self.a]  # (M, H)
        prob = self.dynamics * logp.exp().prod(1)  # (M,)
        ratio = logp - torch.log(self.ref)[self.s, self.a]  # (M, H)
        return float((prob * (self.rewards - beta * ratio).sum(1)).sum())

    def ascend(self, estimator: str, beta: float, steps: int = 1000) -> torch.Tensor:
        """Adam ascent from uniform logits on the exact expected gradient; returns the final logits."""
        logits = torch.zeros(HORIZON, *self.R.shape, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([logits], lr=0.05)
        for _ in range(steps):
            opt.zero_grad()
            logits.grad = -self.gradient(logits, estimator, beta)
            opt.step()
        return logits.detach()

    def sample(self, logits: torch.Tensor, n: int, gen: torch.Generator):
        """n sampled episodes: rewards, log pi (with gradient), log pi_ref, exact KL (with gradient), mask."""
        pi = torch.softmax(logits, -1).detach()  # (H, S, A)
        s = torch.multinomial(self.start, n, replacement=True, generator=gen)  # (n,)
        states, actions = [], []
        for t in range(HORIZON):
            a = torch.multinomial(pi[t, s], 1, generator=gen)[:, 0]  # (n,)
            states.append(s)
            actions.append(a)
            s = torch.multinomial(self.P[s, a], 1, generator=gen)[:, 0]
        s, a = torch.stack(states, 1), torch.stack(actions, 1)  # (n, H) each
        logp = torch.log_softmax(logits, -1)[self.t, s, a]  # (n, H)
        kl = self.per_state_kl(logits)[self.t, s]  # (n, H)
        mask = torch.ones(n, HORIZON, dtype=torch.bool)
        return self.R[s, a], logp, torch.log(self.ref)[s, a], kl, mask


def total_variation(logits: torch.Tensor, policy: np.ndarray) -> float:
    """Largest TV between the softmax policy and `policy` over every (t, s)."""
    return float(0.5 * np.abs(torch.softmax(logits, -1).numpy() - policy).sum(-1).max())


@pytest.fixture(scope="module")
def mdp():
    return random_mdp()


@pytest.mark.parametrize("beta", [0.3, 1.0])
def test_regularised_estimator_converges_to_the_soft_optimum(mdp, beta):
    tab = Tabular(*mdp)
    optimum, value = soft_value_iteration(mdp[0], mdp[1], mdp[2], beta, HORIZON)
    logits = tab.ascend("log-ratio", beta)
    assert total_variation(logits, optimum) < 0.005
    assert tab.objective(logits, beta) == pytest.approx(mdp[3] @ value[0], abs=1e-6)


@pytest.mark.parametrize("beta", [0.3, 1.0])
def test_exact_kl_form_has_the_same_expected_gradient(mdp, beta):
    tab = Tabular(*mdp)
    logits = torch.tensor(np.random.default_rng(1).normal(size=(HORIZON, 2, 3)))
    right = tab.gradient(logits, "log-ratio", beta)
    assert torch.allclose(tab.gradient(logits, "exact-kl", beta), right, atol=1e-12)
    assert (tab.gradient(logits, "reward-only", beta) - right).abs().max() > 0.01  # it omits the future KL


def test_reward_only_advantage_lands_away_from_the_optimum(mdp):
    beta = 0.3
    tab = Tabular(*mdp)
    optimum, value = soft_value_iteration(mdp[0], mdp[1], mdp[2], beta, HORIZON)
    wrong = tab.ascend("reward-only", beta)
    assert tab.gradient(wrong, "reward-only", beta).abs().max() < 1e-4  # it did converge, to its own point
    assert total_variation(wrong, optimum) > 0.02
    assert tab.objective(wrong, beta) < mdp[3] @ value[0] - 1e-3


@pytest.mark.parametrize("estimator", ["log-ratio", "exact-kl"])
def test_sampled_estimator_mean_is_the_exact_gradient(mdp, estimator):
    beta, group, batches, per_batch = 0.3, 4, 300, 64
    tab = Tabular(*mdp)
    logits = torch.tensor(np.random.default_rng(2).normal(size=(HORIZON, 2, 3)))
    gen = torch.Generator().manual_seed(0)
    grads = []
    for _ in range(batches):
        x = logits.clone().requires_grad_(True)
        rewards, logp, logp_ref, kl, mask = tab.sample(x, per_batch, gen)
        if estimator == "log-ratio":
            g = regularised_returns(rewards, logp, logp_ref, mask, beta)
            sur = surrogate(logp, g - rloo_baseline(g, mask, group), mask)
        else:
            g = regularised_returns_exact_kl(rewards, kl, mask, beta)
            sur = surrogate(logp, g - rloo_baseline(g, mask, group), mask, kl, beta)
        (grad,) = torch.autograd.grad(sur.mean(), x)
        grads.append(grad)
    grads = torch.stack(grads)  # (batches, H, S, A)
    mean, se = grads.mean(0), grads.std(0) / batches**0.5
    z = ((mean - tab.gradient(logits, estimator, beta)) / se.clamp(min=1e-12)).abs()  # (H, S, A)
    assert z.max() < 4.5  # 24 coordinates: a false alarm has probability ~2e-4
    wrong = tab.gradient(logits, "reward-only", beta)
    assert ((mean - wrong) / se.clamp(min=1e-12)).abs().max() > 8  # the test can tell the wrong target


def test_to_go_and_returns_on_a_hand_example():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [5.0, 7.0, 100.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])  # the second episode has 2 steps
    assert torch.equal(to_go(rewards, mask), torch.tensor([[6.0, 5.0, 3.0], [12.0, 7.0, 0.0]]))
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.25, 1.0, 1.0]]))
    logp_base = torch.log(torch.tensor([[0.25, 0.5, 1.0], [0.25, 0.5, 0.5]]))
    g = regularised_returns(rewards, logp, logp_base, mask, beta=2.0)
    l2 = float(np.log(2.0))  # log-ratios: [l2, 0, -l2] and [0, l2]
    assert torch.allclose(g, torch.tensor([[6.0, 5.0 + 2 * l2, 3.0 + 2 * l2], [12.0 - 2 * l2, 7.0 - 2 * l2, 0.0]]))
    kl = torch.tensor([[0.1, 0.2, 0.4], [1.0, 3.0, 50.0]])
    exact = regularised_returns_exact_kl(rewards, kl, mask, beta=2.0)  # future KL only: t' > t
    assert torch.allclose(exact, torch.tensor([[6.0 - 1.2, 5.0 - 0.8, 3.0], [12.0 - 6.0, 7.0, 0.0]]))


def test_rloo_baseline_is_leave_one_out_per_step():
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0], [10.0, 20.0]])
    mask = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    base = rloo_baseline(g, mask, group=2)
    # group 0: step 1 of episode 0 has no other live episode -> 0; group 1: the other one's value.
    assert torch.equal(base, torch.tensor([[3.0, 0.0], [1.0, 0.0], [10.0, 20.0], [5.0, 9.0]]))
    assert torch.equal(rloo_baseline(g, torch.ones(4, 2, dtype=torch.bool), group=4)[0],
                       torch.tensor([(3 + 5 + 10) / 3, (4 + 9 + 20) / 3]))
    with pytest.raises(ValueError, match="group"):
        rloo_baseline(g, mask, group=3)
