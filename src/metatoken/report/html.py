"""report.html: one self-contained page (figures inline, no scripts or styles fetched).

Every number comes from results.parquet and the runs' rollouts; each is shown as an IQM
over seeds with its 95% stratified-bootstrap confidence interval.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from metatoken.experiments import rundir
from metatoken.report import evidence, evidence_figures, figures, filmstrips
from metatoken.report.tables import ExperimentData, load_experiment
from metatoken.stats import bootstrap_ci

SUMMARY = [
    ("capability/normalized_return", "capability (normalised return)"),
    ("capability/intended", "intended performance"),
    ("controllability/spearman", "controllability (Spearman ρ)"),
    ("spookiness/exploit_rate", "exploit rate"),
    ("ledger/online_env_steps", "online env steps"),
    ("ledger/reward_update_share", "reward update share"),
    ("ledger/kl_update_share", "KL-penalty update share"),
]

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left} img{max-width:100%}
.ci{color:#777;font-size:.8em} .fail{color:#b00}
.verdict-supported{color:#060;font-weight:600} .verdict-contradicted{color:#b00;font-weight:600}
"""


def _fmt(metric_values) -> str:
    point, lo, hi = bootstrap_ci([metric_values])
    if math.isnan(point):  # not applicable to this method
        return "—"
    return f"{point:.3g} <span class='ci'>[{lo:.3g}, {hi:.3g}]</span>"


def _table(data: ExperimentData, task: str, metrics: list[tuple[str, str]]) -> str:
    metrics = [(m, label) for m, label in metrics if m in data.values]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in metrics)
    rows = []
    for method in data.methods:
        n = len(data.cell(metrics[0][0], task, method)) if metrics else 0
        cells = "".join(f"<td>{_fmt(data.cell(m, task, method))}</td>" for m, _ in metrics)
        rows.append(f"<tr><td class='l'>{html.escape(method)}</td><td>{n}</td>{cells}</tr>")
    return (f"<table><tr><th class='l'>method</th><th>seeds</th>{head}</tr>"
            + "".join(rows) + "</table>")


def _metric_rows(data: ExperimentData, task: str) -> str:
    """Every metric as a row, methods as columns (the long table, pivoted for reading)."""
    head = "".join(f"<th>{html.escape(m)}</th>" for m in data.methods)
    rows = [
        f"<tr><td class='l'>{html.escape(metric)}</td>"
        + "".join(f"<td>{_fmt(data.cell(metric, task, m))}</td>" for m in data.methods) + "</tr>"
        for metric in sorted(data.values)
    ]
    return f"<table><tr><th class='l'>metric</th>{head}</tr>" + "".join(rows) + "</table>"


def _figure(uri: str | None, caption: str) -> str:
    if uri is None:
        return ""
    text = html.escape(caption)
    return f"<figure><img src='{uri}' alt='{text}'><figcaption>{text}</figcaption></figure>"


def _evidence_figure(drawn: tuple[str | None, str]) -> str:
    """A figure, or the one-line note saying why its inputs are absent."""
    uri, caption = drawn
    if uri is None:
        return f"<p class='ci'>{html.escape(caption)}</p>"
    text = html.escape(caption)
    return f"<figure><img src='{uri}' alt='{text}'><figcaption>{text}</figcaption></figure>"


def render(data: ExperimentData, claims: list[dict] | None = None, runs=None) -> str:
    """The report page: summary, claims, comparisons, figures, filmstrips and every metric."""
    spec = data.spec
    parts = [
        f"<h1>metatoken report: {html.escape(data.name)}</h1>",
        ("<p>Question: does reducing the amount of RL for a given capability level make a system "
         "safer? Each cell is the interquartile mean over seeds with its 95% stratified-bootstrap "
         "confidence interval.</p>"),
        (f"<p>Tasks: {', '.join(map(html.escape, data.tasks))}. Methods: "
         f"{', '.join(map(html.escape, data.methods))}. Seeds: {spec['seeds']}. "
         f"Budgets: {html.escape(str(spec['budgets']))}.</p>"),
    ]
    if data.failures:
        items = "".join(f"<li><b>{html.escape(r)}</b>: {html.escape(e)}</li>" for r, e in data.failures)
        parts.append(f"<h2 class='fail'>Failed runs</h2><ul class='fail'>{items}</ul>")
    parts.append("<h2>Summary</h2>")
    for task in data.tasks:
        parts.append(f"<h3>{html.escape(task)}</h3>" + _table(data, task, SUMMARY))
    parts += [
        "<h2>Claims</h2>",
        evidence.claims_section(claims),
        "<h2>Probability of improvement</h2>",
        evidence.poi_section(data),
        "<h2>Spookiness at matched capability</h2>",
        *(("<p class='ci'>No per-run table was given to the report.</p>",) if runs is None else (
            _evidence_figure(evidence_figures.matched_capability_figure(runs)),
            "<h2>Phase diagram</h2>",
            _evidence_figure(evidence_figures.phase_heatmaps(runs)),
            "<h2>Noise or intent</h2>",
            _evidence_figure(evidence_figures.entropy_figure(runs)))),
        "<h2>Capability</h2>",
        _figure(figures.metric_bars(data, "capability/normalized_return", "normalised return"),
                "Capability: normalised return at the top commanded level (IQM, 95% CI)."),
        _figure(figures.metric_bars(data, "capability/intended", "intended performance"),
                "Intended performance from the audit (IQM, 95% CI)."),
        "<h2>Controllability</h2>",
        _figure(figures.controllability_curves(data),
                "Achieved vs commanded return for conditioned methods."),
        "<h2>Capability against the amount of RL</h2>",
        _figure(figures.capability_vs_rl(data, "ledger/reward_queries"),
                "Online reward queries the optimiser saw; each point is one run."),
        _figure(figures.capability_vs_rl(data, "ledger/kl_to_reference_nats"),
                "Bits of selection: KL from the reference bc policy on evaluation episodes; "
                "each point is one run."),
        "<h2>What the policies do</h2>",
        ("<p>One evaluation episode per method (the lowest seed, top commanded level), beside the "
         "task's best-skill reference behaviour: frames spread over the episode, with its length, "
         "return and the audit's implementation label.</p>"),
        *(filmstrips.section(data, task) for task in data.tasks),
        "<h2>All metrics</h2>",
    ]
    for task in data.tasks:
        parts.append(f"<h3>{html.escape(task)}</h3>" + _metric_rows(data, task))
    body = "\n".join(p for p in parts if p)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>metatoken: "
            f"{html.escape(data.name)}</title><style>{STYLE}</style></head><body>{body}</body></html>")


def write_report(out_dir: Path) -> Path:
    """Render out_dir/report.html from out_dir/results.parquet and the run directories."""
    from metatoken.report.text import is_text_experiment, text_page

    path = rundir.ExperimentDir(Path(out_dir)).report
    data = load_experiment(out_dir)
    page = text_page(data, Path(out_dir)) if is_text_experiment(data) else \
        render(data, evidence.load_claims(out_dir), evidence_figures.runs_table(out_dir))
    with rundir.atomic_file(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
