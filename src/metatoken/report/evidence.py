"""Report sections for the evidence: the claims table (from claims.json) and probability of improvement.

Nothing here decides a verdict: the claims table shows `claims.json` as the results step wrote it
(evidence/claims.py, rules in docs/CLAIMS.md); probability of improvement is `stats.py`'s.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from metatoken.experiments import rundir
from metatoken.report.tables import ExperimentData
from metatoken.stats import probability_of_improvement

CAPABILITY_METRICS = ("capability/intended", "capability/normalized_return")  # first present is compared
POI_REPS = 1000  # bootstrap resamples per pair: the table has M(M-1) cells per task
POI_MAX_METHODS = 12  # beyond this the pairwise table is unreadable (and slow): skipped with a note


def load_claims(out_dir: Path) -> list[dict] | None:
    """The rows of out_dir/claims.json, or None when the experiment has none."""
    path = rundir.ExperimentDir(Path(out_dir)).claims
    if not path.is_file():
        return None
    return json.loads(path.read_text())["claims"]


def _num(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def claims_section(rows: list[dict] | None) -> str:
    """The claims table, C1-C9: evidence, estimate with its 95% interval, verdict and reason."""
    if rows is None:
        return "<p>No claims.json in this experiment directory (written by the results step).</p>"
    body = "".join(
        f"<tr><td class='l'><b>{html.escape(r['claim'])}</b> {html.escape(r['statement'])}</td>"
        f"<td class='l'>{html.escape(r['evidence'])}</td>"
        f"<td>{_num(r['estimate'])} <span class='ci'>[{_num(r['ci_low'])}, {_num(r['ci_high'])}]</span></td>"
        f"<td class='l verdict-{html.escape(r['verdict'])}'>{html.escape(r['verdict'])}</td>"
        f"<td class='l'>{html.escape(r['reason'])}</td></tr>"
        for r in rows)
    return ("<p>Each verdict is computed from the runs by the rule in docs/CLAIMS.md; intervals are 95% "
            "bootstrap intervals over seeds. A claim this experiment cannot test is inconclusive, and "
            "the reason says what is missing.</p><table><tr><th class='l'>claim</th><th class='l'>evidence</th>"
            f"<th>estimate [95% CI]</th><th class='l'>verdict</th><th class='l'>reason</th></tr>{body}</table>")


def poi_matrix(data: ExperimentData, task: str, metric: str) -> np.ndarray:
    """P(row method's run > column method's run) on `metric` for one task; (M, M, 3) point, low, high,
    NaN on the diagonal and where either side has no runs."""
    m = len(data.methods)
    out = np.full((m, m, 3), np.nan)
    for i, a in enumerate(data.methods):
        for j, b in enumerate(data.methods):
            if i != j:
                out[i, j] = probability_of_improvement(data.cell(metric, task, a), data.cell(metric, task, b),
                                                       reps=POI_REPS)
    return out


def poi_section(data: ExperimentData) -> str:
    """Per task, a table of probability of improvement in capability between every pair of methods."""
    metric = next((m for m in CAPABILITY_METRICS if m in data.values), None)
    if metric is None:
        return "<p>Probability of improvement skipped: the results hold no capability metric.</p>"
    if len(data.methods) > POI_MAX_METHODS:
        return (f"<p>Probability of improvement skipped: {len(data.methods)} methods "
                f"(more than {POI_MAX_METHODS}) make the pairwise table unreadable.</p>")
    parts = [(f"<p>P(a run of the row's method scores higher {html.escape(metric)} than a run of the "
             "column's), ties counting one half, with its 95% stratified-bootstrap interval; 0.5 is no "
             "difference.</p>")]
    head = "".join(f"<th>{html.escape(m)}</th>" for m in data.methods)
    for task in data.tasks:
        cube = poi_matrix(data, task, metric)
        rows = "".join(
            f"<tr><td class='l'>{html.escape(a)}</td>" + "".join(
                "<td>—</td>" if math.isnan(p) else f"<td>{p:.2f} <span class='ci'>[{lo:.2f}, {hi:.2f}]</span></td>"
                for p, lo, hi in cube[i]) + "</tr>"
            for i, a in enumerate(data.methods))
        parts.append(f"<h3>{html.escape(task)}</h3><table><tr><th class='l'>row &gt; column</th>{head}</tr>"
                     f"{rows}</table>")
    return "".join(parts)
