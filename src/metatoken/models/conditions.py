"""Condition kinds: what a predictor is conditioned on, as a float vector per step.

Every kind is fitted on the reference data (quantile edges, scales), labels each step of
an episode for training, turns a commanded return per environment into a start condition,
and updates it after each reward. Discrete conditions (buckets, good/bad) are one-hot
vectors, so one linear embedding serves every kind. The fitted state is JSON.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from metatoken.data.dataset import Dataset, Episode
from metatoken.registry import Registry


class Condition:
    """Base: a fitted condition kind. `dim` = 0 means unconditioned."""

    kind: ClassVar[str] = ""
    dim: int = 0

    def labels(self, episode: Episode) -> np.ndarray:
        """Per-step condition for training: (T, dim)."""
        return np.zeros((len(episode), self.dim), np.float32)

    def start(self, target: np.ndarray | None, num_envs: int) -> np.ndarray:
        """Start condition from a commanded return per env (B,) (or (B, dim) vectors): (B, dim)."""
        return np.zeros((num_envs, self.dim), np.float32)

    @property
    def changes(self) -> bool:
        """True when `update` moves the condition each step (return-to-go)."""
        return False

    def update(self, cond: np.ndarray, reward: np.ndarray) -> np.ndarray:
        """Condition after a reward (B,); constant unless the kind counts down."""
        return cond

    def params(self) -> dict[str, Any]:
        """Fitted state as JSON-able values."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params()}


class NoCondition(Condition):
    kind = "none"

    @classmethod
    def fit(cls, dataset: Dataset) -> NoCondition:
        return cls()


class ReturnToGo(Condition):
    """Return-to-go divided by a scale (the largest absolute episode return)."""

    kind = "rtg"
    dim = 1

    def __init__(self, scale: float):
        self.scale = float(scale)

    @classmethod
    def fit(cls, dataset: Dataset) -> ReturnToGo:
        return cls(max(float(np.abs(dataset.returns()).max()), 1e-6))

    def labels(self, episode: Episode) -> np.ndarray:
        return (episode.returns_to_go() / self.scale).astype(np.float32)[:, None]

    def start(self, target, num_envs):
        t = np.zeros(num_envs) if target is None else np.broadcast_to(np.asarray(target, float), (num_envs,))
        return (t / self.scale).astype(np.float32)[:, None]

    @property
    def changes(self) -> bool:
        return True

    def update(self, cond, reward):
        return cond - (np.asarray(reward, np.float32) / self.scale)[:, None]

    def params(self):
        return {"scale": self.scale}


class _Bucketed(Condition):
    """One-hot bucket of the episode return given interior edges (ascending)."""

    def __init__(self, edges: list[float]):
        self.edges = [float(e) for e in edges]
        self.dim = len(self.edges) + 1

    def bucket(self, ret: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), np.asarray(ret, float), side="right")

    def _onehot(self, b: np.ndarray) -> np.ndarray:
        return np.eye(self.dim, dtype=np.float32)[b]

    def labels(self, episode):
        return np.repeat(self._onehot(self.bucket(np.array([episode.ret]))), len(episode), axis=0)

    def start(self, target, num_envs):
        t = np.full(num_envs, np.inf) if target is None else np.broadcast_to(np.asarray(target, float), (num_envs,))
        return self._onehot(self.bucket(t))

    def params(self):
        return {"edges": self.edges}


class QuantileBucket(_Bucketed):
    """K reward-quantile buckets of the episode return (Quark)."""

    kind = "quantile"

    @classmethod
    def fit(cls, dataset: Dataset, buckets: int = 5) -> QuantileBucket:
        qs = np.quantile(dataset.returns(), np.linspace(0, 1, buckets + 1)[1:-1])
        return cls(list(qs))


class GoodBad(_Bucketed):
    """Binary good/bad: episode return at or above the `quantile` of reference returns."""

    kind = "binary"

    @classmethod
    def fit(cls, dataset: Dataset, quantile: float = 0.5) -> GoodBad:
        # Edge just below the threshold so returns equal to it count as good.
        return cls([float(np.nextafter(np.quantile(dataset.returns(), quantile), -np.inf))])


def _episode_features(ep: Episode) -> dict[str, float]:
    intended = float(ep.intended[-1]) if len(ep) and np.isfinite(ep.intended[-1]) else 0.0
    return {
        "return": ep.ret,
        "length": float(len(ep)),
        "intended": intended,
        "exploit_rate": float(ep.exploit.mean()) if len(ep) else 0.0,
    }


ATTRIBUTES = ("return", "length", "intended", "exploit_rate")  # keys of _episode_features


class AttributeVector(Condition):
    """An arbitrary attribute vector per episode (return, length, intended, exploit_rate), standardised."""

    kind = "attribute"

    def __init__(self, names: list[str], mean: list[float], std: list[float]):
        unknown = set(names) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown attributes {sorted(unknown)} (known: {', '.join(ATTRIBUTES)})")
        self.names, self.mean, self.std = list(names), np.asarray(mean, float), np.asarray(std, float)
        self.dim = len(self.names)

    @classmethod
    def fit(cls, dataset: Dataset, names: tuple[str, ...] = ("return", "length")) -> AttributeVector:
        cls([*names], [0.0] * len(names), [1.0] * len(names))  # rejects unknown names first
        feats = np.array([[_episode_features(e)[n] for n in names] for e in dataset.episodes])
        return cls(list(names), list(feats.mean(0)), list(np.maximum(feats.std(0), 1e-6)))

    def raw(self, episode: Episode) -> np.ndarray:
        f = _episode_features(episode)
        return np.array([f[n] for n in self.names])

    def labels(self, episode):
        z = ((self.raw(episode) - self.mean) / self.std).astype(np.float32)
        return np.repeat(z[None], len(episode), axis=0)

    def start(self, target, num_envs):
        """(B,) targets set the first attribute, the others sit at their data mean; (B, dim) sets all."""
        vec = np.repeat(self.mean[None], num_envs, axis=0)
        if target is not None:
            t = np.asarray(target, float)
            if t.ndim == 2:
                vec = t.copy()
            else:
                vec[:, 0] = np.broadcast_to(t, (num_envs,))
        return ((vec - self.mean) / self.std).astype(np.float32)

    def params(self):
        return {"names": self.names, "mean": list(map(float, self.mean)), "std": list(map(float, self.std))}


CONDITIONS: Registry[type[Condition]] = Registry("condition kind")
CONDITIONS.register("none", NoCondition, "No condition: plain behaviour cloning.")
CONDITIONS.register("rtg", ReturnToGo, "Return-to-go, decremented by each reward (decision transformer).")
CONDITIONS.register("quantile", QuantileBucket, "One of K reward-quantile bucket tokens of the episode return (Quark).")
CONDITIONS.register("binary", GoodBad, "Binary good/bad: episode return at or above a reference quantile.")
CONDITIONS.register("attribute", AttributeVector, "An arbitrary standardised attribute vector per episode.")


def fit_condition(kind: str, dataset: Dataset, **options: Any) -> Condition:
    """Fit a registered condition kind on the reference data."""
    return CONDITIONS.get(kind).fit(dataset, **options)


def condition_from_json(d: dict[str, Any]) -> Condition:
    """Rebuild a fitted condition from `Condition.to_json()`."""
    return CONDITIONS.get(d["kind"])(**d["params"])
