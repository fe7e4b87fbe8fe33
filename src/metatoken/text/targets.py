"""Exact targets over an enumerated support: each takes log p0 (N,) and rewards r (N,), returns log pi (N,).

| target | distribution | reached by |
|---|---|---|
| `tilted(logp0, r, beta)` | pi*_beta = p0 exp(r / beta) / Z | KL-regularised RL (max E r - beta KL(pi || p0)), RWR |
| `bayes_conditioned(logp0, r, beta)` | p(x given good), P(good given x) = exp((r - r_max) / beta) | conditioning |
| `mixture_equilibrium(logp0, r, lam)` | pi_lam = p0 / (mu - lam r), mu by normalisation | pretraining loss + lam x RL |
| `restricted(logp0, keep)` | p0 given a set (filtering, threshold and quantile conditions) | filtering, conditioning |

The derivation of the mixture equilibrium is in docs/TEXT.md. All arithmetic is float64.
"""

from __future__ import annotations

import numpy as np


def logsumexp(a: np.ndarray) -> float:
    """log sum exp over a 1-D array, stable for large or -inf entries."""
    a = np.asarray(a, dtype=np.float64)
    m = np.max(a)
    if not np.isfinite(m):
        return float(m)
    return float(m + np.log(np.sum(np.exp(a - m))))


def normalise(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities from unnormalised log-weights (N,)."""
    return logits - logsumexp(logits)


def tilted(logp0: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    """log pi*_beta, pi*_beta(x) = p0(x) exp(r(x) / beta) / Z: the maximiser of E r - beta KL(pi || p0)."""
    if not beta > 0:
        raise ValueError("beta must be > 0")
    return normalise(np.asarray(logp0, np.float64) + np.asarray(r, np.float64) / beta)


def bayes_conditioned(logp0: np.ndarray, r: np.ndarray, beta: float) -> np.ndarray:
    """log p(x | good) when P(good | x) = exp((r(x) - r_max) / beta), by Bayes' rule over the support."""
    if not beta > 0:
        raise ValueError("beta must be > 0")
    r = np.asarray(r, np.float64)
    log_likelihood = (r - r.max()) / beta  # log P(good | x) <= 0
    log_joint = np.asarray(logp0, np.float64) + log_likelihood  # log p0(x) P(good | x)
    log_evidence = logsumexp(log_joint)  # log P(good)
    return log_joint - log_evidence


def restricted(logp0: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """log p0(x | x in keep): p0 renormalised on a boolean mask (N,), -inf elsewhere."""
    keep = np.asarray(keep, bool)
    if not keep.any():
        raise ValueError("the kept set is empty")
    return normalise(np.where(keep, np.asarray(logp0, np.float64), -np.inf))


def mixture_mu(logp0: np.ndarray, r: np.ndarray, lam: float, iters: int = 200) -> float:
    """The normaliser mu of pi_lam = p0 / (mu - lam r): the root of sum p0 / (mu - lam r) = 1, mu > lam max r.

    With d = mu - lam r_max, f(d) = sum p0 / (d + lam (r_max - r)) falls from +inf to 0 on d > 0.
    f(1) <= 1 and f(p0(argmax r)) >= 1 bracket the root; bisection runs in log d (the root can
    sit many decades below 1 when lam is large), then Newton steps polish it to machine precision.
    """
    p0, gap = np.exp(np.asarray(logp0, np.float64)), np.asarray(r, np.float64).max() - np.asarray(r, np.float64)
    gap = lam * gap  # (N,) >= 0, lam (r_max - r)

    def f(d: float) -> float:
        return float(np.sum(p0 / (d + gap))) - 1.0

    lo = np.log(max(p0[gap == 0].sum(), 1e-300))  # f >= 0 here
    hi = 0.0  # f(1) <= 0
    if lo >= hi:  # all mass already at the maximum (or lam = 0): d = 1
        return float(lam * np.asarray(r, np.float64).max() + 1.0)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(np.exp(mid)) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    d = np.exp(0.5 * (lo + hi))
    for _ in range(3):  # Newton on f(d) = 0; f'(d) = -sum p0 / (d + gap)^2
        step = f(d) / -float(np.sum(p0 / (d + gap) ** 2))
        if d - step > 0:
            d -= step
    return float(d + lam * np.asarray(r, np.float64).max())


def mixture_equilibrium(logp0: np.ndarray, r: np.ndarray, lam: float) -> np.ndarray:
    """log pi_lam, the stationary point of -sum p0 log pi - lam sum pi r over the simplex: p0 / (mu - lam r)."""
    if lam < 0:
        raise ValueError("lam must be >= 0")
    logp0, r = np.asarray(logp0, np.float64), np.asarray(r, np.float64)
    if lam == 0:
        return logp0.copy()
    d = mixture_mu(logp0, r, lam) - lam * r.max()
    return logp0 - np.log(d + lam * (r.max() - r))  # mu - lam r without cancellation
