"""Progress without a terminal: one plain line per finished run, periodic lines for long runs."""

import io

from metatoken.experiments.progress import BarProgress, LineProgress, make_progress
from metatoken.experiments.runs import RunResult


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_and_a_terminal_gets_bars():
    assert isinstance(make_progress(2, io.StringIO()), LineProgress)
    assert isinstance(make_progress(2, _Tty()), BarProgress)


def test_one_line_per_finished_run_with_status_and_error():
    log = io.StringIO()
    with LineProgress(2, log, every_s=3600) as progress:
        progress.start("t__bc__seed0")
        progress.update("t__bc__seed0", 5, 10)  # within every_s: no line
        progress.start("t__bc__seed1")
        progress.finish(RunResult("t__bc__seed1", "failed", error="RuntimeError: boom"))
        progress.finish(RunResult("t__bc__seed0", "ok"))
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[1/2] run t__bc__seed1 failed (") and lines[0].endswith("): RuntimeError: boom")
    assert lines[1].startswith("[2/2] run t__bc__seed0 ok (")


def test_a_long_run_reports_periodically():
    log = io.StringIO()
    progress = LineProgress(1, log, every_s=0.0)
    progress.start("t__ppo__seed0")
    progress.update("t__ppo__seed0", 3, 10)
    progress.update("t__ppo__seed0", 7, 10)
    lines = log.getvalue().splitlines()
    assert [ln.split(" (")[0] for ln in lines] == ["run t__ppo__seed0: 3/10 steps", "run t__ppo__seed0: 7/10 steps"]
