"""Training a predictor on the reference data: AdamW, linear warmup, gradient clipping.

The one supervised loop of the house. Seeded once (model init, dropout and window
sampling) and deterministic on CPU. On CPU AdamW steps flat buffers (`models/flat.py`: one
tensor per parameter group, bit-identical to stepping each tensor); the parameters get their
own storage back when the loop ends. Recipes that add to it (`mixture`'s policy-gradient
term, `rl-as-sl`'s REINFORCE loss and variance probes) pass a `TrainHooks` object instead
of copying the loop, so with the default hooks every recipe trains exactly as `bc` does.
Curves go to the Logger under fixed names: losses/action_nll, charts/learning_rate,
charts/grad_norm, charts/samples_per_s.

Inside a `models.checkpoint.checkpointing(directory)` block (experiments/run_one.py opens one
per run) the loop writes its whole state every `checkpoint_every` steps and at its end, and a
new call with the same config starts from the newest state instead of step 0: on CPU the
resumed training reaches bit-identical weights. A state written by another config is refused
(UserError): its slot is keyed by the run's identity, so it cannot be this training's.
Outside such a block nothing is written.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from metatoken.data.dataset import Dataset
from metatoken.errors import UserError
from metatoken.logger import Logger, NullLogger
from metatoken.models.checkpoint import (
    active_plan,
    config_mismatch,
    join_tensors,
    latest_training_state,
    save_training_state,
    split_tensors,
)
from metatoken.models.conditions import Condition, fit_condition
from metatoken.models.flat import FlatParams
from metatoken.models.mlp import MLPConfig, MLPPredictor
from metatoken.models.policy import PredictorPolicy
from metatoken.models.sequences import SequenceBatch, SequenceSampler
from metatoken.models.transformer import DecisionTransformer, TransformerConfig


@dataclass
class TrainConfig:
    steps: int = 1000  # gradient steps
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 0.25
    log_every: int = 25
    seed: int = 0
    device: str = "cpu"  # "cuda" trains on a GPU (seeded, but not bitwise reproducible there)
    # gradient steps between training checkpoints, written only inside a `checkpointing` block; 0: never
    checkpoint_every: int = 250


@dataclass
class TrainStats:
    steps: int
    final_loss: float  # mean training loss (action NLL unless hooks replace it) over the last log interval
    wall_time_s: float
    flops: float  # estimate: 3 x forward FLOPs per real token
    losses: list[float] = field(default_factory=list)  # one per log interval


def head_kind(space: spaces.Space, continuous_head: str = "tanh") -> tuple[str, int]:
    """(head kind, act_dim) for an action space; tanh needs finite bounds, else gaussian."""
    if isinstance(space, spaces.Discrete):
        return "categorical", int(space.n)
    bounded = np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    return (continuous_head if bounded else "gaussian"), int(np.prod(space.shape))


def build_predictor(
    dataset: Dataset,
    condition: Condition,
    model: Literal["transformer", "mlp"] = "transformer",
    continuous_head: str = "tanh",
    seed: int = 0,
    **options: Any,
) -> nn.Module:
    """A fresh predictor sized for the dataset's spaces, with normalisers fitted on it."""
    torch.manual_seed(seed)
    kind, act_dim = head_kind(dataset.action_space, continuous_head)
    obs_dim = int(np.prod(dataset.observation_space.shape))
    if model == "transformer":
        net: nn.Module = DecisionTransformer(TransformerConfig(obs_dim, act_dim, kind, condition.dim, **options))
    elif model == "mlp":
        net = MLPPredictor(MLPConfig(obs_dim, act_dim, kind, condition.dim, **options))
    else:
        raise ValueError(f"unknown predictor model {model!r}")
    obs = np.concatenate([e.observations[:-1].reshape(len(e), -1) for e in dataset.episodes])
    net.obs_norm.fit(obs)
    if kind != "categorical":
        act = np.concatenate([np.asarray(e.actions).reshape(len(e), -1) for e in dataset.episodes])
        net.head.fit(act, dataset.action_space.low.reshape(-1), dataset.action_space.high.reshape(-1))
    return net


def action_nll(model: nn.Module, batch: SequenceBatch) -> torch.Tensor:
    """Mean negative log-likelihood of the data actions over real positions."""
    params = model(batch.obs, batch.prev_action, batch.cond, batch.timestep)  # (B, K, P)
    nll = model.head.nll(params, batch.action)  # (B, K)
    m = batch.mask.float()
    return (nll * m).sum() / m.sum()


def decay_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW's parameter groups: matrices decay; biases, norms and the start vector stay undecayed."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig, flat: FlatParams | None = None) -> torch.optim.Optimizer:
    """AdamW that decays matrices only, on `flat`'s buffers when given (else on the model's own tensors)."""
    # foreach: on CPU torch's default is the per-tensor loop, ~40 tensors x ~10 small ops a step. The
    # foreach kernels run the same elementwise ops per tensor (bit-identical, tested) with less dispatch;
    # flat buffers (models/flat.py) cut that to one tensor per group, again bit-identical.
    groups = flat.param_groups if flat is not None else decay_groups(model, cfg)
    return torch.optim.AdamW(groups, lr=cfg.lr, foreach=True)


def warmup_schedule(opt: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over `warmup_steps` optimiser steps, then a constant learning rate."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, warmup_steps)))


class TrainHooks:
    """What a recipe adds to the supervised loop; the defaults add nothing (plain action NLL).

    Hooks that process extra tokens (online episodes, variance probes) return how many,
    so the FLOPs estimate counts them.
    """

    loss_name = "losses/action_nll"  # the curve the loop logs its loss under

    def loss(self, model: nn.Module, batch: SequenceBatch) -> torch.Tensor:
        """The loss of one minibatch (default: the data actions' NLL)."""
        return action_nll(model, batch)

    def after_backward(self, step: int, model: nn.Module) -> int:
        """Runs after the loss's backward, before clipping: may read or add to `.grad`. Returns extra tokens."""
        return 0

    def after_step(self, step: int, model: nn.Module, lr: float) -> None:
        """Runs right after the optimiser's step (at learning rate `lr`): may read or move the weights."""

    def on_log(self, step: int, model: nn.Module, batch: SequenceBatch, logger: Logger) -> int:
        """Runs at each log interval after the update, with that step's batch. Returns extra tokens."""
        return 0

    def state(self) -> dict[str, Any]:
        """What a checkpoint must carry for a resumed training to continue exactly (default: nothing).

        Nested dicts and lists of JSON values and tensors: the tensors go to state.safetensors,
        the rest to state.json (`models.checkpoint.split_tensors`); nothing is pickled. A
        subclass opts in to checkpoints by overriding this (with `load_state`), even to return
        {}: hooks that keep counters or generators but do not declare them train without
        checkpoints, since a resumed training could not continue them exactly. It is taken at
        the end of a step, so state that lives only within one step need not be declared."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned (dict keys come back as strings), when a training resumes."""


def train_predictor(
    model: nn.Module, sampler: SequenceSampler, cfg: TrainConfig, logger: Logger | None = None,
    hooks: TrainHooks | None = None,
) -> TrainStats:
    """Run cfg.steps gradient steps on windows from `sampler` (loss and extras from `hooks`)."""
    logger, hooks = logger or NullLogger(), hooks or TrainHooks()
    torch.manual_seed(cfg.seed)
    model.to(cfg.device).train()
    # flat buffers on CPU, where per-tensor dispatch dominates a step; a GPU keeps the per-tensor optimiser
    flat = FlatParams(decay_groups(model, cfg)) if torch.device(cfg.device).type == "cpu" else None
    opt = make_optimizer(model, cfg, flat)
    sched = warmup_schedule(opt, cfg.warmup_steps)
    t0, tokens, window, losses = time.perf_counter(), 0, [], []
    plan = active_plan()
    slot = plan.next_slot() if plan is not None else None  # taken even when unused: slots keep their order
    if type(hooks) is not TrainHooks and type(hooks).state is TrainHooks.state:
        slot = None  # undeclared hook state: no checkpoint could resume it exactly
    every = (plan.every if plan is not None and plan.every is not None else cfg.checkpoint_every)
    start, before = 0, 0.0  # resumed step, wall time spent before it
    state = latest_training_state(slot) if slot is not None else None
    if state is not None:
        mismatch = config_mismatch(state[1].get("config", {}), _config_json(cfg))
        if mismatch:  # the slot is keyed by the run's identity: another config means the checkpoint is not ours
            raise UserError(f"training checkpoint {slot} was written by another training config ({mismatch})")
        start, tokens, window, losses, before = _restore(state, model, opt, sched, sampler, hooks)
    for step in range(start + 1, cfg.steps + 1):
        batch = SequenceBatch(*(x.to(cfg.device, non_blocking=True) for x in sampler.sample(cfg.batch_size)))
        loss = hooks.loss(model, batch)
        if flat is not None:
            flat.zero_grad()
        else:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        tokens += hooks.after_backward(step, model)
        if flat is not None:  # a hook may have replaced a .grad: back into the flat buffer before clipping
            flat.sync_grads()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        hooks.after_step(step, model, opt.param_groups[0]["lr"])
        sched.step()
        tokens += int(batch.mask.sum())
        window.append(loss.item())
        if step % cfg.log_every == 0 or step == cfg.steps:
            losses.append(float(np.mean(window)))
            window = []
            elapsed = time.perf_counter() - t0
            logger.scalar(hooks.loss_name, losses[-1], step)
            logger.scalar("charts/learning_rate", sched.get_last_lr()[0], step)
            logger.scalar("charts/grad_norm", float(grad_norm), step)
            logger.scalar("charts/samples_per_s", step * cfg.batch_size / elapsed, step)
            tokens += hooks.on_log(step, model, batch, logger)
            logger.progress(step, cfg.steps)
        if slot is not None and every > 0 and (step % every == 0 or step == cfg.steps):
            counters = {"tokens": tokens, "window": window, "losses": losses,
                        "wall_time_s": before + time.perf_counter() - t0}
            save_training_state(slot, step, *_capture(cfg, model, opt, sched, sampler, hooks, counters))
    if flat is not None:
        flat.release()  # each parameter owns its storage again: the policy saves and copies as before
    model.eval()
    wall = before + time.perf_counter() - t0
    return TrainStats(cfg.steps, losses[-1] if losses else float("nan"), wall,
                      3.0 * model.flops_per_token() * tokens, losses)


def _config_json(cfg: TrainConfig) -> dict[str, Any]:
    """The config as a checkpoint stores it; how often it checkpoints does not decide the weights."""
    return {k: v for k, v in asdict(cfg).items() if k != "checkpoint_every"}


def _capture(cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer, sched, sampler: SequenceSampler,
             hooks: TrainHooks, counters: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything a resumed training needs: tensors for safetensors, the rest as JSON."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in opt_state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    tensors["rng.torch"] = torch.get_rng_state()  # (S,) uint8: dropout and anything else on the CPU generator
    hook_json, hook_tensors = split_tensors(hooks.state(), "hooks")
    tensors.update(hook_tensors)
    schedule = {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}  # the lambda is rebuilt
    meta = {"config": _config_json(cfg), "optimizer_groups": opt_state["param_groups"],
            "optimizer_scalars": scalars, "schedule": schedule, "sampler_rng": sampler.rng.bit_generator.state,
            "hooks": hook_json, **counters}
    return tensors, meta


def _restore(state: tuple[dict[str, torch.Tensor], dict[str, Any]], model: nn.Module, opt: torch.optim.Optimizer,
             sched, sampler: SequenceSampler, hooks: TrainHooks) -> tuple[int, int, list[float], list[float], float]:
    """Load a captured state in place; returns (step, tokens, window, losses, wall time before)."""
    tensors, meta = state
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    per_param: dict[int, dict[str, Any]] = {int(p): dict(v) for p, v in meta["optimizer_scalars"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            per_param.setdefault(int(pid), {})[name] = value
    try:
        opt.load_state_dict({"state": per_param, "param_groups": meta["optimizer_groups"]})
    except ValueError as e:  # e.g. per-tensor Adam state from before the flat buffers
        raise UserError(f"training checkpoint: its optimiser state does not fit this optimiser ({e})") from None
    sched.load_state_dict({**meta["schedule"], "lr_lambdas": [None] * len(opt.param_groups)})
    torch.set_rng_state(tensors["rng.torch"])
    sampler.rng.bit_generator.state = meta["sampler_rng"]
    hooks.load_state(join_tensors(meta["hooks"], tensors))
    return int(meta["step"]), int(meta["tokens"]), list(meta["window"]), list(meta["losses"]), meta["wall_time_s"]


def fit_predictor(
    dataset: Dataset,
    condition: str = "rtg",
    condition_options: dict[str, Any] | None = None,
    model: Literal["transformer", "mlp"] = "transformer",
    model_options: dict[str, Any] | None = None,
    train: TrainConfig | None = None,
    logger: Logger | None = None,
    hooks: TrainHooks | None = None,
) -> tuple[PredictorPolicy, TrainStats]:
    """Fit a condition, build and train a predictor (optional loop hooks); returns its rollout policy and stats."""
    train = train or TrainConfig()
    cond = fit_condition(condition, dataset, **(condition_options or {}))
    net = build_predictor(dataset, cond, model, seed=train.seed, **(model_options or {}))
    sampler = SequenceSampler(dataset, cond, net.context, net.head.discrete, seed=train.seed)
    stats = train_predictor(net, sampler, train, logger, hooks)
    return PredictorPolicy(net, cond), stats
