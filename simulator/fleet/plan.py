"""Which scenarios a sharded run takes, and how replicas are split into shards.

Replicas interact only through the router, so shards are exact when the router needs no replica
state (round robin, random: every request is routed before the run) and the replicas are otherwise
independent (open-loop arrivals, no sessions, caches or cascades in front, no router-side queue, no
disaggregation). Least outstanding is routed window by window on the replicas' counts at the
window's start (see :mod:`.coordinator`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.scenario import Scenario
from ..errors import InputError
from ..workload.config import ClosedLoopArrival

EXECUTORS = ("local", "ray")
EXACT_ROUTERS = ("round_robin", "random")
WINDOWED_ROUTERS = ("least_outstanding",)
#: Default synchronisation window of load-aware routing, simulated seconds.
DEFAULT_WINDOW_S = 0.05


@dataclass(frozen=True)
class ShardPlan:
    """``shards[k]``: the replica indices shard k simulates; ``window_s``: None when routing is exact."""

    shards: tuple[tuple[int, ...], ...]
    window_s: float | None
    executor: str


def check_shardable(s: Scenario) -> None:
    """One :class:`InputError` line naming the first feature a sharded run does not take."""
    d, w = s.deployment, s.workload
    routers = EXACT_ROUTERS + WINDOWED_ROUTERS
    if d.router not in routers:
        raise InputError("deployment.router", d.router, f"a sharded run takes {', '.join(routers)}")
    blocked = {"workload.arrival": isinstance(w.arrival, ClosedLoopArrival) and "closed loop",
               "workload.sessions": w.sessions is not None and "sessions",
               "deployment.disaggregation": d.disaggregation is not None and "set",
               "deployment.cascade": d.cascade is not None and "set",
               "deployment.service_cache": d.service_cache is not None and "set",
               "deployment.max_outstanding_per_replica": d.max_outstanding_per_replica}
    for key, bad in blocked.items():
        if bad:
            raise InputError(key, bad, "a sharded run (--executor ray) takes open-loop arrivals without it; "
                             "run it with --executor local")


def plan_shards(s: Scenario, executor: str, workers: int, window_s: float | None) -> ShardPlan:
    """Contiguous blocks of replicas, one per worker (at most one worker per replica)."""
    if executor not in EXECUTORS:
        raise InputError("--executor", executor, f"allowed: {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError("--workers", workers, "an integer >= 1")
    if window_s is not None and not (window_s > 0 and window_s < float("inf")):
        raise InputError("--sync-window", window_s, "a number of seconds > 0")
    check_shardable(s)
    r = s.deployment.replicas
    k = min(workers, r)
    bounds = [round(i * r / k) for i in range(k + 1)]
    shards = tuple(tuple(range(bounds[i], bounds[i + 1])) for i in range(k))
    window = None if s.deployment.router in EXACT_ROUTERS else (window_s or DEFAULT_WINDOW_S)
    return ShardPlan(shards, window, executor)
