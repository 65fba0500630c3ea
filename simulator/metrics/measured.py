"""A benchmark tool's result file, read into one typed record of measured metrics.

Three layouts, told apart by their keys:

- ``vllm bench serve --save-result`` (vLLM 0.10 to 0.11, ``vllm/benchmarks/serve.py``): one JSON
  object, ``mean_/median_/std_/p<P>_{ttft,tpot,itl,e2el}_ms``, ``request_throughput``,
  ``output_throughput``, ``total_input_tokens``, ``total_output_tokens``, ``completed``,
  ``request_rate`` (``"inf"`` when unpaced), ``burstiness``, ``max_concurrency``, ``model_id``, and
  the per-request ``input_lens`` / ``output_lens`` where it saved them.
- SGLang ``python -m sglang.bench_serving --output-file F`` (``python/sglang/bench_serving.py``,
  2025 releases): one JSON object per line, appended per run (the last line is read), the same
  ``_ttft_ms`` / ``_tpot_ms`` / ``_itl_ms`` keys and ``mean_/median_/std_/p99_e2e_latency_ms``.
- NVIDIA AIPerf ``profile_export_aiperf.json`` (docs.nvidia.com/aiperf "JSON Export Schema",
  v0.11 to v0.14): one block per metric tag with ``unit`` and ``avg``/``p50``/``p99``;
  ``inter_token_latency`` there is the per-request TPOT (see :mod:`.formats`). The load and the
  model come from ``input_config`` where present.
- AIPerf ``profile_export.jsonl`` and the per-request arrays of vLLM ``--save-detailed`` / SGLang
  ``--output-details`` (see :mod:`.measured_requests`): the latency statistics are recomputed from
  every request (exact percentiles), and the requests' lengths (and AIPerf's start times) are kept
  to rebuild the measured workload. An AIPerf JSONL takes its model and load from the
  ``profile_export_aiperf.json`` beside it, where there is one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..inputs import is_file, load_json, read_text
from .measured_requests import RequestSamples, from_aiperf_records, from_arrays

#: Largest result file read: per-request files hold every gap of every request.
MAX_MEASURED_BYTES = 512 * 2**20

#: (servesim summary block, statistic) of every metric a tool file may hold; None: a rate block.
METRICS = (("ttft_s", "mean"), ("ttft_s", "median"), ("ttft_s", "p99"), ("tpot_s", "mean"),
           ("tpot_s", "median"), ("tpot_s", "p99"), ("itl_s", "mean"), ("itl_s", "median"), ("itl_s", "p99"),
           ("e2e_s", "mean"), ("e2e_s", "median"), ("e2e_s", "p99"),
           ("throughput_requests_per_s", None), ("throughput_output_tokens_per_s", None))
_VLLM_WORDS = {"ttft_s": "ttft", "tpot_s": "tpot", "itl_s": "itl", "e2e_s": "e2el"}
_SGLANG_WORDS = {**_VLLM_WORDS, "e2e_s": "e2e_latency"}
_AIPERF_TAGS = {"ttft_s": "time_to_first_token", "tpot_s": "inter_token_latency", "e2e_s": "request_latency"}


@dataclass(frozen=True)
class Measured:
    """What a benchmark tool measured, in seconds and per second, and the load it offered."""

    tool: str                                  # vllm | sglang | aiperf
    model: str | None
    requests: int
    prompt_tokens: float                       # mean per completed request
    output_tokens: float
    rate: float | None                         # offered req/s; None: unpaced (inf)
    burstiness: float                          # gamma shape of the gaps (1 = Poisson)
    concurrency: int | None
    metrics: dict[tuple[str, str | None], float] = field(default_factory=dict)
    samples: RequestSamples | None = None      # every completed request, where the file holds them


def read_measured(path: str) -> Measured:
    """The measured record of a vLLM, SGLang or AIPerf result file (format told by its keys)."""
    text = read_text(path, "MEASURED", MAX_MEASURED_BYTES)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        raw = load_json(text, "MEASURED")
    except InputError:
        if len(lines) < 2:
            raise
        first = load_json(lines[0], "MEASURED")
        if isinstance(first, dict) and isinstance(first.get("metrics"), dict) and "metadata" in first:
            return _from_aiperf_jsonl(path, text)
        raw = load_json(lines[-1], "MEASURED")                       # SGLang JSONL: the last run
    if isinstance(raw, dict) and isinstance(raw.get("metrics"), dict) and "metadata" in raw:
        return _from_aiperf_jsonl(path, text)                        # a one-request AIPerf JSONL
    if not isinstance(raw, dict):
        raise InputError("MEASURED", path, "a JSON object from vllm bench serve, sglang.bench_serving or AIPerf")
    if "mean_e2el_ms" in raw or "mean_ttft_ms" in raw and "mean_e2e_latency_ms" not in raw:
        return _with_samples(_from_bench(raw, "vllm", _VLLM_WORDS), from_arrays(raw))
    if "mean_e2e_latency_ms" in raw:
        return _with_samples(_from_bench(raw, "sglang", _SGLANG_WORDS), from_arrays(raw))
    if isinstance(raw.get("time_to_first_token"), dict):
        return _from_aiperf(raw)
    raise InputError("MEASURED", Path(path).name, "no mean_ttft_ms (vLLM, SGLang) or time_to_first_token "
                     "block (AIPerf): not a result file of a known benchmark tool")


def _with_samples(m: Measured, s: RequestSamples | None) -> Measured:
    """``m`` with its latency statistics recomputed from every request (throughputs kept)."""
    if s is None:
        return m
    exact = s.metrics()
    keep = {k: v for k, v in m.metrics.items() if k[1] is None and k not in exact}
    return replace(m, metrics={**exact, **keep}, samples=s, requests=len(s.ttft),
                   prompt_tokens=float(s.prompt.mean()), output_tokens=float(s.output.mean()))


def _from_aiperf_jsonl(path: str, text: str) -> Measured:
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            rec = load_json(line, f"MEASURED:line {number}")
            if not isinstance(rec, dict):
                raise InputError(f"MEASURED:line {number}", line[:60], "each line must be one AIPerf record object")
            records.append((number, rec))
    samples = from_aiperf_records(records)
    beside = Path(path).with_name("profile_export_aiperf.json")
    if is_file(beside, "MEASURED"):
        m = _from_aiperf(load_json(read_text(beside, "MEASURED"), "MEASURED"))
    else:
        m = Measured(tool="aiperf", model=None, requests=0, prompt_tokens=0.0, output_tokens=0.0, rate=None,
                     burstiness=1.0, concurrency=None)
    return _with_samples(m, samples)


def _num(raw: dict[str, Any], key: str, required: bool = True) -> float | None:
    v = raw.get(key)
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise InputError(f"MEASURED:{key}", v, "must be a finite number >= 0")
    return float(v)


def _rate(v: Any) -> float | None:
    if v in (None, "inf") or (isinstance(v, float) and math.isinf(v)):
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise InputError("MEASURED:request_rate", v, "must be a rate above 0 or \"inf\"")
    return float(v)


def _from_bench(raw: dict[str, Any], tool: str, words: dict[str, str]) -> Measured:
    done = int(_num(raw, "completed"))
    if done < 1:
        raise InputError("MEASURED:completed", done, "at least one completed request is needed to compare")
    metrics: dict[tuple[str, str | None], float] = {}
    for block, stat in METRICS:
        if stat is None:
            key = {"throughput_requests_per_s": "request_throughput",
                   "throughput_output_tokens_per_s": "output_throughput"}[block]
            v = _num(raw, key, required=False)
        else:
            v = _num(raw, f"{stat}_{words[block]}_ms", required=False)
            v = None if v is None else v / 1e3
        if v is not None:
            metrics[(block, stat)] = v
    conc = raw.get("max_concurrency")
    return Measured(tool=tool, model=raw.get("model_id") or raw.get("model"), requests=done,
                    prompt_tokens=_num(raw, "total_input_tokens") / done,
                    output_tokens=_num(raw, "total_output_tokens") / done,
                    rate=_rate(raw.get("request_rate")), burstiness=_num(raw, "burstiness", False) or 1.0,
                    concurrency=int(conc) if isinstance(conc, int) and conc > 0 else None, metrics=metrics)


def _block(raw: dict[str, Any], tag: str, stat: str) -> float | None:
    b = raw.get(tag)
    if not isinstance(b, dict) or b.get(stat) is None:
        return None
    v = _num(b, stat)
    unit = b.get("unit", "")
    return v / 1e3 if unit == "ms" else v


def _from_aiperf(raw: dict[str, Any]) -> Measured:
    metrics: dict[tuple[str, str | None], float] = {}
    for block, stat in METRICS:
        if stat is None:
            tag = {"throughput_requests_per_s": "request_throughput",
                   "throughput_output_tokens_per_s": "output_token_throughput"}[block]
            v = _block(raw, tag, "avg")
        elif block in _AIPERF_TAGS:
            v = _block(raw, _AIPERF_TAGS[block], {"mean": "avg", "median": "p50"}.get(stat, stat))
        else:
            v = None
        if v is not None:
            metrics[(block, stat)] = v
    cfg = raw.get("input_config") if isinstance(raw.get("input_config"), dict) else {}
    load = cfg.get("loadgen") if isinstance(cfg.get("loadgen"), dict) else {}
    names = (cfg.get("endpoint") or {}).get("model_names") if isinstance(cfg.get("endpoint"), dict) else None
    count = _block(raw, "request_count", "avg")
    isl, osl = _block(raw, "input_sequence_length", "avg"), _block(raw, "output_sequence_length", "avg")
    if not count or isl is None or osl is None:
        raise InputError("MEASURED", "AIPerf export", "needs request_count, input_sequence_length and "
                         "output_sequence_length blocks to rebuild the workload")
    conc = load.get("concurrency")
    return Measured(tool="aiperf", model=names[0] if isinstance(names, list) and names else None,
                    requests=int(count), prompt_tokens=isl, output_tokens=osl,
                    rate=_rate(load.get("request_rate")), burstiness=1.0,
                    concurrency=int(conc) if isinstance(conc, int) and conc > 0 else None, metrics=metrics)
