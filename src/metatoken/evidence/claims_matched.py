"""Claims C4, C6 and C9: comparisons at matched capability (rules in docs/CLAIMS.md)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from metatoken.evidence.claim_config import NAN, ClaimConfig, missing, recipe_cells, row
from metatoken.evidence.frontier import interpolate_at
from metatoken.evidence.verdict import (
    ClaimResult,
    Part,
    curve,
    directional,
    matched_gap,
    matched_levels,
    mean_over_parts,
    untestable,
)
from metatoken.stats import spearman


def _matched_difference(w: pd.DataFrame, cfg: ClaimConfig, group_a: Iterable[str], group_b: Iterable[str],
                        metric: str) -> tuple[tuple[float, float, float], list[str], list[str]] | Part:
    """Mean over (task, recipe a, recipe b) of metric_a - metric_b at matched capability levels, with a
    bootstrap over seeds within each knob value, and the pairs used and left out (their overlap reached in
    under half the resamples); or why it cannot be computed."""
    cols = [cfg.capability, metric]
    for group in (group_a, group_b):  # say which side is absent rather than "no overlap"
        if not w[w[cfg.method].isin(set(group))].dropna(subset=cols).shape[0]:
            return untestable(f"no run of {', '.join(sorted(group))} reports {' and '.join(cols)}")
    plan: list[tuple[int, int, int, np.ndarray]] = []  # (first cell of a, cells of a, cells of b, levels)
    strata: list[np.ndarray] = []
    pairs = []
    for task, frame in w.groupby(cfg.task, sort=True):
        recipes = {m: recipe_cells(f, m, cfg, cols) for m, f in frame.groupby(cfg.method, sort=True)}
        recipes = {m: cells for m, cells in recipes.items() if cells}
        for a in sorted(set(group_a) & set(recipes)):
            for b in sorted(set(group_b) & set(recipes)):
                ca, cb = recipes[a], recipes[b]
                levels = matched_levels(curve(ca, cfg.match_tolerance)[0], curve(cb, cfg.match_tolerance)[0])
                if len(levels) == 0:
                    continue
                plan.append((len(strata), len(ca), len(cb), levels))
                strata += ca + cb
                pairs.append(f"{task}: {a} vs {b}")
    if not plan:
        return untestable("no pair of recipes with overlapping capability on one task")

    def gaps(s):  # (pairs,)
        return np.array([matched_gap(s[i:i + na], s[i + na:i + na + nb], cfg.match_tolerance, lv)
                         for i, na, nb, lv in plan])

    est, kept = mean_over_parts(strata, gaps, cfg.reps, cfg.seed)
    if not kept.any():
        return untestable(f"no pair's overlap is reached in half the resamples ({'; '.join(pairs)})")
    dropped = [p for p, k in zip(pairs, kept) if not k]
    return est, [p for p, k in zip(pairs, kept) if k], dropped


def _matched_claim(name: str, text: str, w: pd.DataFrame, cfg: ClaimConfig, group_a, group_b, metric: str,
                   label: str) -> ClaimResult:
    gone = missing(w, [cfg.capability, metric])
    if gone:
        return row(name, text, "", (NAN,) * 3, gone)
    out = _matched_difference(w, cfg, group_a, group_b, metric)
    if isinstance(out, Part):
        return row(name, text, "", (NAN,) * 3, out)
    est, pairs, dropped = out
    ev = f"{metric}, {label} at matched {cfg.capability}, mean over {len(pairs)} pairs ({'; '.join(pairs)})"
    if dropped:
        ev += f"; left out, overlap reached in under half the resamples: {'; '.join(dropped)}"
    return row(name, text, ev, est, directional(est[1], est[2], 0.0, greater=False))


def c4(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C4: offline recipes (imitation and offline RL) exploit less than online RL at matched capability."""
    return _matched_claim("C4", "offline learning from immutable data exploits less than online RL at matched "
                          "capability", w, cfg, cfg.imitation | cfg.offline_rl, cfg.online, cfg.exploit,
                          "offline minus online RL")


def c6(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C6: the condition-token predictor is closer to the reference data than RL fine-tuning at matched capability."""
    return _matched_claim("C6", "at matched capability, the predictor stays closer to the reference distribution "
                          "than RL fine-tuning", w, cfg, cfg.predictor, cfg.finetune, cfg.off_reference,
                          "predictor minus RL fine-tuning")


def c9(w: pd.DataFrame, cfg: ClaimConfig) -> ClaimResult:
    """C9: across recipes at matched capability, the amount of RL and spookiness rank-correlate positively."""
    text = "at matched capability, recipes that use less RL by the ledger are less spooky"
    gone = missing(w, [cfg.capability, cfg.rl_amount, cfg.exploit])
    if gone:
        return row("C9", text, "", (NAN,) * 3, gone)
    tol = cfg.match_tolerance
    cols = [cfg.capability, cfg.rl_amount, cfg.exploit]
    plan: list[tuple[list[tuple[int, int]], np.ndarray]] = []  # per task: (first cell, cells) per recipe, levels
    strata: list[np.ndarray] = []
    for _, frame in w.groupby(cfg.task, sort=True):
        spans, caps = [], []
        for m, f in frame.groupby(cfg.method, sort=True):
            cells = recipe_cells(f, m, cfg, cols)
            if not cells:
                continue
            spans.append((len(strata), len(cells)))
            caps.append(curve([c[:, :2] for c in cells], tol)[0])
            strata += cells
        if len(spans) < 3:
            continue
        grid = np.linspace(min(c.min() for c in caps), max(c.max() for c in caps), 7)[1:-1]
        reach = [sum(c.min() <= g <= c.max() for c in caps) >= 3 for g in grid]
        if any(reach):
            plan.append((spans, grid[reach]))
    if not plan:
        return row("C9", text, "", (NAN,) * 3, untestable("no capability level is reached by 3 or more recipes"))

    def rhos(s):  # (levels over all tasks,): NaN where under 3 recipes reach the level in this resample
        out = []
        for spans, levels in plan:
            rl = np.array([interpolate_at(*curve([c[:, [0, 1]] for c in s[i:i + n]], tol), levels) for i, n in spans])
            sp = np.array([interpolate_at(*curve([c[:, [0, 2]] for c in s[i:i + n]], tol), levels) for i, n in spans])
            for j in range(len(levels)):  # (recipes,) at each level
                ok = ~(np.isnan(rl[:, j]) | np.isnan(sp[:, j]))
                out.append(spearman(rl[ok, j], sp[ok, j]) if ok.sum() >= 3 else NAN)
        return np.array(out)

    est, kept = mean_over_parts(strata, rhos, cfg.reps, cfg.seed)
    if not kept.any():
        return row("C9", text, "", (NAN,) * 3, untestable(
            "no level where 3 recipes give a rank correlation on the data and in half the resamples"))
    ev = (f"Spearman across recipes between {cfg.rl_amount} and {cfg.exploit} at matched {cfg.capability}, "
          f"mean over {int(kept.sum())} of {len(kept)} levels on {len(plan)} task(s) (a level enters when 3 "
          f"recipes reach it on the data and in half the resamples)")
    return row("C9", text, ev, est, directional(est[1], est[2], 0.0, greater=True))
