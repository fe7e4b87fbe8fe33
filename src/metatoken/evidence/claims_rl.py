"""Claims C1-C3: where RL works and what it finds (rules in docs/CLAIMS.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metatoken.evidence.claim_config import NAN, ClaimConfig, col, label_columns, missing, row, success_rate
from metatoken.evidence.verdict import (
    CONTRADICTED,
    SUPPORTED,
    ClaimResult,
    Part,
    combine,
    directional,
    seed_bootstrap,
    untestable,
)

# ------------------------------------------------------------------ C1, C2, C3: where RL works and what it finds

def c1(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C1: online RL on the dense reward reaches higher capability than on the sparse, most distant one, per budget."""
    text = "dense (gait-shaped) reward trains more easily than sparse-distant at equal budget"
    gone = missing(w, [cfg.reward, cfg.budget, cfg.capability])
    if gone:
        return row("C1", text, "", (NAN,) * 3, gone)
    rl = w[w[cfg.method].isin(cfg.online)].dropna(subset=[cfg.capability])
    sparse = rl[rl[cfg.reward] == cfg.sparse_reward]
    dense = rl[rl[cfg.reward].notna() & (rl[cfg.reward] != cfg.sparse_reward)]
    where = ""
    if cfg.distance in w.columns and sparse[cfg.distance].notna().any():
        far = sparse[cfg.distance].max()
        sparse = sparse[sparse[cfg.distance] == far]
        dense = dense[dense[cfg.distance] == far] if (dense[cfg.distance] == far).any() else dense
        where = f" at {cfg.distance} = {far:g}"
    budgets = sorted(set(sparse[cfg.budget]) & set(dense[cfg.budget]))
    if not budgets:
        return row("C1", text, "", (NAN,) * 3, untestable("no budget has both sparse and dense online-RL runs"))
    strata = [col(f[f[cfg.budget] == b], [cfg.capability]) for b in budgets for f in (dense, sparse)]

    def stat(s):
        return float(np.mean([s[i].mean() - s[i + 1].mean() for i in range(0, len(s), 2)]))

    est = seed_bootstrap(strata, stat, cfg.reps, cfg.seed)
    ev = (f"{cfg.capability}, dense minus sparse{where}, mean over budgets {budgets}; "
          f"{len(dense)} dense and {len(sparse)} sparse online-RL runs")
    return row("C1", text, ev, est, directional(est[1], est[2], 0.0, greater=True))


def _between_bits(shares: np.ndarray) -> float:
    """I(seed; implementation) in bits from per-seed label-share rows (seeds weighted equally)."""
    def h(p):
        p = p[p > 0] / p.sum()
        return float(-(p * np.log2(p)).sum())
    ok = shares[shares.sum(1) > 0]
    if len(ok) < 2:
        return NAN
    return max(h(ok.mean(0)) - float(np.mean([h(r) for r in ok])), 0.0)


def _configurations(frame: pd.DataFrame, cfg: ClaimConfig) -> list[pd.DataFrame]:
    """The runs split by configuration (task, method, reward and every knob/budget column the results have):
    the runs of one configuration differ only in their seed."""
    keys = [cfg.task, cfg.method, cfg.reward]
    keys += [c for c in dict.fromkeys([cfg.budget, *cfg.knobs.values()]) if c in frame.columns]
    return [g for _, g in frame.groupby(keys, sort=True, dropna=False)]


def c2(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C2: sparse-reward RL runs that succeed at the task (its own success rate, not the intended measure)
    exploit more, and spread wider across seeds, than successful dense-reward RL or imitation runs."""
    text = ("when sparse-reward RL succeeds, its implementations spread wider and exploit more than "
            "dense-reward or imitation-based ones")
    gone = missing(w, [cfg.reward, cfg.exploit])
    won = success_rate(w, cfg)
    if gone or won is None:
        return row("C2", text, "", (NAN,) * 3, gone or untestable(f"the results lack a success column "
                                                                   f"(one of {', '.join(cfg.success)})"))
    rule = f"success ({' else '.join(cfg.success)}) >= {cfg.success_threshold:g}"
    ok = w[(won >= cfg.success_threshold) & w[cfg.exploit].notna()]
    rl = ok[ok[cfg.method].isin(cfg.online)]
    sparse = rl[rl[cfg.reward] == cfg.sparse_reward]
    dense = rl[rl[cfg.reward].notna() & (rl[cfg.reward] != cfg.sparse_reward)]
    others = pd.concat([dense, ok[ok[cfg.method].isin(cfg.imitation)]])
    if len(sparse) == 0 or len(others) == 0:
        why = "no successful sparse-reward RL run" if len(sparse) == 0 else "no successful comparison run"
        return row("C2", text, "", (NAN,) * 3, untestable(f"{why} ({rule})"))
    groups = [g for _, g in others.groupby([cfg.method, cfg.reward], dropna=False)]
    strata = [col(sparse, [cfg.exploit])] + [col(g, [cfg.exploit]) for g in groups]
    est = seed_bootstrap(strata, lambda s: s[0].mean() - np.mean([g.mean() for g in s[1:]]), cfg.reps, cfg.seed)
    exploit = directional(est[1], est[2], 0.0, greater=True)
    labels = label_columns(w, cfg)
    if not labels:
        spread = untestable(f"no {cfg.implementation_prefix}<label> share columns for the spread across seeds")
    else:
        # spread across seeds is read within one configuration (seeds of one task, recipe and budget), so that
        # differences between tasks or budgets do not count as spread; cells with one successful seed have none
        cells = [[c for c in _configurations(g, cfg) if len(c) >= 2] for g in [sparse, *groups]]
        spans, sh = [], []
        for group in cells:
            spans.append((len(sh), len(group)))
            sh += [np.nan_to_num(col(c, labels)) for c in group]  # (seeds, labels) per configuration

        def group_bits(s, i, n):
            bits = [_between_bits(x) for x in s[i:i + n]]
            return float(np.nanmean(bits)) if n and not np.all(np.isnan(bits)) else NAN

        def stat(s):
            first, rest = group_bits(s, *spans[0]), [group_bits(s, *sp) for sp in spans[1:]]
            rest = [r for r in rest if not np.isnan(r)]
            return first - float(np.mean(rest)) if rest else NAN

        if spans[0][1] == 0:
            spread = untestable("spread: no configuration has 2 or more successful sparse-reward RL seeds")
        else:
            sp = seed_bootstrap(sh, stat, cfg.reps, cfg.seed)
            spread = directional(sp[1], sp[2], 0.0, greater=True)
            spread = Part(spread.verdict, f"spread (bits) {sp[0]:.3g} over {spans[0][1]} sparse configuration(s): "
                                          f"{spread.reason}")
    ev = (f"{cfg.exploit} of successful runs ({rule}), sparse-reward RL ({len(sparse)} runs) minus the mean of "
          f"{len(groups)} comparison groups; spread = I(seed; implementation) within a configuration, difference")
    return row("C2", text, ev, est, combine([Part(exploit.verdict, f"exploit: {exploit.reason}"), spread]))


def c3(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C3: at the largest budget, sparse-reward RL finds the reward at the least sparse task and stops
    finding it at the sparsest."""
    text = "beyond some sparsity (in bits), RL stops finding the reward within a fixed budget"
    gone = missing(w, [cfg.reward, cfg.sparsity, cfg.budget, cfg.found])
    if gone:
        return row("C3", text, "", (NAN,) * 3, gone)
    rl = w[w[cfg.method].isin(cfg.online) & (w[cfg.reward] == cfg.sparse_reward)]
    if rl.empty:
        return row("C3", text, "", (NAN,) * 3, untestable("no sparse-reward online-RL runs"))
    rl = rl.dropna(subset=[cfg.found, cfg.budget])
    if rl.empty:
        return row("C3", text, "", (NAN,) * 3, untestable(f"no sparse-reward online-RL run reports {cfg.found}"))
    top = rl[rl[cfg.budget] == rl[cfg.budget].max()]
    bits = sorted(top[cfg.sparsity].dropna().unique())
    if len(bits) < 2:
        return row("C3", text, "", (NAN,) * 3, untestable("fewer than 2 sparsity levels at the largest budget"))
    lo_runs, hi_runs = (col(top[top[cfg.sparsity] == b], [cfg.found]) for b in (bits[0], bits[-1]))
    far = seed_bootstrap([hi_runs], lambda s: s[0].mean(), cfg.reps, cfg.seed)
    near = seed_bootstrap([lo_runs], lambda s: s[0].mean(), cfg.reps, cfg.seed)
    tau = cfg.stop_rate
    if far[2] < tau and near[1] > tau:
        part = Part(SUPPORTED, f"found at {bits[0]:.3g} bits (interval low {near[1]:.3g} > {tau:g}) and not at "
                                 f"{bits[-1]:.3g} bits (interval high {far[2]:.3g} < {tau:g})")
    elif far[1] > tau:
        part = Part(CONTRADICTED, f"still found at the sparsest tested level, {bits[-1]:.3g} bits "
                                    f"(interval low {far[1]:.3g} > {tau:g})")
    else:
        part = untestable(f"sparsest level interval [{far[1]:.3g}, {far[2]:.3g}], least sparse "
                          f"[{near[1]:.3g}, {near[2]:.3g}]: no clean stop against {tau:g}")
    ev = (f"{cfg.found} of sparse-reward online RL at budget {top[cfg.budget].max():g}, at the sparsest level "
          f"{bits[-1]:.3g} bits (least sparse {bits[0]:.3g} bits: {near[0]:.3g})")
    return row("C3", text, ev, far, part)
