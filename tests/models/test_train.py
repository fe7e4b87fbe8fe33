"""Training: the condition is learned when it determines the action; runs are seeded and deterministic."""

import numpy as np
import pytest
import torch

from metatoken.models.train import TrainConfig, TrainHooks, fit_predictor

SMALL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "context": 4, "max_timestep": 16}


class Recorder:
    def __init__(self):
        self.scalars, self.progress_calls = [], []

    def scalar(self, name, value, step):
        self.scalars.append((name, value, step))

    def progress(self, done, total):
        self.progress_calls.append((done, total))


@pytest.mark.parametrize("model,condition", [("transformer", "rtg"), ("transformer", "binary"),
                                             ("mlp", "quantile")])
def test_condition_determines_the_action(good_bad_data, model, condition):
    """Good episodes (return 12) take action 0, bad ones (return 0) action 1, whatever the obs."""
    opts = SMALL if model == "transformer" else {"hidden": 32}
    policy, stats = fit_predictor(good_bad_data, condition, model=model, model_options=opts,
                                  train=TrainConfig(steps=250, batch_size=32, lr=3e-3, warmup_steps=10))
    assert stats.final_loss < 0.05  # NLL of a near-certain action
    obs = np.random.default_rng(1).uniform(size=(12, 2, 2)).astype(np.float32)
    policy.reset(2, target=np.array([12.0, 0.0]), seed=0)
    acts = []
    for o in obs:
        acts.append(policy.act(o))
        policy.observe(np.array([1.0, 0.0]), np.zeros(2, bool))  # the rewards each command implies
    assert np.array_equal(np.stack(acts), np.tile([0, 1], (12, 1)))


def test_training_is_deterministic_with_a_seed(continuous_data):
    def run(seed):
        log = Recorder()
        policy, stats = fit_predictor(continuous_data, "rtg", model_options={**SMALL, "dropout": 0.1},
                                      train=TrainConfig(steps=30, batch_size=8, seed=seed, log_every=10),
                                      logger=log)
        return policy.model.state_dict(), stats, log

    w1, s1, log = run(0)
    w2, s2, _ = run(0)
    _, s3, _ = run(1)
    assert s1.losses == s2.losses and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert s1.losses != s3.losses
    assert [s for n, _, s in log.scalars if n == "losses/action_nll"] == [10, 20, 30]
    assert log.progress_calls[-1] == (30, 30) and s1.flops > 0


class _CountingHooks(TrainHooks):
    """Default loss; reports 7 extra tokens per log interval and remembers when it was called."""

    def __init__(self):
        self.backward_steps, self.log_steps = [], []

    def after_backward(self, step, model):
        self.backward_steps.append(step)
        assert any(p.grad is not None for p in model.parameters())  # runs after the backward pass
        return 0

    def on_log(self, step, model, batch, logger):
        self.log_steps.append(step)
        return 7


def test_hooks_that_add_nothing_train_exactly_as_the_plain_loop(continuous_data):
    from metatoken.models.conditions import fit_condition
    from metatoken.models.sequences import SequenceSampler
    from metatoken.models.train import build_predictor, train_predictor

    def run(hooks):
        cond = fit_condition("rtg", continuous_data)
        net = build_predictor(continuous_data, cond, seed=2, **{**SMALL, "dropout": 0.1})
        sampler = SequenceSampler(continuous_data, cond, net.context, net.head.discrete, seed=2)
        stats = train_predictor(net, sampler, TrainConfig(steps=20, batch_size=8, seed=2, log_every=10), None, hooks)
        return net.state_dict(), stats

    (plain, s0), hooks = run(None), _CountingHooks()
    hooked, s1 = run(hooks)
    assert all(torch.equal(plain[k], hooked[k]) for k in plain) and s0.losses == s1.losses
    assert hooks.backward_steps == list(range(1, 21)) and hooks.log_steps == [10, 20]
    fpt = 3.0 * build_predictor(continuous_data, fit_condition("rtg", continuous_data), **SMALL).flops_per_token()
    assert s1.flops - s0.flops == pytest.approx(fpt * 14)


def test_foreach_adamw_trains_bit_identically_to_the_per_tensor_loop(continuous_data, monkeypatch):
    """make_optimizer uses foreach kernels for speed; the weights must equal torch's per-tensor loop exactly."""
    import metatoken.models.train as train_module

    made = train_module.make_optimizer

    def run(foreach):
        def make(model, cfg, flat=None):
            opt = made(model, cfg, flat)
            for group in opt.param_groups:
                group["foreach"] = foreach
            return opt

        monkeypatch.setattr(train_module, "make_optimizer", make)
        policy, stats = fit_predictor(continuous_data, "rtg", model_options={**SMALL, "dropout": 0.1},
                                      train=TrainConfig(steps=40, batch_size=8, lr=3e-3, warmup_steps=5, log_every=10))
        return policy.model.state_dict(), stats

    loop, s0 = run(False)
    fast, s1 = run(True)
    untrained, _ = fit_predictor(continuous_data, "rtg", model_options=SMALL, train=TrainConfig(steps=0))
    assert all(torch.equal(loop[k], fast[k]) for k in loop) and s0.losses == s1.losses
    assert not torch.equal(loop["kv.weight"], untrained.model.state_dict()["kv.weight"])  # it did train
    assert made(untrained.model, TrainConfig()).defaults["foreach"] is True
