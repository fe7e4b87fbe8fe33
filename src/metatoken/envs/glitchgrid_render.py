"""Small pictures of GlitchGrids: a grid of coloured cells and the agent, as (H, W, 3) uint8."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# Cell codes every grid maps its layout to; the palette is shared so pictures read alike.
FLOOR, WALL, GOAL, GLITCH, MARK, DONE = range(6)
PALETTE = np.array([
    (235, 235, 225),  # floor
    (70, 70, 80),  # wall
    (250, 200, 40),  # goal
    (220, 40, 160),  # the planted exploit's tile (glitch, junction box)
    (120, 170, 230),  # a marked cell (checkpoint, well)
    (60, 170, 80),  # done (a watered tomato, a jammed sensor)
], dtype=np.uint8)
AGENT = (30, 60, 200)
CELL = 24  # pixels per cell
MAX_COLUMNS = 40  # longer grids show a window of this many columns around the agent


def draw_cells(codes: np.ndarray, agent: tuple[int, int]) -> np.ndarray:
    """A picture (H * CELL, W * CELL, 3) uint8 of cell codes (H, W) with the agent at (x, y)."""
    width = codes.shape[1]
    left = 0
    if width > MAX_COLUMNS:  # a window that keeps the agent in view
        left = int(np.clip(agent[0] - MAX_COLUMNS // 2, 0, width - MAX_COLUMNS))
        codes = codes[:, left:left + MAX_COLUMNS]
    pixels = np.repeat(np.repeat(PALETTE[codes], CELL, axis=0), CELL, axis=1)  # (H*CELL, W*CELL, 3)
    pixels[::CELL, :] = pixels[:, ::CELL] = 200  # grid lines (also on the first row and column)
    image = Image.fromarray(np.ascontiguousarray(pixels))
    x, y = (agent[0] - left) * CELL, agent[1] * CELL
    ImageDraw.Draw(image).ellipse([x + 4, y + 4, x + CELL - 4, y + CELL - 4], fill=AGENT)
    return np.asarray(image, dtype=np.uint8)
