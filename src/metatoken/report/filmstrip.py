"""Filmstrips: a few frames across one episode of a policy, as a PNG, so a reader sees what it does.

`filmstrip(task, policy, seed)` plays one episode of `task` (the episode of
`rollout(task, policy, 1, seed)`: the env seeded with `seed`, the policy reset with it for one
environment) through the rollout primitive with `render=True` (`render_mode="rgb_array"`), keeps
`frames` frames spread evenly over it (the first and the last included) and lays them out
side by side with the step under each and a caption (the episode's length, return and, where
the env audits it, its implementation label). `data_uri(png)` embeds the result in HTML.

`evaluated_filmstrip(task, policy, episode)` draws an episode that evaluation already played
(`Evaluated`: its env seed, the actions an `EpisodeActions` recorder kept, its outcome) by
replaying those actions (`evaluate/replay.py`) instead of running the policy again: a run's
strip costs env steps only, no model steps. The strip then shows the evaluated episode itself,
which a second play of the policy need not be: the batched evaluation's actions can differ from
a one-environment play's in the last float bits (batched matmuls round differently), and a
sampled episode that diverges once diverges for good. When the replay does not end as the
evaluated episode did (an env with randomness its seed does not fix), the policy plays the
episode again, as `filmstrip` does, and the caption is that episode's.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from metatoken.envs.task import Task
from metatoken.evaluate.recorders import EpisodeActions, Outcomes, Recorder
from metatoken.evaluate.replay import ActionReplay
from metatoken.evaluate.rollout import Rollouts
from metatoken.evaluate.rollout import play as play_batch
from metatoken.policy import Policy

FRAME_HEIGHT = 120  # pixels; every frame is scaled to this height
CAPTION = 16  # pixels of text under each frame and above the strip
BACKGROUND = (255, 255, 255)


class _Frames(Recorder):
    """Draws and keeps at most ~4 * keep of env 0's frames (the stride doubles as the episode runs on),
    the first and the last always. With `only` (frame steps), it draws only those and keeps the others'
    places empty: what `_draw` will pick is known in advance when the episode's length is."""

    def __init__(self, keep: int, only: set[int] | None = None):
        self.keep, self.stride, self.kept, self.only = keep, 1, [], only

    def frame(self, t: int, draw, last: bool) -> None:
        if t % self.stride == 0 or last:
            self.kept.append((t, draw() if self.only is None or t in self.only else None))
        if len(self.kept) > 4 * self.keep:  # thin out: keep every other frame (and the newest), sample half as often
            self.kept, self.stride = self.kept[:-1:2] + self.kept[-1:], self.stride * 2


def _picks(count: int, frames: int) -> np.ndarray:
    """Indices of the `frames` kept frames a strip shows, evenly spaced (first and last included)."""
    return np.unique(np.linspace(0, count - 1, frames).round().astype(int))


def _shown_steps(steps: int, keep: int) -> set[int]:
    """The frame steps a strip of an episode of `steps` steps shows: `_Frames` thinning run on the steps alone
    (frames are offered after reset and after every step, the last one at `steps`)."""
    index = _Frames(keep)
    for t in range(steps + 1):
        index.frame(t, lambda: None, t == steps)
    return {index.kept[i][0] for i in _picks(len(index.kept), keep)}


def _outcome(outcome: Outcomes) -> dict:
    return {"steps": int(outcome.lengths[0]), "return": float(outcome.returns[0]),
            "implementation": outcome.implementations[0]}


def play(task: Task, policy: Policy, seed: int, target: float | None = None, deterministic: bool = False,
         keep: int = 6) -> tuple[list[tuple[int, np.ndarray]], dict]:
    """(step, frame) pairs of one rendered episode and its outcome {steps, return, implementation}."""
    frames, outcome = _Frames(keep), Outcomes()
    targets = None if target is None else np.array([float(target)])
    play_batch(task, policy, 1, seed, target=targets, deterministic=deterministic,
               recorders=[outcome, frames], render=True)
    return frames.kept, _outcome(outcome)


def replay(task: Task, actions: np.ndarray, seed: int,
           keep: int = 6) -> tuple[list[tuple[int, np.ndarray]], dict | None]:
    """(step, frame) pairs and outcome of the episode that env seed `seed` and `actions` (T, ...) replay.

    Only the `keep` frames a strip shows are drawn (drawing is most of a replay's time): the same
    pictures as `play` of an ActionReplay would keep and `_draw` pick, when the env ends the episode at
    its last action. The outcome is None when the env had not ended the episode by the last action."""
    frames, outcome = _Frames(keep, _shown_steps(len(actions), keep)), Outcomes()
    played = play_batch(task, ActionReplay(actions), 1, seed, recorders=[outcome, frames], render=True,
                        max_steps=len(actions))
    return [(t, image) for t, image in frames.kept if image is not None], (
        _outcome(outcome) if played.finished[0] else None)


@dataclass(frozen=True)
class Evaluated:
    """One episode of an evaluation: its env seed, the actions taken, its outcome and commanded target."""

    seed: int
    actions: np.ndarray  # (T, *action_shape)
    outcome: dict  # {steps, return, implementation}, as evaluation measured it
    target: float | None = None  # the commanded condition (None: an unconditioned policy)

    @staticmethod
    def of(rollouts: Rollouts, kept: EpisodeActions) -> Evaluated:
        """Episode `kept.index` of `rollouts`, whose actions `kept` recorded during the same evaluation."""
        index = kept.index
        target = float(rollouts.target[index])
        return Evaluated(kept.seed, kept.actions,
                         {"steps": int(rollouts.lengths[index]), "return": float(rollouts.returns[index]),
                          "implementation": rollouts.implementations[index] if rollouts.implementations else ""},
                         None if np.isnan(target) else target)


@dataclass(frozen=True)
class Strip:
    """A drawn filmstrip, the outcome its caption shows, and whether it replayed the evaluated episode."""

    png: bytes
    outcome: dict
    replayed: bool


def _scaled(frame: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    width = max(1, round(image.width * FRAME_HEIGHT / image.height))
    return image.resize((width, FRAME_HEIGHT), Image.Resampling.LANCZOS)


def filmstrip(task: Task, policy: Policy, seed: int, target: float | None = None, frames: int = 6,
              deterministic: bool = False, title: str = "") -> bytes:
    """A PNG of `frames` frames across episode `seed` of `policy` on `task` (rgb_array rendering)."""
    _check(frames)
    return _draw(*play(task, policy, seed, target, deterministic, frames), frames, title)


def evaluated_filmstrip(task: Task, policy: Policy, episode: Evaluated, frames: int = 6,
                        title: str = "") -> Strip:
    """The filmstrip of an evaluated episode, replayed from its actions (the policy plays it again only when
    the env does not replay it)."""
    _check(frames)
    kept, outcome = replay(task, episode.actions, episode.seed, frames)
    if outcome == episode.outcome:  # exact, return included: a replay sums the same rewards in the same order
        return Strip(_draw(kept, outcome, frames, title), outcome, True)
    # The env did not replay the episode (randomness its seed does not fix): a replay would show
    # another episode under the evaluated one's caption, so show a fresh play of the policy, as before.
    kept, outcome = play(task, policy, episode.seed, episode.target, False, frames)
    return Strip(_draw(kept, outcome, frames, title), outcome, False)


def _check(frames: int) -> None:
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")


def _draw(kept: list[tuple[int, np.ndarray]], outcome: dict, frames: int, title: str) -> bytes:
    """The PNG: `frames` of the kept frames, evenly spaced (first and last included), under a caption."""
    picks = _picks(len(kept), frames)
    tiles = [(kept[i][0], _scaled(kept[i][1])) for i in picks]
    width = sum(t.width for _, t in tiles) + 4 * (len(tiles) - 1)
    strip = Image.new("RGB", (width, FRAME_HEIGHT + 2 * CAPTION), BACKGROUND)
    pen = ImageDraw.Draw(strip)
    label = f" · {outcome['implementation']}" if outcome["implementation"] else ""
    caption = f"{title + ': ' if title else ''}{outcome['steps']} steps, return {outcome['return']:.3g}{label}"
    pen.text((2, 2), caption, fill=(0, 0, 0))
    x = 0
    for step, tile in tiles:
        strip.paste(tile, (x, CAPTION))
        pen.text((x + 2, CAPTION + FRAME_HEIGHT + 2), f"t = {step}", fill=(60, 60, 60))
        x += tile.width + 4
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A `data:image/png;base64,...` URI, for an `<img src=...>` in a self-contained report."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img_tag(png: bytes, alt: str) -> str:
    """An `<img>` element embedding the PNG (alt text escaped)."""
    safe = alt.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return f'<img src="{data_uri(png)}" alt="{safe}">'
