import math

import numpy as np
import pytest

from metatoken.evaluate.measure.distribution import (
    auc,
    classifier_auc,
    entropy_bits,
    gaussian_mmd2,
    js_divergence,
    js_test,
    mean_pairwise_distance,
    median_bandwidth,
    mmd2,
    mmd_test,
    relative_diversity,
    seed_spread_js,
    seed_spread_mmd,
    state_ids,
    visitation,
)


def test_auc_counts_pairs_with_ties_half():
    # pairs (pos, neg): 3>1, 3>2, 2>1, 2=2 -> (3 + 0.5) / 4
    assert auc([3.0, 2.0], [1.0, 2.0]) == pytest.approx(3.5 / 4)
    assert auc([5.0, 6.0], [1.0, 2.0]) == 1.0
    assert auc([1.0], [2.0]) == 0.0


def test_classifier_auc_identical_is_half_and_disjoint_is_one():
    rng = np.random.default_rng(0)
    same = classifier_auc(rng.normal(size=(600, 2)), rng.normal(size=(600, 2)), seed=1)
    assert same.low < 0.5 < same.high and abs(same.value - 0.5) < 0.06
    far = classifier_auc(rng.normal(size=(300, 2)) + 10.0, rng.normal(size=(300, 2)), seed=1)
    assert far.value == 1.0 and far.low == 1.0


def test_classifier_auc_sees_a_change_of_spread_and_is_seeded():
    # same mean, 3x the std: a purely linear classifier would sit at 0.5; the squared features see it
    rng = np.random.default_rng(2)
    x, r = rng.normal(size=(800, 1)) * 3.0, rng.normal(size=(800, 1))
    est = classifier_auc(x, r, seed=4)
    assert est.low > 0.7
    assert classifier_auc(x, r, seed=4) == est


def test_mmd_matches_the_closed_form_for_shifted_gaussians():
    rng = np.random.default_rng(0)
    d, s, sigma, delta = 2, 1.0, 1.5, 1.0
    x = rng.normal(size=(1000, d)) * s
    y = rng.normal(size=(1000, d)) * s + np.array([delta, 0.0])
    exact = gaussian_mmd2(delta, s, sigma, d)  # 2 * (2.25/4.25) * (1 - exp(-1/8.5)) ~= 0.1175
    assert exact == pytest.approx(2 * (2.25 / 4.25) * (1 - math.exp(-1 / 8.5)))
    res = mmd_test(x, y, bandwidth=sigma, seed=0, reps=100)
    assert res.value == pytest.approx(exact, abs=0.015)
    assert res.low < exact < res.high
    assert res.p_value < 0.02


def test_mmd_of_identical_distributions_is_zero_within_the_interval():
    rng = np.random.default_rng(1)
    res = mmd_test(rng.normal(size=(400, 3)), rng.normal(size=(400, 3)), seed=0, reps=200)
    assert res.low < 0.0 < res.high and abs(res.value) < 0.01
    assert res.p_value > 0.01  # p is uniform under H0: this fails 1% of seeds
    # subsampling a large sample keeps the answer (and bounds the (N + M)^2 kernel)
    big = mmd_test(rng.normal(size=(3000, 1)), rng.normal(size=(3000, 1)) + 1.0, bandwidth=1.0, reps=20,
                   max_points=500)
    assert big.value == pytest.approx(gaussian_mmd2(1.0, 1.0, 1.0, 1), abs=0.03)


def test_mmd2_is_unbiased_on_tiny_known_samples():
    # x = {0, 1}, y = {3, 3}: the within-y term averages the one off-diagonal pair, k(3, 3) = 1
    x, y = np.array([0.0, 1.0]), np.array([3.0, 3.0])
    k = lambda a, b: math.exp(-((a - b) ** 2) / 2)  # sigma = 1
    exx = k(0, 1)
    eyy = 1.0
    exy = (k(0, 3) * 2 + k(1, 3) * 2) / 4
    assert mmd2(x, y, bandwidth=1.0) == pytest.approx(exx + eyy - 2 * exy)


def test_median_bandwidth_is_the_median_pairwise_distance():
    # distances between {0, 1, 3}: 1, 3, 2 -> median 2
    assert median_bandwidth(np.array([0.0, 1.0, 3.0])) == 2.0


def test_js_of_known_histograms():
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint: 1 bit
    assert js_divergence([2, 2], [5, 5]) == 0.0
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    m = (p + q) / 2  # [0.25, 0.5, 0.25] -> H = 1.5 bits; H(p) = H(q) = 1
    assert js_divergence(p, q) == pytest.approx(0.5)
    assert entropy_bits(m) == pytest.approx(1.5)


def test_js_test_interval_and_state_ids():
    a, b = state_ids(np.array([[0, 0], [0, 1], [0, 0]]), np.array([[0, 1], [2, 2]]))
    np.testing.assert_array_equal(a, [0, 1, 0])
    np.testing.assert_array_equal(b, [1, 2])
    np.testing.assert_allclose(visitation(a, 3), [2 / 3, 1 / 3, 0])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 2000)
    same = js_test(x, x, seed=0, reps=200)
    assert same.value == 0.0 and same.low >= 0.0 and same.high < 0.01
    disjoint = js_test(x, x + 4, seed=0, reps=50)
    assert disjoint.value == pytest.approx(1.0) and disjoint.low == pytest.approx(1.0)


def test_seed_spread():
    # three seeds, visiting {0}, {0}, {1}: pairwise JS = 0, 1, 1 -> mean 2/3
    assert seed_spread_js([np.array([0, 0]), np.array([0]), np.array([1, 1])]) == pytest.approx(2 / 3)
    assert math.isnan(seed_spread_js([np.array([0])]))
    rng = np.random.default_rng(0)
    same = [rng.normal(size=(300, 2)) for _ in range(3)]
    apart = [rng.normal(size=(300, 2)) + 3 * i for i in range(3)]
    assert abs(seed_spread_mmd(same)) < 0.02 < seed_spread_mmd(apart)


def test_diversity_known_answers():
    assert mean_pairwise_distance(np.array([0.0, 1.0, 2.0])) == pytest.approx(4 / 3)
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(800, 3))
    assert relative_diversity(2.0 * rng.normal(size=(800, 3)), ref) == pytest.approx(2.0, rel=0.05)
    assert relative_diversity(np.ones((10, 3)), ref) == 0.0
