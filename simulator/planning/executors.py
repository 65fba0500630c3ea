"""Run sweep points: in this process, in a local process pool, or as Ray tasks.

Every executor calls :func:`run_task` once per point and hands each finished row to
``on_row`` as soon as it arrives. Local workers write the point's file themselves, so a point
that finished is on disk even if the parent dies a moment later.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.util as mp_util
import os
import shutil
import socket
import time
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.scenario import Scenario
from ..errors import DoesNotFitError, InputError, ServesimError
from . import store

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """What a worker needs to run one point."""

    key: str
    scenario: Scenario
    axes: dict[str, Any]
    replication: int


class WorkerCrash(RuntimeError):
    """Workers died (killed, out of memory) with points unfinished; finished points are saved."""


def run_task(task: Task, out_dir: str | None = None) -> dict[str, Any]:
    """Simulate one point and return its row; with ``out_dir`` also journal it and write its file.

    Errors of the point itself (a model that does not fit, a bad value) become the row's ``error``.
    """
    from ..engine.simulate import simulate
    from ..metrics.summary import summarize
    from .rows import empty_metrics, metrics_row

    if out_dir:
        store.journal(out_dir, "start", task.key)
    t0 = time.perf_counter()
    error = kind = None
    try:
        metrics = metrics_row(summarize(simulate(task.scenario)))
    except DoesNotFitError as err:
        metrics, error, kind = empty_metrics(), str(err), "does_not_fit"
    except ServesimError as err:
        metrics, error, kind = empty_metrics(), str(err), "input"
    except Exception as err:  # a bug in one point must not stop the sweep
        metrics, error, kind = empty_metrics(), f"{type(err).__name__}: {err}", "internal"
    row = {**task.axes, "point": task.key, "replication": task.replication, "seed": task.scenario.seed,
           **metrics, "error": error, "error_kind": kind, "host": socket.gethostname(), "pid": os.getpid(),
           "wall_s": time.perf_counter() - t0, "finished_at": store.now_iso()}
    if out_dir:
        store.write_point(out_dir, row)
        store.journal(out_dir, "done", task.key, f"error={kind}" if kind else "")
    return row


def execute(tasks: Sequence[Task], on_row: Callable[[dict[str, Any]], None], executor: str = "local",
            workers: int = 1, out_dir: str | None = None) -> None:
    """Run ``tasks`` and call ``on_row`` with each row as it finishes.

    ``local`` with one worker runs in this process; with more, in a process pool. ``ray`` submits
    one Ray task per point to the cluster ``ray.init()`` finds (``RAY_ADDRESS``), else to a local
    Ray started with ``workers`` CPUs. Raises :class:`WorkerCrash` when workers die, and re-raises
    ``KeyboardInterrupt`` after handing over the rows that did finish.
    """
    if executor not in EXECUTORS:
        raise InputError("--executor", executor, f"allowed: {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError("--workers", workers, "must be an integer >= 1")
    if not tasks:
        return
    if executor == "ray":
        _run_ray(tasks, on_row, workers)
    elif workers == 1 or len(tasks) == 1:
        for t in tasks:
            on_row(run_task(t, out_dir))
    else:
        _run_pool(tasks, on_row, workers, out_dir)


def default_workers() -> int:
    """Worker processes to use by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def mp_context() -> Any:
    """A multiprocessing context for worker pools: forkserver where available (no fork of a
    process running threads), preloading the simulator; spawn elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:  # no fork of a process that runs threads (the progress bar)
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["simulator.planning.executors", "simulator.engine.simulate",
                                    "simulator.metrics.summary"])
        return ctx
    return multiprocessing.get_context("spawn")


def watch_parent(pid: int, tempdir: str | None = None, out_dir: str | None = None, every_s: float = 0.5) -> None:
    """Pool initializer: end this worker when process ``pid`` (the sweep's main process) is gone, so
    that a SIGKILL of the main process does not leave workers finishing points (a worker's parent
    is the forkserver, so the parent-death signal would not fire). The forkserver and the resource
    tracker end by themselves (their pipes from the main process close). What the main process
    would have removed is removed here: its multiprocessing temp folder ``tempdir`` (the forkserver's
    socket) and the half-written temporary files in ``out_dir``."""
    def watch() -> None:
        while True:
            time.sleep(every_s)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                if out_dir:
                    for tmp in store.stale_temp_files(Path(out_dir)):
                        with contextlib.suppress(OSError):
                            tmp.unlink()
                if tempdir:
                    shutil.rmtree(tempdir, ignore_errors=True)
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def worker_pool(workers: int, out_dir: str | None = None) -> ProcessPoolExecutor:
    """A process pool whose workers end with this process, and clean up after it if it is killed."""
    ctx = mp_context()
    tempdir = mp_util.get_temp_dir() if ctx.get_start_method() == "forkserver" else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=watch_parent,
                               initargs=(os.getpid(), tempdir, out_dir))


def _run_pool(tasks: Sequence[Task], on_row: Callable[[dict[str, Any]], None], workers: int,
              out_dir: str | None) -> None:
    pool = worker_pool(min(workers, len(tasks)), out_dir)
    futures: dict[Future, Task] = {pool.submit(run_task, t, out_dir): t for t in tasks}
    delivered: set[Future] = set()
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                delivered.add(fut)
                on_row(fut.result())
    except BrokenProcessPool:
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(futures, delivered, on_row)
        lost = sum(1 for f in futures if f not in delivered and not _ok(f))
        raise WorkerCrash(f"a worker process died (killed or out of memory) with {lost} points unfinished") from None
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(futures, delivered, on_row)
        raise
    pool.shutdown(wait=True)


def _ok(f: Future) -> bool:
    return f.done() and not f.cancelled() and f.exception() is None


def _drain(futures: dict[Future, Task], delivered: set[Future], on_row: Callable[[dict[str, Any]], None]) -> None:
    for f in futures:
        if f not in delivered and _ok(f):
            delivered.add(f)
            on_row(f.result())


def _run_ray(tasks: Sequence[Task], on_row: Callable[[dict[str, Any]], None], workers: int) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("--executor", "ray", "ray is not installed; pip install 'servesim[ray]'") from None
    started = False
    if not ray.is_initialized():
        extra: dict[str, Any] = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": workers}
        ray.init(log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING, **extra)
        started = True
    remote = ray.remote(num_cpus=1, max_retries=2)(run_task)
    refs = {remote.remote(t, None): t for t in tasks}
    pending = list(refs)
    failed = 0
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=min(len(pending), 64), timeout=0.5)
            for ref in done:
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayError:
                    failed += 1   # the worker died (after Ray's retries): not finished
                    continue
                on_row(row)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()
    if failed:
        raise WorkerCrash(f"{failed} Ray tasks failed (worker died) and are unfinished")
