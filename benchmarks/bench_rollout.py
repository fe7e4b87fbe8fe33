"""Rollout throughput: batched KV-cached PredictorPolicy vs the reference one-episode loop.

The reference way (kzl/decision-transformer, CORL dt.py) runs one episode at a time and
recomputes the full K-step window every step. Both sides run the same reference-size
model (128 dim, 3 layers, K = 20, state 11, action 3) on the same synthetic linear env, in
sampling mode with one generator per episode (seed + episode index), and must take the
same actions (checked to 1e-4; they differ only by float summation order).

Ours: all E episodes x T steps in one batch through the house's rollout primitive
(`evaluate.rollout.play`, with a recorder keeping the actions), on the same linear env
wrapped as a Gymnasium vector env. Peer: the first `--peer-episodes` episodes
timed in full, extrapolated per step to E episodes (stated in the output). Our policy's cached
step is replayed from a TorchScript trace after 64 steps of each variant (models/traced.py: a masked
cache for the first K - 1 steps of an episode, then a full one). Tracing costs ~0.15 s per variant,
once per model and batch size, so before the timed rounds a warm-up plays short rollouts of the same
batch until both variants are traced, and prints what it took; the rounds time the steady state.

The two sides alternate, `--repeats` rounds of (ours, peer), and each side's figure is the
median of its rounds: on a shared machine both then see the same spread of machine states,
and one disturbed round does not decide the ratio. Every round checks the actions.
Final line: JSON {"name", "ours", "peer", "ratio", "unit"}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from metatoken.envs.task import Task
from metatoken.evaluate.recorders import Recorder
from metatoken.evaluate.rollout import play
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


class LinearVectorEnv(VectorEnv):
    """LinearEnv's first `num_envs` episodes as a Gymnasium vector env, truncated after `steps` steps."""

    metadata: ClassVar[dict] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}  # episodes end together

    def __init__(self, num_envs: int, episodes: int, steps: int, seed: int):
        self.num_envs, self.steps, self.lin = num_envs, steps, LinearEnv(episodes, steps, seed)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.rows = np.arange(num_envs)

    def reset(self, *, seed=None, options=None):
        self.t, self.obs = 0, self.lin.reset(self.rows)
        return self.obs, {}

    def step(self, actions):
        self.obs, reward = self.lin.step(self.rows, self.t, self.obs, np.asarray(actions))
        self.t += 1
        false = np.zeros(self.num_envs, bool)
        return self.obs, reward, false, false | (self.t >= self.steps), {}


class Actions(Recorder):
    """Keeps the actions of every step."""

    def begin(self, num_envs, seeds):
        self.steps = []

    def record(self, step):
        self.steps.append(step.action)


def linear_task(episodes: int, steps: int, seed: int) -> Task:
    """The linear env as a task, so the rollout primitive can open it."""
    if "bench/Linear-v0" not in gym.registry:
        gym.register("bench/Linear-v0", entry_point=None, vector_entry_point=LinearVectorEnv)
    return Task("bench-linear", "bench/Linear-v0", {"episodes": episodes, "steps": steps, "seed": seed}, ())


def ours(model, condition, task, targets, seed):
    """All episodes at once through the rollout primitive; returns actions (E, T, A) and seconds."""
    policy, actions = PredictorPolicy(model, condition), Actions()
    t0 = time.perf_counter()
    play(task, policy, len(targets), seed, target=targets, recorders=[actions])
    return np.stack(actions.steps, 1), time.perf_counter() - t0


def warm_up(model, condition, targets, seed) -> tuple[float, int]:
    """Short rollouts of the timed batch until both variants of the cached step replay from traces (at most
    10; fewer variants if tracing fails): returns (seconds, rollouts)."""
    task = linear_task(len(targets), 100, seed)  # 100 steps: K - 1 masked steps, then more than 64 full ones
    t0, rollouts = time.perf_counter(), 0
    while len(model.step_traces) < 2 and rollouts < 10:
        ours(model, condition, task, targets, seed)
        rollouts += 1
    return time.perf_counter() - t0, rollouts


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
    ap.add_argument("--repeats", type=int, default=3, help="alternating (ours, peer) rounds; medians are reported")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, condition = reference_model(args.steps, args.seed)
    env = LinearEnv(args.episodes, args.steps, args.seed)
    targets = np.linspace(100.0, 1000.0, args.episodes)
    task = linear_task(args.episodes, args.steps, args.seed)
    seconds, rollouts = warm_up(model, condition, targets, args.seed)
    print(f"warm-up: {rollouts} rollouts of {args.episodes} episodes x 100 steps in {seconds:.2f} s, "
          f"{len(model.step_traces)} cached-step variants traced (a one-time cost per model and batch size)")
    steps_total, peer_steps = args.episodes * args.steps, args.peer_episodes * args.steps
    t_ours, t_peer, worst = [], [], 0.0
    for r in range(args.repeats):
        acts, seconds = ours(model, condition, task, targets, args.seed)
        t_ours.append(seconds)
        t0 = time.perf_counter()
        refs = [reference(model, condition, env, row, targets[row], args.steps, args.seed)
                for row in range(args.peer_episodes)]
        t_peer.append(time.perf_counter() - t0)
        worst = max(worst, *(float(np.abs(ref - acts[row]).max()) for row, ref in enumerate(refs)))
        print(f"round {r + 1}: ours {t_ours[-1] / args.steps * 1e3:.2f} ms per batched step, "
              f"peer {t_peer[-1] / peer_steps * 1e3:.2f} ms/step, ratio "
              f"{(steps_total / t_ours[-1]) / (peer_steps / t_peer[-1]):.1f}x")
    assert worst < 1e-4, f"batched and reference actions differ by {worst}"
    ours_s, peer_s = statistics.median(t_ours), statistics.median(t_peer)
    ours_sps, peer_sps = steps_total / ours_s, peer_steps / peer_s
    print(f"ours (median of {args.repeats}): {args.episodes} episodes x {args.steps} steps in {ours_s:.2f} s "
          f"({ours_s / args.steps * 1e3:.2f} ms per batched step)")
    print(f"peer (median of {args.repeats}): {args.peer_episodes} episodes timed in {peer_s:.2f} s "
          f"({peer_s / peer_steps * 1e3:.2f} ms/step), extrapolated to "
          f"{args.episodes} episodes = {steps_total / peer_sps:.0f} s")
    print(f"max |action difference| over the peer's episodes: {worst:.2e}")
    print(json.dumps({"name": "rollout_env_steps_per_s", "ours": round(ours_sps, 1),
                      "peer": round(peer_sps, 1), "ratio": round(ours_sps / peer_sps, 1),
                      "unit": "env-steps/s"}))


if __name__ == "__main__":
    main()
