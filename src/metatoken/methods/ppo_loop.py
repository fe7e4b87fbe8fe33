"""PPO's training loop: batched collection on a vector env and clipped-surrogate updates, in torch.

The network is an SB3 `ActorCriticPolicy` (so the trained policy saves and loads as every
SB3 actor-critic does), but collection and updates run here on whole (T, B) arrays: SB3's
own loop spends most of its time in per-env Python (info dicts, buffers), which caps it far
below the vector envs' speed. The maths is SB3's PPO: GAE(lambda), advantages normalised
per minibatch, clipped ratio, clipped-free value loss, entropy bonus, global-norm clipping,
and a truncated episode's reward bootstrapped with the value of its final observation.

Observation normalisation keeps running statistics during training and is folded into the
first layer of both networks at the end (an affine map), so the saved policy applies it
with no extra state. Reward normalisation divides by the running std of the discounted
return (as SB3's VecNormalize) and only shapes training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy

from metatoken.logger import Logger
from metatoken.methods.sb3_vecenv import GymVecEnvAdapter

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_OBS_EPS = 1e-8


class RunningMoments:
    """Running mean and variance over batches (Chan et al.'s parallel update), float64."""

    def __init__(self, shape: tuple[int, ...]):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 1e-4

    def update(self, x: np.ndarray) -> None:
        """Fold a batch (N, *shape) into the moments."""
        m, v, n = x.mean(0), x.var(0), x.shape[0]
        delta, total = m - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + v * n + delta**2 * self.count * n / total) / total
        self.count = total


def fold_obs_normalisation(policy: ActorCriticPolicy, mean: np.ndarray, std: np.ndarray) -> None:
    """Absorb obs -> (obs - mean) / std into the first Linear of the pi and vf networks, in place."""
    m = torch.as_tensor(mean, dtype=torch.float32)  # (D,)
    s = torch.as_tensor(std, dtype=torch.float32)  # (D,)
    with torch.no_grad():
        for net in (policy.mlp_extractor.policy_net, policy.mlp_extractor.value_net):
            first = net[0]
            w = first.weight / s  # (H, D): W (x - m) / s = (W / s) x - (W / s) m
            first.bias -= w @ m  # (H,)
            first.weight.copy_(w)


class Heads:
    """Distribution maths on the SB3 network's raw outputs: Gaussian (diagonal) or categorical."""

    def __init__(self, policy: ActorCriticPolicy):
        self.policy = policy
        self.discrete = isinstance(policy.action_space, spaces.Discrete)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action-head output (B, A) (mean or logits) and value (B,) for normalised observations."""
        pi, vf = self.policy.mlp_extractor(self.policy.extract_features(obs))  # (B, H) each
        return self.policy.action_net(pi), self.policy.value_net(vf)[:, 0]

    def sample(self, out: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One action per row: (B, A) float for Gaussians, (B,) long for categoricals."""
        if self.discrete:
            return torch.multinomial(torch.softmax(out, -1), 1, generator=gen)[:, 0]
        noise = torch.randn(out.shape, generator=gen)  # (B, A)
        return out + self.policy.log_std.exp() * noise

    def log_prob_entropy(self, out: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(act) (B,) and the entropy (B,) of the distribution."""
        if self.discrete:
            logp = torch.log_softmax(out, -1)  # (B, n)
            return logp.gather(-1, act.long()[:, None])[:, 0], -(logp.exp() * logp).sum(-1)
        log_std = self.policy.log_std  # (A,)
        z = (act - out) * torch.exp(-log_std)  # (B, A)
        logp = (-0.5 * z.pow(2) - log_std - _HALF_LOG_2PI).sum(-1)  # (B,)
        entropy = (0.5 + _HALF_LOG_2PI + log_std).sum().expand(out.shape[0])  # (B,)
        return logp, entropy


def gae(rew: np.ndarray, val: np.ndarray, done: np.ndarray, last_val: np.ndarray,
        gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns (T, B) from rewards, values and done flags (T, B) and V(s_T) (B,)."""
    adv = np.zeros_like(rew)  # (T, B)
    running = np.zeros_like(last_val)  # (B,)
    next_val = last_val
    for t in range(rew.shape[0] - 1, -1, -1):
        live = 1.0 - done[t]  # (B,) no bootstrap across an episode boundary
        delta = rew[t] + gamma * next_val * live - val[t]
        running = delta + gamma * lam * live * running
        adv[t] = running
        next_val = val[t]
    return adv, adv + val


class PPOLoop:
    """Collect n_steps x n_envs, update n_epochs over shuffled minibatches; repeat `iterations` times."""

    def __init__(self, env: GymVecEnvAdapter, policy: ActorCriticPolicy, p, seed: int, logger: Logger,
                 lr_at: Callable[[float], float], clip_at: Callable[[float], float]):
        self.env, self.policy, self.p, self.logger = env, policy, p, logger
        self.heads = Heads(policy)
        self.lr_at, self.clip_at = lr_at, clip_at
        self.opt = torch.optim.Adam(policy.parameters(), lr=p.lr, eps=1e-5)
        self.gen = torch.Generator().manual_seed(seed)
        obs_shape = env.observation_space.shape
        self.obs_rms = RunningMoments(obs_shape) if p.normalize_obs else None
        self.ret_rms = RunningMoments(()) if p.normalize_reward else None
        self.ret = np.zeros(env.num_envs)  # (B,) discounted return so far, for reward scaling
        self.env_steps = self.gradient_steps = 0
        self.episodes: list[tuple[float, float | None]] = []  # (return, intended) of finished episodes
        self.history: list[dict[str, float]] = []  # one row per iteration (the learning curve)

    def _norm(self, obs: np.ndarray) -> torch.Tensor:
        if self.obs_rms is not None:
            obs = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + _OBS_EPS)
        return torch.as_tensor(obs, dtype=torch.float32)

    def _scale(self, rew: np.ndarray, done: np.ndarray) -> np.ndarray:
        if self.ret_rms is None:
            return rew
        self.ret = self.ret * self.p.gamma + rew
        self.ret_rms.update(self.ret)  # (B,) one sample per env
        scaled = np.clip(rew / np.sqrt(self.ret_rms.var + _OBS_EPS), -10.0, 10.0)
        self.ret[done] = 0.0
        return scaled

    def run(self, iterations: int) -> None:
        """Train for `iterations` rollouts; the obs normalisation is folded into the network at the end."""
        p, env = self.p, self.env
        T, B = p.n_steps, env.num_envs
        self.total_steps = iterations * T * B
        low, high = ((None, None) if self.heads.discrete else (env.action_space.low, env.action_space.high))
        obs = env.reset()
        ep_ret = np.zeros(B)  # (B,) raw return of the running episode
        for it in range(iterations):
            frac = 1.0 - it / iterations  # SB3's progress_remaining at the start of the rollout
            for g in self.opt.param_groups:
                g["lr"] = self.lr_at(frac)
            b_obs = np.zeros((T, B, *obs.shape[1:]), np.float32)
            b_act, b_logp, b_val = [], [], []
            b_rew, b_done = np.zeros((T, B)), np.zeros((T, B))
            for t in range(T):
                if self.obs_rms is not None:
                    self.obs_rms.update(obs)
                x = self._norm(obs)  # (B, D)
                with torch.no_grad():
                    out, val = self.heads.forward(x)
                    act = self.heads.sample(out, self.gen)
                    logp, _ = self.heads.log_prob_entropy(out, act)
                a = act.numpy()
                obs2, rew, done, trunc, final, info = env.step_arrays(a if low is None else np.clip(a, low, high))
                ep_ret += rew
                r = self._scale(rew.astype(np.float64), done)
                if trunc.any():  # the time limit is not a terminal state: bootstrap with V(final obs)
                    with torch.no_grad():
                        _, v_final = self.heads.forward(self._norm(final[trunc]))
                    r[trunc] += p.gamma * v_final.numpy()
                if done.any():
                    intended = info.get("intended") if isinstance(info, dict) else None
                    for i in np.flatnonzero(done):
                        self.episodes.append((float(ep_ret[i]), None if intended is None else float(intended[i])))
                    ep_ret[done] = 0.0
                b_obs[t] = x.numpy()
                b_act.append(act), b_logp.append(logp), b_val.append(val)
                b_rew[t], b_done[t] = r, done
                obs = obs2
            with torch.no_grad():
                _, last_val = self.heads.forward(self._norm(obs))
            val_np = torch.stack(b_val).numpy().astype(np.float64)  # (T, B)
            adv, ret = gae(b_rew, val_np, b_done, last_val.numpy().astype(np.float64), p.gamma, p.gae_lambda)
            self.env_steps += T * B
            stats = self._update(torch.as_tensor(b_obs).reshape(T * B, -1), torch.cat(b_act),
                                 torch.cat(b_logp), torch.as_tensor(adv, dtype=torch.float32).reshape(-1),
                                 torch.as_tensor(ret, dtype=torch.float32).reshape(-1), self.clip_at(frac))
            self._log(stats)
        if self.obs_rms is not None:
            fold_obs_normalisation(self.policy, self.obs_rms.mean, np.sqrt(self.obs_rms.var + _OBS_EPS))

    def _update(self, obs, act, old_logp, adv, ret, clip: float) -> dict[str, float]:
        p, n = self.p, obs.shape[0]
        clip_frac, pg_losses = [], []
        for _ in range(p.n_epochs):
            order = torch.randperm(n, generator=self.gen)
            for start in range(0, n, p.batch_size):
                idx = order[start:start + p.batch_size]
                out, val = self.heads.forward(obs[idx])
                logp, entropy = self.heads.log_prob_entropy(out, act[idx])
                a = adv[idx]
                if len(idx) > 1:  # per-minibatch advantage normalisation, as SB3
                    a = (a - a.mean()) / (a.std() + 1e-8)
                ratio = torch.exp(logp - old_logp[idx])  # (N,)
                pg = -torch.min(a * ratio, a * ratio.clamp(1 - clip, 1 + clip)).mean()
                loss = pg + p.vf_coef * (ret[idx] - val).pow(2).mean() - p.ent_coef * entropy.mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), p.max_grad_norm)
                self.opt.step()
                self.gradient_steps += 1
                pg_losses.append(float(pg.detach()))
                clip_frac.append(float(((ratio - 1).abs() > clip).float().mean()))
        return {"pg_loss": float(np.mean(pg_losses)), "clip_fraction": float(np.mean(clip_frac))}

    def _log(self, stats: dict[str, float]) -> None:
        recent = self.episodes[-200:]
        row = {"env_steps": float(self.env_steps), **stats}
        if not self.heads.discrete:
            row["log_std"] = float(self.policy.log_std.detach().mean())
        if recent:
            row["episodic_return"] = float(np.mean([r for r, _ in recent]))
            if recent[-1][1] is not None:
                row["episodic_intended"] = float(np.mean([i for _, i in recent]))
        self.history.append(row)
        for key, value in row.items():
            if key != "env_steps":
                self.logger.scalar(f"charts/{key}", value, self.env_steps)
        self.logger.progress(self.env_steps, self.total_steps)
