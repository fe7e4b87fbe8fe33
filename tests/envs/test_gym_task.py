"""The generic `gym` task: any registered Gymnasium env, one-hot Discrete observations,
reference data from a random behaviour or a user's Minari dataset, clear one-line errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from metatoken.data import minari_io
from metatoken.data.collect import collect, reference_data
from metatoken.data.dataset import Dataset, Episode
from metatoken.data.validate import preflight
from metatoken.envs import make_task
from metatoken.envs.gym_task import UniformRandom
from metatoken.errors import UserError
from metatoken.experiments.spec import parse_spec

DICT_ENV = "metatoken-test/DictObs-v0"


class _DictObsEnv(gym.Env):
    observation_space = gym.spaces.Dict({"a": gym.spaces.Discrete(2)})
    action_space = gym.spaces.Discrete(2)


if DICT_ENV not in gym.registry:
    gym.register(DICT_ENV, entry_point=_DictObsEnv)


def _spec(options: dict) -> dict:
    return {"name": "t", "tasks": [{"id": "gym", "options": options}], "methods": [{"id": "bc"}], "seeds": [0]}


def test_discrete_observations_are_one_hot_in_single_and_vector_envs():
    task = make_task("gym", {"env_id": "FrozenLake-v1", "env_kwargs": {"is_slippery": False}})
    env = task.make_env()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (16,) and obs.shape == (16,) and obs[0] == 1.0 and obs.sum() == 1.0
    obs, *_ = env.step(2)  # east, not slippery: state 0 -> 1
    np.testing.assert_array_equal(obs, np.eye(16, dtype=np.float32)[1])
    env.close()
    vec = task.make_vec(3)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, 16)
    obs, *_ = vec.step(np.array([2, 1, 0]))  # east -> 1, south -> 4, west -> stays 0
    np.testing.assert_array_equal(obs.argmax(1), [1, 4, 0])
    vec.close()


def test_random_behaviour_data_is_seeded_one_hot_and_uniform():
    task = make_task("gym", {"env_id": "FrozenLake-v1", "reference_episodes": 30, "data_seed": 3})
    a, b = collect(task), collect(task)
    assert len(a) == 30 and task.key == "gym-FrozenLake-v1__data3"
    np.testing.assert_array_equal(np.concatenate([e.actions for e in a.episodes]),
                                  np.concatenate([e.actions for e in b.episodes]))
    obs = np.concatenate([e.observations for e in a.episodes])
    assert obs.shape[1] == 16 and (obs.sum(1) == 1).all()
    assert np.isnan(a.episodes[0].intended).all() and not a.episodes[0].exploit.any()  # no audit
    # uniform over Discrete(4): each action about a quarter of 4000 draws
    policy = UniformRandom(gym.spaces.Discrete(4))
    policy.reset(4000, seed=1)
    counts = np.bincount(policy.act(None), minlength=4)
    assert counts.min() > 900 and counts.max() < 1100


def test_continuous_random_behaviour_spans_the_box():
    policy = UniformRandom(gym.spaces.Box(-2.0, 2.0, (1,), np.float32))
    policy.reset(2000, seed=0)
    act = policy.act(None)
    assert act.shape == (2000, 1) and act.min() >= -2 and act.max() <= 2
    assert act.min() < -1.9 and act.max() > 1.9 and abs(act.mean()) < 0.1


def test_task_keys_name_the_env_and_the_user_dataset(tmp_path):
    pend = make_task("gym", {"env_id": "Pendulum-v1", "env_kwargs": {"g": 5.0}})
    cart = make_task("gym", {"env_id": "CartPole-v1"})
    assert pend.key == "gym-Pendulum-v1__g=5.0__data0" and cart.key == "gym-CartPole-v1__data0"
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = make_task("gym", {"env_id": "CartPole-v1", "dataset": str(tmp_path / "a")})
    b = make_task("gym", {"env_id": "CartPole-v1", "dataset": str(tmp_path / "b")})
    assert len({a.key, b.key, cart.key}) == 3


@pytest.mark.parametrize("options, message", [
    ({"env_id": "NoSuchEnv-v9"}, "env_id 'NoSuchEnv-v9': not a registered Gymnasium env id"),
    ({"env_id": "Blackjack-v1"}, "Tuple observation spaces are not supported yet"),
    ({"env_id": DICT_ENV}, "Dict observation spaces are not supported yet"),
    ({"env_id": "Pendulum-v1", "env_kwargs": {"gravity_typo": 1}}, "cannot be made with env_kwargs"),
    ({"env_id": "Pendulum-v1", "behaviour": "expert"}, "tasks[0].options.behaviour"),
])
def test_bad_options_are_one_line_user_errors(options, message):
    with pytest.raises(UserError) as err:
        parse_spec(_spec(options))
    text = str(err.value)
    assert message in text and "\n" not in text


def _raw_frozenlake_dataset(n: int) -> Dataset:
    """FrozenLake episodes as a user would record them: raw Discrete observations."""
    env = gym.make("FrozenLake-v1")
    rng = np.random.default_rng(0)
    episodes = []
    for i in range(n):
        obs, _ = env.reset(seed=i)
        o, a, r, te, tr = [obs], [], [], [], []
        done = False
        while not done:
            act = int(rng.integers(4))
            obs, rew, term, trunc, _ = env.step(act)
            o.append(obs), a.append(act), r.append(rew), te.append(term), tr.append(trunc)
            done = term or trunc
        t = len(a)
        episodes.append(Episode(np.array(o), np.array(a), np.array(r, float), np.array(te), np.array(tr),
                                np.full(t, np.nan), np.zeros(t, bool), "user", i))
    space_o, space_a = env.observation_space, env.action_space
    env.close()
    return Dataset(episodes, space_o, space_a)


def test_user_dataset_is_imported_one_hot_from_a_path_or_a_minari_id(tmp_path, monkeypatch):
    raw = _raw_frozenlake_dataset(6)
    minari_io.save(raw, tmp_path / "minari" / "me" / "lake-v0")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    by_id = make_task("gym", {"env_id": "FrozenLake-v1", "dataset": "me/lake-v0"})
    by_path = make_task("gym", {"env_id": "FrozenLake-v1", "dataset": str(tmp_path / "minari" / "me" / "lake-v0")})
    np.testing.assert_array_equal(reference_data(by_path, tmp_path / "cache").returns(), raw.returns())
    ds = reference_data(by_id, tmp_path / "cache")
    assert (tmp_path / "cache" / by_id.key / "data" / "metadata.json").is_file()
    assert ds.task_key == by_id.key and len(ds) == 6
    assert ds.observation_space == gym.spaces.Box(0.0, 1.0, (16,), np.float32)
    for user, ours in zip(raw.episodes, ds.episodes):
        np.testing.assert_array_equal(ours.observations.argmax(1), user.observations)
        np.testing.assert_array_equal(ours.actions, user.actions)


def test_a_missing_dataset_is_one_line_at_preflight_not_at_parse(tmp_path, monkeypatch):
    """A worker or Ray node builds the task without the user's files; the runner's preflight checks them."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    task = make_task("gym", {"env_id": "CartPole-v1", "dataset": "nowhere/none-v0"})
    assert task.dataset == "nowhere/none-v0"
    with pytest.raises(UserError) as err:
        preflight(task)
    assert str(err.value) == (f"dataset 'nowhere/none-v0': no such directory, and no Minari dataset of that id "
                              f"under {tmp_path}")


def test_user_discrete_observations_outside_the_space_are_one_line(tmp_path):
    raw = _raw_frozenlake_dataset(2)
    raw.episodes[1].observations[2] = 16  # FrozenLake 4x4 has states 0..15
    minari_io.save(raw, tmp_path / "lake")
    task = make_task("gym", {"env_id": "FrozenLake-v1", "dataset": str(tmp_path / "lake")})
    with pytest.raises(UserError) as err:
        reference_data(task, tmp_path / "cache")
    assert str(err.value) == f"{tmp_path / 'lake'}: episode 1: observation 16 at step 2 is outside Discrete(16)"
    assert not (tmp_path / "cache").exists()
