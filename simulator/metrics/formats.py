"""A run's results in the benchmark tools' own JSON layouts (``servesim run --format vllm|aiperf``).

vllm: the result file of ``vllm bench serve --save-result`` (vLLM 0.10 to 0.11,
``vllm/benchmarks/serve.py``: ``BenchmarkMetrics`` and ``process_one_metric``): times in
milliseconds under ``mean_/median_/std_/p<P>_<metric>_ms`` for ttft, tpot, itl and e2el, the
percentile word as vLLM writes it (``p99``, ``p99.9``); throughputs in requests/s and tokens/s;
``ttfts`` in seconds and ``input_lens``/``output_lens`` per request, as vLLM stores them.

aiperf: ``profile_export_aiperf.json`` of NVIDIA AIPerf (docs.nvidia.com/aiperf, "JSON Export
Schema" and "Metrics Reference", v0.11 to v0.14): one block per metric tag with ``unit``,
``avg``, ``min``, ``max``, ``std``, ``p1`` ... ``p99`` (record metrics) or ``avg`` alone (derived
metrics). AIPerf's ``inter_token_latency`` is per request ``(latency - TTFT) / (tokens - 1)``,
which is vLLM's and servesim's TPOT; its ``output_token_throughput_per_user`` is its reciprocal.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .summary import pct_key, stats

FORMATS = ("servesim", "vllm", "aiperf")
#: servesim summary block -> vLLM metric word
VLLM_METRICS = {"ttft_s": "ttft", "tpot_s": "tpot", "itl_s": "itl", "e2e_s": "e2el"}
#: AIPerf reports these percentiles for every record metric.
AIPERF_PCTS = (1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0)


def to_vllm(summary: dict[str, Any], df: pd.DataFrame, percentiles: tuple[float, ...],
            meta: dict[str, Any]) -> dict[str, Any]:
    """The ``vllm bench serve`` result object; ``meta``: model_id, request_rate, max_concurrency, ...

    ``summary`` must carry ``percentiles`` in its latency blocks (``summarize(..., percentiles)``)."""
    done = df["finished"].to_numpy()
    out: dict[str, Any] = {
        **meta,
        "num_prompts": int(summary["requests"]),
        "duration": summary["duration_s"],
        "completed": int(summary["completed"]),
        "failed": int(summary["rejected"]),
        "total_input_tokens": int(df.loc[done, "prompt_tokens"].sum()),
        "total_output_tokens": int(df.loc[done, "output_tokens"].sum()),
        "request_throughput": summary["throughput_requests_per_s"],
        "request_goodput": summary["goodput_requests_per_s"] if summary.get("slos") else None,
        "output_throughput": summary["throughput_output_tokens_per_s"],
        "total_token_throughput": summary["throughput_total_tokens_per_s"],
        "input_lens": [int(v) for v in df.loc[done, "prompt_tokens"]],
        "output_lens": [int(v) for v in df.loc[done, "output_tokens"]],
        "ttfts": [float(v) for v in df.loc[done, "ttft_s"]],
    }
    for block, word in VLLM_METRICS.items():
        st = summary[block]
        out[f"mean_{word}_ms"] = _ms(st["mean"])
        out[f"median_{word}_ms"] = _ms(st["median"])
        out[f"std_{word}_ms"] = _ms(st["std"])
        for p in percentiles:
            out[f"{pct_key(p)}_{word}_ms"] = _ms(st[pct_key(p)])
    return out


def to_aiperf(summary: dict[str, Any], df: pd.DataFrame) -> dict[str, Any]:
    """The ``profile_export_aiperf.json`` metric blocks (times in ms, as AIPerf writes them)."""
    done = df["finished"].to_numpy()
    d = df.loc[done]
    tpot = d["tpot_s"].to_numpy()
    out: dict[str, Any] = {
        "time_to_first_token": _record(d["ttft_s"].to_numpy() * 1e3, "ms"),
        "inter_token_latency": _record(tpot * 1e3, "ms"),
        "request_latency": _record(d["e2e_s"].to_numpy() * 1e3, "ms"),
        "output_token_throughput_per_user": _record(1.0 / tpot[tpot > 0], "tokens/sec/user"),
        "output_sequence_length": _record(d["output_tokens"].to_numpy(), "tokens"),
        "input_sequence_length": _record(d["prompt_tokens"].to_numpy(), "tokens"),
        "request_throughput": {"unit": "requests/sec", "avg": summary["throughput_requests_per_s"]},
        "output_token_throughput": {"unit": "tokens/sec", "avg": summary["throughput_output_tokens_per_s"]},
        "total_token_throughput": {"unit": "tokens/sec", "avg": summary["throughput_total_tokens_per_s"]},
        "request_count": {"unit": "requests", "avg": int(summary["completed"])},
        "error_request_count": {"unit": "requests", "avg": int(summary["rejected"])},
        "benchmark_duration": {"unit": "sec", "avg": summary["duration_s"]},
    }
    if summary.get("slos"):
        out["goodput"] = {"unit": "requests/sec", "avg": summary["goodput_requests_per_s"]}
    return out


def _record(x: np.ndarray, unit: str) -> dict[str, Any]:
    """An AIPerf record-metric block: unit, avg, min, max, std, p1..p99 and count (None when empty)."""
    st = stats(np.asarray(x, dtype=float), pcts=AIPERF_PCTS)
    block: dict[str, Any] = {"unit": unit, "avg": st["mean"], "min": st["min"], "max": st["max"]}
    block.update({pct_key(p): st[pct_key(p)] for p in AIPERF_PCTS})
    v = np.asarray(x, dtype=float)
    v = v[~np.isnan(v)]
    # AIPerf's std is the sample standard deviation (ddof 1), vLLM's the population one
    block.update(std=float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else None), count=int(len(v)))
    return block


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1e3
