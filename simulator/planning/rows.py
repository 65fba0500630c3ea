"""Flatten a run's summary (``metrics.summary.summarize``) into one flat row of metrics."""
from __future__ import annotations

import math
from typing import Any

#: Latency statistics copied into a row: ``<name>_<stat>`` in seconds, e.g. ``ttft_p99``.
LATENCIES = ("ttft", "tpot", "itl", "e2e", "queue")
STATS = ("mean", "p50", "p90", "p99")
#: Scalar summary keys copied as they are.
SCALARS = ("requests", "completed", "rejected", "duration_s", "throughput_requests_per_s",
           "throughput_output_tokens_per_s", "throughput_input_tokens_per_s", "goodput_requests_per_s",
           "slo_attainment", "preemptions", "mfu", "mbu", "busy_fraction", "prefill_tokens_computed",
           "simulation_wall_s")
#: Every metric column of a row, in order (all None for a failed point).
METRIC_COLUMNS = (tuple(f"{lat}_{st}" for lat in LATENCIES for st in STATS) + SCALARS
                  + ("kv_peak_used_fraction", "stable", "queue_growth_per_s", "prefix_cache_hit_rate"))


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def prefix_cache_hit_rate(summary: dict[str, Any]) -> float | None:
    """Share of prompt tokens served from a prefix cache, when the summary reports one (else None).

    Read from a ``prefix_cache`` section (top level or under ``features``): its ``hit_rate``, or
    ``hit_blocks / lookup_blocks``.
    """
    for section in (summary.get("prefix_cache"), (summary.get("features") or {}).get("prefix_cache")):
        if not isinstance(section, dict):
            continue
        rate = _number(section.get("hit_rate"))
        if rate is not None:
            return rate
        hits, looked = _number(section.get("hit_blocks")), _number(section.get("lookup_blocks"))
        if hits is not None and looked:
            return hits / looked
    return None


def metrics_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The flat metrics of one run: latencies in seconds, throughputs per second, fractions 0..1."""
    row: dict[str, Any] = {}
    for lat in LATENCIES:
        block = summary.get(f"{lat}_s") or {}
        for st in STATS:
            row[f"{lat}_{st}"] = block.get(st)
    for key in SCALARS:
        row[key] = summary.get(key)
    row["kv_peak_used_fraction"] = (summary.get("kv_cache") or {}).get("peak_used_fraction")
    stab = summary.get("stability") or {}
    row["stable"] = stab.get("stable")
    row["queue_growth_per_s"] = stab.get("queue_growth_per_s")
    row["prefix_cache_hit_rate"] = prefix_cache_hit_rate(summary)
    return row


def empty_metrics() -> dict[str, Any]:
    """A metrics row of Nones (a point that failed)."""
    return dict.fromkeys(METRIC_COLUMNS)
