"""Progress of an experiment's runs: rich bars on a terminal, plain lines in a log.

When stderr is not a terminal (a redirected log, a batch job), every finished run prints one
line as it finishes, and a run still training prints a line at most every `every_s` seconds,
so a log is never silent until the end.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, Self, TextIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metatoken.experiments.runs import RunResult


class RunProgress(Protocol):
    """What the backends report as runs start, train and finish."""

    def start(self, run_id: str) -> None: ...

    def update(self, run_id: str, done: int, total: int) -> None: ...

    def finish(self, result: RunResult) -> None: ...


class BarProgress:
    """Rich progress bars: one for the experiment, one per run in flight."""

    def __init__(self, total: int, stream: TextIO | None = None):
        from rich.console import Console

        self.stream = stream or sys.stderr
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(file=self.stream))
        self._overall = self._progress.add_task("runs", total=total)
        self._bars: dict[str, int] = {}

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def start(self, run_id: str) -> None:
        self._bars[run_id] = self._progress.add_task(f"  {run_id}", total=None)

    def update(self, run_id: str, done: int, total: int) -> None:
        if run_id in self._bars:
            self._progress.update(self._bars[run_id], completed=done, total=total)

    def finish(self, result: RunResult) -> None:
        if result.run_id in self._bars:
            self._progress.remove_task(self._bars.pop(result.run_id))
        self._progress.advance(self._overall)
        if result.status == "failed":
            self._progress.console.print(f"[red]run {result.run_id} failed:[/red] {result.error}")


class LineProgress:
    """One plain line per finished run, and one per `every_s` seconds for a run still training."""

    def __init__(self, total: int, stream: TextIO | None = None, every_s: float = 60.0):
        self.stream, self._total, self._every = stream or sys.stderr, total, every_s
        self._finished = 0
        self._started: dict[str, float] = {}
        self._last_line: dict[str, float] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, run_id: str) -> None:
        self._started[run_id] = self._last_line[run_id] = time.monotonic()

    def update(self, run_id: str, done: int, total: int) -> None:
        now = time.monotonic()
        if run_id in self._last_line and now - self._last_line[run_id] >= self._every:
            self._last_line[run_id] = now
            self._line(f"run {run_id}: {done}/{total} steps ({now - self._started[run_id]:.0f} s)")

    def finish(self, result: RunResult) -> None:
        self._finished += 1
        took = time.monotonic() - self._started.pop(result.run_id, time.monotonic())
        self._last_line.pop(result.run_id, None)
        why = f": {result.error}" if result.error else ""
        self._line(f"[{self._finished}/{self._total}] run {result.run_id} {result.status} "
                   f"({took:.1f} s){why}")


def make_progress(total: int, stream: TextIO | None = None) -> BarProgress | LineProgress:
    """Bars when `stream` (default stderr) is a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    is_tty = getattr(stream, "isatty", lambda: False)()
    return BarProgress(total, stream) if is_tty else LineProgress(total, stream)
