"""Online policy-gradient plumbing shared by `kl-finetune` and `mixture` (predictor policies).

`collect` plays groups of episodes with a PredictorPolicy through the rollout primitive
and records exactly the inputs its model consumed at every step (obs, previous action,
condition, timestep), so that `window_params` can recompute pi(. | h_t) with gradients
over the same K-step windows the KV-cached rollout attended to. RLOO: the k episodes of a
group start from the same seed, and each episode's baseline is the mean score of the
other k - 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metatoken import seeds
from metatoken.envs.task import Task
from metatoken.evaluate.recorders import LogProbs, ModelInputs, Outcomes, TeacherForced
from metatoken.evaluate.rollout import play
from metatoken.methods.kl_regularised import regularised_returns_exact_kl, rloo_baseline
from metatoken.models.policy import PredictorPolicy


@dataclass
class Trajectory:
    """One online episode with the model inputs of every step."""

    obs: torch.Tensor  # (T, O)
    prev_action: torch.Tensor  # (T, A) float or (T,) long
    action: torch.Tensor  # (T, A) float or (T,) long
    cond: torch.Tensor  # (T, Dc)
    timestep: torch.Tensor  # (T,) long
    ret: float
    rewards: np.ndarray  # (T,) r_t
    logp: np.ndarray  # (T,) log pi(a_t) at collection time
    logp_base: np.ndarray  # (T,) log pi_base(a_t), zeros without a base
    base_params: torch.Tensor | None  # (T, P) pi_base's distribution parameters, None without a base

    def __len__(self) -> int:
        return len(self.timestep)


def collect(task: Task, policy: PredictorPolicy, groups: int, k: int, seed: int, max_steps: int,
            target: float | None = None, base: PredictorPolicy | None = None) -> tuple[list[list[Trajectory]], int]:
    """Play `groups` x `k` episodes (a group shares its start seed) within `max_steps` env steps.

    Returns the complete groups and the env steps used; an episode cut by the step limit
    drops its whole group, so the baseline stays leave-one-out. Envs that take only one
    seed start every episode independently: the leave-one-out baseline stays unbiased,
    only noisier. The policy's env i samples with seed + i; the base's stream is
    `seeds.second_policy(seed)`.
    """
    n = groups * k
    targets = None if target is None else np.full(n, float(target))
    outcomes, logp, inputs = Outcomes(), LogProbs(policy), ModelInputs(policy)
    recorders = [outcomes, logp, inputs]
    forced = None if base is None else TeacherForced(base, seeds.second_policy(seed), targets,
                                                     keep_distributions=True)
    recorders += [] if forced is None else [forced]
    played = play(task, policy, n, [seed + g for g in range(groups) for _ in range(k)], policy_seed=seed,
                  target=targets, recorders=recorders, max_steps=max_steps)
    out = []
    for g in range(groups):
        idx = range(g * k, (g + 1) * k)
        if all(played.finished[i] for i in idx):
            out.append([_trajectory(inputs, logp, forced, i, outcomes.returns[i]) for i in idx])
    return out, played.env_steps


def _trajectory(inputs: ModelInputs, logp: LogProbs, forced: TeacherForced | None, i: int, ret: float) -> Trajectory:
    """Env i's episode: its steps are the first T of the lockstep trace (T = its length)."""
    T = sum(int(a[i]) for a in inputs.alive)
    steps = inputs.inputs[:T]
    if forced is None:
        logq, q = np.zeros(T), None
    else:
        logq = np.array([x[i] for x in forced.steps[:T]])
        q = torch.stack([d.params[i] for d in forced.distributions[:T]]).clone()  # (T, P)
    return Trajectory(torch.stack([s.obs[i] for s in steps]), torch.stack([s.prev_action[i] for s in steps]),
                      torch.stack([a[i] for a in inputs.actions[:T]]), torch.stack([s.cond[i] for s in steps]),
                      torch.stack([s.timestep[i] for s in steps]), float(ret),
                      np.array([r[i] for r in inputs.rewards[:T]], dtype=float),
                      np.array([x[i] for x in logp.steps[:T]]), logq, q)


def window_params(model: torch.nn.Module, traj: Trajectory, steps: np.ndarray) -> torch.Tensor:
    """Distribution parameters with gradients at the given steps, over each step's K-step window: (S, P)."""
    K, T = model.context, len(traj)
    t = torch.as_tensor(steps, dtype=torch.long)  # (S,)
    start = (t - K + 1).clamp(min=0)  # (S,) the window the rollout's ring cache held
    idx = (start[:, None] + torch.arange(K)[None]).clamp(max=T - 1)  # (S, K); a causal model ignores the tail
    params = model(traj.obs[idx], traj.prev_action[idx], traj.cond[idx], traj.timestep[idx])  # (S, K, P)
    return params[torch.arange(len(t)), t - start]  # (S, P)


def head_kl(head: torch.nn.Module, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Exact KL(pi_p || pi_q) per position between two heads' parameters (..., P): (...,).

    Categorical in closed form; for the Gaussian and tanh-Gaussian heads the KL of the
    Gaussians over pre-squash units, which a bijection (tanh, loc/scale) leaves unchanged.
    """
    if head.discrete:
        lp, lq = torch.log_softmax(p, -1), torch.log_softmax(q, -1)
        return (lp.exp() * (lp - lq)).sum(-1)
    mp, sp = p.chunk(2, -1)  # mean, log std (..., A)
    mq, sq = q.chunk(2, -1)
    return (sq - sp + ((2 * sp).exp() + (mp - mq) ** 2) / (2 * (2 * sq).exp()) - 0.5).sum(-1)


def rloo_pg_loss(model: torch.nn.Module, groups: list[list[Trajectory]], steps_per_episode: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """RLOO policy gradient on the return alone (mixture's reward term).

    loss = -(1/N) sum_i A_i sum_t log pi(a_t|h_t), A_i = R_i - mean_{j != i} R_j. Sums over t
    are estimated on `steps_per_episode` uniformly drawn steps, scaled by T/m (unbiased).
    """
    loss, n, rets = torch.zeros(()), 0, []
    for group in groups:
        R = np.array([tr.ret for tr in group])  # (k,)
        adv = R - (R.sum() - R) / (len(group) - 1)  # (k,) leave-one-out baseline
        for tr, a in zip(group, adv):
            T = len(tr)
            m = min(steps_per_episode, T)
            steps = np.sort(rng.choice(T, size=m, replace=False))
            params = window_params(model, tr, steps)  # (m, P)
            loss = loss + (T / m) * (float(a) * model.head.nll(params, tr.action[steps])).sum()  # -A log pi
            n += 1
        rets.extend(R)
    return loss / max(n, 1), {"episodic_return": float(np.mean(rets))}


def _padded(rows: list[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Episodes of different lengths as one (N, T) float tensor and its mask."""
    T = max(len(r) for r in rows)
    out, mask = torch.zeros(len(rows), T, dtype=torch.float64), torch.zeros(len(rows), T, dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.as_tensor(np.asarray(r, dtype=float))
        mask[i, :len(r)] = True
    return out, mask  # (N, T), (N, T)


def state_kls(model: torch.nn.Module, traj: Trajectory, chunk: int = 256) -> np.ndarray:
    """Exact KL(pi(.|h_t) || pi_base(.|h_t)) at every step of `traj` under the current model, no gradient: (T,)."""
    with torch.no_grad():
        parts = [head_kl(model.head, window_params(model, traj, np.arange(lo, min(lo + chunk, len(traj)))),
                         traj.base_params[lo:lo + chunk]) for lo in range(0, len(traj), chunk)]
    return torch.cat(parts).double().numpy()


def kl_regularised_terms(model: torch.nn.Module, groups: list[list[Trajectory]], beta: float,
                         steps_per_episode: int, rng: np.random.Generator
                         ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """The policy gradient of E[sum_t r_t] - beta KL(pi || pi_base) as (reward term, KL term, stats).

    Exact-KL form (`methods/kl_regularised.py`); the two terms sum to `kl_regularised_loss`.
    The reward term is the score function weighted by the reward-to-go minus its baseline; the KL
    term holds everything beta multiplies (the KL-to-go in the advantage, its baseline, the
    pathwise KL), so the ledger can attribute updates to each (`methods/update_share.py`).
    """
    loss_r, loss_k, n, kls, rets = torch.zeros(()), torch.zeros(()), 0, [], []
    for group in groups:
        kl_rows = [state_kls(model, tr) if beta > 0 else np.zeros(len(tr)) for tr in group]
        rewards, mask = _padded([tr.rewards for tr in group])  # (k, T)
        kl, _ = _padded(kl_rows)  # (k, T)
        zero = torch.zeros_like(rewards)  # (k, T)
        ret_r = regularised_returns_exact_kl(rewards, zero, mask, beta)  # (k, T) reward-to-go
        ret_k = regularised_returns_exact_kl(zero, kl, mask, beta)  # (k, T) -beta x KL still to come
        adv_r = (ret_r - rloo_baseline(ret_r, mask, len(group))).float()  # (k, T), baselines are linear
        adv_k = (ret_k - rloo_baseline(ret_k, mask, len(group))).float()  # (k, T)
        for i, tr in enumerate(group):
            T = len(tr)
            m = min(steps_per_episode, T)
            steps = np.sort(rng.choice(T, size=m, replace=False))
            params = window_params(model, tr, steps)  # (m, P)
            nll = model.head.nll(params, tr.action[steps])  # (m,) = -log pi(a_t|h_t)
            loss_r = loss_r + (T / m) * (adv_r[i, steps] * nll).sum()
            if beta > 0:
                term = adv_k[i, steps] * nll + beta * head_kl(model.head, params, tr.base_params[steps])  # (m,)
                loss_k = loss_k + (T / m) * term.sum()
            n += 1
        kls.extend(float(k.sum()) for k in kl_rows)
        rets.extend(tr.ret for tr in group)
    stats = {"kl_to_base": float(np.mean(kls)), "episodic_return": float(np.mean(rets))}
    return loss_r / max(n, 1), loss_k / max(n, 1), stats


def kl_regularised_loss(model: torch.nn.Module, groups: list[list[Trajectory]], beta: float,
                        steps_per_episode: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """The policy gradient of E[sum_t r_t] - beta KL(pi || pi_base): the sum of `kl_regularised_terms`.

    Per step, advantage A_t = R_t - beta sum_{t'>t} KL_t' - b_t (reward-to-go minus the KL still
    to come, which the action now changes; b_t the leave-one-out mean over the group) on the
    score function, plus the pathwise -beta KL_t of the state itself:

        loss = -(1/N) sum_i sum_t [ log pi(a_t|h_t) A_t - beta KL(pi(.|h_t) || pi_base(.|h_t)) ].

    Its fixed point is pi* proportional to pi_base exp(Q_soft / beta) (known answer:
    tests/methods/test_kl_regularised.py). The future KLs are exact per-state values at the
    visited states under the current policy (constants); sums over t are estimated on
    `steps_per_episode` uniformly drawn steps, scaled by T/m (unbiased).
    """
    loss_r, loss_k, stats = kl_regularised_terms(model, groups, beta, steps_per_episode, rng)
    return loss_r + loss_k, stats




def grad_norm(grads: list[torch.Tensor | None]) -> float:
    """L2 norm of a list of gradients (None counts as zero)."""
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None) or torch.zeros(())))

