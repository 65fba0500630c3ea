"""Sharded single runs (``servesim run --executor ray``): wall time against workers, and the error of
least-outstanding routing in synchronisation windows against the single-process run.

    python benchmarks/fleet_speed.py scaling --replicas 16 --requests 40000 --workers 1 2
    python benchmarks/fleet_speed.py error --windows 0.01 0.05 0.2 1.0 --seeds 1 2 3 4 5 6

``scaling``: the default scenario (Llama-3.1-8B on H100) with round-robin routing, ``--replicas``
replicas and Poisson arrivals at ``--rate-per-replica`` times the replicas; one single-process run,
then one sharded run per worker count on a local Ray instance of that many CPUs, each timed with its
summary (the shards compute their requests' ITL percentiles). ``ray.init`` is timed apart; the
actors' start (a Python process each, importing servesim) is in the sharded time. Every sharded
run must equal the single-process run request by request; the script stops otherwise.

``error``: 8 replicas, 2,000 requests at 60 req/s, prompts uniform 64-2048 and outputs 8-512 tokens,
router least_outstanding; per window and seed the relative error of the sharded run (2 shards, in
this process: the routing does not depend on the executor) in mean and p99 TTFT and end-to-end latency.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from simulator.config import load_scenario
from simulator.engine.simulate import simulate
from simulator.fleet.run import simulate_sharded
from simulator.metrics.summary import summarize


def _equal(a: Any, b: Any) -> bool:
    for k, v in vars(a.requests).items():
        if isinstance(v, np.ndarray) and not np.array_equal(v, getattr(b.requests, k), equal_nan=v.dtype.kind == "f"):
            return False
    return True


def scaling(a: argparse.Namespace) -> list[dict[str, Any]]:
    import ray

    s = load_scenario(None, {"deployment.replicas": a.replicas, "workload.requests": a.requests,
                             "workload.arrival.rate": a.rate_per_replica * a.replicas})
    t0 = time.perf_counter()
    base = simulate(s)
    summarize(base)
    single = time.perf_counter() - t0
    rows = [{"executor": "single process", "workers": 1, "wall_s": single, "ray_init_s": None}]
    print(f"single process        {single:8.2f} s")
    for w in a.workers:
        t0 = time.perf_counter()
        ray.init(num_cpus=w, log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING)
        init = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            res = simulate_sharded(s, "ray", w)
            summarize(res)
            wall = time.perf_counter() - t0
        finally:
            ray.shutdown()
        if not _equal(base, res):
            raise SystemExit(f"{w} workers: the sharded run differs from the single-process run")
        rows.append({"executor": "ray", "workers": w, "wall_s": wall, "ray_init_s": init})
        print(f"ray, {w} workers         {wall:8.2f} s  (x{single / wall:.2f}; ray.init {init:.1f} s apart)")
    return rows


def error(a: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for seed in a.seeds:
        s = load_scenario(None, {"deployment.replicas": 8, "workload.requests": 2000, "workload.arrival.rate": 60.0,
                                 "deployment.router": "least_outstanding", "seed": seed,
                                 "workload.prompt_tokens": {"dist": "uniform", "low": 64, "high": 2048},
                                 "workload.output_tokens": {"dist": "uniform", "low": 8, "high": 512}})
        base = simulate(s).requests
        for w in a.windows:
            r = simulate_sharded(s, "local", 2, w).requests
            row: dict[str, Any] = {"seed": seed, "window_s": w,
                                   "moved": float(np.mean(base.replica != r.replica))}
            for name, x, y in (("ttft", base.first_token - base.arrival, r.first_token - r.arrival),
                               ("e2e", base.finish - base.arrival, r.finish - r.arrival)):
                row[f"{name}_mean"] = float(np.mean(y) / np.mean(x) - 1)
                row[f"{name}_p99"] = float(np.percentile(y, 99) / np.percentile(x, 99) - 1)
            rows.append(row)
            print(" ".join(f"{k} {v:+.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("scaling", "error"))
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--requests", type=int, default=40_000)
    ap.add_argument("--rate-per-replica", type=float, default=4.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--windows", type=float, nargs="+", default=[0.01, 0.05, 0.2, 1.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = scaling(a) if a.part == "scaling" else error(a)
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "python": platform.python_version(), "cpus": os.cpu_count()}
        Path(a.out).write_text(json.dumps({"meta": meta, "args": vars(a), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
