"""An adapter from a gymnasium VectorEnv to stable-baselines3's VecEnv.

SB3 expects a finished env to be reset within the same step: the returned observation is
the first of the next episode and the final one travels in `infos[i]["terminal_observation"]`.
Gymnasium 1.x vector envs may instead reset on the *next* step (NEXT_STEP autoreset). Such
envs are reset at once with `reset(options={"reset_mask": done})` when they honour the
mask; `honours_reset_mask` probes that, and `make_sb3_vecenv` falls back to a SAME_STEP
SyncVectorEnv of single envs when they do not (correct, only slower).

Envs that implement `ResumableVectorEnv` (state()/load_state(), e.g. Mountain-v1's vector env)
let PPO's training checkpoints capture them; generic Gymnasium vector envs do not, and a
resumed PPO training re-seeds them instead (methods/ppo_loop.py).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

from metatoken.envs.task import Task

AUDIT_KEYS = ("intended", "exploit")  # per-env info arrays passed on to SB3's per-env dicts


@runtime_checkable
class ResumableVectorEnv(Protocol):
    """A vector env that can hand over its whole state (generators included) and continue from it exactly.

    The state is nested dicts and lists of JSON values and numeric numpy arrays, so a training
    checkpoint stores it without pickling (models/checkpoint.py: split_tensors)."""

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


class GymVecEnvAdapter(VecEnv):
    """SB3 VecEnv over one gymnasium VectorEnv (NEXT_STEP with reset_mask, or SAME_STEP)."""

    def __init__(self, env: gym.vector.VectorEnv):
        self.env = env
        self.mode = AutoresetMode(env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
        if self.mode == AutoresetMode.DISABLED:
            raise ValueError("the vector env must autoreset (NEXT_STEP or SAME_STEP)")
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._seed: int | None = None
        self._actions: np.ndarray | None = None

    def seed(self, seed: int | None = None):
        """Seeds the next reset: env i gets seed + i."""
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None  # later resets continue each env's own generator
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_arrays(self, actions: np.ndarray):
        """One SAME_STEP step as arrays: obs (B, ...), reward (B,), done (B,), truncated (B,), final_obs, info.

        `final_obs` holds each finished env's last observation (rows of unfinished envs are
        the new observation) and is None when nothing finished; `truncated` is True only
        where the time limit ended an episode that did not also terminate.
        """
        obs, reward, term, trunc, info = self.env.step(actions)
        done = np.logical_or(term, trunc)  # (B,)
        final = None
        if done.any():
            if self.mode == AutoresetMode.SAME_STEP:
                final = np.array(obs, copy=True)
                for i in np.flatnonzero(done):  # gymnasium keeps them in an object array, None where not done
                    final[i] = info["final_obs"][i]
            else:
                final = obs
                obs, _ = self.env.reset(options={"reset_mask": done.copy()})
                obs = np.where(done.reshape((-1,) + (1,) * (obs.ndim - 1)), obs, final)
        return obs, np.asarray(reward, np.float32), done, np.logical_and(trunc, ~np.asarray(term)), final, info

    def step_wait(self):
        obs, reward, done, truncated, final, info = self.step_arrays(self._actions)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key in AUDIT_KEYS:
            if key in info:
                for i, v in enumerate(info[key]):
                    infos[i][key] = v
        for i in np.flatnonzero(done):
            infos[i]["terminal_observation"] = np.asarray(final[i])
            infos[i]["TimeLimit.truncated"] = bool(truncated[i])
        return obs, reward, done, infos

    @property
    def resumable(self) -> bool:
        """True when the wrapped env can hand over its state (`ResumableVectorEnv`); generic gym envs cannot."""
        return isinstance(self.env, ResumableVectorEnv)

    def state(self) -> dict[str, Any] | None:
        """The wrapped env's state between steps, or None when it cannot give one."""
        return self.env.state() if isinstance(self.env, ResumableVectorEnv) else None

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state` (after `reset`, which it overrides entirely)."""
        if not isinstance(self.env, ResumableVectorEnv):
            raise TypeError(f"{type(self.env).__name__} cannot load a state (no state()/load_state())")
        self.env.load_state(state)

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.env, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self.env, method_name)(*args, **kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


def honours_reset_mask(task: Task, steps: int = 3) -> bool:
    """Probe: does a masked reset of env 0 leave env 1 exactly where it was?"""
    env = task.make_vec(2)
    try:
        if AutoresetMode(env.metadata.get("autoreset_mode", "NextStep")) != AutoresetMode.NEXT_STEP:
            return False
        env.reset(seed=0)
        env.action_space.seed(0)
        for _ in range(steps):
            obs, *_ = env.step(env.action_space.sample())
        after, _ = env.reset(options={"reset_mask": np.array([True, False])})
        return bool(np.array_equal(np.asarray(after)[1], np.asarray(obs)[1]))
    except (TypeError, ValueError, KeyError, AssertionError, gym.error.Error):  # rejects the option
        return False
    finally:
        env.close()


def make_sb3_vecenv(task: Task, num_envs: int, seed: int) -> GymVecEnvAdapter:
    """The task's vectorised env as an SB3 VecEnv, seeded (env i: seed + i)."""
    if honours_reset_mask(task):
        env = task.make_vec(num_envs)
    else:  # single envs in a SAME_STEP sync vector env: SB3's semantics by construction
        limit = {} if task.max_episode_steps is None else {"max_episode_steps": task.max_episode_steps}
        env = gym.make_vec(task.env_id, num_envs=num_envs, vectorization_mode="sync",
                           vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                           **task.env_kwargs, **limit)
    adapter = GymVecEnvAdapter(env)
    adapter.seed(seed)
    return adapter
