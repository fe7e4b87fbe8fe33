"""Rollout throughput: batched KV-cached PredictorPolicy vs the reference one-episode loop.

The reference way (kzl/decision-transformer, CORL dt.py) runs one episode at a time and
recomputes the full K-step window every step. Both sides run the same reference-size
model (128 dim, 3 layers, K = 20, state 11, action 3) on the same synthetic linear env, in
sampling mode with one generator per episode (seed + episode index), and must take the
same actions (checked to 1e-4; they differ only by float summation order).

Ours: all E episodes x T steps in one batch. Peer: the first `--peer-episodes` episodes
timed in full, extrapolated per step to E episodes (stated in the output).
Final line: JSON {"name", "ours", "peer", "ratio", "unit"}.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from metatoken.models.conditions import ReturnToGo
from metatoken.models.policy import NOISE_CHUNK, PredictorPolicy
from metatoken.models.transformer import DecisionTransformer, TransformerConfig

OBS, ACT = 11, 3


def reference_model(max_timestep: int, seed: int = 0):
    """A reference-size return-to-go transformer (untrained weights: this measures the policy)."""
    torch.manual_seed(seed)
    cfg = TransformerConfig(OBS, ACT, "tanh", cond_dim=1, d_model=128, n_layers=3, n_heads=1,
                            context=20, max_timestep=max_timestep)
    return DecisionTransformer(cfg).eval(), ReturnToGo(scale=1000.0)


class LinearEnv:
    """obs' = 0.9 obs + 0.3 a W + noise; reward = 1 - mean(obs^2). Noise pre-drawn per episode."""

    def __init__(self, episodes: int, steps: int, seed: int):
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(ACT, OBS)).astype(np.float32)
        self.noise = rng.normal(0, 0.1, size=(episodes, steps + 1, OBS)).astype(np.float32)

    def reset(self, rows: np.ndarray) -> np.ndarray:
        return self.noise[rows, 0]  # (B, O)

    def step(self, rows, t, obs, action):
        nxt = 0.9 * obs + 0.3 * action @ self.w + self.noise[rows, t + 1]  # (B, O)
        return nxt, 1.0 - (nxt**2).mean(-1)


def ours(model, condition, env, targets, steps, seed):
    """All episodes at once through the KV-cached policy; returns actions (E, T, A) and seconds."""
    rows = np.arange(len(targets))
    policy = PredictorPolicy(model, condition)
    t0 = time.perf_counter()
    policy.reset(len(rows), target=targets, seed=seed)
    obs, actions = env.reset(rows), []
    done = np.zeros(len(rows), bool)
    for t in range(steps):
        a = policy.act(obs)
        obs, r = env.step(rows, t, obs, a)
        policy.observe(r, done)
        actions.append(a)
    return np.stack(actions, 1), time.perf_counter() - t0


@torch.inference_mode()
def reference(model, condition, env, row, target, steps, seed):
    """One episode, full window recomputed every step (the reference implementations' way)."""
    K, head = model.context, model.head
    gen = torch.Generator().manual_seed(seed + int(row))
    obs_h, act_h, cond_h = [], [torch.zeros(ACT)], []
    cond = condition.start(np.array([target]), 1)  # (1, Dc)
    obs, actions = env.reset(np.array([row])), []
    for t in range(steps):
        if t % NOISE_CHUNK == 0:
            noise = head.draw_noise(NOISE_CHUNK, gen)  # same draws as the batched policy
        obs_h.append(torch.as_tensor(obs[0]))
        cond_h.append(torch.as_tensor(cond[0]))
        lo = max(0, t - K + 1)
        params = model(torch.stack(obs_h[lo:])[None], torch.stack(act_h[lo:t + 1])[None],
                       torch.stack(cond_h[lo:])[None], torch.arange(lo, t + 1)[None])[:, -1]  # (1, P)
        a = head.sample(params, noise[t % NOISE_CHUNK][None], False).numpy()
        obs, r = env.step(np.array([row]), t, obs, a)
        cond = condition.update(cond, r)
        act_h.append(torch.as_tensor(a[0]))
        actions.append(a[0])
    return np.stack(actions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--peer-episodes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, condition = reference_model(args.steps, args.seed)
    env = LinearEnv(args.episodes, args.steps, args.seed)
    targets = np.linspace(100.0, 1000.0, args.episodes)
    ours(model, condition, env, targets[:4], 50, args.seed)  # warm-up
    acts, t_ours = ours(model, condition, env, targets, args.steps, args.seed)
    t0 = time.perf_counter()
    worst = 0.0
    for row in range(args.peer_episodes):
        ref = reference(model, condition, env, row, targets[row], args.steps, args.seed)
        worst = max(worst, float(np.abs(ref - acts[row]).max()))
    t_peer = time.perf_counter() - t0
    assert worst < 1e-4, f"batched and reference actions differ by {worst}"
    steps_total = args.episodes * args.steps
    ours_sps = steps_total / t_ours
    peer_sps = args.peer_episodes * args.steps / t_peer
    print(f"ours: {args.episodes} episodes x {args.steps} steps in {t_ours:.2f} s "
          f"({t_ours / args.steps * 1e3:.2f} ms per batched step)")
    print(f"peer: {args.peer_episodes} episodes timed in {t_peer:.2f} s "
          f"({t_peer / args.peer_episodes / args.steps * 1e3:.2f} ms/step), extrapolated to "
          f"{args.episodes} episodes = {steps_total / peer_sps:.0f} s")
    print(f"max |action difference| over the peer's episodes: {worst:.2e}")
    print(json.dumps({"name": "rollout_env_steps_per_s", "ours": round(ours_sps, 1),
                      "peer": round(peer_sps, 1), "ratio": round(ours_sps / peer_sps, 1),
                      "unit": "env-steps/s"}))


if __name__ == "__main__":
    main()
