import numpy as np

from metatoken.stats import bootstrap_ci, iqm, rankdata, spearman


def test_iqm_trims_quartiles():
    assert iqm(np.array([0, 1, 2, 3, 4, 5, 6, 100.0])) == 3.5  # middle four: 2,3,4,5
    assert iqm(np.array([1.0, 2.0, 3.0])) == 2.0


def test_rankdata_averages_ties():
    np.testing.assert_array_equal(rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert np.isnan(spearman([1, 2, 3], [5, 5, 5]))


def test_bootstrap_ci_brackets_point_and_is_seeded():
    rng = np.random.default_rng(0)
    groups = [rng.normal(1.0, 0.1, 20), rng.normal(2.0, 0.1, 20)]
    point, lo, hi = bootstrap_ci(groups, stat=np.mean, seed=3)
    assert lo < point < hi and abs(point - 1.5) < 0.1
    assert bootstrap_ci(groups, stat=np.mean, seed=3) == (point, lo, hi)
    # a constant sample has a zero-width interval
    assert bootstrap_ci([np.ones(5)]) == (1.0, 1.0, 1.0)


def test_probability_of_improvement_counts_pairs_with_ties_half():
    from metatoken.stats import probability_of_improvement

    # pairs: 1>0, 1<3, 2>0, 2<3 -> 2/4
    assert probability_of_improvement(np.array([1.0, 2.0]), np.array([0.0, 3.0]))[0] == 0.5
    # ties: 1 vs {1, 0}: 0.5 + 1 -> 0.75
    assert probability_of_improvement(np.array([1.0]), np.array([1.0, 0.0]))[0] == 0.75
    # two tasks are averaged per task, not pooled: task A gives 1, task B gives 0 -> 0.5
    # (pooling all runs would compare 5 with -5 across tasks and give 0.75)
    x = [np.array([5.0, 6.0]), np.array([-6.0, -5.0])]
    y = [np.array([1.0, 2.0]), np.array([-2.0, -1.0])]
    assert probability_of_improvement(x, y)[0] == 0.5


def test_probability_of_improvement_interval():
    from metatoken.stats import probability_of_improvement

    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 1.0, 10), rng.normal(0.0, 1.0, 10)
    point, lo, hi = probability_of_improvement(x, y, seed=1)
    assert lo < point < hi and 0.5 < point
    assert probability_of_improvement(x, y, seed=1) == (point, lo, hi)
    # separated recipes: every resample keeps every x above every y
    assert probability_of_improvement(x + 100, y) == (1.0, 1.0, 1.0)


def test_probability_of_improvement_interval_equals_one_resample_at_a_time():
    """The batched pair counts reproduce, bit for bit, resampling and counting one resample at a time."""
    from metatoken.stats import _poi, probability_of_improvement

    rng = np.random.default_rng(3)
    for strata in (1, 2, 5):
        xs = [np.round(rng.normal(size=rng.integers(1, 7)), 1) for _ in range(strata)]  # ties on purpose
        ys = [np.round(rng.normal(size=rng.integers(1, 7)), 1) for _ in range(strata)]
        draw = np.random.default_rng(7)
        loop = np.array([_poi([g[draw.integers(0, len(g), len(g))] for g in xs],
                              [g[draw.integers(0, len(g), len(g))] for g in ys]) for _ in range(300)])
        lo, hi = np.quantile(loop, [0.025, 0.975])
        assert probability_of_improvement(xs, ys, reps=300, seed=7) == (_poi(xs, ys), float(lo), float(hi))
