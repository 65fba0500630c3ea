"""CPU per part of a continuous scheduler's step: the benchmark's chat scenario (as in
``engine_speed.py``, one replica) simulated with a timer around each of the loop's helper calls,
which tells a compiled step loop what it must replace and what it may call back.

    python benchmarks/engine_step_costs.py [--requests 100000]

Reports the simulation's CPU without and with the timers, then per part: calls, calls per request,
microseconds per call and per request (inclusive: routing includes the wake, completions the
callbacks). Each timed call includes the timer's own cost (about
0.3 us, measured on an empty function and printed); generator bodies (the loop itself, the step's
own bookkeeping), SimPy's event queue and the compiled decode set are the remainder.
"""
from __future__ import annotations

import argparse
import functools
import time

from engine_speed import RATE, overrides   # the benchmark's scenario, defined once

from simulator.config import load_scenario
from simulator.engine import replica, system
from simulator.engine.itl import ItlLog
from simulator.engine.simulate import simulate
from simulator.engine.schedulers import base, continuous
from simulator.engine.step_log import StepLog
from simulator.perf.step import StepModel

#: (label, owner, method name) of every part timed.
PARTS = (
    ("admission test (_can_admit)", continuous.ContinuousScheduler, "_can_admit"),
    ("step planning (_schedule: chunks, blocks, admissions)", continuous.ContinuousScheduler, "_schedule"),
    ("decode run length (_run_length)", continuous.ContinuousScheduler, "_run_length"),
    ("step price (StepModel.cost, memo hits and misses)", StepModel, "cost"),
    ("completions (finish_done, on_finish callbacks)", continuous.ContinuousScheduler, "finish_done"),
    ("decode-run log row (record_run)", base.Scheduler, "record_run"),
    ("ITL rows (ItlLog.row)", ItlLog, "row"),
    ("ITL spans (ItlLog.leave)", ItlLog, "leave"),
    ("step log rows (StepLog.add)", StepLog, "add"),
    ("routing and submit (ServingSystem._dispatch)", system.ServingSystem, "_dispatch"),
    ("replica wake (Replica.wake)", replica.Replica, "wake"),
)


def _timed(fn, acc: list[float]):
    @functools.wraps(fn)
    def wrap(*a, **k):
        t = time.process_time_ns()
        try:
            return fn(*a, **k)
        finally:
            acc[0] += time.process_time_ns() - t
            acc[1] += 1
    return wrap


def simulate_cpu(requests: int) -> float:
    s = load_scenario(None, overrides(requests, 1, RATE))
    t = time.process_time()
    simulate(s)
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100000)
    a = ap.parse_args()
    plain = simulate_cpu(a.requests)
    accs = {}
    for label, owner, name in PARTS:
        accs[label] = [0.0, 0]
        setattr(owner, name, _timed(getattr(owner, name), accs[label]))
    empty = [0.0, 0]
    f = _timed(lambda: None, empty)
    for _ in range(200000):
        f()
    timed = simulate_cpu(a.requests)
    n = a.requests
    print(f"{n:,} requests: {plain:.2f} s CPU without timers ({plain / n * 1e6:.1f} us/request), "
          f"{timed:.2f} s with; timer cost {empty[0] / empty[1] / 1e3:.2f} us per call")
    print(f"{'part':56s} {'calls':>10s} {'/req':>6s} {'us/call':>8s} {'us/req':>7s}")
    for label, (ns, calls) in accs.items():
        print(f"{label:56s} {calls:>10,} {calls / n:6.2f} {ns / max(calls, 1) / 1e3:8.2f} {ns / n / 1e3:7.2f}")


if __name__ == "__main__":
    main()
