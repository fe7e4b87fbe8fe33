import numpy as np
import pytest

from metatoken.text import targets as T
from metatoken.text.world import make_world


@pytest.fixture(scope="module")
def small():
    world = make_world("small")
    x, logp0 = world.support()
    return logp0, world.reward("proxy", x), world.reward("sentiment", x)


@pytest.mark.parametrize("beta", [0.05, 0.25, 2.0])
def test_bayes_conditioned_equals_tilted(small, beta):
    logp0, r, _ = small
    np.testing.assert_allclose(T.bayes_conditioned(logp0, r, beta), T.tilted(logp0, r, beta), atol=1e-9, rtol=0)


def test_tilted_known_answer_on_two_points():
    # p0 = (3/4, 1/4), r = (0, 1), beta = 1/log 3: weights (3/4, 3/4) -> (1/2, 1/2)
    out = T.tilted(np.log([0.75, 0.25]), np.array([0.0, 1.0]), 1 / np.log(3))
    np.testing.assert_allclose(np.exp(out), [0.5, 0.5], atol=1e-12)


@pytest.mark.parametrize("lam", [0.3, 2.0, 50.0])
@pytest.mark.parametrize("which", [1, 2])
def test_mixture_equilibrium_is_stationary(small, lam, which):
    logp0, r = small[0], small[which]
    logpi = T.mixture_equilibrium(logp0, r, lam)
    pi = np.exp(logpi)
    assert abs(pi.sum() - 1) < 1e-9
    # stationarity of -sum p0 log pi - lam sum pi r + mu (sum pi - 1): p0 / pi + lam r = mu everywhere
    mu = T.mixture_mu(logp0, r, lam)
    residual = np.exp(logp0 - logpi) + lam * r - mu
    assert np.abs(residual).max() < 1e-9
    assert mu > lam * r.max()
    # multiplying by pi and summing gives mu = 1 + lam E_pi r
    assert abs(mu - (1 + lam * (pi * r).sum())) < 1e-9


def test_mixture_known_answer_on_two_points():
    # p0 = (1/2, 1/2), r = (0, 1), lam = 1: pi = (1/(2 mu), 1/(2 (mu - 1))) sums to 1 -> mu = 1 + 1/sqrt(2)... solve
    mu = T.mixture_mu(np.log([0.5, 0.5]), np.array([0.0, 1.0]), 1.0)
    # 1/(2mu) + 1/(2(mu-1)) = 1  <=>  2 mu^2 - 4 mu + 1 = 0  <=>  mu = 1 + 1/sqrt(2)
    assert mu == pytest.approx(1 + 2 ** -0.5, abs=1e-12)


def test_mixture_is_not_the_tilt(small):
    logp0, r, _ = small
    m = T.mixture_equilibrium(logp0, r, 2.0)
    t = T.tilted(logp0, r, 0.5)
    assert np.abs(m - t).max() > 0.1  # different families: a wrong implementation returning the tilt fails


def test_limits_return_p0(small):
    logp0, r, _ = small
    np.testing.assert_allclose(T.tilted(logp0, r, 1e9), logp0, atol=1e-8)
    np.testing.assert_allclose(T.mixture_equilibrium(logp0, r, 1e-9), logp0, atol=1e-8)
    np.testing.assert_array_equal(T.mixture_equilibrium(logp0, r, 0.0), logp0)


def test_restricted_renormalises_on_the_set(small):
    logp0, r, _ = small
    keep = r >= 0.5
    out = np.exp(T.restricted(logp0, keep))
    assert out[~keep].max() == 0
    np.testing.assert_allclose(out[keep], np.exp(logp0[keep]) / np.exp(logp0[keep]).sum(), rtol=1e-12)
