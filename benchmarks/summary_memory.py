"""Where a run's peak memory comes from: the simulation's state, then each part of the summary.

    SERVESIM_MEMORY_LIMIT=0 python benchmarks/summary_memory.py --requests 100000
    SERVESIM_MEMORY_LIMIT=0 python benchmarks/summary_memory.py --requests 1000000 --table   # with per_request

The simulation runs untraced (the chat scenario of ``benchmarks/engine_speed.py``); then the
summary runs under ``tracemalloc`` (numpy reports its buffers to it) with the functions named in
:data:`PHASES` wrapped: for each, the bytes traced when it was entered and the most traced during
it, above the start of the summary (the largest call when a function runs several times). Without
``--table`` the summary is ``summarize(res)`` (what ``servesim run`` without ``--out`` does); with
it, ``summarize(res, per_request(res))`` as before. Peak resident memory (``ru_maxrss``) is taken
in a separate, untraced pass first, so that tracing cannot inflate it.
"""
from __future__ import annotations

import argparse
import importlib
import json
import resource
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np

from engine_speed import RATE, overrides   # the benchmark's scenario, defined once

#: Functions whose allocations are reported ("module:attribute" or "module:Class.method");
#: names missing from the installed version are skipped.
PHASES = ("simulator.engine.simulate:SimulationResult.request_itl",
          "simulator.engine.itl:ItlLog.layout", "simulator.engine.rank_matrix:RankMatrix.__init__",
          "simulator.engine.itl:ItlLog.per_request",
          "simulator.metrics.summary:per_request", "simulator.metrics.summary:summarize",
          "simulator.metrics.summary:window_steps", "simulator.metrics.summary:stability",
          "simulator.metrics.summary:keeping_up", "simulator.metrics.summary:features",
          "simulator.metrics.summary:_latencies", "simulator.metrics.summary:itl_samples",
          "simulator.metrics.summary:stats", "simulator.metrics.summary:_utilisation",
          "simulator.metrics.summary:request_columns", "simulator.metrics.summary:itl_stats")


def rss_now() -> int:
    """Resident memory now, bytes (``VmRSS``)."""
    with open("/proc/self/status") as f:
        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
    return kb * 1024


def rss_peak() -> int:
    """Peak resident memory so far, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Tracer:
    """Wraps functions; records bytes traced at entry and the peak during each call (nesting-safe)."""

    def __init__(self) -> None:
        self.base = 0
        self.rows: dict[str, dict[str, float]] = {}
        self._stack: list[int] = []      # the peak seen so far by each open call
        self.top = 0                      # the most traced at any point (reset_peak hides it from tracemalloc)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def traced(*args: Any, **kw: Any) -> Any:
            cur, peak = tracemalloc.get_traced_memory()
            if self._stack:
                self._stack[-1] = max(self._stack[-1], peak)
            tracemalloc.reset_peak()
            self._stack.append(cur)
            try:
                return fn(*args, **kw)
            finally:
                top = max(self._stack.pop(), tracemalloc.get_traced_memory()[1])
                self.top = max(self.top, top)
                if self._stack:
                    self._stack[-1] = max(self._stack[-1], top)
                row = self.rows.setdefault(name, {"calls": 0, "entry_mb": 0.0, "peak_mb": 0.0, "rise_mb": 0.0})
                row["calls"] += 1
                if (top - cur) / 2**20 >= row["rise_mb"]:
                    row.update(entry_mb=(cur - self.base) / 2**20, peak_mb=(top - self.base) / 2**20,
                               rise_mb=(top - cur) / 2**20)
        return traced

    def install(self) -> None:
        for spec in PHASES:
            mod_name, attr = spec.split(":")
            owner: Any = importlib.import_module(mod_name)
            *path, leaf = attr.split(".")
            for p in path:
                owner = getattr(owner, p, None)
            if owner is None or not hasattr(owner, leaf):
                continue
            setattr(owner, leaf, self.wrap(attr, getattr(owner, leaf)))


def state_bytes(res: Any) -> dict[str, float]:
    """MB the finished simulation holds: request columns, step log, ITL logs."""
    req = sum(v.nbytes for v in vars(res.requests).values() if isinstance(v, np.ndarray))
    steps = sum(v.nbytes for v in res.steps.values())
    itl = sum(g.nbytes() for g in res.itl_logs)
    return {"requests_mb": req / 2**20, "step_log_mb": steps / 2**20, "itl_logs_mb": itl / 2**20}


def one(requests: int, table: bool, trace: bool) -> dict[str, Any]:
    from simulator.config import load_scenario
    from simulator.engine.simulate import simulate

    s = load_scenario(None, overrides(requests, 1, RATE))
    tracer = Tracer()
    if trace:
        tracer.install()
    from simulator.metrics import summary as sm   # after install: the wrapped names

    base = rss_peak()
    c = time.process_time()
    res = simulate(s)
    out: dict[str, Any] = {"requests": requests, "table": table, "cpu_simulation_s": time.process_time() - c,
                           "rss_start_mb": base / 2**20, "peak_rss_simulation_mb": rss_peak() / 2**20,
                           "rss_after_simulation_mb": rss_now() / 2**20, **state_bytes(res)}
    if trace:
        tracemalloc.start()
        tracer.base = tracemalloc.get_traced_memory()[0]
    c = time.process_time()
    summ = sm.summarize(res, sm.per_request(res)) if table else sm.summarize(res)
    out["cpu_summary_s"] = time.process_time() - c
    if trace:
        out["traced_peak_mb"] = (max(tracer.top, tracemalloc.get_traced_memory()[1]) - tracer.base) / 2**20
        tracemalloc.stop()
        out["phases"] = tracer.rows
    out.update(peak_rss_mb=rss_peak() / 2**20, peak_bytes_per_request=(rss_peak() - base) / requests,
               steps=summ["steps"], tpot_p50_s=summ["tpot_s"]["p50"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--table", action="store_true", help="build the per-request table too (per_request)")
    ap.add_argument("--out", help="write both passes as JSON here")
    a = ap.parse_args()
    rows = []
    for trace in (False, True):
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as ex:
            rows.append(ex.submit(one, a.requests, a.table, trace).result())
    plain, traced = rows
    print(f"{a.requests} requests, {'with' if a.table else 'without'} the per-request table")
    print(f"  start {plain['rss_start_mb']:.0f} MB; simulation peak {plain['peak_rss_simulation_mb']:.0f} MB, "
          f"after it {plain['rss_after_simulation_mb']:.0f} MB (requests {plain['requests_mb']:.0f} MB, "
          f"step log {plain['step_log_mb']:.0f} MB, ITL logs {plain['itl_logs_mb']:.0f} MB)")
    print(f"  summary peak {plain['peak_rss_mb']:.0f} MB = {plain['peak_bytes_per_request']:.0f} B per request "
          f"above the start; CPU: simulation {plain['cpu_simulation_s']:.1f} s, summary {plain['cpu_summary_s']:.1f} s")
    print(f"  traced during the summary: peak {traced['traced_peak_mb']:.0f} MB above its start")
    print(f"  {'function':<34}{'calls':>6}{'entry MB':>10}{'peak MB':>10}{'rise MB':>10}")
    for name, r in sorted(traced["phases"].items(), key=lambda kv: -kv[1]["peak_mb"]):
        print(f"  {name:<34}{int(r['calls']):>6}{r['entry_mb']:>10.0f}{r['peak_mb']:>10.0f}{r['rise_mb']:>10.0f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"plain": plain, "traced": traced}, f, indent=2)


if __name__ == "__main__":
    main()
