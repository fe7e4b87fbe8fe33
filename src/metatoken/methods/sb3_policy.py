"""A trained stable-baselines3 actor-critic as our batched, seeded Policy.

Sampling uses the SB3 policy's own action distribution but our noise: one torch.Generator
per environment (seed + env index), so evaluation is reproducible and independent of SB3's
global RNG. Saved as safetensors plus JSON (never SB3's pickled zip).
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

    def __init__(self, policy: ActorCriticPolicy, net_arch: list[int], activation: str):
        self.policy = policy.eval()
        self.net_arch, self.activation = list(net_arch), activation
        self.discrete = isinstance(policy.action_space, spaces.Discrete)
        self._params: tuple[torch.Tensor, ...] = ()
        self.reset(1)

    def reset(self, num_envs: int, *, target=None, seed: int = 0, deterministic: bool = False) -> None:
        self.num_envs, self.deterministic = num_envs, deterministic
        self._gens = [torch.Generator().manual_seed(int(seed) + i) for i in range(num_envs)]

    def _noise(self, dim: int) -> torch.Tensor:
        draw = torch.rand if self.discrete else torch.randn
        return torch.stack([draw(dim, generator=g) for g in self._gens])  # (B, dim)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, *action_shape) for observations (B, *obs_shape)."""
        o, _ = self.policy.obs_to_tensor(np.asarray(obs))
        dist = self.policy.get_distribution(o).distribution
        if self.discrete:
            logits = dist.logits  # (B, n)
            self._params = (logits,)
            if self.deterministic:
                return logits.argmax(-1).numpy()
            gumbel = -torch.log(-torch.log(self._noise(logits.shape[-1]).clamp(1e-6, 1 - 1e-6)))
            return (logits + gumbel).argmax(-1).numpy()
        mean, std = dist.mean, dist.stddev  # (B, A) each
        self._params = (mean, std)
        a = mean if self.deterministic else mean + std * self._noise(mean.shape[-1])
        space = self.policy.action_space
        return np.clip(a.numpy(), space.low, space.high)  # as SB3 clips before the env

    def action_log_prob(self, action: np.ndarray) -> np.ndarray:
        """log pi(action | obs) under the distribution of the last `act`: (B,)."""
        a = torch.as_tensor(np.asarray(action))
        if self.discrete:
            return torch.log_softmax(self._params[0], -1).gather(-1, a.long()[:, None])[:, 0].numpy()
        mean, std = self._params
        z = (a.float() - mean) / std
        return (-0.5 * z.pow(2) - std.log() - _HALF_LOG_2PI).sum(-1).numpy()

    def observe(self, reward: np.ndarray, done: np.ndarray) -> None:
        pass

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
