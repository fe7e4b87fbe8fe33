"""The generic task `gym`: any registered Gymnasium env, with reference data from a user's
Minari dataset or collected by a named behaviour (uniform random).

Spec entry:

    {id: gym, options: {env_id: Pendulum-v1, env_kwargs: {g: 9.81}, dataset: PATH_OR_MINARI_ID,
                        behaviour: random, reference_episodes: 50}}

`Discrete` observations are one-hot encoded by a wrapper that `make_env` and `make_vec`
apply, and a user dataset's observations are encoded the same way on import, so policies
and data agree. Generic envs carry no audit: their exploit and intended metrics are
reported as not measured (NaN), never 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from metatoken.data.dataset import Dataset
from metatoken.envs.task import TASKS, Behaviour, Task, TaskDef
from metatoken.errors import UserError

UNSUPPORTED_SPACES = (gym.spaces.Dict, gym.spaces.Tuple, gym.spaces.Graph, gym.spaces.Sequence,
                      gym.spaces.Text, gym.spaces.OneOf)


class OneHotObservation(gym.ObservationWrapper):
    """Discrete(n, start) observations as float32 one-hot vectors of length n."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self._n, self._start = int(space.n), int(space.start)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self._n,), np.float32)

    def observation(self, observation) -> np.ndarray:
        return one_hot(np.asarray(observation), self._n, self._start)


def one_hot(values: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Integer states (...,) -> float32 one-hot (..., n)."""
    return np.eye(n, dtype=np.float32)[np.asarray(values, dtype=np.int64) - start]


class UniformRandom:
    """Uniform random actions from the task's action space, one seeded stream per reset."""

    conditioned = False

    def __init__(self, action_space: gym.Space):
        self.action_space = action_space
        self._batch: gym.Space | None = None

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        # Random even when deterministic: a random behaviour has no mean action worth taking.
        self._batch = gym.vector.utils.batch_space(self.action_space, num_envs)
        self._batch.seed(int(seed))

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._batch.sample()  # (B, *action_shape)

    def observe(self, reward, done) -> None:
        pass


@dataclass(frozen=True)
class GymTask(Task):
    """A Task over any registered Gymnasium env; one-hot wraps Discrete observations."""

    one_hot: bool = False

    @property
    def key(self) -> str:
        """Like Task.key, plus the env id, the time limit and (hashed) the dataset option as written."""
        base = super().key.removeprefix(f"{self.id}__")
        env = "".join(c if c.isalnum() or c in "._-" else "-" for c in self.env_id)
        limit = "" if self.max_episode_steps is None else f"__steps{self.max_episode_steps}"
        source = "" if self.dataset is None else "__user-" + hashlib.sha256(self.dataset.encode()).hexdigest()[:12]
        return f"{self.id}-{env}__{base}{limit}{source}"

    def _wrappers(self) -> list:
        return [OneHotObservation] if self.one_hot else []

    def make_env(self, **render: Any) -> gym.Env:
        env = gym.make(self.env_id, **self.env_kwargs, **self._limit(), **render)
        return OneHotObservation(env) if self.one_hot else env

    def make_vec(self, num_envs: int, **render: Any) -> gym.vector.VectorEnv:
        """A sync vector env of single envs, each wrapped like `make_env` (`render_mode=` passes on)."""
        return gym.make_vec(self.env_id, num_envs=num_envs, vectorization_mode="sync",
                            wrappers=self._wrappers(), **self.env_kwargs, **self._limit(), **render)

    def encode(self, dataset: Dataset) -> Dataset:
        """A user dataset in the env's raw spaces -> the spaces `make_env` shows (one-hot).

        ValueError if it cannot be."""
        if not (self.one_hot and isinstance(dataset.observation_space, gym.spaces.Discrete)):
            return dataset  # anything else is left for validation to compare with the env
        space = dataset.observation_space
        n, start = int(space.n), int(space.start)
        for i, e in enumerate(dataset.episodes):
            obs = np.asarray(e.observations)
            bad = np.flatnonzero((obs != np.round(obs)) | (obs < start) | (obs >= start + n))
            if len(bad):
                raise ValueError(f"episode {i}: observation {obs[bad[0]]} at step {bad[0]} is outside {space}")
        episodes = [replace(e, observations=one_hot(e.observations, n, start)) for e in dataset.episodes]
        return Dataset(episodes, gym.spaces.Box(0.0, 1.0, (n,), np.float32), dataset.action_space,
                       dataset.task_key, dict(dataset.metadata))


class GymOptions(BaseModel):
    """Spec options of the `gym` task (unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid")
    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    dataset: str | None = None  # a Minari dataset directory, or an id under MINARI_DATASETS_PATH
    behaviour: Literal["random"] = "random"  # collects the reference data when no dataset is given
    reference_episodes: int = Field(50, ge=1, le=100_000)
    data_seed: int = Field(0, ge=0)
    max_episode_steps: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _env_is_usable(self) -> GymOptions:
        # The dataset is not looked up here: workers and Ray nodes build this task from the
        # spec but read the runner's cached copy; `preflight` checks it before anything runs.
        check_env_id(self.env_id, self.env_kwargs)
        return self


def check_env_id(env_id: str, env_kwargs: dict[str, Any]) -> tuple[gym.Space, gym.Space]:
    """The env's (observation, action) spaces; one-line UserError if it cannot be used."""
    if env_id not in gym.registry:
        raise UserError(f"env_id {env_id!r}: not a registered Gymnasium env id")
    try:
        env = gym.make(env_id, **env_kwargs)
    except Exception as err:  # noqa: BLE001  (any constructor failure is the user's kwargs or env)
        raise UserError(f"env_id {env_id!r}: cannot be made with env_kwargs {env_kwargs} "
                        f"({type(err).__name__}: {err})") from None
    try:
        for role, space in (("observation", env.observation_space), ("action", env.action_space)):
            if isinstance(space, UNSUPPORTED_SPACES):
                raise UserError(f"env_id {env_id!r}: {type(space).__name__} {role} spaces are not supported "
                                "yet (Box, Discrete, MultiDiscrete and MultiBinary are)")
        return env.observation_space, env.action_space
    finally:
        env.close()


def build_gym_task(o: GymOptions) -> GymTask:
    """The `gym` task for validated options (plugins may call it to wrap an env of their own)."""
    obs_space, action_space = check_env_id(o.env_id, o.env_kwargs)
    behaviours = (Behaviour("random", 0.0, lambda: UniformRandom(action_space)),)
    return GymTask(
        id="gym",
        env_id=o.env_id,
        env_kwargs=dict(o.env_kwargs),
        behaviours=behaviours,
        reference_episodes=o.reference_episodes,
        data_seed=o.data_seed,
        max_episode_steps=o.max_episode_steps,
        dataset=o.dataset,
        audited=False,
        one_hot=isinstance(obs_space, gym.spaces.Discrete),
    )


if "gym" not in TASKS:
    TASKS.register("gym", TaskDef(GymOptions, build_gym_task),
                   "Any registered Gymnasium env (options.env_id); reference data from options.dataset "
                   "(Minari) or a random behaviour; no audit.")
