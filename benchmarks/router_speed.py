"""Router cost per request against replicas: the indexed router and the O(replicas) reference.

    python benchmarks/router_speed.py                                  # 1, 16, 64, 128, 1024 replicas
    python benchmarks/router_speed.py --replicas 16 128 --requests 4000 --out router_speed.json

Time per choice is the least over ``--repeat`` runs of each router (the machine's other work and
garbage collections only ever add).

Each row runs one whole simulation (Llama-3.1-8B on H100, prefix caching on, a 1,024-token system
prompt on 80% of requests, four variants of it; Poisson arrivals at ``--rate-per-replica`` times
the replicas) once with :class:`~simulator.engine.router.Router` and once with
:class:`~simulator.engine.router_reference.ReferenceRouter`, timing every ``choose`` call with
``perf_counter`` (the timer's own cost, about 0.1 us a call, is in both). A request's block keys
are computed before the timer starts: the replica's cache needs them at admission whichever router
ran, and the key store keeps them, so they are no cost of routing. Both runs must route every
request to the same replica; the script stops if they do not.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from simulator.config import load_scenario
from simulator.engine import system
from simulator.engine.router import Router
from simulator.engine.router_reference import ReferenceRouter
from simulator.engine.simulate import simulate


def timed(cls: type) -> tuple[type, list[float]]:
    """A subclass of ``cls`` whose ``choose`` adds its wall time to the returned list."""
    spent = [0.0, 0]

    class Timed(cls):  # type: ignore[misc, valid-type]
        def choose(self, rid: int, candidates: Any = None) -> Any:
            cache = self.replicas[0].cache
            if cache is not None:
                cache.keys(rid)    # the request's block keys: computed once either way, used at admission too
            t0 = time.perf_counter()
            r = super().choose(rid, candidates)
            spent[0] += time.perf_counter() - t0
            spent[1] += 1
            return r
    return Timed, spent


def run(policy: str, replicas: int, requests: int, rate: float, cls: type) -> tuple[float, np.ndarray]:
    """(microseconds per choice, replica of each request)."""
    s = load_scenario(None, {"deployment.replicas": replicas, "deployment.router": policy,
                             "deployment.kv_cache.prefix_caching": True, "workload.requests": requests,
                             "workload.arrival.rate": rate * replicas,
                             "workload.prefix": {"system_prompt_tokens": 1024, "share": 0.8, "prompts": 4}})
    router, spent = timed(cls)
    saved = system.Router
    system.Router = router
    try:
        res = simulate(s)
    finally:
        system.Router = saved
    return 1e6 * spent[0] / max(spent[1], 1), res.requests.replica.copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 16, 64, 128, 1024])
    ap.add_argument("--policies", nargs="+", default=["least_outstanding", "prefix_aware", "round_robin"])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rate-per-replica", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs per router; the least time per choice is kept")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = []
    for policy in a.policies:
        for n in a.replicas:
            before = after = float("inf")
            for _ in range(a.repeat):
                t, ref_route = run(policy, n, a.requests, a.rate_per_replica, ReferenceRouter)
                before = min(before, t)
                t, route = run(policy, n, a.requests, a.rate_per_replica, Router)
                after = min(after, t)
            if not np.array_equal(route, ref_route):
                raise SystemExit(f"{policy} at {n} replicas: the routers chose differently")
            rows.append({"policy": policy, "replicas": n, "requests": a.requests,
                         "us_per_request_reference": before, "us_per_request_indexed": after})
            print(f"{policy:18s} {n:5d} replicas  reference {before:9.2f} us  indexed {after:7.2f} us"
                  f"  x{before / after:.1f}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
        Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
