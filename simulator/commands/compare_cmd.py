"""``servesim compare MEASURED.json [SCENARIO]``: a benchmark tool's measurement against the simulation."""
from __future__ import annotations

import argparse
import importlib.util
import math
import tempfile
from pathlib import Path
from typing import Any

from .registry import print_json, subcommand
from ..errors import InputError
from ..metrics.measured import Measured, read_measured
from ..metrics.report import duration
from .compare_trace import trace_overrides

#: Percentiles the simulation reports, enough for every metric a tool file holds.
PCTS = (50.0, 90.0, 99.0)


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="measured (vllm bench serve, AIPerf, SGLang bench_serving) vs predicted")
    p.add_argument("measured", metavar="MEASURED", help="vllm bench serve --save-result JSON (with "
                   "--save-detailed: per request), AIPerf profile_export_aiperf.json or profile_export.jsonl, "
                   "or sglang.bench_serving --output-file JSONL (with --output-details: per request)")
    p.add_argument("scenario", nargs="?", help="scenario YAML of the measured deployment, used as it is "
                   "(default: the default deployment with the measured model, load and mean lengths)")
    p.add_argument("--model", metavar="M", help="model, where the file names none or another id")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario key, e.g. deployment.gpu=h200-sxm")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of measured vs predicted (needs altair and vl-convert-python)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(handler=run)


def scenario_overrides(m: Measured, model: str | None) -> dict[str, Any]:
    """The workload a measurement ran (its load and mean lengths), as dotted overrides.

    The tools count every request they send (their warm-up requests are separate and uncounted),
    so the simulation measures every request too."""
    if m.concurrency is not None:
        arrival: dict[str, Any] = {"process": "closed_loop", "concurrency": m.concurrency}
    elif m.rate is not None:
        # vLLM's gaps are gamma with shape = burstiness: CV = 1 / sqrt(burstiness)
        arrival = ({"process": "poisson", "rate": m.rate} if m.burstiness == 1.0 else
                   {"process": "gamma", "rate": m.rate, "cv": 1.0 / math.sqrt(m.burstiness)})
    else:
        arrival = {"process": "offline"}
    out: dict[str, Any] = {
        "workload.arrival": arrival, "workload.requests": m.requests, "workload.warmup_requests": 0,
        "workload.prompt_tokens": {"dist": "fixed", "value": max(1, round(m.prompt_tokens))},
        "workload.output_tokens": {"dist": "fixed", "value": max(1, round(m.output_tokens))}}
    if model or m.model:
        out["model"] = model or m.model
    return out


def compare_rows(m: Measured, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric the file holds: measured, predicted, relative error."""
    rows = []
    for (block, stat), meas in m.metrics.items():
        pred = summary[block] if stat is None else summary[block].get("p50" if stat == "median" else stat)
        err = None if pred is None or meas == 0 else (pred - meas) / meas
        rows.append({"metric": block if stat is None else f"{block}.{stat}", "measured": meas,
                     "predicted": pred, "error": err})
    return rows


def run(a: argparse.Namespace) -> int:
    from ..config.loader import load_scenario, parse_set
    from ..engine.simulate import simulate
    from ..metrics.summary import summarize

    if a.plot and not all(importlib.util.find_spec(n) for n in ("altair", "vl_convert")):
        raise InputError("--plot", a.plot, "needs altair and vl-convert-python: pip install altair vl-convert-python")
    m = read_measured(a.measured)
    with tempfile.TemporaryDirectory(prefix="servesim-compare-") as tmp:
        overrides = parse_set(a.set)
        if a.scenario is None:
            base = scenario_overrides(m, a.model)
            if m.samples is not None:
                base.update(trace_overrides(m, Path(tmp)))
            overrides = {**base, **overrides}
        elif a.model:
            overrides = {"model": a.model, **overrides}
        scenario = load_scenario(a.scenario, overrides)
        res = simulate(scenario)
    summary = summarize(res, percentiles=PCTS)
    rows = compare_rows(m, summary)
    if a.plot:
        from .compare_plot import write_plot

        write_plot(rows, a.plot, f"{m.tool} measurement vs servesim ({scenario.model})")
    if a.json:
        print_json({"tool": m.tool, "model": scenario.model, "per_request": m.samples is not None, "rows": rows})
        return 0
    print_table(m, scenario, rows)
    if a.plot:
        print(f"wrote {a.plot}")
    return 0


def _value(metric: str, v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}" if metric.startswith("throughput") else duration(v)


def print_table(m: Measured, scenario: Any, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    d = scenario.deployment
    load = (f"{m.concurrency} concurrent" if m.concurrency else
            "sent at the measured times" if m.samples is not None and m.samples.start is not None else
            f"{m.rate:g} req/s" if m.rate else "all at once")
    table = Table(title=f"{m.tool} measurement vs servesim: {scenario.model} on {d.gpu}, {load}, "
                        f"{m.requests} requests of {m.prompt_tokens:.0f} -> {m.output_tokens:.0f} tokens",
                  caption=("measured: exact percentiles of " f"{m.requests} requests, replayed as measured; "
                           if m.samples is not None else "") +
                  "error = (predicted - measured) / measured; throughputs per second")
    for c in ("metric", "measured", "predicted", "error"):
        table.add_column(c, justify="left" if c == "metric" else "right", overflow="fold")
    for r in rows:
        err = "n/a" if r["error"] is None else f"{r['error']:+.1%}"
        table.add_row(r["metric"], _value(r["metric"], r["measured"]), _value(r["metric"], r["predicted"]), err)
    Console().print(table)
