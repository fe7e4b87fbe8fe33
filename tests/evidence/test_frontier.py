import numpy as np
import pandas as pd
import pytest

from metatoken.errors import UserError
from metatoken.evidence.frontier import common_levels, interpolate_at, matched_capability, wide_runs
from metatoken.evidence.verdict import mean_over_parts


def _linear_frontier(recipe, slope, offset, knobs=(0, 1, 2, 3, 4), noise=(-0.02, 0.0, 0.02)):
    """Capability 0.2 k per knob value k (seed noise with mean 0); spookiness linear in capability."""
    rows = []
    for k in knobs:
        for s, e in enumerate(noise):
            cap = 0.2 * k + e
            rows.append({"recipe": recipe, "knob": k, "seed": s, "capability": cap,
                         "spook": offset + slope * cap, "rl": 10.0 * k})
    return rows


def test_interpolate_reads_lines_and_never_extrapolates():
    out = interpolate_at([0.8, 0.0, 0.4], [2.0, 0.0, 1.0], [0.2, 0.6, 0.8, -0.1, 0.9])
    np.testing.assert_allclose(out[:3], [0.5, 1.5, 2.0])
    assert np.isnan(out[3:]).all()
    # equal capabilities are averaged before the line is drawn
    np.testing.assert_allclose(interpolate_at([0, 1, 1], [0, 1, 3], [0.5]), [1.0])


def test_matched_capability_on_linear_frontiers():
    points = pd.DataFrame(_linear_frontier("a", 1.0, 0.0) + _linear_frontier("b", -0.5, 1.0))
    res = matched_capability(points, [0.3, 0.5, 0.9], ["spook", "rl"], reps=200, seed=0)
    got = res.set_index(["recipe", "metric", "level"])
    # a: spook = capability; b: spook = 1 - capability / 2; rl = 50 * capability for both
    assert got.loc[("a", "spook", 0.3), "estimate"] == pytest.approx(0.3)
    assert got.loc[("b", "spook", 0.5), "estimate"] == pytest.approx(0.75)
    assert got.loc[("a", "rl", 0.5), "estimate"] == pytest.approx(25.0)
    assert np.isnan(got.loc[("a", "spook", 0.9), "estimate"])  # beyond the top knob's 0.8
    assert np.isnan(got.loc[("a", "spook", 0.9), "ci_low"])
    row = got.loc[("a", "spook", 0.5)]
    assert row.ci_low <= 0.5 <= row.ci_high and row.ci_high - row.ci_low < 0.05
    assert row.coverage == 1.0


def test_intervals_widen_with_seed_noise_and_are_seeded():
    quiet = pd.DataFrame(_linear_frontier("a", 1.0, 0.0, noise=(0.0, 0.0, 0.0)))
    quiet["spook"] += np.tile([-0.1, 0.0, 0.1], 5)  # metric noise across seeds, capability exact
    res = matched_capability(quiet, [0.5], ["spook"], reps=300, seed=3)
    assert res.estimate[0] == pytest.approx(0.5)
    assert res.ci_low[0] < 0.47 and res.ci_high[0] > 0.53
    pd.testing.assert_frame_equal(res, matched_capability(quiet, [0.5], ["spook"], reps=300, seed=3))


def test_common_levels_and_wide_runs():
    points = pd.DataFrame(_linear_frontier("a", 1, 0) + _linear_frontier("b", 1, 0, knobs=(2, 3, 4, 5)))
    np.testing.assert_allclose(common_levels(points, 3), [0.5, 0.6, 0.7])  # overlap [0.4, 0.8]
    tidy = pd.DataFrame({"task": ["t"] * 4, "method": ["ppo"] * 4, "seed": [0, 0, 1, 1],
                         "budget.env_steps": [10, 10, 20, 20], "metric": ["m", "n", "m", "n"],
                         "value": [1.0, 2.0, 3.0, 4.0]})
    wide = wide_runs(tidy)
    assert list(wide.columns) == ["task", "method", "seed", "budget.env_steps", "m", "n"]
    assert wide.loc[wide.seed == 1, "n"].item() == 4.0
    with pytest.raises(UserError, match="two values of metric 'm' for one run"):
        wide_runs(pd.concat([tidy, tidy.iloc[:1]]))


# ------------------------------------------------------------------ mean over parts (C4, C6, C9)
ONE_IN_FIVE = [np.array([[0.0], [0.0], [0.0], [0.0], [1.0]])]  # one stratum, five seeds, mean 0.2


def test_mean_over_parts_leaves_out_a_part_most_resamples_lack():
    # part 2 exists only when the resample draws the 1 exactly once: on the data, and in 41% of resamples
    def parts(s):
        ones = s[0].sum()
        return np.array([1.0 + s[0].mean() - 0.2, 5.0 if ones == 1 else np.nan])

    (est, lo, hi), kept = mean_over_parts(ONE_IN_FIVE, parts, reps=400, seed=0)
    assert kept.tolist() == [True, False]
    assert est == pytest.approx(1.0)  # a nanmean over parts would say (1 + 5) / 2
    assert 0.8 <= lo <= 1.0 <= hi <= 1.8  # part 1 alone: 1 + (resampled mean - 0.2), mean in [0, 1]


def test_mean_over_parts_uses_the_same_parts_in_every_resample():
    # part 2 exists when the 1 is drawn at all (67% of resamples): kept, and resamples without it are skipped
    def parts(s):
        return np.array([s[0].mean(), 5.0 if s[0].sum() >= 1 else np.nan])

    (est, lo, hi), kept = mean_over_parts(ONE_IN_FIVE, parts, reps=400, seed=0)
    assert kept.tolist() == [True, True]
    assert est == pytest.approx((0.2 + 5.0) / 2)
    # every counted resample has mean >= 0.2 and both parts; averaging what a resample reaches would put
    # the 33% of resamples that lack part 2 at 0.0 and the interval's low end there
    assert (0.2 + 5.0) / 2 <= lo <= hi <= (1.0 + 5.0) / 2


def test_mean_over_parts_without_a_part_on_the_data():
    (est, lo, hi), kept = mean_over_parts(ONE_IN_FIVE, lambda s: np.array([np.nan]), reps=50, seed=0)
    assert kept.tolist() == [False] and np.isnan([est, lo, hi]).all()
