"""Distribution measures: how far a policy's state visitation is from the reference data's,
how far seeds' visitations are from each other, and how diverse a policy's episodes are.

Pure functions over arrays of visited states, (N, D) floats for continuous observations or
(N,) integer state ids for grids. Definitions and sources are in docs/MEASUREMENTS.md
("distribution"). Intervals resample states (rows), seeded; states within one episode are
correlated, so pass one state per episode or a thinned set when that matters.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import numpy as np

from metatoken.stats import rankdata

_MEDIAN_SUBSAMPLE = 1000  # points used for the median-heuristic bandwidth (pairwise distances are O(n^2))


class Estimate(NamedTuple):
    """A measured number with its 95% interval."""

    value: float
    low: float
    high: float


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[:, None] if x.ndim == 1 else x.reshape(len(x), -1)


# ------------------------------------------------------------------ classifier two-sample AUC

def auc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """Area under the ROC curve: P(score_pos > score_neg) + 1/2 P(equal) (Mann-Whitney U / (n m))."""
    pos, neg = np.asarray(scores_pos, float), np.asarray(scores_neg, float)
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def _features(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardised states and their squares, so a linear classifier sees shifts in mean and in spread."""
    z = (x - mean) / std  # (N, D)
    return np.concatenate([np.ones((len(z), 1)), z, z**2 - 1.0], axis=1)  # (N, 1 + 2D)


def _fit_logistic(f: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 25) -> np.ndarray:
    """Ridge logistic regression by Newton's method (deterministic, no learning rate to tune)."""
    w = np.zeros(f.shape[1])
    reg = l2 * len(y) * np.eye(f.shape[1])
    reg[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(f @ w, -30, 30)))  # (N,)
        grad = f.T @ (p - y) + reg @ w
        hess = (f * (p * (1 - p))[:, None]).T @ f + reg + 1e-9 * np.eye(f.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def classifier_auc(
    policy_states: np.ndarray, reference_states: np.ndarray, seed: int = 0,
    holdout: float = 0.5, reps: int = 1000,
) -> Estimate:
    """Classifier two-sample test: held-out AUC of a logistic regression on (z, z^2 - 1) telling
    policy states from reference states; 0.5 = indistinguishable, 1 = disjoint.

    Each sample is split at random (seeded) into a training part and a held-out `holdout` part;
    the interval is a stratified bootstrap of the held-out scores (the classifier stays fixed).
    """
    x, r = _as_2d(policy_states), _as_2d(reference_states)
    if min(len(x), len(r)) < 4:
        return Estimate(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    px, pr = rng.permutation(len(x)), rng.permutation(len(r))
    nx, nr = round(len(x) * holdout), round(len(r) * holdout)
    x_test, x_train = x[px[:nx]], x[px[nx:]]
    r_test, r_train = r[pr[:nr]], r[pr[nr:]]
    train = np.concatenate([x_train, r_train])
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    y = np.concatenate([np.ones(len(x_train)), np.zeros(len(r_train))])
    w = _fit_logistic(_features(train, mean, std), y)
    sx, sr = _features(x_test, mean, std) @ w, _features(r_test, mean, std) @ w
    point = auc(sx, sr)
    boots = np.array([auc(sx[rng.integers(0, len(sx), len(sx))], sr[rng.integers(0, len(sr), len(sr))])
                      for _ in range(reps)])
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Estimate(point, float(lo), float(hi))


# ------------------------------------------------------------------ MMD

def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T  # (N, M)
    return np.maximum(d, 0.0)


def median_bandwidth(z: np.ndarray, seed: int = 0) -> float:
    """Median heuristic: the median Euclidean distance between distinct points of z (subsampled, seeded)."""
    z = _as_2d(z)
    if len(z) > _MEDIAN_SUBSAMPLE:
        z = z[np.random.default_rng(seed).choice(len(z), _MEDIAN_SUBSAMPLE, replace=False)]
    d = np.sqrt(_sq_dists(z, z)[np.triu_indices(len(z), k=1)])
    med = float(np.median(d)) if len(d) else 0.0
    return med if med > 0 else 1.0


def _mmd2_from_kernel(k: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> float:
    """Unbiased MMD^2 from a pooled kernel matrix and each sample's copy counts per pooled point
    (1/0 for the sample itself; bootstrap counts for a resample). Pairs that are copies of one
    point are left out of the within-sample terms, which keeps a resample's estimate unbiased."""
    diag = np.diag(k)
    kx, ky = k @ wx, k @ wy  # (N+M,)
    nx, ny = wx.sum(), wy.sum()
    exx = (wx @ kx - (wx**2) @ diag) / (nx**2 - (wx**2).sum())
    eyy = (wy @ ky - (wy**2) @ diag) / (ny**2 - (wy**2).sum())
    return float(exx + eyy - 2.0 * (wx @ ky) / (nx * ny))


def _indicator(idx: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(idx, minlength=n).astype(float)


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None, seed: int = 0) -> float:
    """Unbiased squared MMD with the Gaussian kernel exp(-|a - b|^2 / (2 sigma^2)); sigma by the
    median heuristic over the pooled sample unless given."""
    x, y = _as_2d(x), _as_2d(y)
    z = np.concatenate([x, y])
    sigma = median_bandwidth(z, seed) if bandwidth is None else float(bandwidth)
    k = np.exp(-_sq_dists(z, z) / (2.0 * sigma**2))  # (N+M, N+M)
    return _mmd2_from_kernel(k, _indicator(np.arange(len(x)), len(z)),
                             _indicator(np.arange(len(x), len(z)), len(z)))


class MMDResult(NamedTuple):
    """Unbiased MMD^2 with a bootstrap interval and a permutation p-value (H0: same distribution)."""

    value: float
    low: float
    high: float
    p_value: float
    bandwidth: float


def mmd_test(
    x: np.ndarray, y: np.ndarray, bandwidth: float | None = None, seed: int = 0, reps: int = 200,
    max_points: int = 2000,
) -> MMDResult:
    """Unbiased MMD^2 between two samples, a 95% bootstrap interval (each sample resampled on its
    own, copies of one point never paired) and a permutation p-value. A sample larger than
    `max_points` is subsampled (seeded) first: the kernel matrix is (N + M)^2."""
    x, y = _as_2d(x), _as_2d(y)
    rng = np.random.default_rng(seed)
    x = x[rng.choice(len(x), max_points, replace=False)] if len(x) > max_points else x
    y = y[rng.choice(len(y), max_points, replace=False)] if len(y) > max_points else y
    if min(len(x), len(y)) < 2:
        return MMDResult(*(float("nan"),) * 5)
    z = np.concatenate([x, y])
    sigma = median_bandwidth(z, seed) if bandwidth is None else float(bandwidth)
    k = np.exp(-_sq_dists(z, z) / (2.0 * sigma**2))  # (N+M, N+M)
    ix, iy = np.arange(len(x)), np.arange(len(x), len(z))
    n = len(z)
    point = _mmd2_from_kernel(k, _indicator(ix, n), _indicator(iy, n))
    boots = np.array([_mmd2_from_kernel(k, _indicator(rng.choice(ix, len(ix)), n),
                                        _indicator(rng.choice(iy, len(iy)), n)) for _ in range(reps)])
    null = []
    for _ in range(reps):
        perm = rng.permutation(n)
        null.append(_mmd2_from_kernel(k, _indicator(perm[: len(x)], n), _indicator(perm[len(x):], n)))
    p_value = (1 + np.sum(np.asarray(null) >= point)) / (reps + 1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return MMDResult(point, float(lo), float(hi), float(p_value), sigma)


def gaussian_mmd2(delta: float, spread: float, bandwidth: float, dim: int) -> float:
    """Closed-form MMD^2 between N(mu1, s^2 I) and N(mu2, s^2 I) in `dim` dimensions under the
    Gaussian kernel of width `bandwidth`, with |mu1 - mu2| = delta and s = spread."""
    var = bandwidth**2 + 2.0 * spread**2
    scale = (bandwidth**2 / var) ** (dim / 2)
    return float(2.0 * scale * (1.0 - np.exp(-(delta**2) / (2.0 * var))))


# ------------------------------------------------------------------ Jensen-Shannon on grids

def state_ids(*samples: np.ndarray) -> list[np.ndarray]:
    """Map the rows of several samples of discrete observations to shared integer state ids."""
    arrays = [np.asarray(s).reshape(len(s), -1) for s in samples]
    _, inverse = np.unique(np.concatenate(arrays), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    cuts = np.cumsum([len(a) for a in arrays])[:-1]
    return np.split(inverse, cuts)


def visitation(ids: np.ndarray, n_states: int) -> np.ndarray:
    """State-visitation histogram: the share of visits to each of n_states integer states."""
    counts = np.bincount(np.asarray(ids, dtype=int), minlength=n_states).astype(float)
    return counts / counts.sum()


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two histograms (normalised here):
    JS = H((p + q) / 2) - (H(p) + H(q)) / 2, in [0, 1]."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    p, q = p / p.sum(), q / q.sum()
    return float(max(entropy_bits((p + q) / 2) - (entropy_bits(p) + entropy_bits(q)) / 2, 0.0))


def entropy_bits(p: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram (normalised here); 0 log 0 = 0."""
    p = np.asarray(p, float)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


def js_test(x_ids: np.ndarray, y_ids: np.ndarray, seed: int = 0, reps: int = 1000) -> Estimate:
    """Exact JS (bits) between two samples' visitation histograms over integer state ids, with a
    95% bootstrap interval (each sample resampled on its own)."""
    x_ids, y_ids = np.asarray(x_ids, int), np.asarray(y_ids, int)
    n = int(max(x_ids.max(), y_ids.max())) + 1
    point = js_divergence(visitation(x_ids, n), visitation(y_ids, n))
    rng = np.random.default_rng(seed)
    boots = np.array([js_divergence(visitation(rng.choice(x_ids, len(x_ids)), n),
                                    visitation(rng.choice(y_ids, len(y_ids)), n)) for _ in range(reps)])
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Estimate(point, float(lo), float(hi))


# ------------------------------------------------------------------ spread across seeds

def seed_spread_js(ids_per_seed: list[np.ndarray]) -> float:
    """Mean pairwise JS (bits) between seeds' visitation histograms (grids); NaN below 2 seeds."""
    if len(ids_per_seed) < 2:
        return float("nan")
    n = int(max(np.max(i) for i in ids_per_seed)) + 1
    hists = [visitation(i, n) for i in ids_per_seed]
    return float(np.mean([js_divergence(a, b) for a, b in combinations(hists, 2)]))


def seed_spread_mmd(states_per_seed: list[np.ndarray], bandwidth: float | None = None, seed: int = 0) -> float:
    """Mean pairwise unbiased MMD^2 between seeds' visited states (continuous), one shared bandwidth
    (median heuristic over all seeds pooled) so pairs are comparable; NaN below 2 seeds."""
    if len(states_per_seed) < 2:
        return float("nan")
    pooled = np.concatenate([_as_2d(s) for s in states_per_seed])
    sigma = median_bandwidth(pooled, seed) if bandwidth is None else float(bandwidth)
    return float(np.mean([mmd2(a, b, sigma) for a, b in combinations(states_per_seed, 2)]))


# ------------------------------------------------------------------ within-policy diversity

def mean_pairwise_distance(features: np.ndarray, scale: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between distinct episodes' feature vectors (each dim divided by scale)."""
    f = _as_2d(features)
    if scale is not None:
        f = f / np.where(np.asarray(scale, float) > 0, scale, 1.0)
    if len(f) < 2:
        return float("nan")
    d = np.sqrt(_sq_dists(f, f)[np.triu_indices(len(f), k=1)])
    return float(d.mean())


def relative_diversity(policy_features: np.ndarray, reference_features: np.ndarray) -> float:
    """Within-policy diversity / the reference data's: mean pairwise distance between episode feature
    vectors, both in units of the reference features' per-dimension std. 1 = as diverse as the data,
    0 = every episode the same."""
    ref = _as_2d(reference_features)
    scale = ref.std(0)
    denom = mean_pairwise_distance(ref, scale)
    if not denom > 0:
        return float("nan")
    return mean_pairwise_distance(policy_features, scale) / denom
