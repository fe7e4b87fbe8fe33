"""Text measurements: exact over an enumerated support, sampled estimators beside them.

Exact (pure functions of log pi, log p0, the target and the rewards over the support, all (N,)):

| metric | definition |
|---|---|
| `text/reward_<name>` | E_pi r for every world reward (proxy, true, sentiment) |
| `text/kl_p0` | KL(pi || p0) = sum pi (log pi - log p0), nats per sequence |
| `text/kl_target` | KL(pi || own target), nats (the recipe's declared equilibrium) |
| `text/kl_target_reverse` | KL(own target || pi), finite also when the target has holes (filtering's) |
| `text/tv_target` | total variation to the target, 1/2 sum abs(pi - target) |
| `text/entropy` | -sum pi log pi, nats |
| `text/distinct_<n>` | expected number of distinct n-grams in one sequence / (L - n + 1) (1 = no repeated n-gram) |
| `text/target_reward`, `text/target_kl_p0` | the same for the target itself, to compare against |

Sampled (m sequences x_i ~ pi, exact log-ratios l_i = log pi(x_i) - log p0(x_i)): the
estimators of KL(pi || p0) that KL-penalised trainers log, `text/kl_k1` = mean l (unbiased,
can go negative), `text/kl_k2` = mean l^2 / 2 (biased, >= 0), `text/kl_k3` = mean (e^-l - 1 + l)
(unbiased, >= 0), with `text/kl_k1_negative` = 1 when k1's estimate is below zero.
"""

from __future__ import annotations

import numpy as np
import torch

from metatoken.text.policy import TextPolicy
from metatoken.text.world import REWARDS, World

DISTINCT_NS = (1, 2)


def distinct_n(x: np.ndarray, n: int) -> np.ndarray:
    """Per sequence (N, L): number of distinct n-grams / number of n-grams, (N,)."""
    grams = np.stack([x[:, i: x.shape[1] - n + 1 + i] for i in range(n)], axis=-1)  # (N, G, n)
    base = int(x.max()) + 1 if x.size else 1
    codes = (grams * base ** np.arange(n)).sum(-1)  # (N, G) one integer per n-gram
    codes = np.sort(codes, axis=1)
    distinct = 1 + (np.diff(codes, axis=1) != 0).sum(1)
    return distinct / codes.shape[1]


def exact_metrics(world: World, x: np.ndarray, logp0: np.ndarray, logpi: np.ndarray,
                  log_target: np.ndarray | None = None) -> dict[str, float]:
    """Exact metrics of a policy over the whole support (x (N, L), log p0, log pi, target (N,))."""
    pi = np.exp(logpi)
    out = {f"text/reward_{name}": float(pi @ world.reward(name, x)) for name in REWARDS}
    out["text/kl_p0"] = float(pi @ (logpi - logp0))
    out["text/entropy"] = float(-(pi @ np.where(pi > 0, logpi, 0.0)))
    for n in DISTINCT_NS:
        out[f"text/distinct_{n}"] = float(pi @ distinct_n(x, n))
    out["text/mass"] = float(pi.sum())  # 1 up to float error: a check on the scoring
    if log_target is not None:
        tgt = np.exp(log_target)
        out["text/kl_target"] = float(pi @ (logpi - np.where(tgt > 0, log_target, -np.inf))) if (
            pi[tgt == 0].sum() == 0) else float("inf")
        out["text/kl_target_reverse"] = float(tgt @ np.where(tgt > 0, log_target - logpi, 0.0))
        out["text/tv_target"] = float(0.5 * np.abs(pi - tgt).sum())
        for name in REWARDS:
            out[f"text/target_reward_{name}"] = float(tgt @ world.reward(name, x))
        out["text/target_kl_p0"] = float(tgt @ np.where(tgt > 0, log_target - logp0, 0.0))
    return out


def kl_estimators(log_ratio: np.ndarray) -> dict[str, float]:
    """The k1, k2, k3 estimates of KL(pi || q) from log pi - log q at samples of pi, with k1's sign flag."""
    lr = np.asarray(log_ratio, np.float64)
    k1 = float(lr.mean())
    return {"text/kl_k1": k1, "text/kl_k2": float((lr ** 2 / 2).mean()),
            "text/kl_k3": float((np.expm1(-lr) + lr).mean()), "text/kl_k1_negative": float(k1 < 0)}


def sampled_metrics(world: World, policy: TextPolicy, n: int, seed: int) -> dict[str, float]:
    """KL(pi || p0) estimators from n samples of pi (seeded generator), with exact log-probabilities."""
    x = policy.sample(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logpi = policy.log_prob(x).double().numpy()
    return kl_estimators(logpi - world.log_p0(x.numpy()))


def estimated_metrics(world: World, policy: TextPolicy, n: int, seed: int) -> dict[str, float]:
    """Monte Carlo metrics for a world too large to enumerate: means with standard errors (`_se`).

    Rewards, KL(pi || p0) (= E_pi log pi/p0, exact log-ratios) and entropy are plain means over
    x ~ pi; each `_se` is the standard error of that mean.
    """
    x = policy.sample(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logpi = policy.log_prob(x).double().numpy()
    xs = x.numpy()
    cols = {f"text/reward_{name}": world.reward(name, xs) for name in REWARDS}
    cols["text/kl_p0"] = logpi - world.log_p0(xs)
    cols["text/entropy"] = -logpi
    for k in DISTINCT_NS:
        cols[f"text/distinct_{k}"] = distinct_n(xs, k)
    out = {}
    for name, v in cols.items():
        out[name] = float(v.mean())
        out[name + "_se"] = float(v.std(ddof=1) / np.sqrt(len(v)))
    return out


def estimated_target_kl(world: World, policy: TextPolicy, reward: str, beta: float, n: int, seed: int
                        ) -> tuple[float, float]:
    """KL(pi || pi*_beta) on a large world, importance-sampled: (estimate, standard error).

    KL(pi || pi*) = E_pi[log pi - log p0 - r / beta] + log Z, with Z = E_p0[exp(r / beta)]
    estimated from n p0 samples; the error of log Z is propagated by the delta method.
    """
    x = policy.sample(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logpi = policy.log_prob(x).double().numpy()
    xs = x.numpy()
    a = logpi - world.log_p0(xs) - world.reward(reward, xs) / beta
    w = np.exp(world.reward(reward, world.sample(n, seed + 1)) / beta)  # (n,) p0 samples' tilt weights
    log_z, se_log_z = np.log(w.mean()), w.std(ddof=1) / np.sqrt(n) / w.mean()
    se = float(np.sqrt(a.var(ddof=1) / n + se_log_z ** 2))
    return float(a.mean() + log_z), se
