"""Local backend: runs in worker processes on this machine (one per core by default).

Each worker is a fresh interpreter (spawn) that executes one run at a time and talks to the
driver over its own pipe, so the driver always knows which run a worker holds:
- a worker that dies (killed, out of memory) has its run retried up to `retries` times on a
  fresh worker, then recorded as failed with the reason, while the other runs go on;
- a worker whose driver dies exits at once (it watches its parent), leaving no orphans.
With one worker, runs execute in this process (same code path, easier debugging).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path

from metatoken.experiments import rundir
from metatoken.experiments.progress import RunProgress
from metatoken.experiments.run_one import execute_run, record_failure
from metatoken.experiments.runs import RunResult, RunSpec, Schedule

_PARENT_POLL_S = 0.5


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _exit_with_parent(parent_pid: int) -> None:
    """Runs in a worker thread: end the worker as soon as its driver is gone."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _worker_main(conn: Connection, parent_pid: int, threads: int, runs_dir: Path, data_dir: Path) -> None:
    """A worker's loop: receive a run, execute it, send back its result; None or EOF ends it."""
    import torch

    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    torch.set_num_threads(threads)
    while True:
        try:
            run = conn.recv()
        except EOFError:
            return
        if run is None:
            return
        result = execute_run(run, runs_dir, data_dir,
                             lambda d, t, r=run.run_id: conn.send(("progress", r, d, t)))
        conn.send(("done", result))


class _Worker:
    """One worker process, its pipe and the run it holds."""

    def __init__(self, ctx, threads: int, runs_dir: Path, data_dir: Path):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, os.getpid(), threads, runs_dir, data_dir),
                                   daemon=True)
        self.process.start()
        child.close()
        self.run: RunSpec | None = None

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def execute_local(runs: list[RunSpec], runs_dir: Path, data_dir: Path, workers: int,
                  progress: RunProgress, retries: int = 1) -> list[RunResult]:
    """Execute runs with `workers` processes, each pi_ref before the runs that need it."""
    if workers <= 1 or len(runs) <= 1:
        results = _execute_in_process(runs, runs_dir, data_dir, progress)
    else:
        results = _execute_in_workers(runs, runs_dir, data_dir, workers, progress, retries)
    order = {run.run_id: i for i, run in enumerate(runs)}
    return sorted(results, key=lambda r: order[r.run_id])  # grid order, whatever finished first


def _execute_in_process(runs, runs_dir, data_dir, progress: RunProgress) -> list[RunResult]:
    import torch

    torch.set_num_threads(threads_per_worker(1))
    schedule, results = Schedule(runs), []
    while (run := schedule.next_ready()) is not None:
        progress.start(run.run_id)
        result = execute_run(run, runs_dir, data_dir, lambda d, t, r=run.run_id: progress.update(r, d, t))
        schedule.finish(run.run_id)
        progress.finish(result)
        results.append(result)
    return results


def _execute_in_workers(runs, runs_dir, data_dir, workers: int, progress: RunProgress,
                        retries: int) -> list[RunResult]:
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch thread pools
    threads = threads_per_worker(workers)
    schedule, results = Schedule(runs), []
    attempts: dict[str, int] = {}
    pool = [_Worker(ctx, threads, runs_dir, data_dir) for _ in range(min(workers, len(runs)))]

    def finished(worker: _Worker, result: RunResult) -> None:
        worker.run = None
        schedule.finish(result.run_id)
        progress.finish(result)
        results.append(result)

    try:
        while schedule or any(w.run for w in pool):
            for i, worker in enumerate(pool):
                if worker.run is None and not worker.process.is_alive():  # died while idle
                    worker.conn.close()
                    pool[i] = worker = _Worker(ctx, threads, runs_dir, data_dir)
                if worker.run is None and (run := schedule.next_ready()) is not None:
                    worker.run = run
                    attempts[run.run_id] = attempts.get(run.run_id, 0) + 1
                    if attempts[run.run_id] == 1:
                        progress.start(run.run_id)
                    worker.conn.send(run)
            busy = [w for w in pool if w.run is not None]
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0))
            for i, worker in enumerate(pool):
                if worker.run is None:
                    continue
                try:
                    while worker.run is not None and worker.conn in ready and worker.conn.poll():
                        message = worker.conn.recv()
                        if message[0] == "progress":
                            progress.update(*message[1:])
                        else:
                            finished(worker, message[1])
                except (EOFError, OSError):
                    pass  # the pipe closed: the process is gone, handled below
                if worker.run is not None and not worker.process.is_alive():
                    run, code = worker.run, worker.process.exitcode
                    rundir.remove_temporaries(runs_dir, run.run_id)
                    if attempts[run.run_id] <= retries:
                        schedule.retry(run)
                        worker.run = None
                    else:
                        finished(worker, record_failure(
                            run, runs_dir, f"WorkerDied: the worker process died (exit code {code}) "
                                           f"on each of {attempts[run.run_id]} attempt(s)"))
                    worker.conn.close()
                    pool[i] = _Worker(ctx, threads, runs_dir, data_dir)
    finally:
        for worker in pool:
            worker.stop()
    return results
