"""One text run, start to finish: pretrain (cached), train a recipe, measure it against p0 and its target.

    run_text(task_options, method_id, hyperparameters, seed, budget) -> TextRunResult(metrics, ledger, policy)

The task is the world plus its reward variant (`TextTaskOptions`); the pretrained model
pi_ref depends on the world, the pretraining settings and the seed only, so every recipe
of one seed starts from the same weights (cached as safetensors when a cache directory is
given). Metrics are exact over the support when the world is enumerable (`metrics.exact_metrics`)
and Monte Carlo estimates with standard errors otherwise; the sampled KL estimators sit
beside the exact KL either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from metatoken import seeds
from metatoken.errors import UserError
from metatoken.logger import Logger, NullLogger
from metatoken.methods.base import Budget, Ledger
from metatoken.text.metrics import (
    estimated_metrics,
    estimated_target_kl,
    exact_metrics,
    sampled_metrics,
)
from metatoken.text.policy import TextPolicy, load_text_policy
from metatoken.text.pretrain import PretrainConfig, pretrain
from metatoken.text.recipes import TEXT_METHODS, TextContext, make_text_method
from metatoken.text.world import World, make_world

TEXT_TASK = "text-world"  # the task id text specs use


class TextTaskOptions(BaseModel):
    """A text task: the world configuration, its reward, and how pi_ref is pretrained."""

    model_config = ConfigDict(extra="forbid")
    world: Literal["tiny", "small", "large"] = "small"
    world_seed: int = 0
    reward: Literal["proxy", "true", "sentiment"] = "proxy"
    pretrain_steps: int = Field(600, ge=1)
    pretrain_batch: int = Field(256, ge=2)
    d_model: int = Field(32, ge=4)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    kl_samples: int = Field(256, ge=2, description="samples for the k1/k2/k3 KL estimators")
    estimate_samples: int = Field(20_000, ge=2, description="samples per metric on a world too large to enumerate")

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(steps=self.pretrain_steps, batch_size=self.pretrain_batch, d_model=self.d_model,
                              n_layers=self.n_layers, n_heads=self.n_heads)


def task_options(options: dict[str, Any] | None, where: str = "task options") -> TextTaskOptions:
    """Validated text task options; a bad key or value raises UserError naming it."""
    try:
        return TextTaskOptions.model_validate(options or {})
    except ValidationError as err:
        e = err.errors()[0]
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        raise UserError(f"{where}.{field}: {msg}") from None


@dataclass
class TextRunResult:
    metrics: dict[str, float]
    ledger: Ledger
    policy: TextPolicy
    target_name: str


def reference_policy(world: World, opts: TextTaskOptions, seed: int, cache_dir: Path | None = None,
                     logger: Logger | None = None) -> TextPolicy:
    """The pretrained pi_ref for (world, pretraining settings, seed), loaded from the cache when present."""
    key = (f"pretrained_{opts.world}_w{opts.world_seed}_s{seed}_{opts.pretrain_steps}x{opts.pretrain_batch}"
           f"_d{opts.d_model}l{opts.n_layers}h{opts.n_heads}")
    path = Path(cache_dir) / key if cache_dir is not None else None
    if path is not None and (path / "policy.json").is_file():
        return load_text_policy(path)
    policy, _ = pretrain(world, opts.pretrain_config(), seed, logger)
    if path is not None:  # written under a temporary name, then renamed: never half a checkpoint
        tmp = path.with_name(f".{key}.{time.time_ns()}")
        policy.save(tmp)
        try:
            tmp.rename(path)
        except OSError:  # another worker wrote it first; theirs is identical (same seed)
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return policy


def measure_text(world: World, opts: TextTaskOptions, trained, reference: TextPolicy, seed: int) -> dict[str, float]:
    """Exact metrics (enumerable world) or estimates, plus the sampled KL estimators; sets the ledger's KL."""
    out: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    if world.enumerable:
        x, logp0 = world.support()
        logpi = trained.policy.support_log_prob(x)
        log_target = trained.target(logp0, world.reward(opts.reward, x))
        out.update(exact_metrics(world, x, logp0, logpi, log_target))
        out["text/exact_metrics_s"] = time.perf_counter() - t0
        out["text/exact_metrics_cpu_s"] = time.process_time() - c0  # robust to other processes' load
        logref = reference.support_log_prob(x)
        trained.ledger.kl_to_reference_nats = float(np.exp(logpi) @ (logpi - logref))
        out["text/reference_kl_p0"] = float(np.exp(logref) @ (logref - logp0))  # pretraining's own error
    else:
        out.update(estimated_metrics(world, trained.policy, opts.estimate_samples, seeds.evaluation(seed)))
        if trained.tilt_beta is not None:
            out["text/kl_target"], out["text/kl_target_se"] = estimated_target_kl(
                world, trained.policy, opts.reward, trained.tilt_beta, opts.estimate_samples, seeds.evaluation(seed))
    out.update(sampled_metrics(world, trained.policy, opts.kl_samples, seeds.evaluation(seed)))
    return out


def run_text(options: dict[str, Any] | TextTaskOptions, method_id: str, hyperparameters: dict[str, Any] | None,
             seed: int, budget: Budget, cache_dir: Path | None = None, logger: Logger | None = None
             ) -> TextRunResult:
    """Pretrain (or load) pi_ref, train one recipe from it, and measure: metrics include the ledger's."""
    opts = options if isinstance(options, TextTaskOptions) else task_options(options)
    logger = logger or NullLogger()
    world = make_world(opts.world, seed=opts.world_seed)
    reference = reference_policy(world, opts, seed, cache_dir)
    method = make_text_method(method_id, hyperparameters)
    ctx = TextContext(world, reference, budget, seed, opts.reward, logger)
    trained = method.train(ctx)
    metrics = measure_text(world, opts, trained, reference, seed)
    metrics.update(trained.ledger.as_metrics())
    metrics["ledger/offline_reward_labels"] = float(trained.offline_reward_labels)
    metrics.update({f"text/{k}": float(v) for k, v in trained.info.items()})
    return TextRunResult(metrics, trained.ledger, trained.policy, trained.target_name)


def known_methods() -> list[str]:
    """The registered text recipe ids."""
    return [e.id for e in TEXT_METHODS]
