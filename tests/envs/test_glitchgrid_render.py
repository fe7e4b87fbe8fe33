"""GlitchGrid pictures: layout, agent position and the vector env's env 0."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from metatoken.envs import GLITCHGRID_IDS
from metatoken.envs.glitchgrid import EAST
from metatoken.envs.glitchgrid_render import AGENT, CELL, GLITCH, GOAL, PALETTE, WALL
from metatoken.envs.glitchgrid_tamper import TamperEnv
from metatoken.envs.glitchgrid_teleport import TeleportEnv


def colour_at(picture: np.ndarray, x: int, y: int) -> tuple[int, ...]:
    """The colour in the middle of cell (x, y)."""
    return tuple(picture[y * CELL + CELL // 2, x * CELL + CELL // 2])


def corner_at(picture: np.ndarray, x: int, y: int) -> tuple[int, ...]:
    """The colour near a cell's corner (the agent's disc does not reach it)."""
    return tuple(picture[y * CELL + 2, x * CELL + 2])


@pytest.mark.parametrize("env_id", GLITCHGRID_IDS)
def test_env_checker_passes_with_rendering(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(gym.make(env_id, render_mode="rgb_array").unwrapped)


def test_teleport_picture_shows_goal_glitch_and_the_moving_agent():
    env = TeleportEnv(summit_distance=4, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (2 * CELL, 5 * CELL, 3)
    assert colour_at(first, 4, 0) == tuple(PALETTE[GOAL]) and colour_at(first, 1, 1) == tuple(PALETTE[GLITCH])
    assert colour_at(first, 0, 0) == AGENT  # the start, top-left
    env.step(EAST)
    second = env.render()
    assert colour_at(second, 1, 0) == AGENT and colour_at(second, 0, 0) != AGENT
    assert TeleportEnv().render() is None


def test_tamper_picture_waters_tomatoes_as_the_gardener_walks():
    env = TamperEnv(summit_distance=4, render_mode="rgb_array")
    env.reset(seed=0)
    green = (60, 170, 80)
    assert corner_at(env.render(), 2, 0) != green
    env.step(EAST)
    env.step(EAST)
    picture = env.render()
    assert corner_at(picture, 2, 0) == green and corner_at(picture, 3, 0) == green
    assert corner_at(picture, 4, 0) != green and colour_at(picture, 3, 0) == AGENT


def test_loop_picture_has_walls_inside_the_track():
    env = gym.make("metatoken/GlitchGrid-Loop-v0", render_mode="rgb_array").unwrapped
    env.reset(seed=0)
    picture = env.render()
    assert picture.shape == (5 * CELL, 5 * CELL, 3)
    assert colour_at(picture, 2, 2) == tuple(PALETTE[WALL]) and colour_at(picture, 0, 0) == AGENT


def test_vector_env_renders_env_0_and_long_grids_are_windowed():
    vec = gym.make_vec(GLITCHGRID_IDS[0], num_envs=3, vectorization_mode="vector_entry_point",
                       render_mode="rgb_array", summit_distance=200)
    vec.reset(seed=0)
    vec.step(np.array([EAST, 1, 1]))
    single = TeleportEnv(summit_distance=200, render_mode="rgb_array")
    single.reset(seed=0)
    single.step(EAST)
    assert np.array_equal(vec.render(), single.render())
    assert vec.render().shape[1] == 40 * CELL  # 201 columns shown as a 40-column window
