"""Flat optimiser buffers: each optimiser group's parameters live in one contiguous tensor.

torch's foreach Adam/AdamW on CPU still dispatches ~10 small ops per parameter tensor, and the
house's networks are many small tensors (13 for PPO's actor-critic, 38 for the predictor), so
dispatch, not arithmetic, is most of a step. `FlatParams` re-homes the parameters of each group
into one contiguous buffer (each parameter's `.data` becomes a view of it) and gives each one a
`.grad` that is a view of a flat gradient buffer beside it; the optimiser is then built on the
flat tensors and runs ~10 ops per group. Adam's arithmetic is elementwise, so the weights are
bit-identical to stepping the tensors one by one (tests/models/test_flat.py).

The contract with a training loop:
- call `zero_grad()` instead of the optimiser's: it zeroes the flat gradient buffers, and
  autograd then adds each new gradient into its view in place (0 + g is g, up to the sign of a
  zero, which no Adam step can see);
- call `sync_grads()` right before the optimiser's step: a `.grad` that code replaced with a new
  tensor is copied into its view, and a `.grad` set to None is taken as zero (torch's Adam would
  skip that tensor; the loops here give every parameter a gradient on every step);
- call `release()` when training ends: each parameter gets its own storage back, so policies save
  (safetensors refuses tensors that share storage) and copy exactly as before.
Gradient clipping is untouched: it still reads each parameter's `.grad`, per tensor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FlatParams:
    """The parameters of torch-style optimiser groups, re-homed into one contiguous buffer per group."""

    def __init__(self, groups: list[dict[str, Any]]):
        self.params: list[nn.Parameter] = []
        self.views: list[torch.Tensor] = []  # each parameter's gradient view, in self.params' order
        self.grads: list[torch.Tensor] = []  # one flat gradient buffer per non-empty group
        self.param_groups: list[dict[str, Any]] = []  # the groups' options, each on its one flat tensor
        for group in groups:
            params = list(group["params"])
            if not params:
                continue
            if len({(p.dtype, p.device) for p in params}) > 1:
                raise ValueError("flat buffers need one dtype and device per optimiser group")
            with torch.no_grad():
                data = torch.cat([p.detach().reshape(-1) for p in params])  # (N,) N = total numel
            grad = torch.zeros_like(data)  # (N,)
            flat = nn.Parameter(data)  # a leaf the optimiser accepts; never part of a graph itself
            flat.grad = grad
            offset = 0
            for p in params:
                n = p.numel()
                p.data = data[offset:offset + n].view_as(p)
                view = grad[offset:offset + n].view_as(p)
                p.grad = view
                self.params.append(p)
                self.views.append(view)
                offset += n
            self.grads.append(grad)
            self.param_groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": [flat]})

    def zero_grad(self) -> None:
        """Zero the flat gradient buffers (each parameter keeps its view as `.grad`)."""
        for g in self.grads:
            g.zero_()

    def sync_grads(self) -> None:
        """Put back any `.grad` that was replaced (copied into its view; None counts as zero)."""
        for p, view in zip(self.params, self.views):
            g = p.grad
            if g is view:
                continue
            if g is None:
                view.zero_()
            else:
                view.copy_(g)
            p.grad = view

    def release(self) -> None:
        """Give every parameter (and its gradient) its own storage again; the flat buffers are dropped."""
        for p, view in zip(self.params, self.views):
            p.data = p.data.clone()
            if p.grad is view:
                p.grad = view.clone()
        self.params, self.views, self.grads, self.param_groups = [], [], [], []
