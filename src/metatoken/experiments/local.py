"""Local backend: runs in worker processes (one per core by default), with live progress.

Workers report training progress through a queue; the parent draws it with rich.
With one worker, runs execute in this process (same code path, easier debugging).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metatoken.experiments.run_one import execute_run
from metatoken.experiments.runs import RunResult, RunSpec

_queue = None  # set in each worker by _init


def _init(q, threads: int) -> None:
    global _queue
    import torch

    _queue = q
    torch.set_num_threads(threads)


def _worker(run: RunSpec, runs_dir: Path, data_dir: Path) -> RunResult:
    _queue.put(("start", run.run_id, 0, 0))
    result = execute_run(run, runs_dir, data_dir,
                         lambda done, total: _queue.put(("progress", run.run_id, done, total)))
    _queue.put(("end", run.run_id, 0, 0))
    return result


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def execute_local(runs: list[RunSpec], runs_dir: Path, data_dir: Path, workers: int,
                  progress: Progress) -> list[RunResult]:
    """Execute runs with `workers` processes, updating `progress` as they go."""
    overall = progress.add_task("runs", total=len(runs))
    bars: dict[str, int] = {}

    def on_message(kind: str, run_id: str, done: int, total: int) -> None:
        if kind == "start":
            bars[run_id] = progress.add_task(f"  {run_id}", total=None)
        elif kind == "progress" and run_id in bars:
            progress.update(bars[run_id], completed=done, total=total)
        elif kind == "end" and run_id in bars:
            progress.remove_task(bars.pop(run_id))
            progress.advance(overall)

    results: list[RunResult] = []
    if workers <= 1 or len(runs) <= 1:
        import torch

        torch.set_num_threads(threads_per_worker(1))
        for run in runs:
            on_message("start", run.run_id, 0, 0)
            results.append(execute_run(run, runs_dir, data_dir,
                                       lambda d, t, r=run.run_id: on_message("progress", r, d, t)))
            on_message("end", run.run_id, 0, 0)
        return results

    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    with ctx.Manager() as manager:
        q = manager.Queue()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                                 initargs=(q, threads_per_worker(workers))) as pool:
            pending = {pool.submit(_worker, run, runs_dir, data_dir) for run in runs}
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                results.extend(f.result() for f in finished)
                while True:
                    try:
                        on_message(*q.get_nowait())
                    except queue.Empty:
                        break
    order = {run.run_id: i for i, run in enumerate(runs)}
    return sorted(results, key=lambda r: order[r.run_id])  # grid order, whatever finished first


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=False,
    )
