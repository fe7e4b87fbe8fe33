"""Each recipe trained briefly on the tiny world (1,024 sequences) against its exact target.

Thresholds (nats, exact over the support), stated here and in docs/TEXT.md:
- conditional training, Bayesian scheme (beta = 0.25, 150 steps): KL(pi || pi*_beta) < 0.03,
  where pi_ref starts at KL(pi_ref || pi*_beta) ~ 0.5;
- KL-regularised PG, beta = 100: KL(pi || pi_ref) < 0.005; beta = 0.25 (150 steps):
  KL(pi || pi_ref exp(r / beta) / Z) < 0.03;
- mixture, lam = 2 (150 steps): KL(pi || pi_lam) < 0.03;
- every other recipe at least halves its total-variation distance to its own target.
"""

import numpy as np
import pytest
import torch

from metatoken.methods.base import Budget
from metatoken.text.pretrain import PretrainConfig, pretrain
from metatoken.text.recipes import TextContext, make_text_method
from metatoken.text.targets import mixture_equilibrium, tilted
from metatoken.text.world import make_world

STEPS = 150


@pytest.fixture(scope="module")
def lab():
    torch.set_num_threads(1)
    world = make_world("tiny")
    x, logp0 = world.support()
    reference, _ = pretrain(world, PretrainConfig(steps=250), seed=0)
    return world, x, logp0, reference, reference.support_log_prob(x)


def _train(lab, method_id, hp, steps=STEPS, env_steps=0):
    world, x, _, reference, _ = lab
    ctx = TextContext(world, reference, Budget(gradient_steps=steps, env_steps=env_steps), seed=0, reward="proxy")
    trained = make_text_method(method_id, hp).train(ctx)
    return trained, trained.policy.support_log_prob(x)


def _kl(logp, logq):
    return float(np.exp(logp) @ (logp - logq))


def test_pretraining_is_close_to_p0(lab):
    _, _, logp0, _, logref = lab
    assert _kl(logref, logp0) < 0.02


def test_bayesian_conditional_training_reaches_the_tilt(lab):
    world, x, logp0, _, logref = lab
    target = tilted(logp0, world.reward("proxy", x), 0.25)
    trained, logpi = _train(lab, "text-conditional", {"scheme": "bayes", "beta": 0.25})
    assert _kl(logref, target) > 0.3  # the start is far from the target
    assert _kl(logpi, target) < 0.03
    np.testing.assert_allclose(trained.target(logp0, world.reward("proxy", x)), target)
    assert trained.ledger.online_env_steps == 0 and trained.ledger.reward_grad_share == 0.0
    assert trained.offline_reward_labels == 128 * STEPS


def test_kl_pg_with_large_beta_stays_at_the_reference(lab):
    _, _, _, _, logref = lab
    _, logpi = _train(lab, "text-kl-pg", {"beta": 100.0}, steps=60)
    assert _kl(logpi, logref) < 0.005


def test_kl_pg_at_moderate_beta_approaches_the_tilt_of_its_reference(lab):
    world, x, _, _, logref = lab
    target = tilted(logref, world.reward("proxy", x), 0.25)
    trained, logpi = _train(lab, "text-kl-pg", {"beta": 0.25})
    assert _kl(logpi, target) < 0.03
    led = trained.ledger
    assert led.reward_queries == 128 * STEPS and led.online_env_steps == 128 * STEPS * world.length
    assert led.reward_grad_share == 1.0


def test_mixture_approaches_its_equilibrium_not_the_tilt(lab):
    world, x, logp0, _, logref = lab
    r = world.reward("proxy", x)
    target = mixture_equilibrium(logp0, r, 2.0)
    trained, logpi = _train(lab, "text-mixture", {"lam": 2.0})
    assert _kl(logref, target) > 0.1
    assert _kl(logpi, target) < 0.03
    assert 0.0 < trained.ledger.reward_grad_share < 1.0


def test_online_budget_caps_sampled_tokens(lab):
    world = lab[0]
    cap = 10 * 128 * world.length
    trained, _ = _train(lab, "text-kl-pg", {"beta": 0.25}, steps=40, env_steps=cap)
    assert trained.ledger.online_env_steps == cap and trained.ledger.gradient_steps == 10


@pytest.mark.parametrize("method_id, hp", [
    ("text-conditional", {"scheme": "threshold", "fraction": 0.25, "drop": 0.1}),
    ("text-conditional", {"scheme": "quantile", "k": 4}),
    ("text-filter", {"fraction": 0.25}),
    ("text-rwr", {"beta": 0.25}),
    ("text-awr", {"beta": 0.25}),
    ("text-kl-pg", {"beta": 0.25, "epochs": 4}),
    ("text-dpo", {"beta": 0.25, "tau": 1.0}),
])
def test_recipe_moves_toward_its_own_target(lab, method_id, hp):
    world, x, logp0, _, logref = lab
    trained, logpi = _train(lab, method_id, hp, steps=100)
    target = np.exp(trained.target(logp0, world.reward("proxy", x)))
    before = 0.5 * np.abs(np.exp(logref) - target).sum()
    after = 0.5 * np.abs(np.exp(logpi) - target).sum()
    assert after < before / 2, (before, after)
