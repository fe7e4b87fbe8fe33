"""PPO's loop checkpoints at rollout boundaries: Mountain-v1 resumes bit-identically, a generic env is re-seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metatoken.envs import make_task
from metatoken.errors import UserError
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.ppo_loop import PPOLoop
from metatoken.methods.sb3_vecenv import make_sb3_vecenv
from metatoken.models.checkpoint import checkpointing, latest_training_state

HP = {"n_envs": 8, "n_steps": 16, "batch_size": 64, "n_epochs": 2, "normalize_obs": True, "normalize_reward": True}
ITERATIONS, PER_ROLLOUT = 6, 4  # gradient steps per rollout: 2 epochs x 2 minibatches of 64 in 128 samples
BUDGET = Budget(env_steps=ITERATIONS * 8 * 16, gradient_steps=ITERATIONS * PER_ROLLOUT)
EVERY = 8  # gradient steps: a checkpoint after rollouts 2, 4 and 6 (the last)


class Killed(Exception):
    """Stands for the worker being killed."""


def _kill_in_rollout(monkeypatch, rollout: int) -> None:
    """Make PPO die in the update of rollout `rollout` (1-based), after the rollout before it was saved."""
    original, calls = PPOLoop._update, []

    def dying(self, *args):
        calls.append(1)
        if len(calls) == rollout:
            raise Killed
        return original(self, *args)

    monkeypatch.setattr(PPOLoop, "_update", dying)


def _train(task, hp=HP):
    torch.set_num_threads(1)
    return make_method("ppo", hp).train(task, None, BUDGET, 0, NullLogger())


def _killed_then_resumed(task, tmp_path, monkeypatch, hp=HP):
    with monkeypatch.context() as m:
        _kill_in_rollout(m, 5)
        with checkpointing(tmp_path, every=EVERY), pytest.raises(Killed):
            _train(task, hp)
    saved = latest_training_state(tmp_path / "train-0")
    with checkpointing(tmp_path, every=EVERY):
        return _train(task, hp), saved


def _same_weights(a, b) -> bool:
    sa, sb = a.policy.policy.state_dict(), b.policy.policy.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _ledger(out) -> dict:
    return {k: v for k, v in out.ledger.__dict__.items() if k != "wall_time_s"}


def test_ppo_on_mountain_resumes_to_the_same_weights_and_curve(tmp_path, monkeypatch):
    task = make_task("mountain", {"reward": "gait"})
    straight = _train(task)
    resumed, (tensors, meta) = _killed_then_resumed(task, tmp_path, monkeypatch)
    assert meta["step"] == 4 and meta["gradient_steps"] == 4 * PER_ROLLOUT  # resumed after rollout 4, not from 0
    assert meta["loop"]["env"] is not None and meta["env_reseeded_at"] == []
    # walkers mid-episode (some since the start, some since a fall): their states and generators are saved
    elapsed = tensors["ppo.env.elapsed"]
    assert elapsed.shape == (8,) and int(elapsed.max()) == 4 * 16 and int(elapsed.min()) > 0
    assert _same_weights(straight, resumed)
    assert _ledger(resumed) == _ledger(straight)
    np.testing.assert_equal(resumed.policy.history, straight.policy.history)


def test_ppo_on_a_generic_env_is_reseeded_on_resume_and_says_so(tmp_path, monkeypatch):
    task = make_task("cartpole", {})
    assert not make_sb3_vecenv(task, 2, 0).resumable
    straight = _train(task)
    resumed, (_, meta) = _killed_then_resumed(task, tmp_path, monkeypatch)
    assert meta["step"] == 4 and meta["loop"]["env"] is None
    assert not _same_weights(straight, resumed)  # fresh episodes after the resume: not the uninterrupted run
    assert _ledger(resumed) == _ledger(straight)  # the budget is spent the same
    final = latest_training_state(tmp_path / "train-0")[1]
    assert final["step"] == ITERATIONS and final["env_reseeded_at"] == [4]  # recorded in the checkpoint
    # the re-seeding is drawn from the restored generator: resuming the same checkpoint twice agrees
    again, _ = _killed_then_resumed(task, tmp_path / "again", monkeypatch)
    assert _same_weights(resumed, again)


def test_a_ppo_checkpoint_of_another_config_is_refused(tmp_path, monkeypatch):
    task = make_task("mountain", {"reward": "gait"})
    with monkeypatch.context() as m:
        _kill_in_rollout(m, 5)
        with checkpointing(tmp_path, every=EVERY), pytest.raises(Killed):
            _train(task)
    with checkpointing(tmp_path, every=EVERY), pytest.raises(UserError) as err:
        _train(task, {**HP, "lr": 1e-3})
    assert "\n" not in str(err.value) and "another ppo config" in str(err.value) and "params" in str(err.value)
