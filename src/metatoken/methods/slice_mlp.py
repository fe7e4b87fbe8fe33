"""A minimal return-conditioned MLP predictor (RvS-style) and its batched policy.

This is the end-to-end slice's predictor: pi(a | s, g) where g is the normalised
return-to-go, or no condition at all for behaviour cloning. The condition-token
transformer in `metatoken.models` is the full version.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces
from safetensors.torch import load_file, save_file
from torch import nn

from metatoken.data.dataset import Dataset
from metatoken.methods.base import Budget, Ledger, Logger, TrainedPolicy


@dataclass
class MLPConfig:
    obs_dim: int
    act_dim: int  # number of actions (discrete) or action dimensions (continuous)
    discrete: bool
    conditioned: bool
    hidden: int = 64
    return_scale: float = 1.0  # returns are divided by this before entering the net


class MLPPredictor(nn.Module):
    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        inp = cfg.obs_dim + (1 if cfg.conditioned else 0)
        self.net = nn.Sequential(
            nn.Linear(inp, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.act_dim),
        )
        self.log_std = nn.Parameter(torch.zeros(cfg.act_dim))

    def distribution(self, obs: torch.Tensor, rtg: torch.Tensor | None):
        x = obs.flatten(1)  # (B, obs_dim)
        if self.cfg.conditioned:
            x = torch.cat([x, (rtg / self.cfg.return_scale)[:, None]], dim=1)  # (B, obs_dim+1)
        out = self.net(x)  # (B, act_dim)
        if self.cfg.discrete:
            return torch.distributions.Categorical(logits=out)
        return torch.distributions.Independent(torch.distributions.Normal(out, self.log_std.exp()), 1)


class MLPPolicy:
    """Serves B envs; keeps each env's return-to-go current from the rewards it observes."""

    def __init__(self, model: MLPPredictor):
        self.model = model.eval()
        self.conditioned = model.cfg.conditioned
        self._rtg = None
        self._gen = torch.Generator().manual_seed(0)
        self._deterministic = False

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        if self.conditioned and target is None:
            raise ValueError("a conditioned policy needs a target per environment")
        self._rtg = None if target is None else torch.as_tensor(target, dtype=torch.float32).clone()
        self._gen = torch.Generator().manual_seed(int(seed))
        self._deterministic = deterministic

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        dist = self.model.distribution(torch.as_tensor(obs, dtype=torch.float32), self._rtg)
        if self.model.cfg.discrete:
            if self._deterministic:
                return dist.probs.argmax(-1).numpy()
            return torch.multinomial(dist.probs, 1, generator=self._gen)[:, 0].numpy()
        mean, std = dist.base_dist.loc, dist.base_dist.scale  # (B, act_dim)
        if self._deterministic:
            return mean.numpy()
        return (mean + std * torch.randn(mean.shape, generator=self._gen)).numpy()

    def observe(self, reward, done) -> None:
        if self._rtg is not None:
            self._rtg -= torch.as_tensor(reward, dtype=torch.float32)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        save_file(self.model.state_dict(), str(directory / "weights.safetensors"))
        (directory / "config.json").write_text(json.dumps({"kind": "mlp", **asdict(self.model.cfg)}))

    @staticmethod
    def load(directory: Path) -> "MLPPolicy":
        cfg = json.loads((Path(directory) / "config.json").read_text())
        cfg.pop("kind")
        model = MLPPredictor(MLPConfig(**cfg))
        model.load_state_dict(load_file(str(Path(directory) / "weights.safetensors")))
        return MLPPolicy(model)


def train_mlp(
    dataset: Dataset, budget: Budget, seed: int, logger: Logger, *, conditioned: bool,
    hidden: int, lr: float, batch_size: int,
) -> TrainedPolicy:
    """Maximum likelihood of the data's actions given state (and return-to-go)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    obs, act, rtg = dataset.transitions()
    discrete = isinstance(dataset.action_space, spaces.Discrete)
    act_dim = int(dataset.action_space.n) if discrete else int(np.prod(dataset.action_space.shape))
    scale = float(max(np.abs(dataset.returns()).max(), 1e-6))
    cfg = MLPConfig(int(np.prod(obs.shape[1:])), act_dim, discrete, conditioned, hidden, scale)
    model = MLPPredictor(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    act_t = torch.as_tensor(act, dtype=torch.long if discrete else torch.float32)
    rtg_t = torch.as_tensor(rtg, dtype=torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    for step in range(budget.gradient_steps):
        idx = torch.as_tensor(gen.integers(0, len(obs_t), size=batch_size))
        loss = -model.distribution(obs_t[idx], rtg_t[idx]).log_prob(act_t[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == budget.gradient_steps - 1:
            logger.scalar("losses/action_nll", loss.item(), step)
            logger.progress(step + 1, budget.gradient_steps)
    ledger = Ledger(
        gradient_steps=budget.gradient_steps,
        wall_time_s=time.perf_counter() - start,
        train_flops=6.0 * n_params * batch_size * budget.gradient_steps,  # fwd+bwd ≈ 6·N per sample
    )
    return TrainedPolicy(MLPPolicy(model), ledger)
