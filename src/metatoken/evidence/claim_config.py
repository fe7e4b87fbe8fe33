"""What the claims read: column names, method groups and thresholds, and small shared helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metatoken.evidence.verdict import ClaimResult, Part, untestable

NAN = float("nan")


@dataclass(frozen=True)
class ClaimConfig:
    """Which columns, methods and thresholds the claims read (defaults documented in docs/CLAIMS.md)."""

    method: str = "method"
    task: str = "task"
    reward: str = "task.reward"
    sparse_reward: str = "sparse"
    distance: str = "task.summit_distance"
    sparsity: str = "task.sparsity_bits"
    budget: str = "budget.env_steps"
    capability: str = "capability/intended"
    found: str = "capability/return"  # under a sparse reward that pays 1 once: the share of episodes that found it
    exploit: str = "spookiness/exploit_rate"
    implementation_prefix: str = "implementation/"  # per-run label shares among successful episodes
    # columns under the prefix that are not label shares (the implementation measurement's summaries)
    implementation_summaries: frozenset[str] = frozenset(
        {"implementation/success_rate", "implementation/walk_among_successes"})
    # the task's own success rate of a run: the first of these it reports (C2). On Mountain-v1 the audit's
    # summit-reached share (under the sparse reward: the share of episodes paid); tasks without an
    # implementation audit fall back to the return on the reference data's scale
    success: tuple[str, ...] = ("implementation/success_rate", "capability/normalized_return")
    # C7's equilibrium: what the mixture's RL term pulls on is the task's reward, not the audit's intended measure
    # (on a task with an exploit the two part ways, and "monotone in lambda" would then mix C7 with exploiting)
    equilibrium: str = "capability/normalized_return"
    off_reference: str = "distribution/mmd"
    rl_amount: str = "ledger/kl_to_reference_nats"
    controllability: str = "controllability/spearman"
    variance_ratio: str = "charts/grad_variance_ratio"
    drift: str = "training/equilibrium_drift"
    online: frozenset[str] = frozenset({"ppo"})
    imitation: frozenset[str] = frozenset({"bc", "condition", "condition-mlp", "filtered-bc"})
    offline_rl: frozenset[str] = frozenset({"iql", "cql"})
    predictor: frozenset[str] = frozenset({"condition", "condition-mlp"})
    finetune: frozenset[str] = frozenset({"kl-finetune"})
    mixture: str = "mixture"
    rl_as_sl: str = "rl-as-sl"
    supervised: str = "bc"
    knobs: dict[str, str] = field(default_factory=lambda: {
        "ppo": "budget.env_steps", "kl-finetune": "hp.beta", "mixture": "hp.lam", "filtered-bc": "hp.fraction"})
    success_threshold: float = 0.5  # a run "succeeds" (C2) when its task-own success rate reaches this
    stop_rate: float = 0.05  # "stops finding the reward": found-rate interval below this
    controllable_rho: float = 0.5
    equivalence_margin: float = 0.1
    drift_tolerance: float = 0.05
    match_tolerance: float = 0.05  # a recipe with one knob value counts as matched within +- this capability
    reps: int = 1000
    seed: int = 0


def missing(wide: pd.DataFrame, columns: list[str]) -> Part | None:
    """An inconclusive part naming the columns the results lack, or None when all are there."""
    gone = [c for c in columns if c not in wide.columns]
    return untestable(f"the results lack column(s) {', '.join(gone)}") if gone else None


def success_rate(wide: pd.DataFrame, cfg: ClaimConfig) -> pd.Series | None:
    """Each run's task-own success rate: its first non-NaN column of `cfg.success`; None when the results
    have none of them."""
    present = [c for c in cfg.success if c in wide.columns]
    if not present:
        return None
    return wide[present].bfill(axis=1).iloc[:, 0].astype(float)


def label_columns(wide: pd.DataFrame, cfg: ClaimConfig) -> list[str]:
    """The implementation label-share columns (`implementation/<label>`, the summaries left out)."""
    return [c for c in wide.columns if c.startswith(cfg.implementation_prefix)
            and c not in cfg.implementation_summaries]


def col(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The runs' values of `cols` as floats."""
    return frame[cols].to_numpy(float)  # (runs, len(cols))


def row(claim: str, statement: str, evidence: str, est: tuple[float, float, float], part: Part) -> ClaimResult:
    """A claims-table row from an (estimate, low, high) triple and the verdict part."""
    return ClaimResult(claim, statement, evidence, *est, part.verdict, part.reason)




def recipe_cells(frame: pd.DataFrame, method: str, cfg: ClaimConfig, cols: list[str]) -> list[np.ndarray]:
    """One recipe's runs that have every one of `cols`, split by its knob (one cell per knob value; one
    cell when it has no knob column or the knob never moved), each cell's rows = seeds, columns = `cols`.
    Empty when no run has them all."""
    frame = frame.dropna(subset=cols)  # a run that lacks one of the metrics cannot be placed on the frontier
    if frame.empty:
        return []
    knob = cfg.knobs.get(method)
    if knob is None or knob not in frame.columns or frame[knob].nunique(dropna=True) < 2:
        return [col(frame, cols)]
    return [col(g, cols) for _, g in frame.groupby(knob, sort=True, dropna=False)]
