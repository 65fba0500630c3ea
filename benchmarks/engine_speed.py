"""Engine speed: wall time to simulate N requests of chat traffic (Llama-3.1-8B, one H100,
continuous batching), for several N and replica counts, on one core.

    python benchmarks/engine_speed.py                       # the full table (1M requests: ~1 min)
    python benchmarks/engine_speed.py --quick               # small sizes only
    python benchmarks/engine_speed.py --out docs/benchmarks/engine_speed.json

Load: Poisson arrivals at 80% of the one-replica saturation rate found by `--find-rate`
(default: 16 req/s per replica), lengths from the embedded chat workload (Azure 2023 conversation
statistics). Time grows linearly with requests when the wall time per request stays flat.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone

from simulator.config import load_scenario
from simulator.engine.simulate import simulate
from simulator.metrics.summary import summarize


def one(requests: int, replicas: int, rate_per_replica: float) -> dict:
    s = load_scenario(None, {"workload.requests": requests, "workload.arrival.rate": rate_per_replica * replicas,
                             "deployment.replicas": replicas, "deployment.router": "least_outstanding"})
    t = time.perf_counter()
    res = simulate(s)
    wall = time.perf_counter() - t
    sm = summarize(res)
    return {"requests": requests, "replicas": replicas, "rate": rate_per_replica * replicas, "wall_s": wall,
            "us_per_request": wall / requests * 1e6, "simulated_s": sm["duration_s"],
            "steps": sm["steps"], "step_log_rows": len(res.steps["t_end"]), "stable": sm["stability"]["stable"],
            "tpot_p50_s": sm["tpot_s"]["p50"], "ttft_p50_s": sm["ttft_s"]["p50"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rate", type=float, default=16.0, help="requests per second per replica")
    ap.add_argument("--out")
    a = ap.parse_args()
    sizes = [10_000, 30_000] if a.quick else [10_000, 100_000, 300_000, 1_000_000]
    rows = [one(n, 1, a.rate) for n in sizes]
    rows += [one(sizes[1], r, a.rate) for r in (2, 4)]
    for r in rows:
        print(f"{r['requests']:>9} req  {r['replicas']} replica(s)  {r['wall_s']:8.2f} s  "
              f"{r['us_per_request']:6.1f} us/req  simulated {r['simulated_s']:9.0f} s  stable {r['stable']}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "command": "python benchmarks/engine_speed.py"
                + (" --quick" if a.quick else "") + f" --rate {a.rate}"}
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
