"""The Logger seam: where training code reports curves (fixed names) and progress.

It lives outside `methods` and `models` so both can use it without importing each other.
"""

from __future__ import annotations

from typing import Protocol


class Logger(Protocol):
    """Where a method reports curves (TensorBoard, fixed names) and progress."""

    def scalar(self, name: str, value: float, step: int) -> None: ...

    def progress(self, done: int, total: int) -> None: ...


class NullLogger:
    """A logger that drops everything (tests, library use without a run directory)."""

    def scalar(self, name: str, value: float, step: int) -> None:
        pass

    def progress(self, done: int, total: int) -> None:
        pass
