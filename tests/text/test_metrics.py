import numpy as np
import pytest

from metatoken.text.metrics import distinct_n, exact_metrics, kl_estimators
from metatoken.text.targets import tilted
from metatoken.text.world import make_world


def test_distinct_n_known_answers():
    x = np.array([[0, 0, 0, 0], [0, 1, 2, 3], [0, 1, 0, 1]])
    np.testing.assert_allclose(distinct_n(x, 1), [1 / 4, 1, 2 / 4])
    np.testing.assert_allclose(distinct_n(x, 2), [1 / 3, 1, 2 / 3])  # (0,1),(1,0),(0,1): 2 distinct


def test_kl_estimators_known_answers():
    lr = np.array([0.5, -1.0])
    out = kl_estimators(lr)
    assert out["text/kl_k1"] == pytest.approx(-0.25)
    assert out["text/kl_k1_negative"] == 1.0
    assert out["text/kl_k2"] == pytest.approx((0.25 + 1.0) / 4)
    assert out["text/kl_k3"] == pytest.approx(((np.exp(-0.5) - 1 + 0.5) + (np.exp(1.0) - 1 - 1.0)) / 2)


def test_estimators_converge_to_exact_kl():
    world = make_world("tiny")
    x, logp0 = world.support()
    logpi = tilted(logp0, world.reward("proxy", x), 0.5)
    exact = exact_metrics(world, x, logp0, logpi)["text/kl_p0"]
    rng = np.random.default_rng(0)
    idx = rng.choice(len(x), size=200_000, p=np.exp(logpi))
    est = kl_estimators(logpi[idx] - logp0[idx])
    assert est["text/kl_k1"] == pytest.approx(exact, rel=0.03)
    assert est["text/kl_k3"] == pytest.approx(exact, rel=0.03)
    assert est["text/kl_k2"] != pytest.approx(exact, rel=0.03)  # k2 is biased at this KL


def test_exact_metrics_known_answers():
    world = make_world("tiny")
    x, logp0 = world.support()
    r = world.reward("proxy", x)
    target = tilted(logp0, r, 0.3)
    at_p0 = exact_metrics(world, x, logp0, logp0, target)
    assert at_p0["text/kl_p0"] == pytest.approx(0, abs=1e-12)
    assert at_p0["text/entropy"] == pytest.approx(-(np.exp(logp0) @ logp0))
    assert at_p0["text/reward_proxy"] == pytest.approx(np.exp(logp0) @ r)
    # pi = p0 against the tilt: KL(p0 || tilt) = log Z - E_p0 r / beta
    log_z = np.log(np.exp(logp0) @ np.exp(r / 0.3))
    assert at_p0["text/kl_target"] == pytest.approx(log_z - (np.exp(logp0) @ r) / 0.3, rel=1e-9)
    at_target = exact_metrics(world, x, logp0, target, target)
    assert at_target["text/kl_target"] == pytest.approx(0, abs=1e-12)
    assert at_target["text/tv_target"] == pytest.approx(0, abs=1e-12)
    assert at_target["text/kl_p0"] == pytest.approx(at_target["text/target_kl_p0"])


def test_importance_sampled_target_kl_agrees_with_exact_on_an_enumerable_world():
    import torch

    from metatoken.text.metrics import estimated_metrics, estimated_target_kl
    from metatoken.text.policy import new_policy

    world = make_world("tiny")
    x, logp0 = world.support()
    torch.manual_seed(1)
    policy = new_policy(world.n_words, world.length, d_model=16)
    logpi = policy.support_log_prob(x)
    exact = exact_metrics(world, x, logp0, logpi, tilted(logp0, world.reward("proxy", x), 0.5))
    est, se = estimated_target_kl(world, policy, "proxy", 0.5, 20_000, seed=3)
    assert se > 0 and abs(est - exact["text/kl_target"]) < 4 * se
    sampled = estimated_metrics(world, policy, 20_000, seed=4)
    for name in ("text/kl_p0", "text/reward_true", "text/entropy"):
        assert abs(sampled[name] - exact[name]) < 4 * sampled[name + "_se"]
