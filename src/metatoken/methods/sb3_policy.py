"""A trained stable-baselines3 actor-critic as our batched, seeded Policy.

Sampling uses the SB3 policy's own action distribution but our noise: one torch.Generator
per environment (seed + env index, or one given seed per env), so evaluation is reproducible
and independent of SB3's global RNG. It is a `ScoredPolicy` (memoryless, so teacher forcing
only evaluates the distribution at the given observation). Saved as safetensors plus JSON
(never SB3's pickled zip).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from safetensors.torch import load_file, save_file
from stable_baselines3.common.policies import ActorCriticPolicy

from metatoken.policy import ActionDistribution, Seeds, env_seeds

WEIGHTS, CONFIG = "model.safetensors", "config.json"
_HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Discrete):
        return {"type": "discrete", "n": int(space.n)}
    if isinstance(space, spaces.Box):
        return {"type": "box", "low": space.low.tolist(), "high": space.high.tolist(),
                "shape": list(space.shape), "dtype": str(space.dtype)}
    raise ValueError(f"unsupported space {space}")


def space_from_json(d: dict[str, Any]) -> spaces.Space:
    if d["type"] == "discrete":
        return spaces.Discrete(d["n"])
    low = np.array(d["low"], dtype=d["dtype"]).reshape(d["shape"])
    high = np.array(d["high"], dtype=d["dtype"]).reshape(d["shape"])
    return spaces.Box(low, high, tuple(d["shape"]), np.dtype(d["dtype"]))


class SB3Policy:
    """An SB3 ActorCriticPolicy acting for B envs; Gaussian (clipped to bounds) or categorical."""

    conditioned = False

    def __init__(self, policy: ActorCriticPolicy, net_arch: list[int], activation: str,
                 history: list[dict[str, float]] | None = None):
        self.policy = policy.eval()
        self.net_arch, self.activation = list(net_arch), activation
        self.history = list(history or [])  # the training curve (one row per PPO iteration); not saved
        self.discrete = isinstance(policy.action_space, spaces.Discrete)
        self._params: tuple[torch.Tensor, ...] = ()
        self.reset(1)

    def reset(self, num_envs: int, *, target=None, seed: Seeds = 0, deterministic: bool = False) -> None:
        """Start B episodes with one noise generator per env."""
        self.num_envs, self.deterministic = num_envs, deterministic
        self._gens = [torch.Generator().manual_seed(s) for s in env_seeds(seed, num_envs)]

    def _noise(self, dim: int) -> torch.Tensor:
        draw = torch.rand if self.discrete else torch.randn
        return torch.stack([draw(dim, generator=g) for g in self._gens])  # (B, dim)

    @torch.no_grad()
    def _score(self, obs: np.ndarray) -> None:
        """Evaluate SB3's distribution at obs and keep its parameters."""
        o, _ = self.policy.obs_to_tensor(np.asarray(obs))
        dist = self.policy.get_distribution(o).distribution
        self._params = (dist.logits,) if self.discrete else (dist.mean, dist.stddev)  # (B, n) or (B, A) x 2

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, *action_shape) for observations (B, *obs_shape)."""
        self._score(obs)
        if self.discrete:
            logits = self._params[0]  # (B, n)
            if self.deterministic:
                return logits.argmax(-1).numpy()
            gumbel = -torch.log(-torch.log(self._noise(logits.shape[-1]).clamp(1e-6, 1 - 1e-6)))
            return (logits + gumbel).argmax(-1).numpy()
        mean, std = self._params  # (B, A) each
        a = mean if self.deterministic else mean + std * self._noise(mean.shape[-1])
        space = self.policy.action_space
        return np.clip(a.numpy(), space.low, space.high)  # as SB3 clips before the env

    def teacher_force(self, obs: np.ndarray, action: np.ndarray) -> None:
        """Score obs as `act` would, without sampling (the policy keeps no history of actions)."""
        self._score(obs)

    def distribution(self) -> ActionDistribution:
        """Categorical logits, or the Gaussian in half-range units clipped to the action bounds."""
        if self.discrete:
            return ActionDistribution("categorical", self._params[0])
        space, (mean, std) = self.policy.action_space, self._params
        low, high = (torch.as_tensor(b, dtype=torch.float32).reshape(-1) for b in (space.low, space.high))
        if not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):  # SB3 clips only to finite bounds
            return ActionDistribution("gaussian", torch.cat([mean, std.log()], -1), torch.zeros_like(low),
                                      torch.ones_like(low))
        loc, scale = (high + low) / 2, (high - low) / 2  # (A,) each
        return ActionDistribution("clipped", torch.cat([(mean - loc) / scale, std.log() - scale.log()], -1), loc, scale)

    def log_prob(self, action: np.ndarray) -> np.ndarray:
        """log pi(action | obs) under the distribution of the last `act`: (B,).

        Continuous: the Gaussian density at the (clipped) env action; at a bound the true
        distribution has a point mass, so there this is a density, not a probability."""
        a = torch.as_tensor(np.asarray(action))
        if self.discrete:
            logp = torch.log_softmax(self._params[0], -1).gather(-1, a.long()[:, None])[:, 0]  # (B,)
        else:
            mean, std = self._params
            z = (a.float() - mean) / std
            logp = (-0.5 * z.pow(2) - std.log() - _HALF_LOG_2PI).sum(-1)  # (B,)
        return logp.numpy().astype(np.float64)

    def observe(self, reward: np.ndarray, done: np.ndarray) -> None:
        """Nothing to update: the policy is memoryless and unconditioned."""

    def save(self, directory: Path) -> None:
        """Weights as safetensors plus a JSON config with the spaces and architecture."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"format": 1, "kind": "sb3-actor-critic", "net_arch": self.net_arch,
                  "activation": self.activation,
                  "observation_space": space_to_json(self.policy.observation_space),
                  "action_space": space_to_json(self.policy.action_space)}
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.policy.state_dict().items()}
        save_file(tensors, str(directory / (WEIGHTS + ".tmp")))
        (directory / (CONFIG + ".tmp")).write_text(json.dumps(config, indent=2))
        os.replace(directory / (WEIGHTS + ".tmp"), directory / WEIGHTS)
        os.replace(directory / (CONFIG + ".tmp"), directory / CONFIG)


ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


def build_actor_critic(obs_space, act_space, net_arch: list[int], activation: str) -> ActorCriticPolicy:
    """An SB3 MLP actor-critic with separate pi and vf networks of `net_arch`."""
    return ActorCriticPolicy(obs_space, act_space, lambda _: 0.0,
                             net_arch={"pi": list(net_arch), "vf": list(net_arch)},
                             activation_fn=ACTIVATIONS[activation])


def load_sb3_policy(directory: Path) -> SB3Policy:
    """Rebuild an SB3Policy from `save`'s files (safetensors, no pickle)."""
    directory = Path(directory)
    config = json.loads((directory / CONFIG).read_text())
    net = build_actor_critic(space_from_json(config["observation_space"]),
                             space_from_json(config["action_space"]), config["net_arch"], config["activation"])
    net.load_state_dict(load_file(str(directory / WEIGHTS)))
    return SB3Policy(net, config["net_arch"], config["activation"])
