"""Route a scenario's arrivals to its shards and merge what they simulated.

Exact routers (round robin, random) route every request before the run with the single-process
router's own code and seed, so each shard gets exactly the requests its replicas got in one process.

Least outstanding is routed in *synchronisation windows* of ``window_s`` simulated seconds: at the
start of a window every shard reports its replicas' outstanding counts; the coordinator routes the
window's arrivals on those counts, adding one per request it routes (completions inside the window
are not seen until its end); then every shard simulates the window. A count the router sees is at
most ``window_s`` old; ``window_s`` -> 0 approaches the single-process routing. The error against the
single-process run is measured in ``docs/reference/benchmarks.md`` and bounded in the tests."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..config.scenario import Scenario
from ..engine.engine_defaults import effective_deployment
from ..engine.router import Router
from ..engine.router_index import WatchedLoad
from ..engine.shard import ShardPart, ShardSim, arrival_clock
from ..engine.simulate import SimulationResult
from ..errors import InputError
from ..workload.generate import generate_plan
from .merge import merge
from .plan import ShardPlan


class Worker(Protocol):
    """A shard, in this process or behind a Ray actor (calls return futures there)."""

    def step(self, rids: np.ndarray, replicas: np.ndarray, clock: np.ndarray, until: float,
             last: float | None) -> Any: ...
    def finish(self) -> Any: ...


class LocalWorker:
    """A shard in this process."""

    def __init__(self, s: Scenario, replicas: Sequence[int]) -> None:
        self.sim = ShardSim(s, list(replicas))

    def step(self, rids: np.ndarray, replicas: np.ndarray, clock: np.ndarray, until: float,
             last: float | None) -> dict[int, int]:
        """Take a window's arrivals (``last``: the run's final arrival time, in the final window) and
        simulate up to ``until``; returns the replicas' outstanding counts then."""
        self.sim.push(rids, replicas, clock, last)
        return self.sim.advance(until)

    def finish(self) -> ShardPart:
        return self.sim.finish()


class _Load(WatchedLoad):
    """A replica as the coordinator's router sees it: its index and outstanding count."""

    def __init__(self, index: int) -> None:
        self.index, self._outstanding, self._load_watchers = index, 0, []


Gather = Callable[[list[Any]], list[Any]]


def run_sharded(s: Scenario, plan: ShardPlan, workers: list[Worker], gather: Gather) -> SimulationResult:
    """Drive ``workers`` (one per shard of ``plan``) through the scenario; ``gather`` resolves the list
    of what their calls returned (identity locally, ``ray.get`` on Ray)."""
    t0 = time.perf_counter()
    d = effective_deployment(s.deployment)
    table = generate_plan(s.workload, s.seed).table
    n = len(table)
    if n == 0:
        raise InputError("workload.requests", 0, "the workload produced no requests")
    clock = arrival_clock(np.asarray(table.arrival_s, dtype=np.float64))
    loads = [_Load(i) for i in range(d.replicas)]
    router = Router(d.router, loads, s.seed)
    shard_of = np.empty(d.replicas, dtype=np.int64)
    for k, reps in enumerate(plan.shards):
        shard_of[list(reps)] = k
    route = np.empty(n, dtype=np.int64)
    windows = 0
    k = 0
    while k < n:
        if plan.window_s is None:
            j, until = n, 0.0
        else:
            until = (math.floor(clock[k] / plan.window_s) + 1) * plan.window_s
            j = int(np.searchsorted(clock, until, side="left"))
            j = max(j, k + 1)
        for rid in range(k, j):
            rep = router.choose(rid)
            rep.outstanding += 1
            route[rid] = rep.index
        rids = np.arange(k, j, dtype=np.int64)
        owner = shard_of[route[k:j]]
        last = float(clock[-1]) if j == n else None
        counts = gather([w.step(rids[owner == i], route[k:j][owner == i], clock[k:j][owner == i], until, last)
                         for i, w in enumerate(workers)])
        for c in counts:
            for idx, out in c.items():
                loads[idx].outstanding = out
        windows += 1
        k = j
    parts = gather([w.finish() for w in workers])
    note = (f"sharded run: {len(workers)} shards ({plan.executor}); routing "
            + ("exact (routed before the run)" if plan.window_s is None
               else f"least outstanding on counts at most {plan.window_s:g} s old ({windows} windows)"))
    return merge(s, d, table, parts, time.perf_counter() - t0, note)
