"""Claims C5, C7 and C8: what the predictor, the mixture and RL-as-SL do (rules in docs/CLAIMS.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metatoken.evidence.claim_config import NAN, ClaimConfig, col, missing, row
from metatoken.evidence.verdict import (
    ClaimResult,
    Part,
    combine,
    directional,
    equivalent,
    seed_bootstrap,
    untestable,
)
from metatoken.stats import spearman


def _per_task(w: pd.DataFrame, cfg: ClaimConfig, methods, cols: list[str]) -> list[np.ndarray]:
    """One stratum per task: the runs of `methods` there, columns `cols`, NaN rows dropped."""
    runs = w[w[cfg.method].isin(methods)]
    out = [col(f, cols) for _, f in runs.groupby(cfg.task, sort=True)]
    out = [s[~np.isnan(s).any(1)] for s in out]
    return [s for s in out if len(s)]


def _mean_of_means(s: list[np.ndarray]) -> float:
    return float(np.mean([x.mean() for x in s]))


def c5(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C5: the predictor's commanded-vs-achieved rank correlation exceeds `controllable_rho`."""
    text = "the condition-token predictor is controllable across performance levels (the supertask)"
    gone = missing(w, [cfg.controllability])
    if gone:
        return row("C5", text, "", (NAN,) * 3, gone)
    strata = _per_task(w, cfg, cfg.predictor, [cfg.controllability])
    if not strata:
        return row("C5", text, "", (NAN,) * 3, untestable("no predictor run with a controllability score"))
    est = seed_bootstrap(strata, _mean_of_means, cfg.reps, cfg.seed)
    ev = f"{cfg.controllability} of {sorted(cfg.predictor)} runs, mean over {len(strata)} task(s)"
    return row("C5", text, ev, est, directional(est[1], est[2], cfg.controllable_rho, greater=True))


def c7(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C7: the mixture's equilibrium metric (the task's reward, which its RL term pulls on) rises monotonically
    with lambda (Spearman > 0) and its training drift at the end stays under `drift_tolerance`."""
    text = "pretraining + λ·RL lands at an equilibrium set by λ (monotone in λ, stable over training)"
    lam = cfg.knobs.get(cfg.mixture, "hp.lam")
    gone = missing(w, [lam, cfg.equilibrium])
    if gone:
        return row("C7", text, "", (NAN,) * 3, gone)
    runs = w[(w[cfg.method] == cfg.mixture) & w[lam].notna() & w[cfg.equilibrium].notna()]
    tasks = [f for _, f in runs.groupby(cfg.task, sort=True) if f[lam].nunique() >= 3]
    if not tasks:
        return row("C7", text, "", (NAN,) * 3, untestable(f"no task has mixture runs at 3 or more values of {lam}"))
    strata, plan = [], []
    for f in tasks:
        cells = [col(g, [lam, cfg.equilibrium]) for _, g in f.groupby(lam, sort=True)]
        plan.append((len(strata), len(cells)))
        strata += cells

    def stat(s):
        rhos = [spearman(*np.concatenate(s[i:i + n]).T) for i, n in plan]
        rhos = [r for r in rhos if not np.isnan(r)]
        return float(np.mean(rhos)) if rhos else NAN

    est = seed_bootstrap(strata, stat, cfg.reps, cfg.seed)
    mono = directional(est[1], est[2], 0.0, greater=True)
    parts = [Part(mono.verdict, f"monotone: {mono.reason}")]
    if cfg.drift not in w.columns:
        parts.append(untestable(f"stability: the results lack column {cfg.drift}"))
    else:
        drift = _per_task(w, cfg, {cfg.mixture}, [cfg.drift])
        d = seed_bootstrap(drift, _mean_of_means, cfg.reps, cfg.seed) if drift else (NAN,) * 3
        st = directional(d[1], d[2], cfg.drift_tolerance, greater=False)
        parts.append(Part(st.verdict, f"stable: {st.reason}"))
    ev = f"Spearman between {lam} and {cfg.equilibrium} over mixture runs, mean over {len(tasks)} task(s)"
    return row("C7", text, ev, est, combine(parts))


def c8(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C8: rl-as-sl's capability is within `equivalence_margin` of bc's, and its gradient variance is higher
    (log variance ratio > 0)."""
    text = "RL-as-SL matches the supervised gradient at higher variance"
    gone = missing(w, [cfg.capability])
    if gone:
        return row("C8", text, "", (NAN,) * 3, gone)
    strata, tasks = [], []
    for task, f in w.dropna(subset=[cfg.capability]).groupby(cfg.task, sort=True):
        a = col(f[f[cfg.method] == cfg.rl_as_sl], [cfg.capability])
        b = col(f[f[cfg.method] == cfg.supervised], [cfg.capability])
        if len(a) and len(b):
            strata += [a, b]
            tasks.append(task)
    if not strata:
        return row("C8", text, "", (NAN,) * 3,
                   untestable(f"no task has both {cfg.rl_as_sl} and {cfg.supervised} runs"))

    def stat(s):
        return float(np.mean([s[i].mean() - s[i + 1].mean() for i in range(0, len(s), 2)]))

    est = seed_bootstrap(strata, stat, cfg.reps, cfg.seed)
    match = equivalent(est[1], est[2], cfg.equivalence_margin)
    parts = [Part(match.verdict, f"matches: {match.reason}")]
    ratio = _per_task(w, cfg, {cfg.rl_as_sl}, [cfg.variance_ratio]) if cfg.variance_ratio in w.columns else []
    if not ratio:
        parts.append(untestable(f"variance: no {cfg.rl_as_sl} run reports {cfg.variance_ratio}"))
    else:
        logs = [np.log(np.maximum(s, 1e-30)) for s in ratio]
        v = seed_bootstrap(logs, _mean_of_means, cfg.reps, cfg.seed)
        hv = directional(v[1], v[2], 0.0, greater=True)
        parts.append(Part(hv.verdict, f"higher variance (log ratio {v[0]:.3g}): {hv.reason}"))
    ev = (f"{cfg.capability}, {cfg.rl_as_sl} minus {cfg.supervised} on {len(tasks)} task(s); "
          f"log {cfg.variance_ratio} for the variance")
    return row("C8", text, ev, est, combine(parts))
