"""The claims table: C1-C9, each computed from the tidy results table with a written verdict rule.

`claims_table(results)` -> one `ClaimResult` per claim; `claims_json(results)` -> the dict written as
`claims.json`. `results` is the long table (task, method, seed, metric, value) plus run metadata
columns (`task.reward`, `budget.env_steps`, `hp.beta`, ...). The columns each claim needs and the
rules are in docs/CLAIMS.md; no verdict is written by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from metatoken.evidence.claim_config import ClaimConfig
from metatoken.evidence.claims_matched import c4, c6, c9
from metatoken.evidence.claims_recipes import c5, c7, c8
from metatoken.evidence.claims_rl import c1, c2, c3
from metatoken.evidence.frontier import wide_runs
from metatoken.evidence.verdict import ClaimResult

CLAIMS: dict[str, Callable[[pd.DataFrame, ClaimConfig], ClaimResult]] = {
    "C1": c1, "C2": c2, "C3": c3, "C4": c4, "C5": c5, "C6": c6, "C7": c7, "C8": c8, "C9": c9,
}


def claims_table(results: pd.DataFrame, config: ClaimConfig | None = None) -> list[ClaimResult]:
    """Every claim, C1-C9, evaluated on the tidy results table."""
    config = config or ClaimConfig()
    wide = wide_runs(results)
    return [fn(wide, config) for fn in CLAIMS.values()]


def claims_json(results: pd.DataFrame, config: ClaimConfig | None = None) -> dict:
    """The content of `claims.json`: {"claims": [row, ...]} with NaN written as null."""
    return {"claims": [r.as_dict() for r in claims_table(results, config)]}
