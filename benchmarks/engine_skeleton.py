"""Where the engine's time goes: the same chat run as ``engine_speed.py`` with the step-time model
as it ships, and with step-time lookups replaced by a closed-form stand-in that costs next to
nothing (a linear formula in the batch's decode sequences and prompt tokens, no memo). The
difference is what step-time prediction costs per request; the rest is the event engine and
scheduler skeleton (arrivals, routing, admission, KV blocks, decode runs, step log, ITL log).
The stand-in's latencies are not meant to be realistic, only its event count comparable.

    python benchmarks/engine_skeleton.py [--requests 100000] [--out docs/benchmarks/engine_skeleton.json]
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
from simulator.perf.step import BatchShape, StepCost, StepModel


def _stand_in(self: StepModel, shape: BatchShape, **_: object) -> StepCost:
    """Wall seconds of a step as 20 ms + 10 us per decode sequence + 0.2 us per prompt token."""
    return StepCost(0.02 + 1e-5 * shape.decode_seqs + 2e-7 * shape.prefill_tokens, 1e12, 1e10)


def run(requests: int, rate: float, stand_in: bool) -> dict:
    s = load_scenario(None, {"workload.requests": requests, "workload.arrival.rate": rate,
                             "deployment.router": "least_outstanding"})
    original = StepModel.price
    if stand_in:
        StepModel.price = _stand_in  # type: ignore[method-assign]
    try:
        t = time.process_time()
        res = simulate(s)
        cpu = time.process_time() - t
    finally:
        StepModel.price = original  # type: ignore[method-assign]
    return {"requests": requests, "step_time": "stand-in" if stand_in else "model", "cpu_s": cpu,
            "us_per_request": cpu / requests * 1e6, "step_log_rows": len(res.steps["t_end"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=16.0, help="requests per second")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = [run(a.requests, a.rate, False), run(a.requests, a.rate, True)]
    for r in rows:
        print(f"{r['requests']:>9} req  step time: {r['step_time']:<8}  {r['cpu_s']:7.2f} s CPU  "
              f"{r['us_per_request']:6.1f} us/req  step-log rows {r['step_log_rows']:,}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "cpus": os.cpu_count(), "python": platform.python_version(),
                "command": f"python benchmarks/engine_skeleton.py --requests {a.requests} --rate {a.rate}"}
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
