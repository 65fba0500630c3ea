"""The measured workload of a per-request file, as a trace the simulation replays.

The requests' own lengths, in the order the tool sent them, go into a Mooncake-layout JSONL
(``timestamp`` ms, ``input_length``, ``output_length``). Their arrival times are, by what the file
holds:

- AIPerf records: the measured send times (``request_start_ns``), replayed as they were;
- vLLM / SGLang at a request rate: drawn as the tool draws them (the first request at 0, then gamma
  gaps of shape ``burstiness`` and mean ``1 / rate``; ``vllm/benchmarks/serve.py``
  ``get_request``), since the files store no send times;
- unpaced (rate inf, no concurrency cap): all at 0, as the tools send them.

A closed loop (``max_concurrency`` / AIPerf ``concurrency``) sends the next request when one ends,
so its send times belong to the simulated system: the simulation runs the closed loop and draws
the lengths from the measured ones (``empirical`` on the same file).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics.measured import Measured

#: Seed of the drawn arrival gaps, so that a comparison is reproducible.
ARRIVAL_SEED = 0


def arrival_times(m: Measured) -> np.ndarray:
    """Send times (s) of the measured requests for an open-loop replay."""
    s = m.samples
    assert s is not None
    n = len(s.prompt)
    if s.start is not None:
        return s.start
    if m.rate is None:
        return np.zeros(n)
    b = m.burstiness
    gaps = np.random.default_rng(ARRIVAL_SEED).gamma(shape=b, scale=1.0 / (m.rate * b), size=n)
    return np.concatenate([[0.0], np.cumsum(gaps[:-1])])


def write_trace(m: Measured, directory: Path) -> Path:
    """The measured requests as a Mooncake-layout JSONL in ``directory``."""
    s = m.samples
    assert s is not None
    path = directory / "measured_requests.jsonl"
    t = arrival_times(m) * 1e3
    with path.open("w", encoding="utf-8") as f:
        for ms, p, o in zip(t, s.prompt, s.output):
            f.write(json.dumps({"timestamp": float(ms), "input_length": int(p), "output_length": int(o)}) + "\n")
    return path


def trace_overrides(m: Measured, directory: Path) -> dict[str, Any]:
    """Dotted workload overrides that replay the measured requests (see the module's notes)."""
    path = write_trace(m, directory)
    n = len(m.samples.prompt) if m.samples is not None else m.requests
    if m.concurrency is not None:
        return {"workload.arrival": {"process": "closed_loop", "concurrency": m.concurrency},
                "workload.requests": n, "workload.warmup_requests": 0,
                "workload.prompt_tokens": {"dist": "empirical", "path": str(path), "column": "input_length"},
                "workload.output_tokens": {"dist": "empirical", "path": str(path), "column": "output_length"}}
    return {"workload.arrival": {"process": "trace", "path": str(path), "format": "mooncake"},
            "workload.requests": n, "workload.warmup_requests": 0,
            "workload.prompt_tokens": None, "workload.output_tokens": None}     # the trace's own lengths
