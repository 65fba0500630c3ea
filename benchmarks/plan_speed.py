"""Planner speed: wall time of `servesim plan` over the default candidate space for one model.

    python benchmarks/plan_speed.py                      # 2 workers, default settings
    python benchmarks/plan_speed.py --workers 2 --exhaustive --out plan_speed.json

Scenario: examples/plan/llama8b-chat.yaml (Llama-3.1-8B, chat lengths, TTFT 1 s, TPOT 50 ms),
target 50 req/s at 99% attainment, every GPU with an on-demand price x TP 1,2,4,8 x PP 1,2 x
bf16/fp8 x max_batch_size 64,256 x max_batched_tokens 2048,8192 (at most 8 GPUs per replica).
Reported: candidates, how many the cheap checks removed, how many were searched by simulation,
simulations run, plans found, screening and total wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from simulator.config import load_scenario
from simulator.planning.planner import PlanSettings, plan

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target-rate", type=float, default=50.0)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--exhaustive", action="store_true", help="simulate every candidate (no cost pruning)")
    ap.add_argument("--out")
    a = ap.parse_args()
    s = load_scenario(REPO / "examples" / "plan" / "llama8b-chat.yaml")
    res = plan(s, PlanSettings(target_rate=a.target_rate, workers=a.workers, requests=a.requests,
                               exhaustive=a.exhaustive))
    c = res["counts"]
    best = res["plans"][0] if res["plans"] else None
    row = {**c, "workers": a.workers, "exhaustive": a.exhaustive,
           "best": best and {"candidate": best["candidate"], "replicas": best["replicas"],
                             "cost_per_hour": best["cost_per_hour"]}}
    print(f"{c['candidates']} candidates: {c['screened_in']} passed the cheap checks, {c['searched']} searched, "
          f"{c['simulations']} simulations, {c['plans']} plans; screening {c['screen_s']:.1f} s, "
          f"total {c['wall_s']:.1f} s with {a.workers} workers")
    print(f"rejected: {c['rejected']}")
    if best:
        cost = "no price" if best["cost_per_hour"] is None else f"${best['cost_per_hour']:.2f}/h"
        print(f"cheapest: {best['candidate']} x{best['replicas']} at {cost}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "command": f"python benchmarks/plan_speed.py --workers {a.workers} --target-rate {a.target_rate} "
                           f"--requests {a.requests}" + (" --exhaustive" if a.exhaustive else "")}
        Path(a.out).write_text(json.dumps({"meta": meta, "result": row}, indent=2))


if __name__ == "__main__":
    main()
