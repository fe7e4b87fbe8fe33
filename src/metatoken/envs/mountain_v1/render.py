"""Pictures of Mountain-v1: the walker, the terrain and the summit, as an (H, W, 3) uint8 array."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from metatoken.envs.mountain.dynamics import HIP, LEG, PITCH, X, Y, terrain

WIDTH, HEIGHT = 480, 300  # pixels: 8 m across, 5 m high (0.6 m below the ground under the walker)
SPAN = 8.0  # metres of terrain across the picture, centred on the walker
BELOW = 0.6  # metres of ground shown below the terrain under the walker (a flight shows as height)
SKY, GROUND, BODY, FLAG = (235, 242, 250), (120, 100, 80), (40, 60, 140), (220, 30, 30)
LEGS = ((200, 60, 40), (40, 140, 60))  # leg 0 red, leg 1 green


def draw(state: np.ndarray, summit_distance: float, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """One frame (height, width, 3) uint8 of a single walker's state (STATE_DIM,)."""
    scale = width / SPAN  # pixels per metre
    x0 = float(state[X]) - SPAN / 2  # world x at the left edge
    under = float(terrain(np.array([state[X]]), summit_distance)[0][0])
    y0 = under - BELOW  # world y at the bottom edge: the camera follows the ground, not the body

    def px(x: float, y: float) -> tuple[float, float]:
        return (x - x0) * scale, height - (y - y0) * scale

    image = Image.new("RGB", (width, height), SKY)
    pen = ImageDraw.Draw(image)
    xs = x0 + np.linspace(0.0, SPAN, 97)  # (97,)
    ground, _ = terrain(xs, summit_distance)  # (97,)
    pen.polygon([px(x, g) for x, g in zip(xs, ground)] + [(width, height), (0, height)], fill=GROUND)
    for tick in np.arange(np.ceil(x0), x0 + SPAN):  # a post every metre shows motion
        g = float(terrain(np.array([tick]), summit_distance)[0][0])
        pen.line([px(tick, g), px(tick, g + 0.1)], fill=(90, 70, 50), width=2)
    if x0 <= summit_distance <= x0 + SPAN:  # the summit flag
        top = float(terrain(np.array([summit_distance]), summit_distance)[0][0])
        pen.line([px(summit_distance, top), px(summit_distance, top + 0.8)], fill=(60, 60, 60), width=2)
        pen.polygon([px(summit_distance, top + 0.8), px(summit_distance + 0.4, top + 0.68),
                     px(summit_distance, top + 0.56)], fill=FLAG)
    else:
        pen.text((width - 150, 8), f"summit {summit_distance - float(state[X]):+.1f} m", fill=FLAG)
    hip = px(float(state[X]), float(state[Y]))
    for i, colour in enumerate(LEGS):
        angle = float(state[PITCH] + state[HIP][i])
        length = float(state[LEG][i])
        foot = px(float(state[X]) + length * np.sin(angle), float(state[Y]) - length * np.cos(angle))
        pen.line([hip, foot], fill=colour, width=4)
        pen.ellipse([foot[0] - 3, foot[1] - 3, foot[0] + 3, foot[1] + 3], fill=colour)
    pitch = float(state[PITCH])
    head = px(float(state[X]) - 0.5 * np.sin(pitch), float(state[Y]) + 0.5 * np.cos(pitch))
    pen.line([hip, head], fill=BODY, width=8)  # the torso
    pen.ellipse([head[0] - 7, head[1] - 7, head[0] + 7, head[1] + 7], fill=BODY)
    pen.text((8, 8), f"x = {float(state[X]):.1f} m", fill=(0, 0, 0))
    return np.asarray(image, dtype=np.uint8)
