"""Hook points in the TransformerLens style: named identity modules every inspectable tensor passes.

A HookPoint's name is its attribute path in the model (`blocks.0.attn.hook_pattern`), so
the names are the public interpretability vocabulary. With no hook attached a HookPoint
returns its input untouched (and skips nn.Module's call machinery, which matters for
per-step rollouts). Hooks are global state on the model: `hooks(...)` and
`run_with_cache(...)` always remove what they added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

# fn(activation, hook) -> replacement activation or None (keep the activation)
HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]


class HookPoint(nn.Module):
    """Identity module that named hooks can read or replace."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""  # filled by `name_hook_points`

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # Fast path: no hooks, no module call overhead.
        return super().__call__(x) if self._forward_hooks else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @property
    def active(self) -> bool:
        """True when some hook is attached (the attention uses it to materialise patterns)."""
        return bool(self._forward_hooks)

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        """Attach fn(activation, hook); a non-None return replaces the activation."""
        return self.register_forward_hook(lambda module, inputs, output: fn(output, module))


def name_hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """Give every HookPoint its attribute-path name; returns them by name."""
    points = {}
    for name, module in model.named_modules():
        if isinstance(module, HookPoint):
            module.name = name
            points[name] = module
    return points


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """All hook points of a model by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, HookPoint)}


@contextmanager
def hooks(model: nn.Module, fwd_hooks: Iterable[tuple[str, HookFn]]) -> Iterator[nn.Module]:
    """Attach (name, fn) hooks for the duration of the block, then remove them."""
    points = hook_points(model)
    handles = []
    try:
        for name, fn in fwd_hooks:
            if name not in points:
                raise KeyError(f"no hook point {name!r} (known: {', '.join(points)})")
            handles.append(points[name].add_hook(fn))
        yield model
    finally:
        for h in handles:
            h.remove()


def run_with_cache(
    model: nn.Module,
    *args: Any,
    names: Callable[[str], bool] | Iterable[str] | None = None,
    **kwargs: Any,
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Run model(*args, **kwargs) and return (output, {hook name: detached activation})."""
    points = hook_points(model)
    if names is None:
        keep = list(points)
    elif callable(names):
        keep = [n for n in points if names(n)]
    else:
        keep = list(names)
    cache: dict[str, torch.Tensor] = {}

    def save(name: str) -> HookFn:
        def fn(act: torch.Tensor, hook: HookPoint) -> None:
            cache[name] = act.detach()
        return fn

    with hooks(model, [(n, save(n)) for n in keep]):
        out = model(*args, **kwargs)
    return out, cache
