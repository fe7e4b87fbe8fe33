"""A text policy: a causal LM over the world's words, started by a start token or a condition metatoken.

Token ids: words 0 .. V-1, the start token V, condition tokens V+1 .. V+N_CONDITIONS. A
sequence x_0 .. x_{L-1} is scored as [first, x_0, .., x_{L-2}] -> [x_0, .., x_{L-1}]. Only
word tokens can be generated: the start and condition tokens are blocked (their logits
are dropped before the softmax) both when sampling and when scoring, so `log_prob` is the
exact log-probability of what `sample` draws, and over the enumerated support it sums to 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from metatoken.errors import UserError
from metatoken.models.lm import CausalLM, LMConfig

N_CONDITIONS = 4  # condition-token slots every text model reserves (good/bad, or up to 4 quantiles)
SUPPORT_BATCH = 16_384  # sequences per forward pass when scoring the whole support


@dataclass(frozen=True)
class Vocabulary:
    n_words: int
    n_conditions: int = N_CONDITIONS

    @property
    def start(self) -> int:
        return self.n_words

    @property
    def size(self) -> int:
        return self.n_words + 1 + self.n_conditions

    def condition(self, i: int) -> int:
        """The token id of condition metatoken i."""
        if not 0 <= i < self.n_conditions:
            raise ValueError(f"condition {i} outside 0..{self.n_conditions - 1}")
        return self.n_words + 1 + i


class TextPolicy:
    """Samples and scores word sequences (N, L); `condition` sets the first token (None = start token)."""

    def __init__(self, model: CausalLM, vocab: Vocabulary, length: int, condition: int | None = None):
        self.model, self.vocab, self.length, self.condition = model, vocab, length, condition

    def with_condition(self, condition: int | None) -> TextPolicy:
        """The same weights, started by condition token `condition` (None: the start token)."""
        return TextPolicy(self.model, self.vocab, self.length, condition)

    @property
    def first_token(self) -> int:
        return self.vocab.start if self.condition is None else self.vocab.condition(self.condition)

    def token_log_probs(self, x: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
        """log pi(x_t | first, x_<t) for x (N, L) long, first (N,) token ids or this policy's: (N, L)."""
        N = x.shape[0]
        if first is None:
            first = torch.full((N,), self.first_token, dtype=torch.long, device=x.device)
        inp = torch.cat([first[:, None], x[:, :-1]], dim=1)  # (N, L)
        logits = self.model(inp)[..., : self.vocab.n_words]  # (N, L, V): control tokens blocked
        return logits.log_softmax(-1).gather(-1, x[..., None])[..., 0]  # (N, L)

    def log_prob(self, x: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence log-probabilities (N,), differentiable."""
        return self.token_log_probs(x, first).sum(-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n sequences (n, L) long, drawn autoregressively with the seeded generator."""
        was = self.model.training
        self.model.eval()
        seq = torch.full((n, 1), self.first_token, dtype=torch.long)
        for _ in range(self.length):
            logits = self.model(seq)[:, -1, : self.vocab.n_words]  # (n, V)
            nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)  # (n, 1)
            seq = torch.cat([seq, nxt], dim=1)
        self.model.train(was)
        return seq[:, 1:]

    @torch.no_grad()
    def support_log_prob(self, x: np.ndarray) -> np.ndarray:
        """Exact log pi of every sequence in x (N, L) int, in float64: (N,).

        A causal LM's prediction at position t depends only on the prefix, so the model runs
        once per distinct (L-1)-word prefix (V times fewer rows than sequences on a full
        support) and each sequence reads its L token log-probs from its prefix's row.
        """
        was = self.model.training
        self.model.eval()
        xt = torch.as_tensor(x, dtype=torch.long)  # (N, L)
        prefixes, row = torch.unique(xt[:, :-1], dim=0, return_inverse=True)  # (P, L-1), (N,)
        first = torch.full((len(prefixes), 1), self.first_token, dtype=torch.long)
        inp = torch.cat([first, prefixes], dim=1)  # (P, L)
        logp = torch.cat([self.model(inp[i: i + SUPPORT_BATCH])[..., : self.vocab.n_words].double()
                          .log_softmax(-1) for i in range(0, len(inp), SUPPORT_BATCH)])  # (P, L, V)
        self.model.train(was)
        steps = torch.arange(xt.shape[1])
        return logp[row[:, None], steps[None], xt].sum(1).numpy()  # (N,)

    def save(self, path: Path) -> None:
        """Weights as safetensors, config and vocabulary as JSON."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, path / "model.safetensors")
        meta = {"lm": self.model.cfg.to_json(), "n_words": self.vocab.n_words,
                "n_conditions": self.vocab.n_conditions, "length": self.length, "condition": self.condition}
        (path / "policy.json").write_text(json.dumps(meta, indent=2))


def new_policy(n_words: int, length: int, d_model: int = 32, n_layers: int = 2, n_heads: int = 2) -> TextPolicy:
    """A freshly initialised text policy for a world's vocabulary (seed torch before calling)."""
    vocab = Vocabulary(n_words)
    model = CausalLM(LMConfig(vocab=vocab.size, context=length, d_model=d_model, n_layers=n_layers,
                              n_heads=n_heads))
    return TextPolicy(model, vocab, length)


def copy_policy(policy: TextPolicy) -> TextPolicy:
    """An independent copy (same weights and condition) to fine-tune from a shared start."""
    model = CausalLM(policy.model.cfg)
    model.load_state_dict(policy.model.state_dict())
    return TextPolicy(model, policy.vocab, policy.length, policy.condition)


def load_text_policy(path: Path) -> TextPolicy:
    """A policy written by `TextPolicy.save` (no pickle: safetensors and JSON)."""
    path = Path(path)
    if not (path / "policy.json").is_file() or not (path / "model.safetensors").is_file():
        raise UserError(f"{path}: not a saved text policy (needs policy.json and model.safetensors)")
    meta = json.loads((path / "policy.json").read_text())
    model = CausalLM(LMConfig(**meta["lm"]))
    model.load_state_dict(load_file(path / "model.safetensors"))
    return TextPolicy(model, Vocabulary(meta["n_words"], meta["n_conditions"]), meta["length"], meta["condition"])
