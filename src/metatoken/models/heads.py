"""Action heads and input normalisation shared by the transformer and the MLP predictor.

Heads output distribution parameters in normalised action units; `sample` turns them and
pre-drawn noise into environment actions. Sampling is a pure function of the noise, so a
batched rollout and a one-episode rollout with the same per-episode generator agree.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HeadKind = Literal["categorical", "gaussian", "tanh"]
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_EPS = 1e-6
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class ObsNormalizer(nn.Module):
    """(obs - mean) / std with statistics fitted on the reference data and saved as buffers."""

    def __init__(self, obs_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))

    def fit(self, obs: np.ndarray) -> None:
        """Set mean and std from (N, obs_dim) observations (std floored to avoid blow-ups)."""
        obs = torch.as_tensor(obs, dtype=torch.float32).reshape(len(obs), -1)
        self.mean.copy_(obs.mean(0))
        self.std.copy_(obs.std(0, unbiased=False).clamp_min(1e-3))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.mean) / self.std


class ActionHead(nn.Module):
    """Categorical (discrete) or Gaussian / tanh-squashed Gaussian with learned state-dependent std."""

    def __init__(self, d_in: int, act_dim: int, kind: HeadKind):
        super().__init__()
        self.kind, self.act_dim = kind, act_dim
        out = act_dim if kind == "categorical" else 2 * act_dim
        self.proj = nn.Linear(d_in, out)
        # Continuous actions live in [-1, 1] (tanh) or are standardised (gaussian) by loc/scale.
        self.register_buffer("loc", torch.zeros(act_dim))
        self.register_buffer("scale", torch.ones(act_dim))

    @property
    def discrete(self) -> bool:
        return self.kind == "categorical"

    @property
    def noise_dim(self) -> int:
        """Uniform noise per step for Gumbel-max (discrete) or standard normal noise (continuous)."""
        return self.act_dim

    def fit(self, actions: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> None:
        """Action normalisation: the space's bounds when finite, else data mean and std."""
        if self.discrete:
            return
        a = torch.as_tensor(actions, dtype=torch.float32).reshape(len(actions), -1)
        bounded = low is not None and np.all(np.isfinite(low)) and np.all(np.isfinite(high))
        if bounded:
            lo, hi = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
            self.loc.copy_((hi + lo) / 2)
            self.scale.copy_(((hi - lo) / 2).clamp_min(1e-6))
        elif self.kind == "tanh":
            raise ValueError("a tanh head needs finite action bounds; use the gaussian head")
        else:
            self.loc.copy_(a.mean(0))
            self.scale.copy_(a.std(0, unbiased=False).clamp_min(1e-3))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Distribution parameters: logits (..., n) or (mean, log_std) as (..., 2A)."""
        out = self.proj(h)
        if self.discrete:
            return out
        mu, log_std = out.chunk(2, dim=-1)
        return torch.cat([mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)], dim=-1)

    def nll(self, params: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per position of environment-unit actions: (...,)."""
        if self.discrete:
            flat = params.reshape(-1, self.act_dim)  # (N, n)
            return F.cross_entropy(flat, action.reshape(-1).long(), reduction="none").view(action.shape)
        mu, log_std = params.chunk(2, dim=-1)  # (..., A) each
        y = (action - self.loc) / self.scale
        if self.kind == "tanh":
            y = y.clamp(-1 + _EPS, 1 - _EPS)
            u = torch.atanh(y)
            log_det = torch.log1p(-y.pow(2) + _EPS)  # d tanh(u)/du = 1 - y^2
        else:
            u, log_det = y, torch.zeros_like(y)
        z = (u - mu) * torch.exp(-log_std)
        logp = -0.5 * z.pow(2) - log_std - _HALF_LOG_2PI - log_det
        return -logp.sum(-1)

    def sample(self, params: torch.Tensor, noise: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Environment actions from parameters (B, P) and noise (B, noise_dim)."""
        if self.discrete:
            if deterministic:
                return params.argmax(-1)
            gumbel = -torch.log(-torch.log(noise.clamp(_EPS, 1 - _EPS)))  # (B, n)
            return (params + gumbel).argmax(-1)
        mu, log_std = params.chunk(2, dim=-1)
        u = mu if deterministic else mu + log_std.exp() * noise  # (B, A)
        y = torch.tanh(u) if self.kind == "tanh" else u
        return self.loc + self.scale * y

    def draw_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n steps of noise for one episode from its own generator: (n, noise_dim)."""
        if self.discrete:
            return torch.rand(n, self.noise_dim, generator=generator)
        return torch.randn(n, self.noise_dim, generator=generator)
