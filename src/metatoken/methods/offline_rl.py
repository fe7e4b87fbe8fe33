"""`iql` and `cql`: offline RL from the reference data through d3rlpy (an optional extra).

IQL (implicit Q-learning, continuous actions) and discrete CQL (conservative Q-learning) learn
from the same immutable reference data as the imitation recipes, but weigh it by the data's
rewards: offline *RL*. They read every reward label in the data and take no online step.

Our side of the seam: the Dataset becomes a d3rlpy MDPDataset with observations standardised by
the data's mean/std and continuous actions mapped to [-1, 1] from the action bounds (d3rlpy's own
scalers are not used, so the saved policy needs nothing but its tensors and a JSON config).
The policy acts for B envs with one torch generator per env. Saved as safetensors + JSON: d3rlpy's
`save_model` / `save` write `torch.save` / pickle archives, and loading those unpickles.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file

from metatoken.data.dataset import Dataset
from metatoken.errors import UserError
from metatoken.methods.base import METHODS, Budget, Ledger, MethodDef, TrainedPolicy
from metatoken.seeds import training

WEIGHTS, CONFIG = "model.safetensors", "config.json"
KINDS = {"iql": "d3rlpy-iql", "cql": "d3rlpy-discrete-cql"}


def require_d3rlpy(method_id: str):
    """The d3rlpy module, or a UserError saying how to install it."""
    try:
        import d3rlpy
    except ImportError as exc:
        raise UserError(f"method '{method_id}' needs d3rlpy: pip install 'metatoken[offline]' ({exc})") from None
    import structlog

    # d3rlpy configures structlog on import and logs every epoch at info level to stdout: keep
    # its processors, drop everything below a warning
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return d3rlpy


@dataclasses.dataclass
class OfflineLedger(Ledger):
    """The ledger plus the reward labels an offline RL method read from its data."""

    reward_labels: int = 0


class OfflineRLParams(BaseModel):
    """Shared by iql and cql."""

    model_config = ConfigDict(extra="forbid")
    hidden: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    batch_size: int = Field(256, ge=1)
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    lr: float = Field(3e-4, gt=0.0)


class IQLParams(OfflineRLParams):
    expectile: float = Field(0.7, gt=0.0, lt=1.0)
    weight_temp: float = Field(3.0, gt=0.0)  # inverse temperature of the advantage weights
    max_weight: float = Field(100.0, gt=0.0)
    n_critics: int = Field(2, ge=1)


class CQLParams(OfflineRLParams):
    lr: float = Field(1e-3, gt=0.0)
    alpha: float = Field(1.0, ge=0.0)  # weight of the conservative (logsumexp Q - Q(data)) term
    target_update_interval: int = Field(1000, ge=1)
    n_critics: int = Field(1, ge=1)
    temperature: float = Field(1.0, gt=0.0)  # the sampled policy is softmax(Q / temperature)


# ------------------------------------------------------------------ data

@dataclasses.dataclass(frozen=True)
class Preprocess:
    """What maps env observations/actions to the networks' inputs/outputs (saved with the policy)."""

    obs_mean: np.ndarray  # (D,)
    obs_std: np.ndarray  # (D,)
    action_low: np.ndarray | None  # (A,) continuous only
    action_high: np.ndarray | None

    def obs(self, obs: np.ndarray) -> np.ndarray:
        """Flattened, standardised observations (N, D) as float32."""
        flat = np.asarray(obs, np.float32).reshape(len(obs), -1)
        return ((flat - self.obs_mean) / self.obs_std).astype(np.float32)

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        """Env actions -> [-1, 1]."""
        return (2.0 * (actions - self.action_low) / (self.action_high - self.action_low) - 1.0).astype(np.float32)

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """[-1, 1] -> env actions."""
        return self.action_low + (np.clip(unit, -1.0, 1.0) + 1.0) * 0.5 * (self.action_high - self.action_low)


def fit_preprocess(dataset: Dataset) -> Preprocess:
    """Observation mean/std from the data; action bounds from the action space (the data's range where a
    bound is infinite)."""
    obs = np.concatenate([e.observations[:-1] for e in dataset.episodes]).reshape(dataset.total_steps, -1)
    std = obs.std(0)
    if isinstance(dataset.action_space, spaces.Discrete):
        return Preprocess(obs.mean(0).astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32), None, None)
    acts = np.concatenate([e.actions for e in dataset.episodes]).reshape(dataset.total_steps, -1)
    low = np.where(np.isfinite(dataset.action_space.low.ravel()), dataset.action_space.low.ravel(), acts.min(0))
    high = np.where(np.isfinite(dataset.action_space.high.ravel()), dataset.action_space.high.ravel(), acts.max(0))
    return Preprocess(obs.mean(0).astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32),
                      low.astype(np.float32), np.maximum(high, low + 1e-6).astype(np.float32))


def to_mdp_dataset(dataset: Dataset, pre: Preprocess, d3rlpy):
    """Our Dataset as a d3rlpy MDPDataset: per step (obs_t, a_t, r_t); an episode ends in a terminal
    (termination) or a timeout (truncation, or the data simply stopping)."""
    eps = dataset.episodes
    obs = pre.obs(np.concatenate([e.observations[:-1] for e in eps]))  # (N, D)
    rewards = np.concatenate([e.rewards for e in eps]).astype(np.float32)  # (N,)
    terminals = np.concatenate([e.terminations for e in eps]).astype(np.float32)
    timeouts = np.zeros_like(terminals)
    ends = np.cumsum([len(e) for e in eps]) - 1
    timeouts[ends] = (terminals[ends] == 0).astype(np.float32)
    if pre.action_low is None:
        actions = np.concatenate([e.actions for e in eps]).astype(np.int64)  # (N,)
        return d3rlpy.dataset.MDPDataset(obs, actions, rewards, terminals, timeouts,
                                         action_space=d3rlpy.constants.ActionSpace.DISCRETE,
                                         action_size=int(dataset.action_space.n))
    actions = pre.to_unit(np.concatenate([e.actions for e in eps]).reshape(len(obs), -1))  # (N, A)
    return d3rlpy.dataset.MDPDataset(obs, actions, rewards, terminals, timeouts,
                                     action_space=d3rlpy.constants.ActionSpace.CONTINUOUS)


# ------------------------------------------------------------------ policy

def _modules(algo) -> dict[str, torch.nn.Module]:
    """The algorithm's networks by name (optimisers left out)."""
    mods = algo.impl.modules
    out = {f.name: getattr(mods, f.name) for f in dataclasses.fields(mods)}
    return {k: v for k, v in out.items() if isinstance(v, torch.nn.Module)}


class OfflineRLPolicy:
    """A trained d3rlpy IQL / discrete CQL as our batched, seeded Policy.

    IQL samples a ~ N(tanh(mu), std) clipped to [-1, 1] (d3rlpy's own sampling distribution) and acts on
    tanh(mu) when deterministic; CQL samples a ~ softmax(Q / temperature) and acts on argmax Q.
    """

    conditioned = False

    def __init__(self, kind: str, algo, pre: Preprocess, temperature: float = 1.0):
        self.kind, self.algo, self.pre, self.temperature = kind, algo, pre, temperature
        self._nets = _modules(algo)
        for net in self._nets.values():
            net.eval()
        self.reset(1)

    def reset(self, num_envs: int, *, target=None, seed: int = 0, deterministic: bool = False) -> None:
        """Start B episodes; env i draws its noise from its own generator seeded seed + i."""
        self.num_envs, self.deterministic = num_envs, deterministic
        self._gens = [torch.Generator().manual_seed(int(seed) + i) for i in range(num_envs)]

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, *action_shape) for observations (B, *obs_shape)."""
        x = torch.as_tensor(self.pre.obs(obs))  # (B, D)
        if self.kind == "cql":
            q = torch.stack([f(x).q_value for f in self._nets["q_funcs"]]).mean(0)  # (B, n)
            if self.deterministic:
                return q.argmax(1).numpy()
            u = torch.stack([torch.rand(1, generator=g) for g in self._gens])  # (B, 1)
            cdf = torch.softmax(q / self.temperature, dim=1).cumsum(1)  # (B, n)
            return torch.searchsorted(cdf, u).clamp(max=q.shape[1] - 1).squeeze(1).numpy()
        out = self._nets["policy"](x)
        unit = out.squashed_mu  # (B, A)
        if not self.deterministic:
            eps = torch.stack([torch.randn(unit.shape[1], generator=g) for g in self._gens])  # (B, A)
            unit = unit + out.logstd.exp() * eps
        return self.pre.from_unit(unit.numpy()).astype(np.float32)

    def observe(self, reward: np.ndarray, done: np.ndarray) -> None:
        """Unconditioned: nothing to update."""

    def save(self, directory: Path) -> None:
        """Networks as safetensors (no optimiser state), everything else as JSON."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"{name}.{k}": v.detach().contiguous() for name, net in self._nets.items()
                   for k, v in net.state_dict().items()}
        tensors["pre.obs_mean"], tensors["pre.obs_std"] = torch.as_tensor(self.pre.obs_mean), torch.as_tensor(
            self.pre.obs_std)
        if self.pre.action_low is not None:
            tensors["pre.action_low"] = torch.as_tensor(self.pre.action_low)
            tensors["pre.action_high"] = torch.as_tensor(self.pre.action_high)
        save_file(tensors, str(directory / WEIGHTS))
        config = {"format": 1, "kind": KINDS[self.kind], "method": self.kind, "temperature": self.temperature,
                  "observation_shape": list(self.algo.impl.observation_shape),
                  "action_size": int(self.algo.impl.action_size), "d3rlpy_config": self.algo.config.serialize()}
        tmp = directory / f".{CONFIG}.tmp"
        tmp.write_text(json.dumps(config, indent=1))
        os.replace(tmp, directory / CONFIG)


def _config_class(d3rlpy, kind: str):
    return d3rlpy.algos.IQLConfig if kind == "iql" else d3rlpy.algos.DiscreteCQLConfig


def load_offline_rl_policy(directory: Path) -> OfflineRLPolicy:
    """An OfflineRLPolicy from safetensors + JSON (no pickle on this path)."""
    directory = Path(directory)
    try:
        config = json.loads((directory / CONFIG).read_text())
        kind = config["method"]
        d3rlpy = require_d3rlpy(kind)
        algo = _config_class(d3rlpy, kind).deserialize(config["d3rlpy_config"]).create(device=False)
        algo.create_impl(tuple(config["observation_shape"]), int(config["action_size"]))
        tensors = load_file(str(directory / WEIGHTS))
        for name, net in _modules(algo).items():
            prefix = f"{name}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        low = tensors.get("pre.action_low")
        pre = Preprocess(tensors["pre.obs_mean"].numpy(), tensors["pre.obs_std"].numpy(),
                         None if low is None else low.numpy(),
                         None if low is None else tensors["pre.action_high"].numpy())
        return OfflineRLPolicy(kind, algo, pre, float(config["temperature"]))
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"cannot load offline RL policy {directory}: {exc}") from exc


# ------------------------------------------------------------------ methods

class _GlobalRNG:
    """d3rlpy seeds and draws from the global random/numpy/torch generators: seed them for the fit,
    then put them back so nothing else in the process is disturbed."""

    def __init__(self, seed: int, d3rlpy):
        self.seed, self.d3rlpy = seed, d3rlpy

    def __enter__(self):
        self.saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        self.d3rlpy.seed(self.seed)

    def __exit__(self, *exc):
        random.setstate(self.saved[0])
        np.random.set_state(self.saved[1])
        torch.set_rng_state(self.saved[2])


class OfflineRL:
    """Shared training for iql and cql: build the d3rlpy config, fit for the gradient budget, wrap."""

    kind = ""

    def __init__(self, params: OfflineRLParams):
        self.params = params

    def _config(self, d3rlpy, p) -> Any:
        raise NotImplementedError

    def train(self, task, dataset: Dataset, budget: Budget, seed: int, logger) -> TrainedPolicy:
        d3rlpy = require_d3rlpy(self.kind)
        discrete = isinstance(dataset.action_space, spaces.Discrete)
        if discrete != (self.kind == "cql"):
            need = "discrete" if self.kind == "cql" else "continuous"
            raise UserError(f"method '{self.kind}' needs {need} actions; task {task.key!r} has {dataset.action_space}")
        start = time.perf_counter()
        pre = fit_preprocess(dataset)
        mdp = to_mdp_dataset(dataset, pre, d3rlpy)
        steps = int(budget.gradient_steps)
        with _GlobalRNG(training(seed), d3rlpy):
            algo = self._config(d3rlpy, self.params).create(device=False)
            fitter = algo.fitter(mdp, n_steps=steps, n_steps_per_epoch=max(1, min(steps, 500)),
                                 logger_adapter=d3rlpy.logging.NoopAdapterFactory(), show_progress=False,
                                 save_interval=10**9)
            for epoch, metrics in fitter:
                step = min(epoch * max(1, min(steps, 500)), steps)
                for name, value in metrics.items():
                    logger.scalar(f"losses/{name}", float(value), step)
                logger.progress(step, steps)
        params = sum(p.numel() for net in _modules(algo).values() for p in net.parameters())
        ledger = OfflineLedger(
            online_env_steps=0, reward_queries=0, reward_update_share=1.0, gradient_steps=steps,
            wall_time_s=time.perf_counter() - start,
            train_flops=float(3 * 2 * params * self.params.batch_size * steps),  # 3 x forward, every network
            reward_labels=int(dataset.total_steps))
        temperature = getattr(self.params, "temperature", 1.0)
        return TrainedPolicy(OfflineRLPolicy(self.kind, algo, pre, temperature), ledger)


def _encoder(d3rlpy, p: OfflineRLParams):
    return d3rlpy.models.VectorEncoderFactory(hidden_units=list(p.hidden))


class IQL(OfflineRL):
    kind = "iql"

    def _config(self, d3rlpy, p: IQLParams):
        enc = _encoder(d3rlpy, p)
        return d3rlpy.algos.IQLConfig(
            actor_learning_rate=p.lr, critic_learning_rate=p.lr, actor_encoder_factory=enc,
            critic_encoder_factory=enc, value_encoder_factory=enc, batch_size=p.batch_size, gamma=p.gamma,
            n_critics=p.n_critics, expectile=p.expectile, weight_temp=p.weight_temp, max_weight=p.max_weight)


class CQL(OfflineRL):
    kind = "cql"

    def _config(self, d3rlpy, p: CQLParams):
        return d3rlpy.algos.DiscreteCQLConfig(
            learning_rate=p.lr, encoder_factory=_encoder(d3rlpy, p), batch_size=p.batch_size, gamma=p.gamma,
            n_critics=p.n_critics, target_update_interval=p.target_update_interval, alpha=p.alpha)


METHODS.register("iql", MethodDef(IQLParams, IQL),
                 "Offline RL: implicit Q-learning (d3rlpy) on the reference data; continuous actions.")
METHODS.register("cql", MethodDef(CQLParams, CQL),
                 "Offline RL: discrete conservative Q-learning (d3rlpy) on the reference data.")
