"""Sweep throughput: points per second of `servesim sweep` with the local process pool (and Ray).

    python benchmarks/sweep_speed.py                  # 48 points, 1 and 2 workers
    python benchmarks/sweep_speed.py --points 96 --workers 1,2,4 --ray --out sweep_speed.json

Each point is the chat example (examples/plan/llama8b-chat.yaml: Llama-3.1-8B on one H100,
400 requests) at one arrival rate between 2 and 14 req/s. Reported per run: wall seconds,
points per second, the mean simulation time of one point, and the parallel efficiency
(sum of the points' own run times / (wall time x workers)); the gap to 1 is pool start-up,
scheduling and writing results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.planning.runner import run_sweep
from simulator.planning.sweep import SweepSpec, load_sweep

REPO = Path(__file__).resolve().parents[1]


def one(points: int, executor: str, workers: int) -> dict:
    spec, base = load_sweep_spec(points)
    out = Path(tempfile.mkdtemp(prefix="sweep-speed-"))
    try:
        t = time.perf_counter()
        rep = run_sweep(spec, base, out, executor=executor, workers=workers, flush_every_s=5.0)
        wall = time.perf_counter() - t
        df = pd.read_parquet(out / "results.parquet")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    busy = float(df["wall_s"].sum())
    return {"points": rep.ran, "executor": executor, "workers": workers, "wall_s": wall,
            "points_per_s": rep.ran / wall, "mean_point_s": float(df["wall_s"].mean()),
            "parallel_efficiency": busy / (wall * workers), "errors": int(df["error"].notna().sum())}


def load_sweep_spec(points: int) -> tuple[SweepSpec, dict]:
    _, base = load_sweep(REPO / "examples" / "sweeps" / "tp-rate.yaml")
    rates = [float(x) for x in np.round(np.linspace(2.0, 14.0, points), 4)]
    return SweepSpec(base=base, axes={"workload.arrival.rate": rates}), base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=48)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--ray", action="store_true", help="also run with --executor ray (local Ray)")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = [one(a.points, "local", int(w)) for w in a.workers.split(",")]
    if a.ray:
        rows += [one(a.points, "ray", int(w)) for w in a.workers.split(",")[-1:]]
    for r in rows:
        print(f"{r['executor']:<5} {r['workers']} workers  {r['points']} points  {r['wall_s']:6.2f} s  "
              f"{r['points_per_s']:6.2f} points/s  {r['mean_point_s']:.3f} s/point  "
              f"efficiency {r['parallel_efficiency']:.2f}")
    if a.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "command": f"python benchmarks/sweep_speed.py --points {a.points} --workers {a.workers}"
                + (" --ray" if a.ray else "")}
        Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
