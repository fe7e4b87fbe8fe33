"""The evidence figures: spookiness against capability at matched capability (the main figure), the
phase-diagram heatmaps over (sparsity or distance, PPO's env-step budget), and exploit rate against
action entropy. Each reads the per-run table (`runs_table`: one row per run, metadata columns plus
one column per metric) and returns (PNG data URI, caption) or (None, a one-line note) when the
experiment lacks its inputs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report is written, never shown
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from metatoken.evidence.claim_config import ClaimConfig
from metatoken.evidence.frontier import matched_capability, wide_runs
from metatoken.experiments import rundir
from metatoken.experiments.results import claims_frame
from metatoken.report.figures import to_data_uri
from metatoken.stats import bootstrap_ci

Figure = tuple[str | None, str]  # (data URI or None, caption or the note saying why it was skipped)
CAPABILITY = ("capability/intended", "capability/normalized_return")  # the first present is the x axis
EXPLOIT = "spookiness/exploit_rate"
RL_AMOUNT = ("ledger/kl_to_reference_per_step", "ledger/reward_queries")  # marker colour, first present
ENTROPY = "policy/action_entropy"
WALK = "implementation/walk"
BUDGET = "budget.env_steps"
ONLINE = "ppo"  # the recipe whose env-step budget is the phase diagram's axis
FRONTIER_REPS = 200  # bootstrap resamples for the figure's band (the claims use their own, more)
FRONTIER_POINTS = 25  # capability levels the drawn band is read off at


def runs_table(out_dir: Path) -> pd.DataFrame:
    """One row per run of the experiment's results.parquet: metadata (method = method id, label =
    the entry's label) plus one column per metric."""
    return wide_runs(claims_frame(pq.read_table(rundir.ExperimentDir(Path(out_dir)).results)))


def _first(wide: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in wide.columns and wide[n].notna().any()), None)


def _knob_cells(frame: pd.DataFrame, recipe: str, knobs: dict[str, str]) -> tuple[str | None, list[pd.DataFrame]]:
    """A recipe's runs split by its knob (one cell when it has none or the knob never moved)."""
    knob = knobs.get(recipe)
    if knob is None or knob not in frame.columns or frame[knob].nunique(dropna=True) < 2:
        return None, [frame]
    return knob, [g for _, g in frame.groupby(knob, sort=True, dropna=False)]


def _mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (np.nan,) * 3
    return bootstrap_ci([values], stat=np.mean, reps=FRONTIER_REPS)


def matched_capability_figure(wide: pd.DataFrame, config: ClaimConfig | None = None) -> Figure:
    """Exploit rate against capability, one frontier per recipe over its knob (seed means with 95%
    intervals on both axes, the band from evidence/frontier.py), marker colour = amount of RL."""
    config = config or ClaimConfig()
    cap, rl = _first(wide, CAPABILITY), _first(wide, RL_AMOUNT)
    if cap is None or EXPLOIT not in wide.columns:
        return None, f"Matched-capability figure skipped: the results lack a capability metric or {EXPLOIT}."
    tasks = list(dict.fromkeys(wide["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.6 * len(tasks), 4.0), squeeze=False)
    colours = wide[rl].to_numpy(float) if rl else np.zeros(len(wide))
    norm = matplotlib.colors.Normalize(np.nanmin(colours) if np.isfinite(colours).any() else 0.0,
                                       np.nanmax(colours) if np.isfinite(colours).any() else 1.0)
    for ax, task in zip(axes[0], tasks):
        sub = wide[wide["task"] == task].dropna(subset=[cap, EXPLOIT])
        for i, (recipe, frame) in enumerate(sub.groupby("method", sort=True)):
            line = f"C{i % 10}"
            knob, cells = _knob_cells(frame, recipe, config.knobs)
            xs = np.array([_mean_ci(c[cap]) for c in cells])  # (K, 3)
            ys = np.array([_mean_ci(c[EXPLOIT]) for c in cells])  # (K, 3)
            order = np.argsort(xs[:, 0])
            if knob is not None:  # the frontier: knob means joined in order of capability, with its band
                points = frame.assign(recipe=recipe, knob=frame[knob], capability=frame[cap])
                levels = np.linspace(np.nanmin(xs[:, 0]), np.nanmax(xs[:, 0]), FRONTIER_POINTS)
                band = matched_capability(points, levels, [EXPLOIT], reps=FRONTIER_REPS)
                ax.plot(band["level"], band["estimate"], color=line, lw=1.2)
                ax.fill_between(band["level"], band["ci_low"], band["ci_high"], color=line, alpha=0.15, lw=0)
            ax.errorbar(xs[order, 0], ys[order, 0], xerr=np.abs(xs[order][:, 1:].T - xs[order, 0]),
                        yerr=np.abs(ys[order][:, 1:].T - ys[order, 0]), fmt="none", ecolor=line, capsize=3,
                        label=recipe + (f" (knob {knob})" if knob else ""))
            c = [np.nanmean(cell[rl]) if rl else 0.0 for cell in cells]
            ax.scatter(xs[order, 0], ys[order, 0], c=np.asarray(c)[order], cmap="viridis", norm=norm,
                       edgecolors=line, linewidths=1.5, s=45, zorder=3)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel(cap)
        ax.set_ylabel("exploit rate")
        if sub.empty:  # say why the panel is blank instead of drawing an empty legend
            ax.text(0.5, 0.5, f"no run with both {cap} and {EXPLOIT}", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        else:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.16))  # below: never over a point
    fig.subplots_adjust(wspace=0.3)
    if rl:
        fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=axes[0].tolist(), label=rl)
    caption = (f"Spookiness against capability: exploit rate against {cap}, one frontier per recipe over its "
               "knob (seed means with 95% bootstrap intervals on both axes; the band is the frontier read off "
               f"with evidence/frontier.py). Marker colour: {rl or 'no amount-of-RL metric in these results'}.")
    return to_data_uri(fig), caption


def _phase_axis(frame: pd.DataFrame) -> str | None:
    """The sparsity axis: sparsity in bits where the tasks have it, else the summit distance."""
    for name in ("task.sparsity_bits", "task.summit_distance"):
        if name in frame.columns and frame[name].dropna().nunique() >= 2:
            return name
    return None


def axis_labels(frame: pd.DataFrame, y_axis: str, values) -> list[str]:
    """Tick labels for the sparsity axis: "≥ b" where b is only a lower bound (no uniform episode succeeded:
    the interval's high end is inf), else the value."""
    high = f"{y_axis}_high"
    bound = set()
    if high in frame.columns:
        bound = set(frame.loc[np.isinf(frame[high].astype(float)), y_axis].dropna())
    return [("≥ " if v in bound else "") + f"{v:.3g}" for v in values]


def phase_grid(runs: pd.DataFrame, y_axis: str, metric: str, how: str = "mean") -> pd.DataFrame:
    """One heatmap's cells: `how` ("mean" or "std") of `metric` over seeds, rows = y_axis values,
    columns = env-step budgets (NaN where a cell has no run with the metric)."""
    return runs.groupby([y_axis, BUDGET])[metric].agg(how).unstack(BUDGET)  # (Y, budgets)


def phase_heatmaps(wide: pd.DataFrame) -> Figure:
    """Heatmaps over (sparsity axis, PPO env-step budget) of success rate, exploit rate, walk among
    successes and the spread of success across seeds, one row per reward; drawn with >= 2 values on both."""
    ppo = wide[wide["method"] == ONLINE]
    cap = _first(ppo, CAPABILITY)
    y_axis = _phase_axis(ppo)
    if ppo.empty or cap is None or y_axis is None or BUDGET not in ppo or ppo[BUDGET].nunique() < 2:
        return None, ("Phase diagram skipped: it needs ppo runs with a capability metric at >= 2 env-step "
                      "budgets and >= 2 sparsities (or summit distances).")
    panels = [(cap, "success rate (seed mean)", "mean"), (EXPLOIT, "exploit rate (seed mean)", "mean"),
              (WALK, "walk among successes (seed mean)", "mean"), (cap, "spread of success across seeds (SD)", "std")]
    panels = [p for p in panels if p[0] in ppo.columns and ppo[p[0]].notna().any()]
    rewards = sorted(ppo["task.reward"].dropna().unique()) if "task.reward" in ppo.columns else [None]
    fig, axes = plt.subplots(len(rewards), len(panels), figsize=(3.8 * len(panels), 3.2 * len(rewards)),
                             squeeze=False)
    for r, reward in enumerate(rewards):
        sub = ppo if reward is None else ppo[ppo["task.reward"] == reward]
        for ax, (metric, title, how) in zip(axes[r], panels):
            grid = phase_grid(sub, y_axis, metric, how)
            image = ax.imshow(grid.to_numpy(float), origin="lower", aspect="auto", cmap="magma",
                              vmin=0.0, vmax=None if how == "std" else 1.0)
            ax.set_xticks(range(grid.shape[1]), [f"{b:.0e}" for b in grid.columns], rotation=30, fontsize=7)
            ax.set_yticks(range(grid.shape[0]), axis_labels(sub, y_axis, grid.index), fontsize=7)
            ax.set_xlabel("ppo env-step budget")
            ax.set_ylabel(y_axis)
            ax.set_title(title + (f", reward={reward}" if reward is not None else ""), fontsize=8)
            for (i, j), v in np.ndenumerate(grid.to_numpy(float)):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="#888")
            fig.colorbar(image, ax=ax)
    caption = (f"Phase diagram of ppo over ({y_axis}, env-step budget): {', '.join(p[1] for p in panels)}; "
               "one row per reward." + (" \"≥ b\": no uniform-random episode found the reward, so the sparsity is "
                                        "only bounded below (95% Wilson)." if y_axis == "task.sparsity_bits" else ""))
    return to_data_uri(fig), caption


def entropy_figure(wide: pd.DataFrame) -> Figure:
    """Exploit rate against mean action entropy, one point per run, coloured by recipe."""
    if ENTROPY not in wide.columns or EXPLOIT not in wide.columns or wide[ENTROPY].isna().all():
        return None, f"Exploit rate against action entropy skipped: the results lack {ENTROPY}."
    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    for recipe, frame in wide.groupby("method", sort=True):
        ax.scatter(frame[ENTROPY], frame[EXPLOIT], s=20, label=recipe)
    ax.set_xlabel("mean action entropy (nats)")
    ax.set_ylabel("exploit rate")
    ax.legend(fontsize=7)
    return to_data_uri(fig), ("Noise or intent: exploit rate against the policy's mean action entropy, one "
                              "point per run. Exploits that vanish as entropy falls are noise.")
