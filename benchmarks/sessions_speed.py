"""Workload generation with multi-turn sessions: wall time of ``generate_plan`` against requests.

    python benchmarks/sessions_speed.py                              # turns 1 and 6, 10k..160k requests
    python benchmarks/sessions_speed.py --turns 1 --requests 10000 20000 40000 --out sessions_speed.json

The default scenario with ``workload.sessions`` (``turns_dist`` fixed and geometric). A turn repeats
the conversation so far, so the segments of a session of t turns number about t^2; for a fixed turn
count the segments, and the time, grow linearly with the requests. Reported per row: requests,
turns, sessions, segments, best-of-``--repeat`` wall time and microseconds per segment, and the
ratio of the time to the previous row's (about the ratio of requests when generation is linear).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from simulator.config import load_scenario
from simulator.workload.generate import generate_plan


def _time(overrides: dict[str, object], repeat: int) -> tuple[float, int, int]:
    s = load_scenario(None, overrides)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan = generate_plan(s.workload, s.seed)
        best = min(best, time.perf_counter() - t0)
    assert plan.sessions is not None and plan.segments is not None
    return best, int((plan.sessions.prev < 0).sum()), len(plan.segments.ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, nargs="+", default=[10_000, 20_000, 40_000, 80_000, 160_000])
    ap.add_argument("--turns", type=int, nargs="+", default=[1, 6])
    ap.add_argument("--dist", choices=("fixed", "geometric"), nargs="+", default=["fixed", "geometric"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = []
    for dist in a.dist:
        for turns in a.turns:
            prev = None
            for n in a.requests:
                wall, sessions, segments = _time({"workload.requests": n, "workload.sessions.turns": turns,
                                                  "workload.sessions.turns_dist": dist}, a.repeat)
                row = {"dist": dist, "turns": turns, "requests": n, "sessions": sessions, "segments": segments,
                       "wall_s": wall, "us_per_segment": 1e6 * wall / segments,
                       "ratio_to_previous": wall / prev if prev else None}
                rows.append(row)
                prev = wall
                ratio = f"x{row['ratio_to_previous']:.2f}" if prev and row["ratio_to_previous"] else ""
                print(f"{dist:9s} turns {turns:3d}  {n:8,d} requests  {sessions:8,d} sessions  {segments:10,d} segments"
                      f"  {wall * 1e3:9.2f} ms  {row['us_per_segment']:.3f} us/segment  {ratio}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "command": "python benchmarks/sessions_speed.py --requests " + " ".join(map(str, a.requests))
                           + " --turns " + " ".join(map(str, a.turns)) + " --dist " + " ".join(a.dist)
                           + f" --repeat {a.repeat}"}
        Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
