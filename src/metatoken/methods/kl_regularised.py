"""The policy-gradient estimator of the KL-regularised objective, as pure tensor functions.

The objective over whole episodes, for a policy pi_theta and a fixed base pi_base:

    J(theta) = E_tau[ sum_t r_t ] - beta * KL(P_pi || P_base)
             = E_tau[ sum_t (r_t - beta * l_t) ],   l_t = log pi(a_t | h_t) - log pi_base(a_t | h_t)

(the dynamics' factors cancel in the trajectory log-ratio, so the trajectory KL is the sum
of the per-step log-ratios). Differentiating both the sampling distribution and l_t:

    grad J = E[ sum_t grad log pi(a_t | h_t) * sum_t' (r_t' - beta l_t') ] - beta E[ sum_t grad l_t ].

The last term vanishes: grad l_t = grad log pi(a_t | h_t), whose mean under a_t ~ pi is 0.
In the first, a term with t' < t does not depend on a_t given h_t, so it drops out too:

    grad J = E[ sum_t grad log pi(a_t | h_t) * (G_t - b_t) ],
    G_t    = sum_{t' >= t} r_t' - beta * sum_{t' >= t} l_t'          (`regularised_returns`)

for any baseline b_t that does not depend on a_t (`rloo_baseline`). The KL-to-go has two
parts. The t' = t part scores the KL at the state the agent is in. The t' > t part is
where the action now changes the KL the policy will pay at the states it leads to.

The same gradient with less noise replaces the sampled log-ratios by exact per-state KLs,
KL_t = KL(pi(. | h_t) || pi_base(. | h_t)) in closed form. Since E_{a ~ pi}[grad log pi(a) l(a)]
= grad KL at a fixed state, the t' = t part becomes a pathwise term, and the t' > t part is
replaced by its conditional expectation:

    grad J = E[ sum_t grad log pi(a_t | h_t) (R_t - beta sum_{t' > t} KL_t' - b_t) - beta sum_t grad KL_t ]
                                              (`regularised_returns_exact_kl` + the `kl` term of `surrogate`)

The wrong estimator keeps only the reward in the advantage plus the pathwise per-state KL
(`kl-finetune` until issue 10). It omits the future KL -beta sum_{t' > t} KL_t'. At its
fixed point each state's pi(. | h) maximises E_a[Q^R_pi(h, a)] - beta KL(pi(. | h) || pi_base(. | h))
with the reward-only Q^R_pi, so pi is proportional to pi_base exp(Q^R_pi / beta). The optimum
is pi* proportional to pi_base exp(Q_soft / beta), whose Q_soft already pays for the future
KL (`metatoken.envs.exact.soft_value_iteration`). They agree only where no action changes
the future KL (a horizon of 1, beta -> 0 or beta -> infinity).
tests/methods/test_kl_regularised.py checks both against the exact optimum.

Shapes: N episodes padded to T steps; `mask` (N, T) is True on real steps, and a padded
step contributes nothing. Inputs that come from the rollout (rewards, log-probs at
collection time) are treated as constants. Only `logp` and `kl` in `surrogate` carry
gradients.
"""

from __future__ import annotations

import torch


def to_go(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum from each step to the episode's end, sum_{t' >= t} x_t': (N, T) -> (N, T), 0 on padding."""
    x = torch.where(mask, x, torch.zeros_like(x))  # (N, T)
    return torch.where(mask, x.flip(-1).cumsum(-1).flip(-1), torch.zeros_like(x))  # (N, T)


def regularised_returns(rewards: torch.Tensor, logp: torch.Tensor, logp_base: torch.Tensor,
                        mask: torch.Tensor, beta: float) -> torch.Tensor:
    """G_t = reward-to-go - beta * log-ratio-to-go: (N, T) each -> (N, T), no gradient."""
    ratio = (logp - logp_base).detach()  # (N, T) l_t, sampled log pi / pi_base of the taken actions
    return to_go(rewards.detach() - beta * ratio, mask)  # (N, T)


def regularised_returns_exact_kl(rewards: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor,
                                 beta: float) -> torch.Tensor:
    """R_t - beta * sum_{t' > t} KL_t' with exact per-state KLs: (N, T) each -> (N, T), no gradient.

    Pair it with `surrogate(..., kl=kl, beta=beta)`, which adds the pathwise -beta KL_t of
    the current state; together they give the same expected gradient as `regularised_returns`.
    """
    kl = kl.detach()  # (N, T)
    future_kl = to_go(kl, mask) - torch.where(mask, kl, torch.zeros_like(kl))  # (N, T) sum over t' > t
    return to_go(rewards.detach(), mask) - beta * future_kl  # (N, T)


def rloo_baseline(returns: torch.Tensor, mask: torch.Tensor, group: int) -> torch.Tensor:
    """Leave-one-out baseline: mean of G_t over the other episodes of a group alive at t, (N, T) -> (N, T).

    Episodes i*group ... (i+1)*group - 1 form a group. The baseline of an episode never uses
    its own actions, so it leaves the estimator unbiased. A step where no other episode is
    alive gets baseline 0.
    """
    n, t = returns.shape
    if group < 2 or n % group:
        raise ValueError(f"need group >= 2 dividing the {n} episodes, got group = {group}")
    g = torch.where(mask, returns, torch.zeros_like(returns)).detach().reshape(n // group, group, t)  # (G, k, T)
    alive = mask.reshape(n // group, group, t).to(returns.dtype)  # (G, k, T)
    others = alive.sum(1, keepdim=True) - alive  # (G, k, T) how many other episodes are alive at t
    total = g.sum(1, keepdim=True) - g  # (G, k, T) their summed G_t
    base = torch.where(others > 0, total / others.clamp(min=1), torch.zeros_like(total))  # (G, k, T)
    return base.reshape(n, t) * mask  # (N, T)


def surrogate(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              kl: torch.Tensor | None = None, beta: float = 0.0) -> torch.Tensor:
    """Per-episode surrogate whose gradient is the estimator: sum_t logp_t A_t [- beta sum_t KL_t], (N,).

    `logp` (N, T) is log pi(a_t | h_t) with gradient; `advantages` (N, T) = G_t - b_t is a
    constant. Pass `kl` (N, T) (exact per-state KL with gradient) only with
    `regularised_returns_exact_kl`. Maximise its mean (the loss is `-surrogate(...).mean()`).
    """
    zero = torch.zeros_like(logp)
    out = torch.where(mask, logp * advantages.detach(), zero).sum(-1)  # (N,)
    if kl is not None:
        out = out - beta * torch.where(mask, kl, zero).sum(-1)
    return out
