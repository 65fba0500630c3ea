"""Where the engine's time goes: the benchmark's chat scenario (as in ``engine_speed.py``, one
replica) simulated under cProfile, its profiled time split by part of the engine; then, in a second
simulation without the profiler, the step-model parts built on memo misses, counted and timed by kind.

    python benchmarks/engine_profile.py [--requests 100000] [--misses 300000]

Profiled shares overstate code made of many small Python calls (the profiler's cost per call); use
them to rank, and ``engine_instructions.py`` to measure a change.
"""
from __future__ import annotations

import argparse
import cProfile
import collections
import pstats
import sys
import time

from engine_speed import RATE, overrides   # the benchmark's scenario, defined once

from simulator.config import load_scenario
from simulator.engine.simulate import simulate
from simulator.perf import step

ENGINE = ("simulate.py", "system.py", "admission.py", "replica.py", "kv.py", "kvcache.py")


def split(requests: int) -> dict[str, float]:
    """Shares of profiled time by part of the engine (cumulative where marked, else own time)."""
    s = load_scenario(None, overrides(requests, 1, RATE))
    pr = cProfile.Profile()
    pr.enable()
    simulate(s)
    pr.disable()
    st = pstats.Stats(pr).stats   # type: ignore[attr-defined]
    total = sum(v[2] for v in st.values())

    def cum(pred) -> float:
        return max((v[3] for k, v in st.items() if pred(k)), default=0.0)

    def own(pred) -> float:
        return sum(v[2] for k, v in st.items() if pred(k))

    parts = {
        "scheduler loop (engine/schedulers/*.py, own time)": own(lambda k: "schedulers/" in k[0]),
        "step pricing (StepModel.price, cumulative)": cum(lambda k: k[0].endswith("perf/step.py") and k[2] == "price"),
        "... of which parts built on memo misses (_parts_of)": cum(lambda k: k[2] == "_parts_of"),
        "arrivals, routing, admission, KV (own time)": own(lambda k: k[0].endswith(ENGINE)),
        "SimPy event queue (own time)": own(lambda k: "simpy" in k[0]),
        "decode set (compiled)": own(lambda k: "DecodeSet" in k[2]),
        "ITL recording (engine/itl.py)": own(lambda k: k[0].endswith("engine/itl.py")),
        "step log (StepLog.add, cumulative, and StepRow)": cum(lambda k: k[0].endswith("step_log.py") and k[2] == "add")
        + own(lambda k: k[2] == "__new__" and "step_log" in k[0]),
    }
    return {k: v / total for k, v in parts.items()}


def misses(requests: int) -> tuple[float, dict[str, tuple[int, float]]]:
    """CPU seconds of the simulation and, per part kind, (parts built, seconds building them)."""
    built: collections.Counter = collections.Counter()
    secs: collections.Counter = collections.Counter()
    plain = step.StepModel._part

    def counted(self, key, build):
        if self.memo.get(key) is not None:
            return plain(self, key, build)
        t = time.perf_counter()
        part = plain(self, key, build)
        secs[key[0]] += time.perf_counter() - t
        built[key[0]] += 1
        return part

    step.StepModel._part = counted   # type: ignore[method-assign]
    try:
        t = time.process_time()
        simulate(load_scenario(None, overrides(requests, 1, RATE)))
        cpu = time.process_time() - t
    finally:
        step.StepModel._part = plain   # type: ignore[method-assign]
    return cpu, {k: (built[k], secs[k]) for k in built}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000, help="requests of the profiled run")
    ap.add_argument("--misses", type=int, default=300_000, help="requests of the run counting memo misses")
    a = ap.parse_args()
    for name, v in (("--requests", a.requests), ("--misses", a.misses)):
        if v < 1:
            print(f"error: {name}: got {v}; give a positive count", file=sys.stderr)
            sys.exit(2)
    print(f"profiled shares, {a.requests:,} requests:")
    for k, v in split(a.requests).items():
        print(f"  {v * 100:5.1f}%  {k}")
    cpu, kinds = misses(a.misses)
    print(f"memo misses, {a.misses:,} requests ({cpu:.2f} s CPU):")
    for k, (n, s) in kinds.items():
        print(f"  {k}: {n:,} parts built, {s:.2f} s ({s / n * 1e6:.1f} us each, {s / cpu * 100:.1f}% of the CPU time)")


if __name__ == "__main__":
    main()
