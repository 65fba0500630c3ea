"""Where the planner's candidate searches run: inline, in a local process pool, or as Ray tasks.

:func:`plan_executor` yields ``submit(job) -> Future`` (``concurrent.futures.Future``, which Ray's
``ObjectRef.future()`` also gives), so the planner's loop is the same for every executor.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import InputError, ServesimError
from .executors import EXECUTORS, worker_pool


def _inline(fn: Callable[[Any], Any]) -> Callable[[Any], Future]:
    def submit(job: Any) -> Future:
        f: Future = Future()
        f.set_result(fn(job))
        return f
    return submit


@contextlib.contextmanager
def plan_executor(executor: str, workers: int, fn: Callable[[Any], Any]) -> Iterator[Callable[[Any], Future]]:
    """``submit(job)`` running ``fn`` (a module-level function, picklable) on ``executor`` with ``workers``."""
    if executor not in EXECUTORS:
        raise InputError("--executor", executor, f"allowed: {', '.join(EXECUTORS)}")
    if executor == "ray":
        with _ray(workers, fn) as submit:
            yield submit
        return
    if workers == 1:
        yield _inline(fn)
        return
    pool = worker_pool(workers)
    try:
        yield lambda job: pool.submit(fn, job)
    except BrokenProcessPool:
        raise ServesimError("a planner worker process died (killed or out of memory); "
                            "rerun with fewer --workers or a smaller --requests") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _ray(workers: int, fn: Callable[[Any], Any]) -> Iterator[Callable[[Any], Future]]:
    try:
        import ray
    except ImportError:
        raise InputError("--executor", "ray", "ray is not installed; pip install 'servesim[ray]'") from None
    started = False
    if not ray.is_initialized():
        extra: dict[str, Any] = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": workers}
        ray.init(log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING, **extra)
        started = True
    remote = ray.remote(num_cpus=1, max_retries=2)(fn)
    try:
        yield lambda job: remote.remote(job).future()
    finally:
        if started:
            ray.shutdown()
