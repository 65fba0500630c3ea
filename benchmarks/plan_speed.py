"""Planner speed: wall time of `servesim plan` over the default candidate space for one model.

    python benchmarks/plan_speed.py                      # 2 workers, default settings
    python benchmarks/plan_speed.py --workers 2 --exhaustive --out plan_speed.json
    python benchmarks/plan_speed.py --workers 1,2 --out plan_speed.json   # scaling; results must be equal
    python benchmarks/plan_speed.py --workers 2 --executor ray

Scenario: examples/plan/llama8b-chat.yaml (Llama-3.1-8B, chat lengths, TTFT 1 s, TPOT 50 ms),
target 50 req/s at 99% attainment, every GPU of the catalog x TP 1,2,4,8 x PP 1,2 x
bf16/fp8 x max_batch_size 64,256 x max_batched_tokens 2048,8192 (at most 8 GPUs per replica), plus
disaggregated prefill/decode pools (``--layouts``, default aggregated,disaggregated).
With several worker counts, each is run in turn and the results (plans, rejections, counts other
than wall times) are checked to be identical; the speed-up is against the first count.
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
    ap.add_argument("--workers", default="2", help="worker counts to run, comma-separated (e.g. 1,2)")
    ap.add_argument("--executor", default="local", choices=("local", "ray"))
    ap.add_argument("--layouts", default="aggregated,disaggregated")
    ap.add_argument("--target-rate", type=float, default=50.0)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--exhaustive", action="store_true", help="simulate every candidate (no cost pruning)")
    ap.add_argument("--out")
    a = ap.parse_args()
    s = load_scenario(REPO / "examples" / "plan" / "llama8b-chat.yaml")
    runs, first = [], None
    for w in [int(x) for x in a.workers.split(",")]:
        res = plan(s, PlanSettings(target_rate=a.target_rate, workers=w, requests=a.requests, exhaustive=a.exhaustive,
                                   executor=a.executor, kinds=tuple(a.layouts.split(","))))
        c = res["counts"]
        same = None
        if first is None:
            first = res
        else:
            same = _comparable(res) == _comparable(first)
        best = res["plans"][0] if res["plans"] else None
        row = {**c, "workers": w, "executor": a.executor, "exhaustive": a.exhaustive, "layouts": a.layouts,
               "identical_to_first": same, "speedup_vs_first": first["counts"]["wall_s"] / c["wall_s"],
               "best": best and {"candidate": best["candidate"], "replicas": best["replicas"],
                                 "cost_per_hour": best["cost_per_hour"], "layout": best["layout"]}}
        runs.append(row)
        print(f"{c['candidates']} candidates: {c['screened_in']} passed the cheap checks, {c['searched']} searched, "
              f"{c['simulations']} simulations, {c['plans']} plans; screening {c['screen_s']:.1f} s, "
              f"total {c['wall_s']:.1f} s with {w} workers ({a.executor}); speed-up "
              f"{row['speedup_vs_first']:.2f}x" + ("" if same is None else f"; identical results: {same}"))
        print(f"rejected: {c['rejected']}")
        if best:
            cost = "no price" if best["cost_per_hour"] is None else f"${best['cost_per_hour']:.2f}/h"
            print(f"cheapest: {best['candidate']} x{best['replicas']} at {cost}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(), "cpus": len(os.sched_getaffinity(0)),
                "python": platform.python_version(),
                "command": f"python benchmarks/plan_speed.py --workers {a.workers} --executor {a.executor} "
                           f"--layouts {a.layouts} --target-rate {a.target_rate} --requests {a.requests}"
                           + (" --exhaustive" if a.exhaustive else "")}
        Path(a.out).write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))


def _comparable(res: dict) -> tuple:
    counts = {k: v for k, v in res["counts"].items() if k not in ("wall_s", "screen_s")}
    return res["plans"], res["rejected"], counts


if __name__ == "__main__":
    main()
