"""A run's filmstrip replays the evaluated episode from its actions; an env that does not replay falls back."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from metatoken import seeds
from metatoken.envs import make_task
from metatoken.envs.glitchgrid import EAST
from metatoken.envs.mountain.controller import MountainWalker
from metatoken.envs.scripted import NoisyEastWalker
from metatoken.envs.task import Task
from metatoken.evaluate.evaluate import command_levels, evaluate, first_top_episode
from metatoken.evaluate.recorders import EpisodeActions
from metatoken.evaluate.replay import ActionReplay
from metatoken.evaluate.rollout import rollout
from metatoken.policy import env_seeds
from metatoken.report.filmstrip import Evaluated, evaluated_filmstrip, filmstrip, play, replay


def outcome_of(r, i: int) -> dict:
    return {"steps": int(r.lengths[i]), "return": float(r.returns[i]), "implementation": r.implementations[i]}


def check_replayed(task, policy, r, kept: EpisodeActions) -> Evaluated:
    """The strip replays episode kept.index: its caption's outcome is the evaluated one, its frames a play of
    the same actions, and the policy never acts."""
    episode = Evaluated.of(r, kept)
    assert episode.outcome == outcome_of(r, kept.index) and len(episode.actions) == r.lengths[kept.index]
    policy.reset = policy.act = None  # the replay must not touch the policy
    strip = evaluated_filmstrip(task, policy, episode, frames=4)
    assert strip.replayed and strip.outcome == episode.outcome
    assert strip.png == filmstrip(task, ActionReplay(episode.actions), episode.seed, frames=4)
    return episode


def test_mountain_strip_replays_a_batched_episode():
    # Episode 2 of a batch of 4 (env seed base + 2) on the gait reward, whose return is a float sum of many steps.
    task = make_task("mountain", {"summit_distance": 2, "reward": "gait"})
    kept = EpisodeActions(2)
    r = rollout(task, MountainWalker(0.5), 4, seed=1000, recorders=[kept])
    assert kept.seed == 1002 and len(set(r.lengths.tolist())) > 1  # the batch's episodes differ
    episode = check_replayed(task, MountainWalker(0.5), r, kept)
    assert episode.outcome["implementation"] == "walk" and 0 < episode.outcome["return"] < 1
    # the replay draws only the frames a strip shows: those a full play keeps and the strip picks, pixel for pixel
    shown, outcome = replay(task, episode.actions, episode.seed, keep=4)
    full, _ = play(task, ActionReplay(episode.actions), episode.seed, keep=4)
    assert len(full) > 4 * 2 and outcome == episode.outcome  # a long episode: the full play kept many frames
    picked = [full[i] for i in np.unique(np.linspace(0, len(full) - 1, 4).round().astype(int))]
    assert [t for t, _ in shown] == [t for t, _ in picked] and len(shown) == 4
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(shown, picked))


def test_grid_strip_replays_the_first_evaluation_episode(grid_task, grid_dataset):
    kept = EpisodeActions(first_top_episode(False, 6))
    r = evaluate(grid_task, NoisyEastWalker(0.5), grid_dataset, 6, seed=3, recorders=[kept])
    assert kept.index == 0 and kept.seed == seeds.evaluation(3)
    check_replayed(grid_task, NoisyEastWalker(0.5), r, kept)


class Commanded:
    """A conditioned grid policy: each env walks east with a probability that grows with its command
    (0 at `low`, 1 at `high`), else takes a random step, sampling from its own seed."""

    conditioned = True

    def __init__(self, low: float, high: float):
        self.low, self.high = low, high

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self.p = np.clip((np.asarray(target, float) - self.low) / (self.high - self.low), 0, 1)  # (B,)
        self.rngs = [np.random.default_rng(s) for s in env_seeds(seed, num_envs)]

    def act(self, obs):
        return np.array([EAST if g.random() < p else g.integers(0, 4) for g, p in zip(self.rngs, self.p)])

    def observe(self, reward, done):
        pass


def test_conditioned_strip_is_the_top_data_levels_first_episode(grid_task, grid_dataset):
    levels = command_levels(grid_dataset)
    policy, episodes = Commanded(levels[0], levels[-1] + 0.5 * np.ptp(levels)), 4
    kept = EpisodeActions(first_top_episode(True, episodes))
    r = evaluate(grid_task, policy, grid_dataset, episodes, seed=0, recorders=[kept])
    top = kept.index
    assert r.target[top] == levels[-1] and kept.seed == seeds.evaluation(0)
    # the neighbouring candidates (the level below, the level above, episode 1) are other episodes
    others = [top - episodes, top + episodes, top + 1]
    assert all(outcome_of(r, i) != outcome_of(r, top) for i in others)
    episode = check_replayed(grid_task, Commanded(levels[0], levels[-1] + 0.5 * np.ptp(levels)), r, kept)
    assert episode.target == levels[-1]
    # what the strip showed before it replayed: a one-environment play at the top level and the first seed
    assert evaluated_filmstrip(grid_task, policy, episode, frames=4).png == filmstrip(
        grid_task, policy, seeds.evaluation(0), levels[-1], frames=4)


class NoisyLine(gym.Env):
    """Five steps along a line; with `noise` each reward is drawn from an unseeded generator, so no seed replays
    an episode's return."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, noise: bool = True, render_mode: str | None = None):
        self.noise, self.render_mode = noise, render_mode
        self.observation_space = spaces.Box(0.0, 5.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.unseeded = np.random.default_rng()  # fresh OS entropy: deliberately outside the seed
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        reward = self.unseeded.random() if self.noise else float(action)
        return np.full(1, self.t, np.float32), reward, self.t == 5, False, {}

    def render(self):
        return np.full((4, 6, 3), 40 * self.t, np.uint8)


class Counting:
    """A random policy over two actions that counts its acts."""

    conditioned = False

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        self.rng, self.acts = np.random.default_rng(seed), 0

    def act(self, obs):
        self.acts += 1
        return self.rng.integers(0, 2, size=len(obs))

    def observe(self, reward, done):
        pass


@pytest.fixture(scope="module")
def line_id():
    env_id = "metatoken-test/NoisyLine-v0"
    gym.register(env_id, entry_point=NoisyLine)
    yield env_id
    del gym.registry[env_id]


@pytest.mark.parametrize("noise", [True, False])
def test_an_env_that_does_not_replay_falls_back_to_playing_the_policy(line_id, noise):
    task = Task(id="noisy-line", env_id=line_id, env_kwargs={"noise": noise}, behaviours=())
    policy, kept = Counting(), EpisodeActions(1)
    r = rollout(task, policy, 3, seed=11, recorders=[kept])
    episode, policy.acts = Evaluated.of(r, kept), 0
    strip = evaluated_filmstrip(task, policy, episode, frames=3)
    assert strip.replayed is not noise
    if noise:  # a replay would have drawn another episode under this one's caption: the policy played it
        assert policy.acts == 5 and strip.outcome["return"] != episode.outcome["return"]
        assert strip.outcome["steps"] == 5
    else:  # the same actions replay the same rewards: the policy was not asked again
        assert policy.acts == 0 and strip.outcome == episode.outcome


def test_a_replay_that_has_not_ended_is_no_outcome(grid_task):
    kept = EpisodeActions(0)
    r = rollout(grid_task, NoisyEastWalker(0.5), 2, seed=4, recorders=[kept])
    episode = Evaluated.of(r, kept)
    frames, outcome = replay(grid_task, episode.actions[:-1], episode.seed, keep=3)
    assert outcome is None and max(t for t, _ in frames) <= len(episode.actions) - 1  # stopped when they ran out
    cut = Evaluated(episode.seed, episode.actions[:-1], episode.outcome)
    strip = evaluated_filmstrip(grid_task, NoisyEastWalker(0.5), cut, frames=3)
    assert not strip.replayed  # the policy's own one-environment play of that seed
    assert strip.png == filmstrip(grid_task, NoisyEastWalker(0.5), episode.seed, frames=3)


def test_action_replay_plays_one_env_and_no_further():
    replayer = ActionReplay(np.array([[0.5, -0.5], [1.0, 0.0]]))  # (T, A)
    with pytest.raises(ValueError, match="one environment"):
        replayer.reset(2)
    replayer.reset(1)
    obs = np.zeros((1, 3))
    np.testing.assert_array_equal(replayer.act(obs), [[0.5, -0.5]])
    np.testing.assert_array_equal(replayer.act(obs), [[1.0, 0.0]])
    with pytest.raises(ValueError, match="2 actions"):
        replayer.act(obs)
    replayer.reset(1)
    np.testing.assert_array_equal(replayer.act(obs), [[0.5, -0.5]])
    with pytest.raises(ValueError, match="not in a batch"):
        EpisodeActions(3).begin(3, [0, 1, 2])
