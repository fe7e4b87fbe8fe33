"""Implementation measures: what episodes did, from the audit's per-episode labels
(`info["implementation"]` on each episode's terminal step: walk, hop, crawl, launch, fall, stand, other).

Pure functions over lists of label strings; definitions in docs/MEASUREMENTS.md ("implementations").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

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
