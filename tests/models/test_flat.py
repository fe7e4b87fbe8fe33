"""Flat optimiser buffers: the same weights, bit for bit, as stepping each parameter tensor on its own."""

import dataclasses

import pytest
import torch

from metatoken.envs import make_task
from metatoken.errors import UserError
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.models.checkpoint import load_optimizer_state, optimizer_state, save, save_training_state
from metatoken.models.conditions import fit_condition
from metatoken.models.flat import FlatParams
from metatoken.models.sequences import SequenceSampler
from metatoken.models.train import (
    TrainConfig,
    TrainHooks,
    action_nll,
    build_predictor,
    decay_groups,
    train_predictor,
    warmup_schedule,
)

SMALL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "context": 4, "max_timestep": 32, "dropout": 0.1}
# a large decay and learning rate, so that a wrong group or a skipped step shows in the weights
CFG = TrainConfig(steps=40, batch_size=8, lr=3e-3, weight_decay=0.1, warmup_steps=5, grad_clip=0.25, seed=3)


def fresh(data):
    cond = fit_condition("rtg", data)
    model = build_predictor(data, cond, "transformer", seed=0, **SMALL)
    return model, SequenceSampler(data, cond, model.context, model.head.discrete, seed=CFG.seed)


def per_tensor_training(model, sampler, cfg, edit_grads=None):
    """The supervised loop as it ran before flat buffers: AdamW on each parameter tensor, grads set to None."""
    torch.manual_seed(cfg.seed)
    model.train()
    opt = torch.optim.AdamW(decay_groups(model, cfg), lr=cfg.lr, foreach=True)
    sched = warmup_schedule(opt, cfg.warmup_steps)
    for _ in range(cfg.steps):
        loss = action_nll(model, sampler.sample(cfg.batch_size))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if edit_grads is not None:
            edit_grads(model)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()


def replace_grads(model):
    """Swap every .grad for a new tensor (as mixture and kl-finetune do), scaled so the change shows."""
    for i, q in enumerate(model.parameters()):
        q.grad = q.grad * (1.0 + 0.5 * (i % 3))


class ReplacingHooks(TrainHooks):
    def after_backward(self, step, model):
        replace_grads(model)
        return 0


def test_flat_training_matches_per_tensor_adamw_bit_for_bit(continuous_data):
    flat_model, sampler = fresh(continuous_data)
    start = {k: v.clone() for k, v in flat_model.state_dict().items()}
    train_predictor(flat_model, sampler, CFG)
    ref_model, ref_sampler = fresh(continuous_data)
    per_tensor_training(ref_model, ref_sampler, CFG)
    flat_w, ref_w = flat_model.state_dict(), ref_model.state_dict()
    assert all(torch.equal(flat_w[k], ref_w[k]) for k in ref_w)
    assert not torch.equal(flat_w["blocks.0.attn.q.weight"], start["blocks.0.attn.q.weight"])
    # the decay groups matter: without weight decay the same training lands elsewhere
    other, other_sampler = fresh(continuous_data)
    per_tensor_training(other, other_sampler, TrainConfig(**{**CFG.__dict__, "weight_decay": 0.0}))
    assert not torch.equal(other.state_dict()["blocks.0.attn.q.weight"], ref_w["blocks.0.attn.q.weight"])


def test_grads_replaced_by_a_hook_are_the_ones_applied(continuous_data):
    flat_model, sampler = fresh(continuous_data)
    train_predictor(flat_model, sampler, CFG, hooks=ReplacingHooks())
    ref_model, ref_sampler = fresh(continuous_data)
    per_tensor_training(ref_model, ref_sampler, CFG, edit_grads=replace_grads)
    plain, plain_sampler = fresh(continuous_data)
    per_tensor_training(plain, plain_sampler, CFG)
    flat_w, ref_w = flat_model.state_dict(), ref_model.state_dict()
    assert all(torch.equal(flat_w[k], ref_w[k]) for k in ref_w)
    assert not all(torch.equal(flat_w[k], plain.state_dict()[k]) for k in ref_w)  # the replacement mattered


def test_trained_policy_owns_its_tensors_and_saves(continuous_data, tmp_path):
    model, sampler = fresh(continuous_data)
    train_predictor(model, sampler, TrainConfig(steps=3, batch_size=4))
    params = list(model.parameters())
    assert len({p.untyped_storage().data_ptr() for p in params}) == len(params)
    assert all(p.untyped_storage().nbytes() == p.numel() * p.element_size() for p in params)
    save(tmp_path / "policy", model, fit_condition("rtg", continuous_data))  # safetensors refuses shared storage
    assert (tmp_path / "policy").is_dir()


def test_buffers_are_views_and_none_counts_as_zero():
    torch.manual_seed(0)
    a, b, c = (torch.nn.Parameter(torch.randn(s)) for s in ((3, 2), (4,), (2,)))
    before = [p.detach().clone() for p in (a, b, c)]
    flat = FlatParams([{"params": [a, b], "weight_decay": 0.5}, {"params": []}, {"params": [c]}])
    assert [g["weight_decay"] for g in flat.param_groups if "weight_decay" in g] == [0.5]
    assert len(flat.param_groups) == 2 and flat.param_groups[0]["params"][0].shape == (10,)
    assert all(torch.equal(p, x) for p, x in zip((a, b, c), before))  # re-homing keeps the values
    flat.param_groups[0]["params"][0].data[6] = 7.0  # the first element of b
    assert b[0].item() == 7.0
    (a.sum() * 2 + b.sum()).backward()
    assert torch.equal(flat.grads[0], torch.tensor([2.0] * 6 + [1.0] * 4))
    flat.zero_grad()
    assert flat.grads[0].abs().sum() == 0 and a.grad is flat.views[0]
    a.grad, b.grad = torch.full((3, 2), 5.0), None
    flat.grads[0].fill_(9.0)  # a stale value b's None must not leave behind
    flat.sync_grads()
    assert torch.equal(flat.grads[0], torch.tensor([5.0] * 6 + [0.0] * 4)) and a.grad is flat.views[0]
    flat.release()
    flat_before = b.untyped_storage().data_ptr()
    assert len({p.untyped_storage().data_ptr() for p in (a, b, c)}) == 3 and b[0].item() == 7.0
    assert flat_before == b.untyped_storage().data_ptr()


def test_a_per_tensor_optimiser_state_is_refused_in_one_line(tmp_path):
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2))
    old = torch.optim.Adam([a, b], foreach=True)
    (a.sum() + b.sum()).backward()
    old.step()
    state = optimizer_state(old)
    flat = FlatParams([{"params": [a, b]}])
    new = torch.optim.Adam(flat.param_groups, foreach=True)
    with pytest.raises(UserError, match="optimiser state does not fit"):
        load_optimizer_state(new, state)
    # the flat weights themselves write to a training checkpoint (clones: views of one buffer share storage)
    save_training_state(tmp_path, 1, {"a": a, "b": b}, {})


def test_ppo_policy_owns_its_tensors_and_saves(tmp_path):
    task = dataclasses.replace(make_task("cartpole", {}), max_episode_steps=12)
    hp = {"n_envs": 4, "n_steps": 8, "batch_size": 16, "n_epochs": 1, "net_arch": [8]}
    out = make_method("ppo", hp).train(task, None, Budget(env_steps=64, gradient_steps=10**6), 0, NullLogger())
    params = list(out.policy.policy.parameters())
    assert len({p.untyped_storage().data_ptr() for p in params}) == len(params)
    assert all(p.untyped_storage().nbytes() == p.numel() * p.element_size() for p in params)
    out.policy.save(tmp_path / "ppo")  # safetensors refuses tensors that share storage
    assert any((tmp_path / "ppo").iterdir())


@pytest.mark.parametrize("model,condition", [("transformer", "none"), ("transformer", "rtg"), ("mlp", "quantile")])
def test_every_predictor_parameter_gets_a_gradient(continuous_data, model, condition):
    """Flat buffers step a parameter without gradient with zeros (torch's AdamW skips it, decay included),
    so the supervised loop is bit-identical only while every parameter is in every step's graph."""
    cond = fit_condition(condition, continuous_data)
    net = build_predictor(continuous_data, cond, model, **(SMALL if model == "transformer" else {}))
    sampler = SequenceSampler(continuous_data, cond, net.context, net.head.discrete, seed=0)
    action_nll(net, sampler.sample(4)).backward()
    assert [n for n, p in net.named_parameters() if p.grad is None] == []
