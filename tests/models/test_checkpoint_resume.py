"""Training checkpoints: a training killed after a checkpoint resumes to bit-identical weights."""

import json

import numpy as np
import pytest
import torch

from metatoken.errors import UserError
from metatoken.models.checkpoint import (
    STATE_CONFIG,
    checkpointing,
    join_tensors,
    latest_training_state,
    split_tensors,
)
from metatoken.models.conditions import fit_condition
from metatoken.models.sequences import SequenceSampler
from metatoken.models.train import TrainConfig, TrainHooks, build_predictor, train_predictor

SMALL = {"d_model": 16, "n_layers": 1, "n_heads": 2, "context": 4, "max_timestep": 32, "dropout": 0.1}
STEPS = 20


class Killed(Exception):
    """Stands for the process being killed."""


class KillAt(TrainHooks):
    """Dies when step `at` starts its update, i.e. after every checkpoint up to step at - 1."""

    def __init__(self, at: int):
        self.at = at

    def after_backward(self, step, model):
        if step == self.at:
            raise Killed
        return 0

    def state(self):  # nothing to carry, declared so (see TrainHooks.state)
        return {}


def _train(data, cfg, hooks=None):
    """A fresh predictor and sampler (as a re-executed run builds them), trained with `cfg`."""
    cond = fit_condition("rtg", data)
    net = build_predictor(data, cond, "transformer", seed=cfg.seed, **SMALL)
    sampler = SequenceSampler(data, cond, net.context, net.head.discrete, seed=cfg.seed)
    stats = train_predictor(net, sampler, cfg, hooks=hooks)
    return net, stats


def _cfg(**kw):
    return TrainConfig(steps=STEPS, batch_size=8, lr=3e-3, warmup_steps=15, log_every=4, seed=3, **kw)


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_a_killed_training_resumes_to_the_same_weights(continuous_data, tmp_path):
    straight, straight_stats = _train(continuous_data, _cfg())
    with checkpointing(tmp_path, every=10), pytest.raises(Killed):
        _train(continuous_data, _cfg(), KillAt(STEPS // 2 + 3))  # killed 3 steps after the checkpoint at 10
    state = latest_training_state(tmp_path / "train-0")
    assert state is not None and state[1]["step"] == STEPS // 2
    with checkpointing(tmp_path, every=10):
        resumed, stats = _train(continuous_data, _cfg())
    _assert_same_weights(straight, resumed)
    # the weights alone could agree by luck of a dead optimiser; the logged losses include the pre-kill ones
    assert stats.losses == straight_stats.losses and len(stats.losses) == STEPS // 4


def test_resuming_needs_the_restored_state(continuous_data, tmp_path):
    """Without restoring optimiser and RNG state the weights differ: the comparison above can fail."""
    straight, _ = _train(continuous_data, _cfg())
    with checkpointing(tmp_path, every=10), pytest.raises(Killed):
        _train(continuous_data, _cfg(), KillAt(STEPS // 2 + 1))
    tensors, _ = latest_training_state(tmp_path / "train-0")
    cond = fit_condition("rtg", continuous_data)
    net = build_predictor(continuous_data, cond, "transformer", seed=3, **SMALL)
    net.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    sampler = SequenceSampler(continuous_data, cond, net.context, net.head.discrete, seed=3)
    train_predictor(net, sampler, TrainConfig(steps=STEPS // 2, batch_size=8, lr=3e-3, warmup_steps=15, seed=3))
    assert not all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), straight.state_dict().values()))


def test_a_finished_training_is_not_repeated(continuous_data, tmp_path):
    """The final state is kept: a run killed after its training restarts with the trained weights at once."""
    with checkpointing(tmp_path, every=7):
        first, _ = _train(continuous_data, _cfg())
    assert [p.name for p in (tmp_path / "train-0").iterdir()] == [f"step-{STEPS:09d}"]  # older states dropped
    with checkpointing(tmp_path, every=7):
        again, _ = _train(continuous_data, _cfg(), KillAt(1))  # would die if it took a single step
    _assert_same_weights(first, again)


def test_each_training_of_a_run_has_its_own_slot(continuous_data, tmp_path):
    with checkpointing(tmp_path, every=10) as plan:
        _train(continuous_data, _cfg())
        _train(continuous_data, _cfg())
    assert plan.trainings == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["train-0", "train-1"]


def test_a_checkpoint_of_another_config_is_refused_in_one_line(continuous_data, tmp_path):
    with checkpointing(tmp_path, every=10), pytest.raises(Killed):
        _train(continuous_data, _cfg(), KillAt(12))
    other = TrainConfig(steps=STEPS, batch_size=8, lr=1e-3, warmup_steps=15, log_every=4, seed=3)
    with checkpointing(tmp_path, every=10), pytest.raises(UserError) as err:
        _train(continuous_data, other)
    assert "\n" not in str(err.value) and "lr is 0.003 there, 0.001 here" in str(err.value)
    with checkpointing(tmp_path, every=10) as plan:  # the same config still resumes it
        _train(continuous_data, _cfg())
    assert plan.trainings == 1


def test_no_checkpoint_outside_a_checkpointing_block(continuous_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _train(continuous_data, _cfg(checkpoint_every=5))
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_is_safetensors_and_json(continuous_data, tmp_path):
    with checkpointing(tmp_path, every=10), pytest.raises(Killed):
        _train(continuous_data, _cfg(), KillAt(12))
    step = tmp_path / "train-0" / f"step-{10:09d}"
    assert sorted(p.name for p in step.iterdir()) == ["state.json", "state.safetensors"]
    tensors, meta = latest_training_state(tmp_path / "train-0")
    assert tensors["rng.torch"].dtype == torch.uint8 and meta["schedule"]["last_epoch"] == 10
    assert any(k.startswith("optim.") and k.endswith(".exp_avg") for k in tensors)


def test_a_tampered_checkpoint_is_refused(continuous_data, tmp_path):
    with checkpointing(tmp_path, every=10), pytest.raises(Killed):
        _train(continuous_data, _cfg(), KillAt(12))
    step = tmp_path / "train-0" / f"step-{10:09d}"
    (step / "state.safetensors").write_bytes(b"\x80\x04\x95 pickle payload")
    with pytest.raises(UserError, match="cannot load training checkpoint"):
        latest_training_state(tmp_path / "train-0")
    (step / STATE_CONFIG).write_text(json.dumps({"format": 99}))
    with pytest.raises(UserError, match="format"):
        latest_training_state(tmp_path / "train-0")


class Counting(TrainHooks):
    """Hook state that must survive a kill: how many updates it saw."""

    def __init__(self, kill_at: int = 0):
        self.updates, self.kill_at = 0, kill_at

    def after_backward(self, step, model):
        if step == self.kill_at:
            raise Killed
        self.updates += 1
        return 0

    def state(self):
        return {"updates": self.updates}

    def load_state(self, state):
        self.updates = state["updates"]


class Undeclared(TrainHooks):
    def __init__(self):
        self.updates = 0

    def after_backward(self, step, model):
        self.updates += 1
        return 0


def test_declared_hook_state_is_carried_across_a_kill(continuous_data, tmp_path):
    with checkpointing(tmp_path, every=10), pytest.raises(Killed):
        _train(continuous_data, _cfg(), Counting(kill_at=15))
    hooks = Counting()
    with checkpointing(tmp_path, every=10):
        _train(continuous_data, _cfg(), hooks)
    assert hooks.updates == STEPS  # 10 restored + 10 after the resume


def test_hooks_with_undeclared_state_train_without_checkpoints(continuous_data, tmp_path):
    with checkpointing(tmp_path, every=5) as plan:
        _train(continuous_data, _cfg(), Undeclared())
        _train(continuous_data, _cfg())
    assert plan.trainings == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["train-1"]


class NoisyGradient(TrainHooks):
    """Adds generator noise to the gradient every step: its generator and a running sum are tensor state."""

    def __init__(self, kill_at: int = 0):
        self.gen, self.kill_at = torch.Generator().manual_seed(5), kill_at
        self.total = torch.zeros(())

    def after_backward(self, step, model):
        if step == self.kill_at:
            raise Killed
        for p in model.parameters():
            noise = 1e-2 * torch.randn(p.shape, generator=self.gen)
            p.grad = noise if p.grad is None else p.grad + noise
            self.total = self.total + noise.sum()
        return 0

    def state(self):
        return {"gen": self.gen.get_state(), "sums": [{"total": self.total}]}

    def load_state(self, state):
        self.gen.set_state(state["gen"])
        self.total = state["sums"][0]["total"]


def test_tensor_hook_state_goes_to_safetensors_and_resumes_exactly(continuous_data, tmp_path):
    straight_hooks = NoisyGradient()
    straight, _ = _train(continuous_data, _cfg(), straight_hooks)
    with checkpointing(tmp_path, every=10), pytest.raises(Killed):
        _train(continuous_data, _cfg(), NoisyGradient(kill_at=15))
    tensors, meta = latest_training_state(tmp_path / "train-0")
    assert meta["hooks"] == {"gen": {"$tensor": "hooks.gen"}, "sums": [{"total": {"$tensor": "hooks.sums.0.total"}}]}
    assert tensors["hooks.gen"].dtype == torch.uint8
    hooks = NoisyGradient()
    with checkpointing(tmp_path, every=10):
        resumed, _ = _train(continuous_data, _cfg(), hooks)
    _assert_same_weights(straight, resumed)
    assert torch.equal(hooks.total, straight_hooks.total)


def test_split_and_join_keep_arrays_tensors_and_shapes(tmp_path):
    state = {"a": np.zeros(()), "b": [np.arange(3, dtype=np.int64), torch.ones(2, dtype=torch.bool)], "c": None,
             "d": {"e": 1.5}}
    meta, tensors = split_tensors(state, "x")
    assert meta == {"a": {"$array": "x.a"}, "b": [{"$array": "x.b.0"}, {"$tensor": "x.b.1"}], "c": None,
                    "d": {"e": 1.5}}
    back = join_tensors(json.loads(json.dumps(meta)), tensors)
    assert isinstance(back["a"], np.ndarray) and back["a"].shape == () and back["b"][0].dtype == np.int64
    assert back["b"][1].dtype == torch.bool and back["d"] == {"e": 1.5}
    with pytest.raises(ValueError, match="reserved"):
        split_tensors({"$tensor": 1}, "x")
    with pytest.raises(UserError, match="x.a"):
        join_tensors(meta, {})
