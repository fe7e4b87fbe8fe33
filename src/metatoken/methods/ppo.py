"""`ppo`: online RL with PPO on the task's own reward (sparse, dense or gait-shaped).

The reward is whatever the task's `reward` option names; the method never sees the
reference data. The network is an SB3 MLP actor-critic; collection and updates run in
`ppo_loop.py` on the task's vector env (SB3's PPO maths, batched). It stops at the budget:
whole rollouts of n_envs x n_steps that fit in `budget.env_steps`, and no more than
`budget.gradient_steps` minibatch updates. Defaults are tuned on Mountain-v1 (docs/METHODS.md).

Snapshot evaluation: with constant schedules and the env-step budget binding, a training at a smaller
budget is exactly the first iterations of one at a larger budget (`prefix_consistent`); inside
`taking_snapshots` the training saves, when it passes each smaller budget, the policy, ledger and
learning curve that a training at that budget would have returned (experiments/snapshots.py).
"""

from __future__ import annotations

import copy
import math
import time
from itertools import pairwise
from typing import Literal

import numpy as np
import torch
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, Field
from stable_baselines3.common.policies import ActorCriticPolicy

from metatoken import seeds
from metatoken.methods.base import METHODS, Budget, Ledger, Logger, MethodDef, TrainedPolicy, snapshot_request
from metatoken.methods.ppo_loop import OBS_EPS, PPOLoop, fold_obs_normalisation
from metatoken.methods.sb3_policy import ACTIVATIONS, SB3Policy
from metatoken.methods.sb3_vecenv import make_sb3_vecenv


class PPOParams(BaseModel):
    """PPO hyperparameters (defaults: the Mountain-v1 tuning in docs/METHODS.md, less MOUNTAIN_PRESET)."""

    model_config = ConfigDict(extra="forbid")
    n_envs: int = Field(256, ge=1)
    n_steps: int = Field(64, ge=1, description="steps per env per rollout")
    batch_size: int = Field(4096, ge=2)
    n_epochs: int = Field(4, ge=1)
    lr: float = Field(3e-4, gt=0)
    lr_schedule: Literal["constant", "linear"] = "constant"
    clip_range: float = Field(0.2, gt=0)
    clip_schedule: Literal["constant", "linear"] = "constant"
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    ent_coef: float = Field(0.0, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    net_arch: list[int] = Field([64, 64], min_length=1)
    activation: Literal["tanh", "relu"] = "tanh"
    log_std_init: float = Field(-1.0, description="initial log-std of a Gaussian policy (0 = SB3's sigma 1)")
    normalize_obs: bool = Field(False, description="running obs normalisation, folded into the saved network")
    normalize_reward: bool = Field(False, description="divide rewards by the running std of the return")
    env_steps: int | None = Field(None, ge=1, description="this entry's own env-step cap, below the spec's "
                                  "budget (lets one spec hold PPO at several budgets)")


# The tuned Mountain-v1 configuration is the defaults plus these (the search: docs/PERFORMANCE.md,
# "PPO on Mountain-v1"). They are not the defaults: obs normalisation stops the zoo's CartPole-v1
# hyperparameters from solving it in 60k steps, and the demo's ppo keeps the tanh network it was
# stored with. 10 epochs over minibatches of 2,048 give 5x the updates per rollout of the defaults;
# relu keeps that affordable (torch's CPU tanh costs ~10x relu per element here).
MOUNTAIN_PRESET = {"normalize_obs": True, "normalize_reward": True, "activation": "relu",
                   "batch_size": 2048, "n_epochs": 10}


def _schedule(value: float, kind: str):
    return (lambda _: value) if kind == "constant" else (lambda progress_remaining: progress_remaining * value)


def mlp_flops(sizes: list[int]) -> float:
    """Forward FLOPs of one sample through an MLP with these layer widths (2 per multiply-add)."""
    return float(sum(2 * a * b for a, b in pairwise(sizes)))


def build_network(obs_space, act_space, p: PPOParams) -> ActorCriticPolicy:
    """SB3's MLP actor-critic (separate pi and vf nets), as `load_sb3_policy` rebuilds it."""
    return ActorCriticPolicy(obs_space, act_space, lambda _: 0.0,
                             net_arch={"pi": list(p.net_arch), "vf": list(p.net_arch)},
                             activation_fn=ACTIVATIONS[p.activation], log_std_init=p.log_std_init)


class PPOMethod:
    def __init__(self, params: PPOParams):
        self.params = params

    def _fitting(self, budget: Budget) -> int:
        """Whole rollouts that fit both the env-step (the entry's cap included) and the gradient-step budget."""
        p = self.params
        rollout_size = p.n_envs * p.n_steps
        env_steps = budget.env_steps if p.env_steps is None else min(budget.env_steps, p.env_steps)
        return min(env_steps // rollout_size, budget.gradient_steps // (p.n_epochs * self._minibatches()))

    def _minibatches(self) -> int:
        return math.ceil(self.params.n_envs * self.params.n_steps / self.params.batch_size)

    def iterations(self, budget: Budget) -> int:
        """Whole rollouts that fit both the env-step and the gradient-step budget (at least one)."""
        p = self.params
        rollout_size, minibatches = p.n_envs * p.n_steps, self._minibatches()
        iterations = self._fitting(budget)
        if iterations < 1:
            raise ValueError(f"ppo: budget too small for one update (needs env_steps >= {rollout_size} "
                             f"and gradient_steps >= {p.n_epochs * minibatches})")
        return iterations

    def prefix_consistent(self, budgets: list[Budget]) -> bool:
        """True when a training at each budget is a prefix of the largest's: constant schedules (a linear one
        depends on the total) and, at every budget, the env-step budget setting the iterations."""
        p = self.params
        if p.lr_schedule != "constant" or p.clip_schedule != "constant":
            return False
        by_env = [b.env_steps // (p.n_envs * p.n_steps) for b in budgets]
        # neither gradient_steps nor the entry's own env_steps cap may set the iteration count
        return all(n >= 1 and self._fitting(b) == n for b, n in zip(budgets, by_env, strict=True))

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        iterations = self.iterations(budget)
        torch.manual_seed(seeds.training(seed))  # network initialisation
        env = make_sb3_vecenv(task, p.n_envs, seed)
        net = build_network(env.observation_space, env.action_space, p)
        loop = PPOLoop(env, net, p, seeds.auxiliary(seed), logger,
                       _schedule(p.lr, p.lr_schedule), _schedule(p.clip_range, p.clip_schedule))
        budgets, save = snapshot_request() or ((), None)
        at: dict[int, list[Budget]] = {}  # iteration -> the smaller budgets that stop there
        for b in budgets:
            at.setdefault(self.iterations(b), []).append(b)
        saving = 0.0  # seconds spent writing snapshots: not training time

        def snapshot(done: int) -> None:
            nonlocal saving
            for b in at.get(done, ()):
                t1 = time.perf_counter()
                save(b, self._trained(loop, env, _folded_copy(loop), time.perf_counter() - t0 - saving))
                saving += time.perf_counter() - t1

        loop.run(iterations, snapshot if at else None)
        env.close()
        return self._trained(loop, env, net, time.perf_counter() - t0 - saving)

    def _trained(self, loop: PPOLoop, env, net: ActorCriticPolicy, wall_time_s: float) -> TrainedPolicy:
        """The policy `net` with the ledger of the loop's training so far."""
        p = self.params
        obs_dim = int(np.prod(env.observation_space.shape))
        space = env.action_space
        act_out = int(space.n) if isinstance(space, spaces.Discrete) else int(np.prod(space.shape))
        fwd = mlp_flops([obs_dim, *p.net_arch, act_out]) + mlp_flops([obs_dim, *p.net_arch, 1])
        flops = fwd * loop.env_steps + 3 * fwd * p.batch_size * loop.gradient_steps
        ledger = Ledger(online_env_steps=loop.env_steps, reward_queries=loop.env_steps,
                        reward_update_share=1.0, gradient_steps=loop.gradient_steps,
                        wall_time_s=wall_time_s, train_flops=flops)
        policy = SB3Policy(net, p.net_arch, p.activation, history=list(loop.history))
        return TrainedPolicy(policy, ledger, curve=list(loop.history))


def _folded_copy(loop: PPOLoop) -> ActorCriticPolicy:
    """The loop's network as a training that stopped here returns it: a copy, obs normalisation folded in."""
    net = copy.deepcopy(loop.policy)
    if loop.obs_rms is not None:  # the same arithmetic as the end of PPOLoop.run
        fold_obs_normalisation(net, loop.obs_rms.mean, np.sqrt(loop.obs_rms.var + OBS_EPS))
    return net

METHODS.register("ppo", MethodDef(PPOParams, PPOMethod),
                 "Online RL: PPO (batched loop, SB3 network) on the task's reward (sparse or dense), MLP actor-critic.")
