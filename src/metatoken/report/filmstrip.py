"""Filmstrips: a few frames across one episode of a policy, as a PNG, so a reader sees what it does.

`filmstrip(task, policy, seed)` plays one episode of `task` (the episode of
`rollout(task, policy, 1, seed)`: the env seeded with `seed`, the policy reset with it for one
environment) in a single env with `render_mode="rgb_array"`, keeps
`frames` frames spread evenly over it (the first and the last included) and lays them out
side by side with the step under each and a caption (the episode's length, return and, where
the env audits it, its implementation label). `data_uri(png)` embeds the result in HTML.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw

from metatoken.envs.task import Task
from metatoken.policy import Policy

FRAME_HEIGHT = 120  # pixels; every frame is scaled to this height
CAPTION = 16  # pixels of text under each frame and above the strip
BACKGROUND = (255, 255, 255)


def play(task: Task, policy: Policy, seed: int, target: float | None = None, deterministic: bool = False,
         keep: int = 6) -> tuple[list[tuple[int, np.ndarray]], dict]:
    """(step, frame) pairs of one rendered episode and its outcome {steps, return, implementation}.

    Keeps at most ~4 * keep frames (sampled with a stride that doubles as the episode runs on),
    always the first and the last.
    """
    env = task.make_env(render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        targets = None if target is None else np.array([float(target)])
        policy.reset(1, target=targets, seed=seed, deterministic=deterministic)
        kept, stride, step, ret, done = [(0, env.render())], 1, 0, 0.0, False
        info: dict = {}
        while not done:
            action = policy.act(np.asarray(obs)[None])[0]
            obs, reward, term, trunc, info = env.step(action)
            done, step, ret = bool(term or trunc), step + 1, ret + float(reward)
            policy.observe(np.array([reward], dtype=float), np.array([done]))
            if step % stride == 0 or done:
                kept.append((step, env.render()))
            if len(kept) > 4 * keep:  # thin out: keep every other frame, sample half as often
                kept, stride = kept[::2], stride * 2
        if kept[-1][0] != step:
            kept.append((step, env.render()))
    finally:
        env.close()
    return kept, {"steps": step, "return": ret, "implementation": info.get("implementation", "")}


def _scaled(frame: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    width = max(1, round(image.width * FRAME_HEIGHT / image.height))
    return image.resize((width, FRAME_HEIGHT), Image.Resampling.LANCZOS)


def filmstrip(task: Task, policy: Policy, seed: int, target: float | None = None, frames: int = 6,
              deterministic: bool = False, title: str = "") -> bytes:
    """A PNG of `frames` frames across episode `seed` of `policy` on `task` (rgb_array rendering)."""
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    kept, outcome = play(task, policy, seed, target, deterministic, frames)
    picks = np.unique(np.linspace(0, len(kept) - 1, frames).round().astype(int))  # evenly, first and last
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
