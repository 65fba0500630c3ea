"""``servesim run --concurrency 1,5,25 | --rate 1,2,4,inf``: the arrival of each load point, and their table."""
from __future__ import annotations

import math
from typing import Any

import yaml

from ..config.loader import scenario_from_dict, scenario_to_yaml
from ..config.scenario import Scenario
from ..errors import InputError
from ..metrics.report import duration
from ..workload.config import ClosedLoopArrival, ConstantArrival, GammaArrival, PoissonArrival

#: Most load points one command line may ask for (each is a whole simulation).
MAX_POINTS = 100
#: Most closed-loop clients of one point.
MAX_CONCURRENCY = 1_000_000


def parse_concurrency(text: str) -> list[int]:
    """``"1,5,25"`` -> [1, 5, 25]: whole numbers of clients."""
    out = []
    for part in _parts("--concurrency", text):
        if not part.isdigit() or not 1 <= int(part) <= MAX_CONCURRENCY:
            raise InputError("--concurrency", text, f"comma-separated whole numbers from 1 to {MAX_CONCURRENCY:,}, e.g. 1,5,25,50")
        out.append(int(part))
    return list(dict.fromkeys(out))


def parse_rates(text: str) -> list[float]:
    """``"1,2,4,inf"`` -> [1.0, 2.0, 4.0, inf]: requests per second; inf sends every request at t = 0."""
    out = []
    for part in _parts("--rate", text):
        try:
            r = float(part)
        except ValueError:
            r = float("nan")
        if not (r > 0 and (math.isfinite(r) or r == math.inf)):
            raise InputError("--rate", text, "comma-separated request rates above 0 (req/s) or inf, e.g. 1,2,4,inf")
        out.append(r)
    return list(dict.fromkeys(out))


def _parts(flag: str, text: str) -> list[str]:
    parts = [p.strip().lower() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise InputError(flag, text, "a comma-separated list without empty entries")
    if len(parts) > MAX_POINTS:
        raise InputError(flag, f"{len(parts)} values", f"at most {MAX_POINTS} load points")
    return parts


def at_concurrency(s: Scenario, clients: int) -> Scenario:
    """``s`` with ``clients`` closed-loop clients (its think time kept if it already was closed loop)."""
    arr = s.workload.arrival
    new: dict[str, Any] = {"process": "closed_loop", "concurrency": clients}
    if isinstance(arr, ClosedLoopArrival):
        new.update(think_time_s=arr.think_time_s, think_time_dist=arr.think_time_dist)
    return _with_arrival(s, new)


def at_rate(s: Scenario, rate: float) -> Scenario:
    """``s`` at ``rate`` req/s: its own process (Poisson, gamma, constant) at that rate, else Poisson;
    ``inf`` is the offline process (every request at t = 0, as ``vllm bench serve --request-rate inf``)."""
    if rate == math.inf:
        return _with_arrival(s, {"process": "offline"})
    arr = s.workload.arrival
    new: dict[str, Any] = {"process": "poisson", "rate": rate}
    if isinstance(arr, (PoissonArrival, GammaArrival, ConstantArrival)):
        new["process"] = arr.process
        if isinstance(arr, GammaArrival):
            new["cv"] = arr.cv
    return _with_arrival(s, new)


def _with_arrival(s: Scenario, arrival: dict[str, Any]) -> Scenario:
    data = yaml.safe_load(scenario_to_yaml(s))
    return scenario_from_dict(data, {"workload.arrival": arrival})


def _fmt_rate(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def points_table(label: str, points: list[tuple[str, dict[str, Any]]], pct: str) -> Any:
    """A rich table: one row per load point, latency at the mean and the ``pct`` percentile."""
    from rich.table import Table

    table = Table(title=f"servesim run, one row per {label}", caption="rates in req/s; ITL, TPOT per output token")
    cols = [label, "offered", "completed", "out tok/s", "TTFT mean", f"TTFT {pct}", "TPOT mean", f"TPOT {pct}",
            f"ITL {pct}", "E2E mean", "goodput", "kept up"]
    for c in cols:
        table.add_column(c, justify="right" if c not in (label, "kept up") else "left", overflow="fold")
    for name, s in points:
        r = s.get("rate") or {}
        kept = r.get("kept_up")
        table.add_row(name, _fmt_rate(r.get("offered_rate")), _fmt_rate(r.get("achieved_rate")),
                      f"{s['throughput_output_tokens_per_s']:.0f}",
                      duration(s["ttft_s"]["mean"]), duration(s["ttft_s"].get(pct)),
                      duration(s["tpot_s"]["mean"]), duration(s["tpot_s"].get(pct)),
                      duration(s["itl_s"].get(pct)), duration(s["e2e_s"]["mean"]),
                      f"{s['goodput_requests_per_s']:.3g}",
                      "n/a" if kept is None else ("yes" if kept else "NO (overloaded)"))
    return table
