"""The batched, KV-cached rollout Policy for a trained predictor.

`act` serves B environments with one new token each: the model's `step` writes the token's
keys and values into each env's rolling K-slot cache and attends over it, which equals
recomputing the env's last K-step window. Each env has its own condition (from its target)
and its own torch.Generator (seed + env index); noise is drawn per env in chunks, so a
batched rollout and one-env-at-a-time rollouts with matching seeds take the same actions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from metatoken.models.conditions import Condition

NOISE_CHUNK = 64  # steps of noise drawn per env generator at a time


class PredictorPolicy:
    """A trained predictor acting for B envs at once; sampling by default."""

    def __init__(self, model: nn.Module, condition: Condition):
        self.model = model.eval()
        self.condition = condition
        self.conditioned = condition.dim > 0
        self.last_params: torch.Tensor | None = None  # (B, P) distribution of the last act
        self.reset(1, target=np.zeros(1) if self.conditioned else None)

    def reset(self, num_envs: int, *, target=None, seed: int = 0, deterministic: bool = False) -> None:
        """Start B episodes; `target` (B,) is the commanded return per env (conditioned only)."""
        if self.conditioned and target is None:
            raise ValueError("a conditioned policy needs a target (commanded return) per environment")
        B, head = num_envs, self.model.head
        self.device = next(self.model.parameters()).device  # generators and numpy stay on the CPU
        self.num_envs, self.deterministic = B, deterministic
        self._start = self.condition.start(target, B).astype(np.float32)  # (B, Dc)
        self.cond = self._start.copy()
        self.t = torch.zeros(B, dtype=torch.long, device=self.device)
        self.prev = torch.zeros((B,) if head.discrete else (B, head.act_dim), device=self.device,
                                dtype=torch.long if head.discrete else torch.float32)
        self.cache = self.model.init_cache(B)
        self._gens = [torch.Generator().manual_seed(int(seed) + i) for i in range(B)]
        self._noise = torch.empty(0)
        self._noise_pos = NOISE_CHUNK

    def _next_noise(self) -> torch.Tensor:
        if self._noise_pos == NOISE_CHUNK:
            head = self.model.head
            noise = torch.stack([head.draw_noise(NOISE_CHUNK, g) for g in self._gens], 1)  # (chunk, B, n)
            self._noise = noise.to(self.device)
            self._noise_pos = 0
        self._noise_pos += 1
        return self._noise[self._noise_pos - 1]  # (B, n)

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, *action_shape) for observations (B, *obs_shape)."""
        o = torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(self.num_envs, -1).to(self.device)  # (B, O)
        cond = torch.from_numpy(self.cond).to(self.device)  # (B, Dc)
        params = self.model.step(self.cache, o, self.prev, cond, self.t)  # (B, P)
        noise = None if self.deterministic else self._next_noise()
        action = self.model.head.sample(params, noise, self.deterministic)
        self.last_params, self.prev = params, action
        return action.cpu().numpy()

    def observe(self, reward: np.ndarray, done: np.ndarray) -> None:
        """Count the condition down by the reward; envs that finished start a fresh episode."""
        self.cond = self.condition.update(self.cond, np.asarray(reward, np.float32))
        self.t += 1
        done = np.asarray(done, bool)
        if done.any():
            self.cond[done] = self._start[done]
            self.t[torch.from_numpy(done).to(self.device)] = 0

    def save(self, directory: Path) -> None:
        """Weights as safetensors plus a JSON config (see models.checkpoint)."""
        from metatoken.models.checkpoint import save

        save(Path(directory), self.model, self.condition)
