"""Update shares: how much of the parameter updates an optimiser actually applied came from each loss term.

Adam's first moment is linear in the (clipped) gradients, m = sum_s beta1^(t-s) (1 - beta1) c_s g_s, and
the applied step is dtheta = -lr m_hat / (sqrt(v_hat) + eps), coordinate by coordinate. So a step
splits exactly between terms by their share of the first moment: dtheta_term = dtheta * m_term / m,
where m_term is the same running average fed only that term's gradient. A term's update share is
sum over steps and coordinates of |dtheta_term| / the same sum over all terms. It survives Adam's
per-coordinate scaling (a term that is alone on a coordinate owns that coordinate's whole step,
however small its gradient), and a term whose gradient is 0 gets 0.
"""

from __future__ import annotations

import torch
from torch import nn

from metatoken.models.train import TrainHooks


class AdamUpdateShares:
    """Attributes each step of an Adam/AdamW optimiser (one beta1 for all groups) to named loss terms."""

    def __init__(self, params: list[torch.Tensor], terms: tuple[str, ...], beta1: float = 0.9):
        self.params, self.terms, self.beta1 = params, terms, beta1
        self.m = {name: [torch.zeros_like(q, dtype=torch.float64) for q in params] for name in terms}
        self.moved = dict.fromkeys(terms, 0.0)  # sum over steps of |dtheta_term|_1
        self._before: list[torch.Tensor] = []

    def record(self, grads: dict[str, list[torch.Tensor | None]], clip_coef: float = 1.0) -> None:
        """Feed this step's per-term gradients (before clipping) and the clipping factor, then snapshot weights."""
        for name in self.terms:
            for m, g in zip(self.m[name], grads.get(name, [None] * len(self.params))):
                m.mul_(self.beta1)
                if g is not None:
                    m.add_(g.double(), alpha=(1 - self.beta1) * clip_coef)
        self._before = [q.detach().clone() for q in self.params]

    def after_step(self) -> None:
        """Split the step just applied between the terms by their share of the first moment."""
        with torch.no_grad():
            total = [sum(self.m[n][i] for n in self.terms) for i in range(len(self.params))]
            for i, (q, b) in enumerate(zip(self.params, self._before)):
                step = (q.detach() - b).double()  # the applied update, weight decay included
                safe = torch.where(total[i] == 0, torch.ones_like(total[i]), total[i])
                for n in self.terms:
                    share = torch.where(total[i] == 0, torch.zeros_like(safe), self.m[n][i] / safe)
                    self.moved[n] += float((step * share).abs().sum())

    def shares(self) -> dict[str, float]:
        """Each term's share of the summed |attributed update| over all recorded steps."""
        total = sum(self.moved.values())
        return {n: (v / total if total > 0 else 0.0) for n, v in self.moved.items()}


def clip_coef(norm: float, max_norm: float) -> float:
    """The factor torch's clip_grad_norm_ applies for a total norm `norm`."""
    return min(1.0, max_norm / (norm + 1e-6))


class UpdateMeter(TrainHooks):
    """A TrainHooks that only measures: the summed |dtheta|_1 the supervised loop applied."""

    def __init__(self):
        self.moved, self._before = 0.0, []

    def after_backward(self, step: int, model: nn.Module) -> int:
        self._before = [q.detach().clone() for q in model.parameters()]
        return 0

    def after_step(self, step: int, model: nn.Module, lr: float) -> None:
        with torch.no_grad():
            self.moved += float(sum((q - b).abs().sum() for q, b in zip(model.parameters(), self._before)))
