"""Filmstrips: a decodable PNG whose frames differ, and a walker that does not look like the exploiter."""

import base64
import io
import itertools

import numpy as np
import pytest
from PIL import Image

from metatoken.envs import make_task
from metatoken.envs.mountain.controller import MountainWalker
from metatoken.envs.mountain_v1 import MountainExploiter
from metatoken.envs.noise import UniformRandom
from metatoken.evaluate.rollout import rollout
from metatoken.report.filmstrip import CAPTION, FRAME_HEIGHT, data_uri, filmstrip, img_tag, play


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def tiles(strip: np.ndarray, frames: int) -> list[np.ndarray]:
    """The frames of a strip of equally wide tiles separated by 4 white columns."""
    body = strip[CAPTION:CAPTION + FRAME_HEIGHT]
    width = (strip.shape[1] - 4 * (frames - 1)) // frames
    return [body[:, i * (width + 4):i * (width + 4) + width] for i in range(frames)]


def test_mountain_strip_decodes_and_frames_differ():
    task = make_task("mountain", {"summit_distance": 3})
    png = filmstrip(task, MountainWalker(1.0), seed=0, frames=5, title="walker@1")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    strip = decode(png)
    assert strip.shape[0] == FRAME_HEIGHT + 2 * CAPTION
    frames = tiles(strip, 5)
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))


def test_strip_plays_the_evaluation_episode():
    # The strip's episode is a one-episode rollout with that seed: same length, return, label.
    task = make_task("mountain", {"summit_distance": 2})
    r = rollout(task, MountainWalker(0.5), 1, seed=7)
    kept, outcome = play(task, MountainWalker(0.5), seed=7, keep=3)
    assert outcome == {"steps": int(r.lengths[0]), "return": r.returns[0], "implementation": r.implementations[0]}
    assert kept[0][0] == 0 and kept[-1][0] == outcome["steps"] and len(kept) <= 13
    steps = [s for s, _ in kept]
    assert steps == sorted(set(steps))
    strip = filmstrip(task, MountainWalker(0.5), seed=7, frames=3)
    assert strip == filmstrip(task, MountainWalker(0.5), seed=7, frames=3)  # seeded


def test_walker_and_exploiter_look_different():
    # The exploiter spends its strip in the air: torso pixels sit far higher than a walker's.
    task = make_task("mountain")
    body = np.array([40, 60, 140])

    def torso_rows(png):
        rows = [np.flatnonzero((t == body).all(2).any(1)) for t in tiles(decode(png), 8)]
        return np.array([r.min() if len(r) else FRAME_HEIGHT for r in rows])  # top of the torso per frame

    walker = torso_rows(filmstrip(task, MountainWalker(1.0), seed=0, frames=8))
    exploiter = torso_rows(filmstrip(task, MountainExploiter(), seed=0, frames=8))
    assert walker.max() - walker.min() <= 3  # a gait keeps the torso at one height
    assert exploiter.min() < walker.min() - 15  # launched far above any walker's torso


def test_grid_strip_and_embedding():
    task = make_task("glitchgrid-teleport", {"summit_distance": 4})
    png = filmstrip(task, UniformRandom(task.make_vec(1).single_action_space), seed=1, frames=4)
    assert decode(png).shape[0] == FRAME_HEIGHT + 2 * CAPTION
    uri = data_uri(png)
    assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri.split(",", 1)[1]) == png
    assert img_tag(png, 'a "walker" <1>').endswith('alt="a &quot;walker&quot; &lt;1>">')
    with pytest.raises(ValueError, match="frames"):
        filmstrip(task, UniformRandom(task.make_vec(1).single_action_space), seed=1, frames=1)
