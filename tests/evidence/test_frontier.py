import numpy as np
import pandas as pd
import pytest

from metatoken.errors import UserError
from metatoken.evidence.frontier import common_levels, interpolate_at, matched_capability, wide_runs


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
