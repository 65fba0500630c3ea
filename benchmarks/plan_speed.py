"""Planner speed: wall time of `servesim plan` over the default candidate space for one model.

    python benchmarks/plan_speed.py                      # 2 workers, default settings
    python benchmarks/plan_speed.py --workers 2 --exhaustive --out plan_speed.json
    python benchmarks/plan_speed.py --workers 1,2 --out plan_speed.json   # scaling; results must be equal
    python benchmarks/plan_speed.py --workers 2 --executor ray
    python benchmarks/plan_speed.py --workers 1,2 --search-points 2   # two probes per search round
    python benchmarks/plan_speed.py --workers 2 --mixed              # also pools on two GPU types

With several workers, up to that many candidate searches are in flight and every simulation runs on
the workers (``planning.plan_run.PlanRun.search_all``). CPU seconds are reported for this process
and for the workers (``cpu_self_s``, ``cpu_workers_s``: the workers' rusage, read when they have
been joined), so a run on a shared VM can be judged by CPU work as well as by wall time. To make the
workers children of this process (forkserver's are not), the benchmark starts them with ``fork``;
the planner itself uses forkserver.

On a shared machine the wall time says little about scaling, so the run also records the CPU
seconds of every simulation the searches ask for (``probe_cpu_s``, timed in the process that runs
it; ``probes``, ``rounds``: batches asked for at once) and gives a load-free figure for idle cores:
``idle_wall_s`` = the CPU seconds of the run with one worker (everything in this process), and with
W workers (this process's CPU + the workers') / W, the wall time if the W cores were kept busy
(a lower bound: it ignores the moments when fewer than W simulations are ready).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import multiprocessing

from simulator.config import load_scenario
from simulator.planning import executors, plan_run, search
from simulator.planning.planner import PlanSettings, plan

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="2", help="worker counts to run, comma-separated (e.g. 1,2)")
    ap.add_argument("--executor", default="local", choices=("local", "ray"))
    ap.add_argument("--layouts", default="aggregated,disaggregated")
    ap.add_argument("--target-rate", type=float, default=50.0)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--search-points", type=int, default=1, help="rates probed per search round")
    ap.add_argument("--exhaustive", action="store_true", help="simulate every candidate (no cost pruning)")
    ap.add_argument("--mixed", action="store_true", help="also disaggregated pools on two GPU types (plan --mixed-pools)")
    ap.add_argument("--out")
    a = ap.parse_args()
    s = load_scenario(REPO / "examples" / "plan" / "llama8b-chat.yaml")
    executors.mp_context = lambda: multiprocessing.get_context("fork")   # workers as children: rusage counts them
    _instrument()
    runs, first = [], None
    for w in [int(x) for x in a.workers.split(",")]:
        cpu0 = _cpu()
        ROUNDS.clear()
        res = plan(s, PlanSettings(target_rate=a.target_rate, workers=w, requests=a.requests, exhaustive=a.exhaustive,
                                   executor=a.executor, kinds=tuple(a.layouts.split(",")),
                                   search_points=a.search_points, mixed_pools=a.mixed))
        cpu1 = _cpu()
        c = res["counts"]
        same = None
        if first is None:
            first = res
        else:
            same = _comparable(res) == _comparable(first)
        best = res["plans"][0] if res["plans"] else None
        cpu_total = cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]
        row = {**c, "workers": w, "mixed_pools": a.mixed, "search_points": a.search_points, "cpu_self_s": cpu1[0] - cpu0[0],
               "rounds": len(ROUNDS), "probes": sum(len(r) for r in ROUNDS),
               "probe_cpu_s": sum(sum(r) for r in ROUNDS), "idle_wall_s": cpu_total / w,
               "cpu_workers_s": cpu1[1] - cpu0[1], "load_avg_1m_after": os.getloadavg()[0],
               "executor": a.executor, "exhaustive": a.exhaustive, "layouts": a.layouts,
               "identical_to_first": same, "speedup_vs_first": first["counts"]["wall_s"] / c["wall_s"],
               "best": best and {"candidate": best["candidate"], "replicas": best["replicas"],
                                 "cost_per_hour": best["cost_per_hour"], "layout": best["layout"]}}
        runs.append(row)
        print(f"{c['candidates']} candidates: {c['screened_in']} passed the cheap checks, {c['searched']} searched, "
              f"{c['simulations']} simulations, {c['plans']} plans; screening {c['screen_s']:.1f} s, "
              f"total {c['wall_s']:.1f} s with {w} workers ({a.executor}); speed-up "
              f"{row['speedup_vs_first']:.2f}x" + ("" if same is None else f"; identical results: {same}"))
        print(f"CPU: {row['cpu_self_s']:.1f} s this process, {row['cpu_workers_s']:.1f} s workers; "
              f"load average {row['load_avg_1m_after']:.2f}; {row['probes']} simulations in {row['rounds']} "
              f"batches, {row['probe_cpu_s']:.1f} s CPU; on {w} idle cores {row['idle_wall_s']:.1f} s")
        print(f"rejected: {c['rejected']}; mixed-GPU pairs: {c['mixed_pairs']}")
        if best:
            cost = "no price" if best["cost_per_hour"] is None else f"${best['cost_per_hour']:.2f}/h"
            print(f"cheapest: {best['candidate']} x{best['replicas']} at {cost}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(), "cpus": len(os.sched_getaffinity(0)),
                "python": platform.python_version(),
                "command": f"python benchmarks/plan_speed.py --workers {a.workers} --executor {a.executor} "
                           f"--layouts {a.layouts} --target-rate {a.target_rate} --requests {a.requests} "
                           f"--search-points {a.search_points}"
                           + (" --exhaustive" if a.exhaustive else "") + (" --mixed" if a.mixed else "")}
        Path(a.out).write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))


ROUNDS: list[list[float]] = []        # CPU seconds of each probe, per search round
_run_probe, _evaluate = search.run_probe, plan_run.evaluate


def _timed_probe(t: search.ProbeTask) -> search.Probe:
    c0 = time.process_time()
    p = _run_probe(t)
    p.cpu_s = time.process_time() - c0          # travels back with the probe (pickled __dict__)
    return p


def _recorded_evaluate(job: plan_run.Job, probes: search.Probes = search.serial_probes) -> dict:
    def rec(tasks: list[search.ProbeTask]) -> list[search.Probe]:
        out = probes(tasks)
        ROUNDS.append([p.cpu_s for p in out])
        return out
    return _evaluate(job, rec)


def _instrument() -> None:
    """Time every probe of a search round, in whichever process runs it (see the module docstring)."""
    search.run_probe = plan_run.run_probe = _timed_probe
    plan_run.evaluate = _recorded_evaluate


def _cpu() -> tuple[float, float]:
    """User + system CPU seconds of this process and of its ended (waited-for) child processes."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _comparable(res: dict) -> tuple:
    counts = {k: v for k, v in res["counts"].items() if k not in ("wall_s", "screen_s")}
    return res["plans"], res["rejected"], counts


if __name__ == "__main__":
    main()
