"""The text world: a hidden-Markov language whose p0(x) is exact, with rewards over token ids.

A sequence is `length` words from a vocabulary of `n_words`. A hidden state chain
(initial distribution, transition matrix) emits one word per step; p0(x) sums over the
hidden paths with the forward algorithm, so log p0 is exact for any sequence. Every
emission and transition probability is bounded away from 0, so the support is every
one of n_words ** length sequences.

Configurations: `tiny` (4 words x 5 = 1,024 sequences, for tests), `small` (6 words x 6
= 46,656 sequences: exact metrics over the whole support) and `large` (12 words x 12,
about 9e12 sequences: metrics are Monte Carlo / importance-sampled estimates).

Rewards are pure functions of token ids (N, L) -> (N,), each in [0, 1] or [-1, 1]:

| reward | definition |
|---|---|
| `proxy` | share of positions holding a positive word (a keyword counter) |
| `true` | share of positions holding a positive word that differs from the previous word |
| `sentiment` | mean word score, scores evenly spaced from +1 (first word) to -1 (last word) |

The loophole: `proxy` pays for immediate repeats ("great great great"), `true` does not,
so optimising the proxy hard can raise proxy reward while true reward falls.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from metatoken.errors import UserError

WORD_NAMES = ("great", "good", "nice", "fine", "plain", "dull", "odd", "weak", "poor", "sad", "bad", "awful")
REWARDS = ("proxy", "true", "sentiment")
ENUMERABLE_MAX = 1_000_000  # sequences; above this, metrics are estimated from samples


@dataclass(frozen=True)
class WorldConfig:
    n_words: int = 6
    length: int = 6
    n_states: int = 3
    seed: int = 0  # draws the HMM's parameters
    concentration: float = 0.7  # Dirichlet concentration of the rows (smaller = peakier p0)
    floor: float = 0.04  # mixed-in uniform mass: every probability >= floor / size, full support
    n_positive: int = 2  # the first n_positive words are the proxy's "positive" words

    def to_json(self) -> dict:
        return asdict(self)


CONFIGS = {
    "tiny": WorldConfig(n_words=4, length=5, n_states=2),
    "small": WorldConfig(n_words=6, length=6, n_states=3),
    "large": WorldConfig(n_words=12, length=12, n_states=4, n_positive=3),
}


def world_config(name: str, **overrides) -> WorldConfig:
    """A named configuration with optional field overrides; unknown names raise UserError."""
    if name not in CONFIGS:
        raise UserError(f"text world {name!r} unknown (known: {', '.join(CONFIGS)})")
    cfg = WorldConfig(**{**asdict(CONFIGS[name]), **overrides})
    if not 2 <= cfg.n_words <= len(WORD_NAMES) or cfg.length < 2 or not 1 <= cfg.n_positive < cfg.n_words:
        raise UserError(f"text world {name!r}: n_words in 2..{len(WORD_NAMES)}, length >= 2, "
                        f"n_positive in 1..n_words-1")
    return cfg


def _rows(rng: np.random.Generator, n: int, k: int, concentration: float, floor: float) -> np.ndarray:
    p = rng.dirichlet(np.full(k, concentration), size=n)  # (n, k)
    return (1 - floor) * p + floor / k


class World:
    """A seeded hidden-Markov language: exact log p0, enumeration, sampling and rewards."""

    def __init__(self, cfg: WorldConfig):
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        S, V = cfg.n_states, cfg.n_words
        self.initial = _rows(rng, 1, S, 1.0, cfg.floor)[0]  # (S,)
        self.transition = _rows(rng, S, S, cfg.concentration, cfg.floor)  # (S, S) from -> to
        self.emission = _rows(rng, S, V, cfg.concentration, cfg.floor)  # (S, V)
        self.scores = np.linspace(1.0, -1.0, V)  # sentiment score per word
        self.positive = np.arange(V) < cfg.n_positive  # (V,) the proxy's keywords

    @property
    def n_words(self) -> int:
        return self.cfg.n_words

    @property
    def length(self) -> int:
        return self.cfg.length

    @property
    def support_size(self) -> int:
        return self.cfg.n_words ** self.cfg.length

    @property
    def enumerable(self) -> bool:
        return self.support_size <= ENUMERABLE_MAX

    def words(self, x: np.ndarray) -> list[str]:
        """Token ids (L,) as words, for reading samples."""
        return [WORD_NAMES[i] for i in np.asarray(x)]

    def log_p0(self, x: np.ndarray) -> np.ndarray:
        """Exact log p0 of sequences (N, L) by the forward algorithm over hidden states: (N,)."""
        x = np.asarray(x)
        log_a, log_b = np.log(self.transition), np.log(self.emission)  # (S, S), (S, V)
        alpha = np.log(self.initial)[None] + log_b[:, x[:, 0]].T  # (N, S)
        for t in range(1, x.shape[1]):
            alpha = np.logaddexp.reduce(alpha[:, :, None] + log_a[None], axis=1) + log_b[:, x[:, t]].T  # (N, S)
        return np.logaddexp.reduce(alpha, axis=1)

    @cached_property
    def _support(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.enumerable:
            raise UserError(f"text world with {self.support_size:.3g} sequences is too large to enumerate "
                            f"(limit {ENUMERABLE_MAX:,}); use sampled estimates")
        seqs = np.array(list(itertools.product(range(self.n_words), repeat=self.length)), dtype=np.int64)
        return seqs, self.log_p0(seqs)

    def support(self) -> tuple[np.ndarray, np.ndarray]:
        """Every sequence (N, L) in lexicographic order and its exact log p0 (N,)."""
        return self._support

    def sample(self, n: int, seed: int) -> np.ndarray:
        """n sequences (n, L) drawn from p0 with a seeded generator."""
        rng = np.random.default_rng(seed)
        L = self.length
        out = np.empty((n, L), dtype=np.int64)
        state = _draw(rng, np.broadcast_to(self.initial, (n, len(self.initial))))
        for t in range(L):
            out[:, t] = _draw(rng, self.emission[state])
            state = _draw(rng, self.transition[state])
        return out

    def reward(self, name: str, x: np.ndarray) -> np.ndarray:
        """Reward `name` of sequences (N, L): (N,) float64."""
        x = np.asarray(x)
        if name == "proxy":
            return self.positive[x].mean(1)
        if name == "true":
            fresh = np.ones_like(x, dtype=bool)
            fresh[:, 1:] = x[:, 1:] != x[:, :-1]  # an immediate repeat earns nothing
            return (self.positive[x] & fresh).mean(1)
        if name == "sentiment":
            return self.scores[x].mean(1)
        raise UserError(f"text reward {name!r} unknown (known: {', '.join(REWARDS)})")

    def reward_max(self, name: str) -> float:
        """The largest value reward `name` takes on the support (attained, analytic)."""
        if name == "proxy":
            return 1.0
        if name == "true":  # alternate two positive words; with one, every other position
            return 1.0 if self.cfg.n_positive >= 2 else float(np.ceil(self.length / 2) / self.length)
        if name == "sentiment":
            return float(self.scores.max())
        raise UserError(f"text reward {name!r} unknown (known: {', '.join(REWARDS)})")


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of probs (N, K): (N,) indices."""
    u = rng.random(len(probs))[:, None]  # (N, 1)
    return np.minimum((probs.cumsum(1) < u).sum(1), probs.shape[1] - 1)


def make_world(name: str = "small", **overrides) -> World:
    """The world of a named configuration (see CONFIGS)."""
    return World(world_config(name, **overrides))
