"""KL(pi || pi_ref) on the policy's own evaluation trajectories, two ways.

`kl_per_step` (the ruler): at every state h_t the policy visits, the closed-form
KL(pi(.|h_t) || pi_ref(.|h_t)) between the two policies' distributions (`step_kl`), then
summed per episode and averaged per visited state:

    KL_episode = sum_t KL(pi(.|h_t) || pi_ref(.|h_t)),   per_step = sum_e KL_e / sum_e T_e

`kl_per_episode` (kept for comparison): the single-sample Monte Carlo estimate
sum_t [log pi(a_t|h_t) - log pi_ref(a_t|h_t)], a_t ~ pi (unbiased per episode, noisy, and
for continuous actions taken at densities, so infinite in truth when one policy has point
masses at the bounds and the other has none).

In both, the reference is teacher-forced along the same trajectory
(`recorders.TeacherForced`): it sees the same observations and, as its previous action,
the action pi actually took. Both policies must be `ScoredPolicy`s.

`kl_along` gives `kl_per_step`'s numbers without playing: it scores the reference along
episodes pi already played (`recorders.ScoredEpisodes`, kept during the evaluation),
teacher-forced on the recorded (observation, action) pairs (a predictor in one pass over each
whole episode, other policies step by step), and computes every step's KL in one vectorised
`step_kl` call at the end. On the same episodes it equals `kl_per_step` (the same ruler, the
same sums; a predictor's one-pass scores to float32 rounding); `kl-to-reference` uses it.

One ruler for every pair of policies (`step_kl`):
- discrete actions: the exact categorical KL;
- continuous actions where both are plain Gaussians (`gaussian` family: unbounded spaces):
  the exact Gaussian KL in environment units;
- continuous actions where either is bounded (`tanh` predictors, `clipped` PPO): both are
  scored on one common discretisation of each action dimension: `bins` equal-width bins
  over the bounds, the two edge bins extended to +-inf so that they hold the bound atoms
  of a clipped Gaussian (and tanh's mass next to the bounds). The KL of the binned
  distributions is finite between any two such policies and, by the data-processing
  inequality, at most the true KL (which is infinite between clipped and tanh policies).
  Per-dimension distributions are independent, so dimensions add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metatoken import seeds
from metatoken.envs.task import Task
from metatoken.evaluate.recorders import Distributions, LogProbs, ScoredEpisodes, TeacherForced, sum_over_episode
from metatoken.evaluate.rollout import play
from metatoken.policy import ActionDistribution, EpisodeScorer, Policy, ScoredPolicy

BINS = 64  # per bounded action dimension in the common discretisation
_FLOOR = 1e-300  # a bin's mass never underflows to 0 (its log stays finite)
_KL_ROWS = 16_384  # (step, episode) pairs per step_kl call in kl_along: bounds the binned ruler's memory


def has_log_prob(policy: Policy) -> bool:
    """Whether `policy` exposes its action log-probabilities (scripted policies do not)."""
    return isinstance(policy, ScoredPolicy)


def kl_per_episode(
    task: Task, policy: ScoredPolicy, reference: ScoredPolicy, episodes: int, seed: int,
    target: float | None = None,
) -> np.ndarray:
    """Per-episode estimates of KL(policy || reference) in nats on `episodes` episodes: (E,)."""
    n = episodes
    targets = None if target is None else np.full(n, float(target))
    logp, ref = LogProbs(policy), TeacherForced(reference, seeds.second_policy(seed), targets)
    play(task, policy, n, seed, target=targets, recorders=[logp, ref])
    return sum_over_episode([p - q for p, q in zip(logp.steps, ref.steps)], logp.alive)


def _gaussian_kl(mp: torch.Tensor, lsp: torch.Tensor, mq: torch.Tensor, lsq: torch.Tensor) -> torch.Tensor:
    """KL(N(mp, e^lsp) || N(mq, e^lsq)) per element: (...)."""
    return lsq - lsp + (torch.exp(2 * lsp) + (mp - mq) ** 2) / (2 * torch.exp(2 * lsq)) - 0.5


def _env_units(d: ActionDistribution) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and log std of a plain Gaussian in environment units: (B, A) each."""
    mean, log_std = d.mean.double(), d.log_std.double()
    return d.loc.double() + d.scale.double() * mean, log_std + torch.log(d.scale.double())


def _bin_masses(d: ActionDistribution, edges: torch.Tensor) -> torch.Tensor:
    """Mass of each bin between consecutive env-unit edges (A, M + 1) per env: (B, A, M)."""
    mean, std = d.mean.double()[..., None], torch.exp(d.log_std.double())[..., None]  # (B, A, 1)
    y = (edges - d.loc.double()[:, None]) / d.scale.double()[:, None]  # (A, M + 1) in half-range units
    if d.family == "tanh":
        y = torch.atanh(y.clamp(-1.0, 1.0))  # the pre-squash u of each edge (+-inf at the bounds)
    cdf = torch.special.ndtr((y[None] - mean) / std)  # (B, A, M + 1)
    return (cdf[..., 1:] - cdf[..., :-1]).clamp_min(_FLOOR)


def step_kl(p: ActionDistribution, q: ActionDistribution, bins: int = BINS) -> torch.Tensor:
    """KL(p || q) in nats for each of B envs under the module's one ruler: (B,) float64."""
    if p.discrete != q.discrete:
        raise ValueError("a discrete and a continuous policy have no KL")
    if p.discrete:
        lp, lq = torch.log_softmax(p.params.double(), -1), torch.log_softmax(q.params.double(), -1)
        return (lp.exp() * (lp - lq)).sum(-1)
    if p.family == "gaussian" and q.family == "gaussian":
        return _gaussian_kl(*_env_units(p), *_env_units(q)).sum(-1)
    bounded = p if p.family != "gaussian" else q
    low, high = bounded.loc.double() - bounded.scale.double(), bounded.loc.double() + bounded.scale.double()
    inner = low[:, None] + (high - low)[:, None] * torch.arange(1, bins, dtype=torch.float64) / bins  # (A, M - 1)
    inf = torch.full_like(low[:, None], torch.inf)
    edges = torch.cat([-inf, inner, inf], 1)  # (A, M + 1): the edge bins hold the bounds
    mp, mq = _bin_masses(p, edges), _bin_masses(q, edges)  # (B, A, M)
    return (mp * (mp.log() - mq.log())).sum((-1, -2))


@dataclass(frozen=True)
class StepKL:
    """The closed-form KL(pi || pi_ref) along a policy's evaluation episodes."""

    per_episode: np.ndarray  # (E,) nats: sum over each episode's steps
    per_step: float  # nats per visited state: all episodes' sums over all their steps


def kl_per_step(
    task: Task, policy: ScoredPolicy, reference: ScoredPolicy, episodes: int, seed: int,
    target: float | None = None, bins: int = BINS,
) -> StepKL:
    """Closed-form KL(policy || reference) at every state the policy visits in `episodes` episodes."""
    n = episodes
    targets = None if target is None else np.full(n, float(target))
    mine, ref = Distributions(policy), TeacherForced(reference, seeds.second_policy(seed), targets,
                                                     keep_distributions=True)
    play(task, policy, n, seed, target=targets, recorders=[mine, ref])
    steps = [step_kl(p, q, bins).numpy() for p, q in zip(mine.steps, ref.distributions)]
    per_episode = sum_over_episode(steps, mine.alive)
    return StepKL(per_episode, float(per_episode.sum() / sum(a.sum() for a in mine.alive)))


def _stacked(steps: list[ActionDistribution]) -> ActionDistribution:
    """T distributions of E envs each as one distribution of T x E rows, step-major: (T * E, P)."""
    first = steps[0]
    return ActionDistribution(first.family, torch.cat([d.params for d in steps]), first.loc, first.scale)


def _rows(d: ActionDistribution, lo: int, hi: int) -> ActionDistribution:
    return ActionDistribution(d.family, d.params[lo:hi], d.loc, d.scale)


def reference_along(recorded: ScoredEpisodes, reference: ScoredPolicy, target: float | None = None,
                    one_pass: bool = True) -> ActionDistribution:
    """`reference`'s distribution at every recorded step, teacher-forced on the recorded episodes: T x E rows,
    step-major.

    An `EpisodeScorer` (a predictor) scores each whole episode in one pass (`score_episodes`) unless
    `one_pass` is False; any other scored policy is reset for the recorded rows with their
    `seeds.second_policy` streams (and `target` when it is conditioned) and led step by step as
    `recorders.TeacherForced` leads it.
    """
    n = len(recorded.seeds)
    targets = np.full(n, float(target)) if reference.conditioned and target is not None else None
    if one_pass and isinstance(reference, EpisodeScorer):
        return reference.score_episodes(np.stack(recorded.obs), np.stack(recorded.actions),
                                        np.stack(recorded.rewards), targets)
    reference.reset(n, target=targets, seed=[seeds.second_policy(s) for s in recorded.seeds])
    out = []
    for obs, action, reward, done, alive in zip(recorded.obs, recorded.actions, recorded.rewards, recorded.done,
                                                recorded.alive):
        reference.teacher_force(obs, action)
        out.append(reference.distribution())
        reference.observe(reward, done | ~alive)
    return _stacked(out)


def kl_along(recorded: ScoredEpisodes, reference: ScoredPolicy, target: float | None = None,
             bins: int = BINS, one_pass: bool = True) -> StepKL:
    """Closed-form KL(pi || reference) on the episodes pi played while `recorded` kept them (no env, no acting);
    `one_pass=False` teacher-forces a predictor step by step (as `kl_per_step` does) instead of per episode."""
    alive = np.stack(recorded.alive)  # (T, E): a play records at least one step
    p, q = _stacked(recorded.distributions), reference_along(recorded, reference, target, one_pass)  # (T * E, P)
    live = torch.from_numpy(np.flatnonzero(alive.reshape(-1)))  # (N,) the (step, episode) pairs that count
    p, q = (ActionDistribution(d.family, d.params[live], d.loc, d.scale) for d in (p, q))  # (N, P) each
    kl = np.zeros(alive.size)  # (T * E,) 0 after each episode's end
    kl[live.numpy()] = torch.cat([step_kl(_rows(p, lo, lo + _KL_ROWS), _rows(q, lo, lo + _KL_ROWS), bins)
                                  for lo in range(0, len(live), _KL_ROWS)]).numpy()
    per_episode = kl.reshape(alive.shape).sum(0)  # (E,) each episode's steps, added in step order
    return StepKL(per_episode, float(per_episode.sum() / alive.sum()))
