"""The report's text-lab section: every number from results.parquet, every curve from the world's exact targets.

Figures (PNG data URIs): the reward-KL frontier per recipe with the exact frontiers of the
tilt (beta sweep) and the mixture equilibrium (lambda sweep) drawn beneath; each recipe's
distance from its own target; diversity (entropy) against reward; proxy against true
reward. Points are IQMs over seeds with 95% stratified-bootstrap intervals (`stats.bootstrap_ci`).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from metatoken.experiments.results import current_run_dirs
from metatoken.report.figures import to_data_uri
from metatoken.report.tables import ExperimentData
from metatoken.stats import bootstrap_ci

TABLE = [
    ("text/reward_proxy", "proxy reward"),
    ("text/reward_true", "true reward"),
    ("text/kl_p0", "KL(π‖p0)"),
    ("text/kl_target", "KL(π‖target)"),
    ("text/kl_target_reverse", "KL(target‖π)"),
    ("text/tv_target", "TV to target"),
    ("text/target_reward_proxy", "target's proxy reward"),
    ("text/target_kl_p0", "target's KL(·‖p0)"),
    ("text/entropy", "entropy"),
    ("text/distinct_2", "distinct-2"),
    ("text/kl_k1", "k1 (sampled)"),
    ("text/kl_k3", "k3 (sampled)"),
    ("text/kl_k1_negative", "k1 < 0 (share)"),
    ("ledger/reward_grad_share", "reward-gradient share"),
    ("ledger/reward_queries", "online reward queries"),
    ("ledger/offline_reward_labels", "offline reward labels"),
    ("text/exact_metrics_s", "exact metrics (s)"),
    ("text/run_wall_s", "run wall time (s)"),
]
FRONTIER_BETAS = np.geomspace(0.03, 5.0, 40)
FRONTIER_LAMS = np.geomspace(0.05, 60.0, 40)


def _ci(values: np.ndarray) -> tuple[float, float, float]:
    values = np.asarray(values, float)
    if np.isinf(values).any():  # KL to a target with holes (filtering's) is infinite for a softmax policy
        return (float("inf"),) * 3
    return bootstrap_ci([values])


def _fmt(values: np.ndarray) -> str:
    point, lo, hi = _ci(values)
    if math.isnan(point):
        return "—"
    if math.isinf(point):
        return "∞"
    return f"{point:.3g} <span class='ci'>[{lo:.3g}, {hi:.3g}]</span>"


def is_text_experiment(data: ExperimentData) -> bool:
    """True when the results hold text-lab metrics."""
    return "text/kl_p0" in data.values


def _targets(out_dir: Path, data: ExperimentData) -> dict[str, str]:
    """Each method's declared target, read from its first complete run directory."""
    from metatoken.text.integration import TARGET_FILE

    out = {}
    for run_dir in current_run_dirs(out_dir):
        name = run_dir.read_spec()["method_name"]
        if name not in out and (run_dir.path / TARGET_FILE).is_file():
            out[name] = (run_dir.path / TARGET_FILE).read_text().strip()
    return out


def exact_frontiers(task_options: dict) -> dict[str, np.ndarray] | None:
    """(KL(target || p0), proxy, true, entropy) along the beta and lambda sweeps, or None when not enumerable."""
    from metatoken.text.experiment import task_options as parse
    from metatoken.text.targets import mixture_equilibrium, tilted
    from metatoken.text.world import make_world

    opts = parse(task_options)
    world = make_world(opts.world, seed=opts.world_seed)
    if not world.enumerable:
        return None
    x, logp0 = world.support()
    r = world.reward(opts.reward, x)
    proxy, true = world.reward("proxy", x), world.reward("true", x)
    out = {}
    for name, logs in (("tilt", [tilted(logp0, r, b) for b in FRONTIER_BETAS]),
                       ("mixture", [mixture_equilibrium(logp0, r, lam) for lam in FRONTIER_LAMS])):
        ps = [np.exp(lg) for lg in logs]
        out[name] = np.array([[p @ (lg - logp0), p @ r, p @ proxy, p @ true, -(p @ lg)] for p, lg in zip(ps, logs)])
    out["reward"] = opts.reward
    return out


def frontier_kl(task_options: dict, reward_value: float) -> float:
    """The least KL(π‖p0) of any π with E_π r = reward_value: KL of the tilt π*_β that attains it (bisection in β).

    The tilt is the I-projection of p0 onto {E_π r = c}, so a recipe's KL above this value at its
    own achieved reward is what it pays beyond the frontier. NaN outside (E_p0 r, r_max).
    """
    from metatoken.text.experiment import task_options as parse
    from metatoken.text.targets import tilted
    from metatoken.text.world import make_world

    opts = parse(task_options)
    world = make_world(opts.world, seed=opts.world_seed)
    x, logp0 = world.support()
    r = world.reward(opts.reward, x)
    if not np.exp(logp0) @ r < reward_value < r.max():
        return float("nan")
    lo, hi = np.log(1e-4), np.log(1e4)  # log beta; E r falls as beta rises
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lt = tilted(logp0, r, np.exp(mid))
        lo, hi = (mid, hi) if np.exp(lt) @ r > reward_value else (lo, mid)
    lt = tilted(logp0, r, np.exp(0.5 * (lo + hi)))
    return float(np.exp(lt) @ (lt - logp0))


def excess_kl(data: ExperimentData, task: str, method: str, task_options: dict) -> np.ndarray:
    """Per seed: KL(π‖p0) minus the frontier's least KL at the reward that seed reached."""
    reward = parse_reward(task_options)
    kl, rew = data.cell("text/kl_p0", task, method), data.cell(f"text/reward_{reward}", task, method)
    return np.array([k - frontier_kl(task_options, v) for k, v in zip(kl, rew)])


def parse_reward(task_options: dict) -> str:
    from metatoken.text.experiment import task_options as parse

    return parse(task_options).reward


def _points(ax, data: ExperimentData, task: str, xm: str, ym: str) -> None:
    for i, method in enumerate(data.methods):
        x, y = data.cell(xm, task, method), data.cell(ym, task, method)
        if not len(x) or not len(y):
            continue
        (px, lx, hx), (py, ly, hy) = _ci(x), _ci(y)
        color, marker = plt.cm.tab20(i % 20), "osD^v<>p"[i % 8]  # 12+ recipes: colour and marker both vary
        ax.errorbar([px], [py], xerr=[[px - lx], [hx - px]], yerr=[[py - ly], [hy - py]], fmt=marker,
                    color=color, capsize=3, label=method)
        ax.scatter(x, y, color=color, marker=marker, s=8, alpha=0.4)


def frontier_figure(data: ExperimentData, task: str, frontiers) -> str:
    """Reward against exact KL(π‖p0) per recipe, over the exact tilt and mixture frontiers."""
    reward = frontiers["reward"] if frontiers else "proxy"
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if frontiers:
        ax.plot(frontiers["tilt"][:, 0], frontiers["tilt"][:, 1], "k-", lw=1, label="π*_β (β sweep)")
        ax.plot(frontiers["mixture"][:, 0], frontiers["mixture"][:, 1], "k--", lw=1, label="π_λ (λ sweep)")
    _points(ax, data, task, "text/kl_p0", f"text/reward_{reward}")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("KL(π ‖ p0), nats (exact)")
    ax.set_ylabel(f"E_π {reward} reward (exact)")
    ax.set_title(task, fontsize=9)
    ax.legend(fontsize=7)
    return to_data_uri(fig)


def target_distance_figure(data: ExperimentData, task: str) -> str:
    """TV distance and KL(target‖π) from each recipe's own target (IQM, 95% CI)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric, label in ((axes[0], "text/tv_target", "total variation to own target"),
                              (axes[1], "text/kl_target_reverse", "KL(target ‖ π), nats")):
        stats = [_ci(data.cell(metric, task, m)) for m in data.methods]
        point = np.array([s[0] for s in stats])
        err = np.nan_to_num(np.array([[p - lo, hi - p] for p, lo, hi in stats]).T)
        ax.bar(range(len(point)), point, yerr=err, capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(point)), data.methods, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(label)
        ax.set_yscale("log")
    fig.suptitle(task, fontsize=9)
    return to_data_uri(fig)


def scatter_figure(data: ExperimentData, task: str, xm: str, ym: str, xl: str, yl: str, frontiers=None,
                   cols: tuple[int, int] | None = None) -> str:
    """One point per recipe (IQM with intervals), seeds faint, optional exact curves beneath."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if frontiers and cols:
        ax.plot(frontiers["tilt"][:, cols[0]], frontiers["tilt"][:, cols[1]], "k-", lw=1, label="π*_β (β sweep)")
        ax.plot(frontiers["mixture"][:, cols[0]], frontiers["mixture"][:, cols[1]], "k--", lw=1,
                label="π_λ (λ sweep)")
    _points(ax, data, task, xm, ym)
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(task, fontsize=9)
    ax.legend(fontsize=7)
    return to_data_uri(fig)


def _table(data: ExperimentData, task: str, targets: dict[str, str], options: dict) -> str:
    metrics = [(m, label) for m, label in TABLE if m in data.values]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in metrics)
    enumerable = exact_frontiers(options) is not None
    if enumerable:
        head = "<th>KL above the frontier at its reward</th>" + head
    rows = []
    for method in data.methods:
        n = len(data.cell("text/kl_p0", task, method))
        cells = "".join(f"<td>{_fmt(data.cell(m, task, method))}</td>" for m, _ in metrics)
        if enumerable:
            cells = f"<td>{_fmt(excess_kl(data, task, method, options))}</td>" + cells
        rows.append(f"<tr><td class='l'>{html.escape(method)}</td><td class='l'>"
                    f"{html.escape(targets.get(method, '?'))}</td><td>{n}</td>{cells}</tr>")
    return (f"<table><tr><th class='l'>recipe</th><th class='l'>own target</th><th>seeds</th>{head}</tr>"
            + "".join(rows) + "</table>")


def _fig(uri: str, caption: str) -> str:
    text = html.escape(caption)
    return f"<figure><img src='{uri}' alt='{text}'><figcaption>{text}</figcaption></figure>"


def text_section(data: ExperimentData, out_dir: Path) -> str:
    """The text-lab section of the report (HTML), or '' when the experiment has no text runs."""
    if not is_text_experiment(data):
        return ""
    targets = _targets(Path(out_dir), data)
    parts = ["<h2>Text lab: recipes against their exact targets</h2>",
             ("<p>Every recipe fine-tunes the same pretrained model on the same world and budget. Metrics "
              "are exact sums over the enumerated support; the sampled KL estimators k1 and k3 are shown "
              "beside the exact KL. Cells: IQM over seeds [95% bootstrap CI].</p>")]
    for task, tspec in zip(data.tasks, data.spec["tasks"]):
        frontiers = exact_frontiers(tspec.get("options", {}))
        parts.append(f"<h3>{html.escape(task)}</h3>" + _table(data, task, targets, tspec.get("options", {})))
        parts.append(_fig(frontier_figure(data, task, frontiers),
                          "Reward against KL(π‖p0): each recipe's IQM with 95% CIs (seeds faint); "
                          "solid: the exact KL-regularised optimum π*_β, dashed: the mixture equilibrium π_λ."))
        parts.append(_fig(target_distance_figure(data, task),
                          "Does training reach its equilibrium? Distance of each recipe from its own exact target."))
        parts.append(_fig(scatter_figure(data, task, "text/reward_proxy", "text/entropy", "E_π proxy reward",
                                         "entropy of π (nats)", frontiers, (2, 4)),
                          "Diversity against reward: entropy of the whole distribution (exact)."))
        parts.append(_fig(scatter_figure(data, task, "text/reward_proxy", "text/reward_true", "E_π proxy reward",
                                         "E_π true reward", frontiers, (2, 3)),
                          "Proxy against true reward: the proxy pays for repeated words, the true reward does not."))
    return "\n".join(parts)


def text_page(data: ExperimentData, out_dir: Path) -> str:
    """report.html for a text experiment: header, failed runs, the text section."""
    from metatoken.report.html import STYLE

    parts = [f"<h1>metatoken report: {html.escape(data.name)}</h1>",
             (f"<p>Recipes: {', '.join(map(html.escape, data.methods))}. Seeds: {data.spec['seeds']}. "
              f"Budgets: {html.escape(str(data.spec['budgets']))}.</p>")]
    if data.failures:
        items = "".join(f"<li><b>{html.escape(r)}</b>: {html.escape(e)}</li>" for r, e in data.failures)
        parts.append(f"<h2 class='fail'>Failed runs</h2><ul class='fail'>{items}</ul>")
    parts.append(text_section(data, out_dir))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>metatoken: {html.escape(data.name)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
