"""``servesim run``: simulate one scenario (or the embedded default)."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .registry import print_json, subcommand
from ..errors import InputError
from ..fleet.plan import DEFAULT_WINDOW_S, EXECUTORS
from ..fleet.run import simulate_sharded
from ..metrics.formats import FORMATS, to_aiperf, to_vllm
from ..metrics.summary import per_request
from ..tables import grid, render
from .load_points import at_concurrency, at_rate, parse_concurrency, parse_rates, points_table
from .run_plot import write_sweep_plot
from ..workload.config import ClosedLoopArrival, GammaArrival

#: Most seeds ``--replications`` runs (each is a whole simulation).
MAX_REPLICATIONS = 10_000


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="simulate a scenario (embedded default when none is given)")
    p.add_argument("scenario", nargs="?", help="scenario YAML file")
    p.add_argument("--model", metavar="M", help="model: catalog name, Hugging Face id or config.json path "
                   "(same as --set model=M)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--concurrency", metavar="N,N,...", help="closed-loop clients, one simulation per value "
                      "(e.g. 1,5,25,50); several values print one table")
    load.add_argument("--rate", metavar="R,R,...", help="offered request rates in req/s, one simulation per value "
                      "(e.g. 1,2,4,inf; inf sends every request at once); several values print one table")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key, e.g. workload.arrival.rate=12")
    p.add_argument("--out", help="folder for summary.json and the per-request and time-series tables (Parquet)")
    p.add_argument("--csv", action="store_true", help="with --out, write the tables as CSV too")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--percentiles", metavar="P,P,...", default="50,90,95,99,99.9",
                   help="latency percentiles to report, e.g. 50,90,95,99,99.9 (default)")
    p.add_argument("--format", choices=FORMATS, default="servesim",
                   help="JSON layout of --json and summary.json: servesim (default), vllm (vllm bench serve "
                        "--save-result) or aiperf (profile_export_aiperf.json)")
    p.add_argument("--plot", metavar="FILE.png", help="with --concurrency or --rate: a latency-vs-throughput "
                   "chart (PNG, or SVG for .svg; needs altair and vl-convert-python)")
    p.add_argument("--replications", type=int, default=1, metavar="K",
                   help="also run seeds seed+1..seed+K-1 and report 95%% confidence intervals")
    p.add_argument("--executor", default="local", metavar="E",
                   help="local (default: one process) or ray: the replicas split over Ray actors, one result")
    p.add_argument("--workers", type=int, metavar="K", help="--executor ray: shards (default: the CPUs)")
    p.add_argument("--sync-window", type=float, metavar="S",
                   help=f"--executor ray with router least_outstanding: simulated seconds between the shards' "
                        f"load reports (default {DEFAULT_WINDOW_S:g})")
    p.set_defaults(handler=run)


def run(a: argparse.Namespace) -> int:
    from ..config.loader import load_scenario, parse_set

    if a.executor not in EXECUTORS:
        raise InputError("--executor", a.executor, f"allowed: {', '.join(EXECUTORS)}")
    if a.executor == "local" and (a.workers is not None or a.sync_window is not None):
        raise InputError("--workers" if a.workers is not None else "--sync-window",
                         a.workers if a.workers is not None else a.sync_window, "only with --executor ray")
    if not 1 <= a.replications <= MAX_REPLICATIONS:
        raise InputError("--replications", a.replications, f"must be 1 to {MAX_REPLICATIONS:,}")
    pcts = parse_percentiles(a.percentiles)
    overrides = parse_set(a.set)
    if a.model is not None:
        overrides = {"model": a.model, **overrides}
    scenario = load_scenario(a.scenario, overrides)
    points = load_points(a, scenario)
    if a.plot is not None and a.concurrency is None and a.rate is None:
        raise InputError("--plot", a.plot, "draws a sweep: give --concurrency N,N,... or --rate R,R,... with it")
    if len(points) == 1 and a.plot is None:
        return run_one(a, points[0][1], pcts)
    if a.replications != 1:
        raise InputError("--replications", a.replications, "must be 1 when --concurrency or --rate lists several values")
    return run_points(a, points, pcts)


def load_points(a: argparse.Namespace, scenario: Any) -> list[tuple[str, Any]]:
    """``[(label, scenario)]``: one per --concurrency or --rate value, or the scenario itself."""
    if a.concurrency is not None:
        return [(str(c), at_concurrency(scenario, c)) for c in parse_concurrency(a.concurrency)]
    if a.rate is not None:
        return [(f"{r:g}", at_rate(scenario, r)) for r in parse_rates(a.rate)]
    return [("", scenario)]


def simulate_point(a: argparse.Namespace, scenario: Any, pcts: tuple[float, ...], label: str = "simulating"
                   ) -> tuple[Any, dict[str, Any]]:
    """(result, summary) of one simulation, with a progress bar on a terminal. The summary needs no
    per-request table; :func:`tool_json` and ``--out`` build it where they write it."""
    from ..engine.simulate import simulate
    from ..metrics.summary import summarize
    from .progress import progress_bar

    if getattr(a, "executor", "local") != "local":
        if a.replications != 1 or len(load_points(a, scenario)) != 1:
            raise InputError("--executor", a.executor, "a sharded run takes one scenario: no --replications, "
                             "--rate or --concurrency lists")
        workers = a.workers if a.workers is not None else (os.cpu_count() or 1)
        res = simulate_sharded(scenario, a.executor, workers, a.sync_window)
    else:
        with progress_bar(label, enabled=not a.no_progress and sys.stderr.isatty()) as tick:
            res = simulate(scenario, progress=tick)
    return res, summarize(res, percentiles=pcts)


def run_one(a: argparse.Namespace, scenario: Any, pcts: tuple[float, ...]) -> int:
    from ..metrics.report import format_summary, write_outputs

    res, summary = simulate_point(a, scenario, pcts)
    if a.replications != 1:
        from ..planning.executors import default_workers
        from ..planning.uncertainty import replicate

        rep = replicate(scenario, a.replications, workers=default_workers())
        summary["confidence"] = {"replications": rep["replications"], "seeds": rep["seeds"],
                                 "level": rep["confidence"], "metrics": rep["metrics"]}
    shown = tool_json(a.format, summary, res, pcts, scenario)
    if a.out:
        write_outputs(res, a.out, summary, csv=a.csv)
        if a.format != "servesim":
            (Path(a.out) / f"{a.format}.json").write_text(json.dumps(shown, indent=2, default=float))
    if a.json or a.format != "servesim":
        print_json(shown)
    else:
        print(format_summary(summary))
        if a.out:
            print(f"wrote        {a.out}/summary.json, requests.parquet, timeseries.parquet"
                  + (" (and .csv)" if a.csv else ""))
    return 0


def run_points(a: argparse.Namespace, points: list[tuple[str, Any]], pcts: tuple[float, ...]) -> int:
    """Several load points: one table (or a JSON list), ``--out DIR/<flag>-<value>/`` per point."""
    from ..metrics.report import header, write_outputs

    flag = "concurrency" if a.concurrency is not None else "rate"
    done, shown = [], []
    for name, scenario in points:
        res, summary = simulate_point(a, scenario, pcts, f"{flag} {name}")
        out = tool_json(a.format, summary, res, pcts, scenario)
        if a.out:
            folder = Path(a.out) / f"{flag}-{name}"
            write_outputs(res, folder, summary, csv=a.csv)
            if a.format != "servesim":
                (folder / f"{a.format}.json").write_text(json.dumps(out, indent=2, default=float))
        done.append((name, summary))
        shown.append({flag: name, **out})
    pct = "p99" if 99.0 in pcts else f"p{max(pcts):g}"
    drawn = write_sweep_plot(flag, done, pct, a.plot) if a.plot else None
    if a.json or a.format != "servesim":
        print_json(shown)
        if drawn:
            print(drawn, file=sys.stderr)
        return 0
    head = header(done[0][1])
    print(render(grid(head[:1] + head[2:]), points_table(flag, done, pct)))
    if drawn:
        print(drawn)
    if a.out:
        print(f"wrote        {a.out}/{flag}-<value>/summary.json and tables, one folder per point")
    return 0


def parse_percentiles(text: str) -> tuple[float, ...]:
    """``"50,90,99.9"`` -> (50.0, 90.0, 99.9); each strictly between 0 and 100."""
    out = []
    for part in str(text).split(","):
        try:
            p = float(part)
        except ValueError:
            raise InputError("--percentiles", text, "comma-separated numbers between 0 and 100, e.g. 50,90,99.9") from None
        if not (math.isfinite(p) and 0 < p < 100):
            raise InputError("--percentiles", text, "each percentile must lie strictly between 0 and 100")
        out.append(p)
    return tuple(dict.fromkeys(out))


def tool_json(fmt: str, summary: dict[str, Any], res: Any, pcts: tuple[float, ...], scenario: Any) -> dict[str, Any]:
    """The summary in the layout ``fmt`` names (the servesim summary itself for ``servesim``); the
    other tools' layouts list requests, from the per-request table of the run ``res``."""
    if fmt == "aiperf":
        return to_aiperf(summary, per_request(res))
    if fmt != "vllm":
        return summary
    arr = scenario.workload.arrival
    closed = isinstance(arr, ClosedLoopArrival)
    rate = getattr(arr, "rate", None)
    meta = {"date": datetime.now().strftime("%Y%m%d-%H%M%S"), "backend": "servesim",
            "endpoint_type": "servesim", "label": scenario.deployment.engine, "model_id": scenario.model,
            "tokenizer_id": scenario.model, "request_rate": "inf" if closed or rate is None else rate,
            # vLLM's gaps are gamma with shape = burstiness, so CV = 1 / sqrt(burstiness)
            "burstiness": 1.0 / arr.cv ** 2 if isinstance(arr, GammaArrival) else 1.0,
            "max_concurrency": arr.concurrency if closed else None}
    return to_vllm(summary, per_request(res), pcts, meta)
