"""Per-request files of the benchmark tools: every completed request's lengths and latencies.

- ``vllm bench serve --save-result --save-detailed`` (vLLM 0.10 to 0.11, ``vllm/benchmarks/serve.py``,
  ``benchmark()``): arrays in the result JSON, one entry per request in the order sent:
  ``input_lens``, ``output_lens``, ``ttfts`` (s), ``itls`` (the request's gaps between streamed
  chunks, s), ``errors`` (``""`` when it succeeded), ``generated_texts``.
- SGLang ``python -m sglang.bench_serving --output-file F --output-details``
  (``python/sglang/bench_serving.py``, 2025 releases): the same arrays added to the run's line.
- NVIDIA AIPerf ``profile_export.jsonl`` (docs.nvidia.com/aiperf "Working with Profile Export
  Files", v0.11 to v0.14): one record per request, ``metadata.request_start_ns`` /
  ``request_end_ns`` / ``benchmark_phase``, ``metrics.<tag> = {"value", "unit"}``
  (``time_to_first_token``, ``request_latency``, ``inter_token_latency`` (the request's TPOT),
  ``inter_chunk_latency`` (its gaps), ``input_sequence_length``, ``output_sequence_length``),
  ``error`` (null when it succeeded).

The tools compute their statistics with numpy (``np.percentile``, linear interpolation), so the
percentiles here are theirs exactly. vLLM and SGLang store no end times: a request's end-to-end
latency is its TTFT plus its gaps (their ``latency`` is the time of the last chunk, the same sum),
and its TPOT is the sum of its gaps over ``output_len - 1``, their definition.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

#: Statistics that a per-request file gives for every latency block.
STATS = ("mean", "median", "p90", "p99")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0}


@dataclass(frozen=True)
class RequestSamples:
    """The completed requests of a measurement, in the order the tool sent them."""

    prompt: np.ndarray              # tokens
    output: np.ndarray              # tokens
    ttft: np.ndarray                # s
    e2e: np.ndarray                 # s
    tpot: np.ndarray                # s, NaN for one-token outputs
    itl: np.ndarray                 # s, every gap of every request
    start: np.ndarray | None        # s since the first start (AIPerf only)
    end: np.ndarray | None = None   # s since the first start (AIPerf only)

    def metrics(self) -> dict[tuple[str, str | None], float]:
        """mean, median, p90, p99 of TTFT, TPOT, ITL and E2E, as :data:`.measured.METRICS` keys."""
        out: dict[tuple[str, str | None], float] = {}
        for block, x in (("ttft_s", self.ttft), ("tpot_s", self.tpot), ("itl_s", self.itl), ("e2e_s", self.e2e)):
            x = x[np.isfinite(x)]
            if len(x):
                out[(block, "mean")] = float(x.mean())
                out[(block, "median")], out[(block, "p90")], out[(block, "p99")] = (
                    float(v) for v in np.percentile(x, (50, 90, 99)))
        if self.start is not None and self.end is not None and len(self.end):
            span = float(self.end.max())
            if span > 0:
                out[("throughput_requests_per_s", None)] = len(self.end) / span
                out[("throughput_output_tokens_per_s", None)] = float(self.output.sum()) / span
        return out


def _numbers(values: Any, key: str, n: int) -> np.ndarray:
    if not isinstance(values, list) or len(values) != n:
        raise InputError(f"MEASURED:{key}", type(values).__name__ if not isinstance(values, list) else
                         f"{len(values)} entries", f"must be a list of {n} numbers, one per request")
    try:
        x = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"MEASURED:{key}", str(values)[:60], "must hold numbers only") from None
    if (x[np.isfinite(x)] < 0).any() or np.isinf(x).any():
        raise InputError(f"MEASURED:{key}", str(values)[:60], "must hold finite numbers >= 0")
    return x


def _gaps(itls: Any, n: int) -> list[np.ndarray]:
    if not isinstance(itls, list) or len(itls) != n:
        raise InputError("MEASURED:itls", f"{len(itls) if isinstance(itls, list) else type(itls).__name__}",
                         f"must be a list of {n} lists of gaps, one per request")
    return [_numbers(g or [], f"itls[{i}]", len(g or [])) for i, g in enumerate(itls)]


def from_arrays(raw: dict[str, Any]) -> RequestSamples | None:
    """The per-request arrays of a vLLM ``--save-detailed`` or SGLang ``--output-details`` result;
    None when the file has no ``itls`` (saved without them). Failed requests are left out."""
    if not isinstance(raw.get("itls"), list):
        return None
    for key in ("ttfts", "input_lens", "output_lens"):
        if not isinstance(raw.get(key), list):
            raise InputError(f"MEASURED:{key}", raw.get(key), "a file with itls needs ttfts, input_lens and output_lens")
    n = len(raw["ttfts"])
    ttft, prompt, output = (_numbers(raw[k], k, n) for k in ("ttfts", "input_lens", "output_lens"))
    gaps = _gaps(raw["itls"], n)
    errors = raw.get("errors") if isinstance(raw.get("errors"), list) and len(raw["errors"]) == n else [""] * n
    ok = np.array([not errors[i] and output[i] >= 1 and prompt[i] >= 1 and math.isfinite(ttft[i]) and ttft[i] > 0
                   for i in range(n)], dtype=bool)
    if not ok.any():
        raise InputError("MEASURED:ttfts", n, "no request in the per-request arrays succeeded")
    kept = [gaps[i] for i in np.flatnonzero(ok)]
    decode = np.array([g.sum() for g in kept])
    out = output[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, decode / (out - 1), np.nan)
    return RequestSamples(prompt=prompt[ok].astype(np.int64), output=out.astype(np.int64), ttft=ttft[ok],
                          e2e=ttft[ok] + decode, tpot=tpot, itl=np.concatenate(kept) if kept else np.zeros(0),
                          start=None)


def _value(rec: dict[str, Any], tag: str, line: int) -> Any:
    m = rec["metrics"].get(tag)
    if not isinstance(m, dict) or "value" not in m:
        return None
    scale = _UNIT_S.get(str(m.get("unit", "")), 1.0)
    v = m["value"]
    vals = v if isinstance(v, list) else [v]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in vals):
        raise InputError(f"MEASURED:line {line}:metrics.{tag}", str(v)[:60], "must be finite numbers >= 0")
    return [x * scale for x in vals] if isinstance(v, list) else v * scale


def from_aiperf_records(records: list[tuple[int, dict[str, Any]]]) -> RequestSamples:
    """The profiling-phase, successful requests of an AIPerf ``profile_export.jsonl``."""
    rows = []
    for line, rec in records:
        meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
        if rec.get("error") or meta.get("was_cancelled") or not isinstance(rec.get("metrics"), dict) or \
                meta.get("benchmark_phase", "profiling") != "profiling":
            continue
        need = {t: _value(rec, t, line) for t in ("time_to_first_token", "request_latency",
                                                 "input_sequence_length", "output_sequence_length")}
        if any(v is None for v in need.values()):
            missing = [t for t, v in need.items() if v is None]
            raise InputError(f"MEASURED:line {line}", f"metrics without {', '.join(missing)}",
                             "each successful AIPerf record needs TTFT, request latency and both lengths")
        start = meta.get("request_start_ns")
        if isinstance(start, bool) or not isinstance(start, int):
            raise InputError(f"MEASURED:line {line}:metadata.request_start_ns", start, "must be an integer (ns)")
        chunks = _value(rec, "inter_chunk_latency", line) or []
        rows.append((start, need, chunks, _value(rec, "inter_token_latency", line)))
    if not rows:
        raise InputError("MEASURED", "profile_export.jsonl", "no successful profiling-phase request")
    t0 = min(r[0] for r in rows)
    get = lambda t: np.array([r[1][t] for r in rows], dtype=np.float64)   # noqa: E731
    ttft, e2e = get("time_to_first_token"), get("request_latency")
    start = np.array([(r[0] - t0) * 1e-9 for r in rows])
    out = get("output_sequence_length")
    with np.errstate(invalid="ignore", divide="ignore"):
        derived = np.where(out > 1, (e2e - ttft) / (out - 1), np.nan)
    tpot = np.array([d if r[3] is None else r[3] for d, r in zip(derived, rows)], dtype=np.float64)
    itl = np.concatenate([np.asarray(r[2], dtype=np.float64) for r in rows])
    return RequestSamples(prompt=get("input_sequence_length").astype(np.int64), output=out.astype(np.int64),
                          ttft=ttft, e2e=e2e, tpot=tpot, itl=itl, start=start, end=start + e2e)
