"""``servesim run``: simulate one scenario (or the embedded default)."""
from __future__ import annotations

import argparse
import sys

from ..cli import print_json, subcommand
from ..errors import InputError

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
    p.add_argument("--replications", type=int, default=1, metavar="K",
                   help="also run seeds seed+1..seed+K-1 and report 95%% confidence intervals")
    p.set_defaults(handler=run)


def run(a: argparse.Namespace) -> int:
    from ..config.loader import load_scenario, parse_set
    from ..engine.simulate import simulate
    from ..metrics.report import format_summary, write_outputs
    from ..metrics.summary import summarize
    from .progress import progress_bar

    if not 1 <= a.replications <= MAX_REPLICATIONS:
        raise InputError("--replications", a.replications, f"must be 1 to {MAX_REPLICATIONS:,}")
    scenario = load_scenario(a.scenario, parse_set(a.set))
    show = not a.no_progress and sys.stderr.isatty()
    with progress_bar("simulating", enabled=show) as tick:
        res = simulate(scenario, progress=tick)
    summary = summarize(res)
    if a.replications != 1:
        from ..planning.executors import default_workers
        from ..planning.uncertainty import replicate

        rep = replicate(scenario, a.replications, workers=default_workers())
        summary["confidence"] = {"replications": rep["replications"], "seeds": rep["seeds"],
                                 "level": rep["confidence"], "metrics": rep["metrics"]}
    if a.out:
        write_outputs(res, a.out, summary)
    if a.json:
        print_json(summary)
    else:
        print(format_summary(summary))
        if a.out:
            print(f"wrote        {a.out}/summary.json, requests.parquet, timeseries.parquet (and .csv)")
    return 0
