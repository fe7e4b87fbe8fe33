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

Checkpoints. Inside a `models.checkpoint.checkpointing` block (each run opens one) the loop
writes its whole state at the first rollout boundary after every `checkpoint_every` gradient
steps (the supervised loop's setting: `CheckpointPlan.every`, else `TrainConfig.checkpoint_every`)
and after the last rollout: network, both Adam moments, the torch generator, the running obs and
return moments, the running discounted return, the current observations and episode returns,
the recent episodes, the learning curve, the counters, and the vector env's own state when it
implements `ResumableVectorEnv` (Mountain-v1 does). A new run of the same config resumes after
the saved rollout and reaches bit-identical weights. A generic Gymnasium vector env cannot hand
over its state: a resumed training then re-seeds it (seed drawn from the restored generator)
and starts fresh episodes, so the resumed run is reproducible but not the uninterrupted one;
the iterations where that happened are listed in every later checkpoint's `env_reseeded_at`.

Speed work on this loop must keep training bit-identical: tests/methods/test_ppo_pinned.py holds
digests of the weights and learning curves of two tiny trainings (docs/PERFORMANCE.md, "The loop's
own overheads" and "Flat optimiser buffers": Adam steps one flat tensor, `models/flat.py`).
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy

from metatoken.errors import UserError
from metatoken.logger import Logger
from metatoken.methods.sb3_vecenv import GymVecEnvAdapter
from metatoken.models.checkpoint import (
    active_plan,
    config_mismatch,
    join_tensors,
    latest_training_state,
    load_optimizer_state,
    optimizer_state,
    save_training_state,
    split_tensors,
)
from metatoken.models.flat import FlatParams
from metatoken.models.train import TrainConfig

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
OBS_EPS = 1e-8
RECENT_EPISODES = 200  # the learning curve's episodic return averages the last this many episodes


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
        # the layers' own forward, not Module.__call__: no hooks are ever registered on them, and the
        # call machinery cost more than a layer's maths at the collection's batch of n_envs rows
        extractor = policy.mlp_extractor
        self._pi = [*extractor.policy_net, policy.action_net]
        self._vf = [*extractor.value_net, policy.value_net]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action-head output (B, A) (mean or logits) and value (B,) for normalised observations."""
        pi = vf = self.policy.extract_features(obs)  # (B, D)
        for layer in self._pi:
            pi = layer.forward(pi)  # (B, H), last (B, A)
        for layer in self._vf:
            vf = layer.forward(vf)  # (B, H), last (B, 1)
        return pi, vf[:, 0]

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


@torch.no_grad()
def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """Scale the gradients so that their global 2-norm is at most max_norm (`clip_grad_norm_`'s maths, bit for bit).

    torch's own version regroups the tensors by device and dtype on every call; PPO calls it once per
    minibatch on the same few tensors, so the grouping was a tenth of a gradient step's time."""
    grads = [q.grad for q in params if q.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)  # ()
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))


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
        self.params = list(policy.parameters())
        # the parameters live in one flat buffer (models/flat.py) and Adam steps that one tensor: ~10
        # ops a step instead of ~10 per tensor, the same arithmetic bit for bit (foreach, not `fused`,
        # which rounds differently); clipping still reads the per-parameter gradient views
        self.flat = FlatParams([{"params": self.params}])
        self.opt = torch.optim.Adam(self.flat.param_groups, lr=p.lr, eps=1e-5, foreach=True)
        self.seed = seed
        self.gen = torch.Generator().manual_seed(seed)
        obs_shape = env.observation_space.shape
        self.obs_rms = RunningMoments(obs_shape) if p.normalize_obs else None
        self.ret_rms = RunningMoments(()) if p.normalize_reward else None
        self.ret = np.zeros(env.num_envs)  # (B,) discounted return so far, for reward scaling
        self.env_steps = self.gradient_steps = 0
        self.episodes: deque[tuple[float, float | None]] = deque(maxlen=RECENT_EPISODES)  # (return, intended)
        self.history: list[dict[str, float]] = []  # one row per iteration (the learning curve)
        self.env_reseeded_at: list[int] = []  # iterations a resume had to re-seed a non-resumable env at

    def _norm(self, obs: np.ndarray) -> torch.Tensor:
        if self.obs_rms is not None:
            obs = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + OBS_EPS)
        return torch.as_tensor(obs, dtype=torch.float32)

    def _scale(self, rew: np.ndarray, done: np.ndarray) -> np.ndarray:
        if self.ret_rms is None:
            return rew
        self.ret = self.ret * self.p.gamma + rew
        self.ret_rms.update(self.ret)  # (B,) one sample per env
        scaled = np.clip(rew / np.sqrt(self.ret_rms.var + OBS_EPS), -10.0, 10.0)
        self.ret[done] = 0.0
        return scaled

    def run(self, iterations: int, on_iteration: Callable[[int], None] | None = None) -> None:
        """Train for `iterations` rollouts; the obs normalisation is folded into the network at the end.

        `on_iteration(k)` runs after the k-th update (before that rollout's checkpoint, so a resumed run never
        skips it); it must not change the loop's state."""
        p, env = self.p, self.env
        T, B = p.n_steps, env.num_envs
        self.total_steps = iterations * T * B
        low, high = ((None, None) if self.heads.discrete else (env.action_space.low, env.action_space.high))
        obs = env.reset()
        ep_ret = np.zeros(B)  # (B,) raw return of the running episode
        plan = active_plan()
        slot = plan.next_slot() if plan is not None else None
        every = plan.every if plan is not None and plan.every is not None else TrainConfig.checkpoint_every
        config = {"params": self.p.model_dump(), "iterations": iterations, "num_envs": B, "seed": self.seed}
        start = 0
        saved = latest_training_state(slot) if slot is not None else None
        if saved is not None:
            start, obs, ep_ret = self._restore(saved, slot, config)
        for it in range(start, iterations):
            before = self.gradient_steps
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
            if on_iteration is not None:
                on_iteration(it + 1)
            crossed = every > 0 and self.gradient_steps // every > before // every  # a multiple of `every` passed
            if slot is not None and every > 0 and (crossed or it == iterations - 1):
                save_training_state(slot, it + 1, *self._capture(config, obs, ep_ret))
        self.flat.release()  # each parameter owns its storage again: the policy saves and copies as before
        if self.obs_rms is not None:
            fold_obs_normalisation(self.policy, self.obs_rms.mean, np.sqrt(self.obs_rms.var + OBS_EPS))

    def _capture(self, config: dict, obs: np.ndarray, ep_ret: np.ndarray) -> tuple[dict[str, torch.Tensor], dict]:
        """The loop's whole state at a rollout boundary: tensors for safetensors, the rest as JSON."""
        moments = {name: None if m is None else {"mean": np.asarray(m.mean), "var": np.asarray(m.var),
                                                 "count": float(m.count)}
                   for name, m in (("obs_rms", self.obs_rms), ("ret_rms", self.ret_rms))}
        state = {"policy": self.policy.state_dict(), "optimizer": optimizer_state(self.opt),
                 "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(), "obs": obs, "ep_ret": ep_ret,
                 "ret": self.ret, **moments, "env": self.env.state()}
        meta, tensors = split_tensors(state, "ppo")
        counters = {"env_steps": self.env_steps, "gradient_steps": self.gradient_steps,
                    "episodes": list(self.episodes), "history": self.history,
                    "env_reseeded_at": self.env_reseeded_at}
        return tensors, {"config": config, "loop": meta, **counters}

    def _restore(self, saved: tuple[dict[str, torch.Tensor], dict], slot: Path,
                 config: dict) -> tuple[int, np.ndarray, np.ndarray]:
        """Continue from a captured state; returns (iterations done, observations, episode returns)."""
        tensors, meta = saved
        mismatch = config_mismatch(meta.get("config", {}), json_round_trip(config))
        if mismatch:  # the slot is keyed by the run's identity: another config means the checkpoint is not ours
            raise UserError(f"training checkpoint {slot} was written by another ppo config ({mismatch})")
        state = join_tensors(meta["loop"], tensors)
        self.policy.load_state_dict(state["policy"])
        load_optimizer_state(self.opt, state["optimizer"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        for name in ("obs_rms", "ret_rms"):
            m, s = getattr(self, name), state[name]
            if m is not None:
                m.mean, m.var, m.count = np.array(s["mean"]), np.array(s["var"]), s["count"]
        self.ret = np.array(state["ret"])
        self.env_steps, self.gradient_steps = int(meta["env_steps"]), int(meta["gradient_steps"])
        self.episodes.extend((r, i) for r, i in meta["episodes"])
        self.history = list(meta["history"])
        self.env_reseeded_at = list(meta["env_reseeded_at"])
        done = int(meta["step"])
        if state["env"] is not None and self.env.resumable:
            self.env.load_state(state["env"])
            return done, np.array(state["obs"]), np.array(state["ep_ret"])
        # the env's state is lost: fresh episodes from a seed the restored generator draws (reproducible)
        self.env.seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.gen)))
        self.ret[:] = 0.0
        self.env_reseeded_at.append(done)
        return done, self.env.reset(), np.zeros(self.env.num_envs)

    def _update(self, obs, act, old_logp, adv, ret, clip: float) -> dict[str, float]:
        p, n = self.p, obs.shape[0]
        clip_frac, pg_losses = [], []
        for _ in range(p.n_epochs):
            order = torch.randperm(n, generator=self.gen)
            # one gather per epoch, then contiguous slices: the same minibatches as indexing each one
            # with order[start:end], for a fraction of the per-call cost
            s_obs, s_act, s_old, s_adv, s_ret = (t.index_select(0, order) for t in (obs, act, old_logp, adv, ret))
            for start in range(0, n, p.batch_size):
                mb = slice(start, start + p.batch_size)
                out, val = self.heads.forward(s_obs[mb])
                logp, entropy = self.heads.log_prob_entropy(out, s_act[mb])
                a = s_adv[mb]
                if len(a) > 1:  # per-minibatch advantage normalisation, as SB3
                    a = (a - a.mean()) / (a.std() + 1e-8)
                ratio = torch.exp(logp - s_old[mb])  # (N,)
                pg = -torch.min(a * ratio, a * ratio.clamp(1 - clip, 1 + clip)).mean()
                loss = pg + p.vf_coef * (s_ret[mb] - val).pow(2).mean() - p.ent_coef * entropy.mean()
                self.flat.zero_grad()  # backward then adds into each parameter's gradient view in place
                loss.backward()
                clip_grad_norm(self.params, p.max_grad_norm)
                self.opt.step()  # nothing replaces a .grad in this loop, so no flat.sync_grads() is needed
                self.gradient_steps += 1
                pg_losses.append(float(pg.detach()))
                clip_frac.append(float(((ratio - 1).abs() > clip).float().mean()))
        return {"pg_loss": float(np.mean(pg_losses)), "clip_fraction": float(np.mean(clip_frac))}

    def _log(self, stats: dict[str, float]) -> None:
        recent = list(self.episodes)
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


def json_round_trip(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), so configs compare with saved ones."""
    return json.loads(json.dumps(value))
