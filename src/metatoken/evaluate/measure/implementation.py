"""Implementation measures: what episodes did, from the audit's per-episode labels
(`info["implementation"]` on each episode's terminal step: walk, hop, crawl, launch, fall, stand, other).

Pure functions over lists of label strings; definitions in docs/MEASUREMENTS.md ("implementations").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from metatoken.evaluate.measure import measurement
from metatoken.evaluate.measure.capability import top_episodes
from metatoken.evaluate.measure.distribution import entropy_bits

REFERENCE_IMPLEMENTATION = "walk"  # what the reference data's episodes are labelled


def implementation_shares(labels: Sequence[str], mask: Sequence[bool] | None = None) -> dict[str, float]:
    """Share of each implementation label among the episodes (those where `mask` is true, if given)."""
    labels = list(labels)
    if mask is not None:
        labels = [lab for lab, keep in zip(labels, mask, strict=True) if keep]
    if not labels:
        return {}
    counts = Counter(labels)
    return {lab: counts[lab] / len(labels) for lab in sorted(counts)}


def reference_share(labels: Sequence[str], success: Sequence[bool],
                    reference: str = REFERENCE_IMPLEMENTATION) -> float:
    """"Looks like the reference": the share of `reference` (walk) among successful episodes; NaN if none succeeded."""
    return implementation_shares(labels, success).get(reference, 0.0) if any(success) else float("nan")


def label_entropy(labels: Sequence[str]) -> float:
    """Entropy in bits of the label distribution; 0 when every episode has one label."""
    counts = np.array(list(Counter(labels).values()), float)
    return entropy_bits(counts) if len(counts) else float("nan")


def implementation_spread(labels_per_seed: Sequence[Sequence[str]]) -> dict[str, float]:
    """How differently seeds solve the task, in bits:
    `pooled` H(label) over all seeds' episodes, `within` the mean over seeds of H(label | seed),
    `between` = pooled - within = I(seed; label) (seeds weighted equally), which is 0 when every seed
    has the same label shares and log2(#seeds) at most; and `modal` the entropy of the seeds' most
    common labels (ties go to the alphabetically first)."""
    seeds = [list(s) for s in labels_per_seed if len(s)]
    if not seeds:
        return {"pooled": float("nan"), "within": float("nan"), "between": float("nan"), "modal": float("nan")}
    names = sorted({lab for s in seeds for lab in s})
    shares = np.array([[Counter(s)[n] / len(s) for n in names] for s in seeds])  # (S, L)
    pooled = entropy_bits(shares.mean(0))
    within = float(np.mean([entropy_bits(row) for row in shares]))
    modal = [names[int(np.argmax(row))] for row in shares]
    return {"pooled": pooled, "within": within, "between": max(pooled - within, 0.0),
            "modal": label_entropy(modal)}


def successes(rollouts) -> np.ndarray | None:
    """(E,) bool: the episode reached its goal, i.e. the env ended it (not a time limit) and the audit
    did not label it a `fall` (on Mountain-v1 an episode terminates only at the summit or on a fall);
    None when the rollouts did not record how episodes ended."""
    if rollouts.terminated is None:
        return None
    return np.asarray(rollouts.terminated, bool) & (np.asarray(rollouts.implementations, dtype=object) != "fall")


IMPLEMENTATION_METRICS = ("implementation/success_rate", "implementation/walk_among_successes")


@measurement("implementation")
def implementation(rollouts, task, dataset) -> dict[str, float]:
    """Implementation shares among the successful episodes capability is computed on, and `walk` among them.

    `implementation/<label>` = share of each audit label among the successful episodes (every
    label seen in this evaluation gets a column, 0 where no success had it);
    `implementation/walk_among_successes` = "looks like the reference"; `implementation/success_rate`
    = successful share of those episodes. NaN (not measured) when the env labels no implementation.
    """
    if not any(rollouts.implementations) or rollouts.terminated is None:
        return dict.fromkeys(IMPLEMENTATION_METRICS, float("nan"))
    top = top_episodes(rollouts, dataset)  # (E,)
    won = successes(rollouts) & top
    labels = [lab for lab, keep in zip(rollouts.implementations, top) if keep]
    shares = implementation_shares(rollouts.implementations, won)
    out = {f"implementation/{lab}": shares.get(lab, 0.0) if won.any() else float("nan")
           for lab in sorted(set(labels) | set(shares))}
    out["implementation/success_rate"] = float(won.sum() / top.sum())
    out["implementation/walk_among_successes"] = reference_share(rollouts.implementations, won)
    return out
