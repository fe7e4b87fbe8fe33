"""`ppo`: online RL with stable-baselines3 PPO on the task's own reward (sparse, dense or shaped).

The reward is whatever the task's `reward` option names; the method never sees the
reference data. It stops at the budget: whole rollouts of n_envs x n_steps that fit in
`budget.env_steps`, and no more than `budget.gradient_steps` minibatch updates.
"""

from __future__ import annotations

import math
import time
from itertools import pairwise
from typing import Literal

import numpy as np
import torch
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, Field
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

from metatoken.methods.base import METHODS, Budget, Ledger, Logger, MethodDef, TrainedPolicy
from metatoken.methods.sb3_policy import ACTIVATIONS, SB3Policy
from metatoken.methods.sb3_vecenv import make_sb3_vecenv


class PPOParams(BaseModel):
    """SB3 PPO hyperparameters (defaults: SB3's, with 8 envs)."""

    model_config = ConfigDict(extra="forbid")
    n_envs: int = Field(8, ge=1)
    n_steps: int = Field(256, ge=1, description="steps per env per rollout")
    batch_size: int = Field(256, ge=2)
    n_epochs: int = Field(10, ge=1)
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


def _schedule(value: float, kind: str):
    return value if kind == "constant" else (lambda progress_remaining: progress_remaining * value)


def mlp_flops(sizes: list[int]) -> float:
    """Forward FLOPs of one sample through an MLP with these layer widths (2 per multiply-add)."""
    return float(sum(2 * a * b for a, b in pairwise(sizes)))


class _Progress(BaseCallback):
    """Forwards progress and episode returns to our Logger under fixed names."""

    def __init__(self, logger: Logger, total: int):
        super().__init__()
        self.our_logger, self.total = logger, total

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:
                self.our_logger.scalar("charts/episodic_return", float(info["episode"]["r"]), self.num_timesteps)
        self.our_logger.progress(self.num_timesteps, self.total)
        return True


class PPOMethod:
    def __init__(self, params: PPOParams):
        self.params = params

    def train(self, task, dataset, budget: Budget, seed: int, logger: Logger) -> TrainedPolicy:
        p, t0 = self.params, time.perf_counter()
        rollout_size = p.n_envs * p.n_steps
        minibatches = math.ceil(rollout_size / p.batch_size)
        iterations = min(budget.env_steps // rollout_size, budget.gradient_steps // (p.n_epochs * minibatches))
        if iterations < 1:
            raise ValueError(f"ppo: budget too small for one update (needs env_steps >= {rollout_size} "
                             f"and gradient_steps >= {p.n_epochs * minibatches})")
        env = VecMonitor(make_sb3_vecenv(task, p.n_envs, seed))
        model = PPO("MlpPolicy", env, learning_rate=_schedule(p.lr, p.lr_schedule), n_steps=p.n_steps,
                    batch_size=p.batch_size, n_epochs=p.n_epochs, gamma=p.gamma, gae_lambda=p.gae_lambda,
                    clip_range=_schedule(p.clip_range, p.clip_schedule), ent_coef=p.ent_coef,
                    vf_coef=p.vf_coef, max_grad_norm=p.max_grad_norm, seed=seed, device="cpu", verbose=0,
                    policy_kwargs={"net_arch": {"pi": p.net_arch, "vf": p.net_arch},
                                   "activation_fn": ACTIVATIONS[p.activation]})
        grad_steps = _count_optimizer_steps(model.policy.optimizer)
        total = iterations * rollout_size
        model.learn(total_timesteps=total, callback=_Progress(logger, total))
        env.close()
        obs_dim = int(np.prod(env.observation_space.shape))
        space = env.action_space
        act_out = int(space.n) if isinstance(space, spaces.Discrete) else int(np.prod(space.shape))
        fwd = mlp_flops([obs_dim, *p.net_arch, act_out]) + mlp_flops([obs_dim, *p.net_arch, 1])
        flops = fwd * model.num_timesteps + 3 * fwd * p.batch_size * grad_steps[0]
        ledger = Ledger(online_env_steps=int(model.num_timesteps), reward_queries=int(model.num_timesteps),
                        reward_grad_share=1.0, gradient_steps=grad_steps[0],
                        wall_time_s=time.perf_counter() - t0, train_flops=flops)
        return TrainedPolicy(SB3Policy(model.policy, p.net_arch, p.activation), ledger)


def _count_optimizer_steps(opt: torch.optim.Optimizer) -> list[int]:
    """Wrap opt.step to count the gradient steps actually taken; returns the live counter."""
    count, step = [0], opt.step

    def counted(*args, **kwargs):
        count[0] += 1
        return step(*args, **kwargs)

    opt.step = counted
    return count


METHODS.register("ppo", MethodDef(PPOParams, PPOMethod),
                 "Online RL: stable-baselines3 PPO on the task's reward (sparse or dense), MLP actor-critic.")
