"""The run logger: TensorBoard scalars under fixed names, and training progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

ProgressFn = Callable[[int, int], None]


class RunLogger:
    """Writes TensorBoard events into the run directory; forwards progress at most 10×/s."""

    def __init__(self, log_dir: Path, on_progress: ProgressFn | None = None):
        self._writer = SummaryWriter(str(log_dir))
        self._on_progress = on_progress
        self._last = 0.0

    def scalar(self, name: str, value: float, step: int) -> None:
        self._writer.add_scalar(name, value, step)

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._on_progress and (now - self._last > 0.1 or done >= total):
            self._last = now
            self._on_progress(done, total)

    def close(self) -> None:
        self._writer.close()
