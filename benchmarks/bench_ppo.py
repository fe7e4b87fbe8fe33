"""PPO training throughput on Mountain-v1: our `ppo` method vs stable-baselines3 PPO, same run.

Ours: `make_method("ppo", hp)` on the `mountain` task (gait reward) over its vectorised env.
Peer: SB3's `PPO` with the same hyperparameters (rollout shape, minibatch, epochs, learning
rate, GAE, clipping, network, initial log-std, obs and reward normalisation through SB3's
VecNormalize) on gymnasium's `SyncVectorEnv` of single Mountain-v1 envs (SAME_STEP
autoreset, through our SB3 adapter). Both train for the same env steps with one torch
thread; collection and updates are both timed. Prints a CPU-time line (robust on a shared
machine), a steady-state line (iterations 2..N only: the first iteration carries the one-off
setup, building the envs and networks and the first kernels' warm-up, which a short benchmark
would otherwise mostly measure) and then the final JSON line, whole runs in wall-clock env-steps/s.

The first torch optimiser built in a process imports torch._dynamo (~1.7 s of CPU, more wall
on a cold disk); the benchmark builds one before timing, so neither side is charged for it
(before this warm-up, ours, timed first, paid it alone).

    .venv/bin/python benchmarks/bench_ppo.py [--steps 65536] [--n-envs 256]
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from metatoken.envs import make_task
from metatoken.methods import make_method
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.ppo import MOUNTAIN_PRESET, PPOParams
from metatoken.methods.sb3_policy import ACTIVATIONS
from metatoken.methods.sb3_vecenv import GymVecEnvAdapter

UNIT = "env-steps/s"


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


class IterationClock(NullLogger):
    """Wall-clock time at each of our loop's progress reports (one per iteration, after its update)."""

    def __init__(self):
        self.times: list[float] = []

    def progress(self, done: int, total: int) -> None:
        self.times.append(time.perf_counter())


class RolloutClock(BaseCallback):
    """Wall-clock time at the start of each of SB3's rollouts (the previous iteration's update is done)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def _on_rollout_start(self) -> None:
        self.times.append(time.perf_counter())

    def _on_step(self) -> bool:
        return True


def ours(hp: PPOParams, task, steps: int) -> tuple[float, float, float]:
    """Train our ppo for `steps` env steps: (wall, CPU, steady-state wall of iterations 2..N)."""
    method, clock = make_method("ppo", hp.model_dump()), IterationClock()
    wall, cpu = timed(lambda: method.train(task, None, Budget(env_steps=steps, gradient_steps=10**9), 0, clock))
    return wall, cpu, clock.times[-1] - clock.times[0]  # from the end of iteration 1 to the end of the last


def peer(hp: PPOParams, task, steps: int) -> tuple[float, float, float]:
    """Train SB3 PPO for `steps` env steps on a SyncVectorEnv of single envs."""
    vec = gym.make_vec(task.env_id, num_envs=hp.n_envs, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                       max_episode_steps=task.max_episode_steps, **task.env_kwargs)
    adapter = GymVecEnvAdapter(vec)
    adapter.seed(0)
    env = VecNormalize(adapter, norm_obs=hp.normalize_obs, norm_reward=hp.normalize_reward, gamma=hp.gamma)
    model = PPO("MlpPolicy", env, learning_rate=hp.lr, n_steps=hp.n_steps, batch_size=hp.batch_size,
                n_epochs=hp.n_epochs, gamma=hp.gamma, gae_lambda=hp.gae_lambda, clip_range=hp.clip_range,
                ent_coef=hp.ent_coef, vf_coef=hp.vf_coef, max_grad_norm=hp.max_grad_norm, seed=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": hp.net_arch, "vf": hp.net_arch},
                               "activation_fn": ACTIVATIONS[hp.activation], "log_std_init": hp.log_std_init})
    clock = RolloutClock()
    end = []
    wall, cpu = timed(lambda: (model.learn(total_timesteps=steps, callback=clock), end.append(time.perf_counter())))
    return wall, cpu, end[0] - clock.times[1]  # from the start of rollout 2 (iteration 1 done) to the end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=65536, help="env steps each (a whole number of rollouts)")
    parser.add_argument("--n-envs", type=int, default=PPOParams().n_envs)  # the tuned Mountain-v1 preset otherwise
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # warm-up: the one-off lazy imports (docstring)
    hp = PPOParams(**{**MOUNTAIN_PRESET, "n_envs": args.n_envs})
    task = make_task("mountain", {"reward": "gait"})
    steps = max(1, args.steps // (hp.n_envs * hp.n_steps)) * hp.n_envs * hp.n_steps
    if steps < 2 * hp.n_envs * hp.n_steps:
        raise SystemExit("--steps: the steady-state figure needs at least 2 rollouts")
    ours_wall, ours_cpu, ours_steady = ours(hp, task, steps)
    peer_wall, peer_cpu, peer_steady = peer(hp, task, steps)
    print(json.dumps({"name": "ppo-mountain-v1-cpu-time", "ours": round(steps / ours_cpu),
                      "peer": round(steps / peer_cpu), "ratio": round(peer_cpu / ours_cpu, 1),
                      "unit": "env-steps per CPU-second"}))
    later = steps - hp.n_envs * hp.n_steps  # env steps of iterations 2..N
    print(json.dumps({"name": "ppo-mountain-v1-steady-state", "ours": round(later / ours_steady),
                      "peer": round(later / peer_steady), "ratio": round(peer_steady / ours_steady, 1),
                      "unit": UNIT}))
    print(json.dumps({"name": f"ppo-mountain-v1-n{hp.n_envs}", "ours": round(steps / ours_wall),
                      "peer": round(steps / peer_wall), "ratio": round(peer_wall / ours_wall, 1), "unit": UNIT}))


if __name__ == "__main__":
    main()
