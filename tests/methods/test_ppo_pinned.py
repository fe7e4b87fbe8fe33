"""PPO training is pinned bit for bit: weights and learning curve after a few tiny rollouts equal a stored run's.

The digests were taken from the loop before its throughput work (commit fb63215); any change to the
maths or to the order of random draws (a reordered sample, another minibatch order, a float64 step
done in float32) changes them. Short time limits make truncated episodes bootstrap inside the run.
The digests hold for this machine's torch build (CPU kernels may round differently elsewhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import torch

from metatoken.envs import make_task
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.ppo import MOUNTAIN_PRESET

TINY = {"n_envs": 8, "n_steps": 16, "batch_size": 48, "n_epochs": 2, "net_arch": [16, 16]}


def _digest(out) -> tuple[str, float]:
    """sha256 of the trained weights (sorted by name, raw float32 bytes) and the history; and the weights' sum."""
    h, total = hashlib.sha256(), 0.0
    state = out.policy.policy.state_dict()
    for name in sorted(state):
        t = state[name].detach().contiguous()
        h.update(name.encode() + t.numpy().tobytes())
        total += float(t.double().sum())
    h.update(json.dumps(out.policy.history, sort_keys=True).encode())
    return h.hexdigest(), total


def _train(task, hp: dict, iterations: int):
    torch.set_num_threads(1)
    rollout = hp["n_envs"] * hp["n_steps"]
    budget = Budget(env_steps=iterations * rollout, gradient_steps=10**6)
    return make_method("ppo", hp).train(task, None, budget, 0, NullLogger())


def test_mountain_preset_training_is_pinned():
    # a 10-step time limit: walkers that do not fall are truncated and bootstrapped with V(final obs)
    task = dataclasses.replace(make_task("mountain", {"reward": "gait"}), max_episode_steps=10)
    out = _train(task, {**MOUNTAIN_PRESET, **TINY}, 3)
    digest, total = _digest(out)
    assert out.ledger.gradient_steps == 3 * 2 * 3  # 128 samples: minibatches of 48, 48 and 32
    assert np.isclose(total, PINNED["mountain"][1], rtol=0, atol=1e-9)
    assert digest == PINNED["mountain"][0]


def test_discrete_tanh_training_is_pinned():
    task = dataclasses.replace(make_task("cartpole", {}), max_episode_steps=12)
    out = _train(task, {**TINY, "ent_coef": 0.01, "lr_schedule": "linear", "clip_schedule": "linear"}, 2)
    digest, total = _digest(out)
    assert np.isclose(total, PINNED["cartpole"][1], rtol=0, atol=1e-9)
    assert digest == PINNED["cartpole"][0]


PINNED = {"mountain": ("7550c722b9e8f93527b03b83f74eccaaeedb279e703cc873f45d684575830558", 610.8145118550237),
          "cartpole": ("db89724ea9064a6856461ec96965a9f0db621cf027c538de2fa5b4fa234f318b", 14.949184131709899)}
