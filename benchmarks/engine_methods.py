"""Where a scheduler iteration's time goes, method by method: the engine benchmark's scenario
(``engine_speed.py``) with a timer around each of the decode set's and the continuous scheduler's
hot methods and the step model's memoised price. Times nest (``finish_done`` includes ``remove``;
``reserve`` runs inside ``_schedule`` and ``_run_length``; ``price`` inside ``_decode_cost``), and
each timer adds about half a microsecond per call, so compare two checkouts with this script rather
than its totals with ``engine_speed.py``'s.

    python benchmarks/engine_methods.py [--requests 100000] [--reference]

The compiled decode set's methods cannot be wrapped, so its rows appear only with ``--reference``
(the pure-Python decode set, ``SERVESIM_NATIVE=0``).
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from typing import Any

from engine_speed import RATE, overrides

from simulator.config import load_scenario
from simulator.engine import decode_set, replica
from simulator.engine.schedulers import continuous
from simulator.engine.simulate import simulate
from simulator.native import NATIVE_ENV
from simulator.perf import step

#: (class, method names) timed.
REFERENCE = (decode_set.PyDecodeSet, ("add", "remove", "advance", "reserve", "extra_blocks", "ctx_sums"))
TIMED = ((continuous.ContinuousScheduler, ("_schedule", "_can_admit", "_run_length", "finish_done",
                                           "_decode_cost")),
         (step.StepModel, ("price",)), (replica.Replica, ("finished", "submit")))


def timed(fn: Callable[..., Any], name: str, acc: dict[str, float]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[name] = acc.get(name, 0.0) + time.perf_counter() - t
    return wrapper


def cpu_with(patches: list[tuple[type, str, Callable[..., Any]]], requests: int) -> float:
    """CPU seconds of ``simulate`` on the benchmark scenario with ``requests`` requests, each
    (class, method name, function) of ``patches`` in place for the run (the originals restored after)."""
    originals = [(cls, name, getattr(cls, name)) for cls, name, _ in patches]
    for cls, name, fn in patches:
        setattr(cls, name, fn)
    try:
        s = load_scenario(None, overrides(requests, 1, RATE))
        t = time.process_time()
        simulate(s)
        return time.process_time() - t
    finally:
        for cls, name, fn in originals:
            setattr(cls, name, fn)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--reference", action="store_true", help="the pure-Python decode set, its methods timed too")
    a = p.parse_args()
    n = a.requests
    timed_classes = TIMED
    if a.reference:
        os.environ[NATIVE_ENV] = "0"
        timed_classes = (REFERENCE, *TIMED)
    acc: dict[str, float] = {}
    total = cpu_with([(cls, name, timed(getattr(cls, name), name, acc)) for cls, names in timed_classes
                      for name in names], n)
    print(f"total {total:.2f} s CPU, {total / n * 1e6:.1f} us per request ({n} requests, timers in place)")
    for name, sec in sorted(acc.items(), key=lambda kv: -kv[1]):
        print(f"{name:15s} {sec:6.2f} s {sec / n * 1e6:6.1f} us per request")


if __name__ == "__main__":
    main()
