"""bootstrap_ci's batched resampling gives exactly the intervals of one resample at a time."""

import numpy as np
import pytest

from metatoken.stats import bootstrap_ci, iqm


def one_at_a_time(groups, stat, reps, seed):
    """The plain stratified bootstrap: each resample drawn group by group, the statistic per resample."""
    rng = np.random.default_rng(seed)
    samples = [stat(np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])) for _ in range(reps)]
    lo, hi = np.quantile(samples, [0.025, 0.975])
    return float(stat(np.concatenate(groups))), float(lo), float(hi)


@pytest.mark.parametrize("stat", [iqm, np.mean, np.median])
@pytest.mark.parametrize("sizes", [[1], [5], [32], [7, 3], [4, 9, 2]])
def test_batched_bootstrap_equals_one_resample_at_a_time(stat, sizes):
    rng = np.random.default_rng(len(sizes) * 100 + sum(sizes))
    groups = [rng.normal(size=n) * 10.0 ** rng.integers(-3, 4) for n in sizes]
    assert bootstrap_ci(groups, stat=stat, reps=300, seed=7) == one_at_a_time(groups, stat, 300, 7)


def test_interval_brackets_the_iqm_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=8), rng.normal(size=800)
    p, lo, hi = bootstrap_ci([small])
    assert lo <= p <= hi
    _, lo_l, hi_l = bootstrap_ci([large])
    assert hi_l - lo_l < (hi - lo) / 3
