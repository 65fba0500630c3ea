"""``servesim run``: simulate one scenario (or the embedded default)."""
from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ..cli import print_json, subcommand
from ..errors import InputError
from ..metrics.formats import FORMATS, to_aiperf, to_vllm
from ..workload.config import ClosedLoopArrival, GammaArrival

#: Most seeds ``--replications`` runs (each is a whole simulation).
MAX_REPLICATIONS = 10_000


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="simulate a scenario (embedded default when none is given)")
    p.add_argument("scenario", nargs="?", help="scenario YAML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key, e.g. workload.arrival.rate=12")
    p.add_argument("--out", help="folder for summary.json and the per-request and time-series tables")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--percentiles", metavar="P,P,...", default="50,90,95,99,99.9",
                   help="latency percentiles to report, e.g. 50,90,95,99,99.9 (default)")
    p.add_argument("--format", choices=FORMATS, default="servesim",
                   help="JSON layout of --json and summary.json: servesim (default), vllm (vllm bench serve "
                        "--save-result) or aiperf (profile_export_aiperf.json)")
    p.add_argument("--replications", type=int, default=1, metavar="K",
                   help="also run seeds seed+1..seed+K-1 and report 95%% confidence intervals")
    p.set_defaults(handler=run)


def run(a: argparse.Namespace) -> int:
    from ..config.loader import load_scenario, parse_set
    from ..engine.simulate import simulate
    from ..metrics.report import format_summary, write_outputs
    from ..metrics.summary import per_request, summarize
    from .progress import progress_bar

    if not 1 <= a.replications <= MAX_REPLICATIONS:
        raise InputError("--replications", a.replications, f"must be 1 to {MAX_REPLICATIONS:,}")
    pcts = parse_percentiles(a.percentiles)
    scenario = load_scenario(a.scenario, parse_set(a.set))
    show = not a.no_progress and sys.stderr.isatty()
    with progress_bar("simulating", enabled=show) as tick:
        res = simulate(scenario, progress=tick)
    df = per_request(res)
    summary = summarize(res, df, pcts)
    if a.replications != 1:
        from ..planning.executors import default_workers
        from ..planning.uncertainty import replicate

        rep = replicate(scenario, a.replications, workers=default_workers())
        summary["confidence"] = {"replications": rep["replications"], "seeds": rep["seeds"],
                                 "level": rep["confidence"], "metrics": rep["metrics"]}
    shown = tool_json(a.format, summary, df, pcts, scenario)
    if a.out:
        write_outputs(res, a.out, summary)
        if a.format != "servesim":
            (Path(a.out) / f"{a.format}.json").write_text(json.dumps(shown, indent=2, default=float))
    if a.json or a.format != "servesim":
        print_json(shown)
    else:
        print(format_summary(summary))
        if a.out:
            print(f"wrote        {a.out}/summary.json, requests.parquet, timeseries.parquet (and .csv)")
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


def tool_json(fmt: str, summary: dict[str, Any], df: Any, pcts: tuple[float, ...], scenario: Any) -> dict[str, Any]:
    """The summary in the layout ``fmt`` names (the servesim summary itself for ``servesim``)."""
    if fmt == "aiperf":
        return to_aiperf(summary, df)
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
    return to_vllm(summary, df, pcts, meta)
