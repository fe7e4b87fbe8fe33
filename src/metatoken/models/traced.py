"""The cached step replayed from a TorchScript trace: the eager step's own kernels, called from C++.

Why: at a rollout's batch size (B ~ 100) one cached step of the transformer is ~70 small kernels,
and in eager PyTorch a fifth to a third of its time is Python between them (module calls, hook
checks, argument parsing). A trace records the kernels the eager step calls and replays exactly
those, so its outputs are bit-identical to eager (tests/models/test_traced_step.py; the golden
demo metrics do not move). Measured at B = 100 on the project machine: 1.26x per step (paired
median). The rollout benchmark's median went from ~41x to ~47x the reference loop (seventh
session), then to ~51x with the sampling traced too (`act`, eighth session). The host's minutes
move single readings between 39x and 58x (docs/PERFORMANCE.md).

When: only where nobody could tell the difference. The model is in eval mode, autograd is off,
nobody else is tracing, and no module of the model has a forward hook (hook points and probes
attach hooks, and a replay would skip them); otherwise the step runs eagerly. A variant (batch
size, full or partly filled cache, envs in lockstep or not, the parameters alone or with the sampled
or mode action, device, dtype) is traced after WARMUP eager steps of it, so short rollouts (most
tests) never pay for tracing (~0.15 s at the reference size). A trace shares the model's parameters
and buffers, so in-place updates (optimizer steps, `load_state_dict`, `fit`) reach it; a copy of the
model starts without traces.
It does not see a submodule or parameter *replaced* after tracing (`model.head = ...`): whoever
rebuilds a model that way resets `model.step_traces = StepTraces()`.

`torch.jit.trace` is deprecated in favour of torch.compile and torch.export; neither does this
job: compiled kernels fuse and reorder the float sums, and an exported program runs its ops one
Python call at a time. Where tracing fails or is missing, the variant stays eager.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn.modules import module as _module  # its global hook registries (no public accessor)

WARMUP = 64  # eager steps of a variant before it is traced


class _Variant(nn.Module):
    """One variant of the model's step as a module, so a trace keeps the model's parameters as attributes."""

    def __init__(self, model: nn.Module, full: bool, lockstep: bool, act: bool):
        super().__init__()
        self.model, self.full, self.lockstep, self.act = model, full, lockstep, act

    def forward(self, kv, obs, prev_action, cond, timestep, noise=None):
        return self.model.step_tensors(kv, obs, prev_action, cond, timestep, noise,
                                       full=self.full, lockstep=self.lockstep, act=self.act)


class StepTraces:
    """Traced variants of one model's cached step (never copied or pickled with the model: a copy's
    parameters are not the ones these traces read)."""

    def __init__(self, warmup: int = WARMUP):
        self.warmup = warmup
        self._hook_dicts: list[dict] = []  # every module's forward and forward-pre hook dicts
        self._seen: dict[tuple, int] = {}  # variant -> eager steps so far
        self._traces: dict[tuple, torch.jit.ScriptModule | None] = {}  # None: tracing failed, stay eager

    def __deepcopy__(self, memo) -> StepTraces:
        return StepTraces(self.warmup)

    def __reduce__(self):
        return (StepTraces, (self.warmup,))

    def __len__(self) -> int:
        """How many variants run from a trace."""
        return sum(t is not None for t in self._traces.values())

    def run(self, model: nn.Module, kv: torch.Tensor, inputs: tuple, noise: torch.Tensor | None, *,
            full: bool, lockstep: bool, act: bool):
        """`model.step_tensors(kv, *inputs, noise, ...)`: from the variant's trace when there is (or now should
        be) one and replaying it is unobservable, else eagerly."""
        trace = None if self._observable(model) else self._variant(model, kv, noise, full, lockstep, act)
        if trace is None:
            return model.step_tensors(kv, *inputs, noise, full=full, lockstep=lockstep, act=act)
        return trace(kv, *inputs) if noise is None else trace(kv, *inputs, noise)

    def _variant(self, model: nn.Module, kv: torch.Tensor, noise: torch.Tensor | None, full: bool,
                 lockstep: bool, act: bool) -> torch.jit.ScriptModule | None:
        """The variant's trace; None while it is warming up (or failed to trace)."""
        key = (kv.shape[0], full, lockstep, act, noise is None, kv.device, model.act_start.dtype)
        if key not in self._traces:
            self._seen[key] = self._seen.get(key, 0) + 1
            if self._seen[key] <= self.warmup:
                return None
            self._traces[key] = self._trace(model, full, lockstep, act, kv, noise)
        return self._traces[key]

    def _observable(self, model: nn.Module) -> bool:
        """Would a replay skip something: training (dropout), autograd, an outer trace, or a forward hook?"""
        if model.training or torch.is_grad_enabled() or torch.jit.is_tracing():
            return True
        if _module._global_forward_hooks or _module._global_forward_pre_hooks:
            return True
        if not self._hook_dicts:  # a module keeps its hook dicts for life; hooks are added to and removed from them
            self._hook_dicts = [d for m in model.modules() for d in (m._forward_hooks, m._forward_pre_hooks)]
        return any(self._hook_dicts)

    @staticmethod
    def _trace(model: nn.Module, full: bool, lockstep: bool, act: bool, kv: torch.Tensor,
               noise: torch.Tensor | None):
        """Trace one variant on the current inputs' shapes (on a copy of the cache, which tracing writes)."""
        B, O = kv.shape[0], model.cfg.obs_dim
        dev = kv.device
        discrete = model.cfg.head == "categorical"
        example = (
            kv.clone(),
            torch.zeros(B, O, device=dev),
            torch.zeros(B, dtype=torch.long, device=dev) if discrete else torch.zeros(B, model.cfg.act_dim, device=dev),
            torch.zeros(B, model.cfg.cond_dim, device=dev),
            torch.full((B,), model.cfg.context, dtype=torch.long, device=dev),  # any step: shapes are what matter
            *(() if noise is None else (torch.full_like(noise, 0.5),)),  # 0.5: inside the uniform noise's range
        )
        try:
            with warnings.catch_warnings():  # the deprecation notice, and tracer notes on Python constants
                warnings.simplefilter("ignore")
                return torch.jit.trace(_Variant(model, full, lockstep, act), example, check_trace=False)
        except Exception:  # noqa: BLE001 - any tracing failure just keeps the eager step
            return None
