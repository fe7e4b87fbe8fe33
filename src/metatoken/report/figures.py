"""Report figures, drawn with matplotlib and embedded as PNG data URIs (no network)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # headless: the report is written, never shown
import matplotlib.pyplot as plt
import numpy as np

from metatoken.report.tables import ExperimentData
from metatoken.stats import bootstrap_ci


def to_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _grid(n: int, width: float = 4.6, height: float = 3.4):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def metric_bars(data: ExperimentData, metric: str, label: str) -> str | None:
    """IQM over seeds with a 95% stratified-bootstrap CI, one panel per task."""
    if metric not in data.values:
        return None
    fig, axes = _grid(len(data.tasks))
    for ax, task in zip(axes, data.tasks):
        stats = [bootstrap_ci([data.cell(metric, task, m)]) for m in data.methods]
        point = np.array([s[0] for s in stats])
        err = np.array([[p - lo, hi - p] for p, lo, hi in stats]).T  # (2, M)
        ax.bar(range(len(point)), point, yerr=np.nan_to_num(err), capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(point)), data.methods, rotation=30, ha="right")
        ax.set_title(task, fontsize=9)
        ax.set_ylabel(label)
    return to_data_uri(fig)


def controllability_curves(data: ExperimentData) -> str | None:
    """Achieved vs commanded return for conditioned methods (mean over seeds, ±1 s.d. band)."""
    cells = {k: v for k, v in data.rollouts.items()
             if v and not np.isnan(np.asarray(v[0]["target"], dtype=float)).all()}
    if not cells:
        return None
    fig, axes = _grid(len(data.tasks))
    for ax, task in zip(axes, data.tasks):
        lo, hi = np.inf, -np.inf
        for method in data.methods:
            runs = cells.get((task, method))
            if not runs:
                continue
            levels = np.unique(np.concatenate([r["target"] for r in runs]))
            per_seed = np.array([[r["return"][r["target"] == lv].mean() for lv in levels]
                                 for r in runs])  # (seeds, L)
            mean, sd = per_seed.mean(0), per_seed.std(0)
            ax.plot(levels, mean, marker="o", label=method)
            ax.fill_between(levels, mean - sd, mean + sd, alpha=0.2)
            lo, hi = min(lo, levels.min()), max(hi, levels.max())
        if np.isfinite(lo):
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="achieved = commanded")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("commanded return")
        ax.set_ylabel("achieved return")
        ax.legend(fontsize=7)
    return to_data_uri(fig)


AMOUNT_OF_RL = {
    "ledger/reward_queries": "reward queries (online RL)",
    "ledger/kl_to_reference_nats": "KL(π ‖ π_ref), nats per episode",
}


def capability_vs_rl(data: ExperimentData, x_metric: str = "ledger/reward_queries") -> str | None:
    """Capability against one measure of the amount of RL (a ledger entry), one point per run."""
    y_metric = "capability/normalized_return"
    xs = np.concatenate([np.asarray(v, float) for v in data.values.get(x_metric, {}).values()] or [[]])
    if y_metric not in data.values or not np.isfinite(xs).any():
        return None
    fig, axes = _grid(len(data.tasks))
    for ax, task in zip(axes, data.tasks):
        x_min, x_max = -0.5, 1.0
        for method in data.methods:
            x, y = data.cell(x_metric, task, method), data.cell(y_metric, task, method)
            if len(x) and len(x) == len(y):
                ax.scatter(x, y, label=method, s=22)
                if np.isfinite(x).any():  # a KL estimate can dip below 0 by sampling noise
                    x_min, x_max = min(x_min, 2 * float(np.nanmin(x))), max(x_max, float(np.nanmax(x)))
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(x_min, x_max * 2)
        ax.set_xlabel(AMOUNT_OF_RL[x_metric])
        ax.set_ylabel("normalised return")
        ax.set_title(task, fontsize=9)
        ax.legend(fontsize=7)
    return to_data_uri(fig)
