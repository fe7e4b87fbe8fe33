"""The MLP predictor (RvS-style): action from (observation, condition) alone, no history.

It shares the transformer's interface (forward over (B, T) windows, `step` with a cache)
so the same training loop, policy and checkpoint code serve both; its context is 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from metatoken.models.heads import ActionHead, HeadKind, ObsNormalizer
from metatoken.models.hooks import HookPoint, name_hook_points


@dataclass
class MLPConfig:
    obs_dim: int
    act_dim: int
    head: HeadKind = "tanh"
    cond_dim: int = 0
    hidden: int = 256
    n_layers: int = 2
    dropout: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


class MLPPredictor(nn.Module):
    """[normalised obs, condition] -> hidden ReLU layers -> action head."""

    kind = "mlp"

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.obs_norm = ObsNormalizer(cfg.obs_dim)
        layers: list[nn.Module] = []
        width = cfg.obs_dim + cfg.cond_dim
        for _ in range(cfg.n_layers):
            layers += [nn.Linear(width, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden
        self.body = nn.Sequential(*layers)
        self.head = ActionHead(width, cfg.act_dim, cfg.head)
        self.hook_cond_embed = HookPoint()  # (..., Dc) the raw condition as the MLP sees it
        self.hook_hidden = HookPoint()  # (..., hidden)
        name_hook_points(self)

    @property
    def context(self) -> int:
        return 1

    def forward(self, obs, prev_action, cond, timestep) -> torch.Tensor:
        """Parameters (..., P) from obs (..., O) and cond (..., Dc); history is ignored."""
        x = torch.cat([self.obs_norm(obs), self.hook_cond_embed(cond)], dim=-1)  # (..., O + Dc)
        return self.head(self.hook_hidden(self.body(x)))

    def forward_episodes(self, obs, prev_action, cond, timestep) -> torch.Tensor:
        """Parameters at every step of whole episodes: (B, T, P); history is ignored, so this is `forward`."""
        return self.forward(obs, prev_action, cond, timestep)

    def init_cache(self, num_envs: int) -> None:
        return None

    def step(self, cache, obs, prev_action, cond, timestep) -> torch.Tensor:
        """(B, P) for one step; stateless."""
        return self.forward(obs, prev_action, cond, timestep)

    def act(self, cache, obs, prev_action, cond, timestep, noise: torch.Tensor | None):
        """(params (B, P), action) for one step: sampled with `noise`, or the mode where noise is None."""
        params = self.forward(obs, prev_action, cond, timestep)  # (B, P)
        return params, self.head.sample(params, noise, noise is None)

    def flops_per_token(self) -> float:
        c = self.cfg
        width, total = c.obs_dim + c.cond_dim, 0.0
        for _ in range(c.n_layers):
            total += 2 * width * c.hidden
            width = c.hidden
        return total + 2 * width * (c.act_dim if c.head == "categorical" else 2 * c.act_dim)
